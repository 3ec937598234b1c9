// DeviceLink: an Interface over an Ethernet device (netfront, or a fake in the tests), with
// zero-copy receive. A template over the device so the receive path makes no virtual calls.
//
// What Device and its RxBuffer must offer (keel::netfront::Netfront and netfront::RxBuffer do):
//   RxBuffer: move-only handle of one received frame; destroying it returns its pages to the
//     device (and runs no handler). size(), segment_count(), segment(i) / data() (writable
//     std::span<std::byte>), flags().data_validated / flags().checksum_blank.
//   Device: transmit(std::span<const std::span<const std::byte>> fragments) -> Result<void>,
//     Error::again when full (it copies the fragments before returning);
//     set_receive_handler(Function<void(RxBuffer)>), set_tx_ready_handler(Function<void()>),
//     set_link_handler(Function<void(bool)>), link_up(), mac() (.bytes: 6 bytes), mtu().
//
// Receive: each frame's RxBuffer is parked in a slot and lwIP gets a custom pbuf pointing into
// the device's buffer; the buffer goes back to the device when lwIP (or the application, which
// reads TCP data straight out of it) frees the pbuf. When fewer than a quarter of the slots are
// free, frames are copied instead and their buffers returned at once, so a peer that sends many
// tiny segments cannot starve the device of receive buffers. Frames of several segments (only
// with an MTU above a page) are copied too. Slots should be at least the device's number of
// receive buffers, so that the device runs dry before the slots do.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>

#include "keel/net/interface.h"
#include "keel/panic.h"

namespace keel::net {

/// Context: loop only. Destroy every TcpStream / UdpSocket that may hold received data before
/// the link (that is asserted), and the link before the device.
template <typename Device, typename RxBuffer, std::size_t Slots = 256>
class DeviceLink {
public:
    /// Fewer free slots than this: copy received frames.
    static constexpr std::size_t copy_below = Slots / 4;
    /// Segments of one frame that are copied; more cannot come from a device (io/netif.h: 18).
    static constexpr std::size_t max_segments = 32;

    explicit DeviceLink(Device& dev)
        : dev_(dev), iface_(this, Interface::LinkOps{&transmit_thunk}, to_mac(dev.mac()), dev.mtu()) {
        iface_.set_link(dev_.link_up());
        dev_.set_receive_handler([this](RxBuffer b) { receive(std::move(b)); });
        dev_.set_tx_ready_handler([this] { iface_.tx_ready(); });
        dev_.set_link_handler([this](bool up) { iface_.set_link(up); });
    }
    ~DeviceLink() {
        dev_.set_receive_handler(nullptr);
        dev_.set_tx_ready_handler(nullptr);
        dev_.set_link_handler(nullptr);
    }
    DeviceLink(const DeviceLink&) = delete;
    DeviceLink& operator=(const DeviceLink&) = delete;

    Interface& interface() { return iface_; }
    Device& device() { return dev_; }
    /// Received frames lwIP or the application still hold.
    std::size_t rx_held() const { return Slots - pool_.free; }

private:
    struct Pool;
    struct Slot : detail::RxSlot {
        std::optional<RxBuffer> buf;
        Slot* next_free = nullptr;
        Pool* pool = nullptr;
    };

    /// The slots, declared before the Interface so that they outlive it: removing the netif
    /// frees the frames lwIP still queues.
    struct Pool {
        Pool() {
            for (Slot& s : slots) {
                s.release = &release;
                s.pool = this;
                push(s);
            }
        }
        ~Pool() {
            // A pbuf over one of our frames is still alive (a TcpStream or UdpSocket outlived
            // the link): its free would write into this dead object.
            KASSERT(free == Slots);
        }
        void push(Slot& s) {
            s.next_free = head;
            head = &s;
            ++free;
        }
        Slot* pop() {
            Slot* s = head;
            if (s != nullptr) {
                head = s->next_free;
                --free;
            }
            return s;
        }
        static void release(detail::RxSlot* rs) {
            Slot* s = static_cast<Slot*>(rs);
            s->buf.reset();  // the buffer goes back to the device
            s->pool->push(*s);
        }
        std::array<Slot, Slots> slots;
        Slot* head = nullptr;
        std::size_t free = 0;
    };

    template <typename M>
    static MacAddr to_mac(const M& m) {
        MacAddr r;
        for (std::size_t i = 0; i < r.size(); ++i) r[i] = m.bytes[i];
        return r;
    }

    void receive(RxBuffer b) {
        const bool checksum_ok = b.flags().data_validated || b.flags().checksum_blank;
        if (b.segment_count() != 1 || pool_.free <= copy_below) {
            std::span<const std::byte> parts[max_segments];
            const std::size_t n = std::min<std::size_t>(b.segment_count(), max_segments);
            for (std::size_t i = 0; i < n; ++i) parts[i] = b.segment(i);
            iface_.input_copy(std::span<const std::span<const std::byte>>(parts, n), checksum_ok);
            return;  // b returns its pages here
        }
        const std::span<std::byte> frame = b.data();
        Slot* s = pool_.pop();
        s->buf.emplace(std::move(b));
        iface_.input(*s, frame, checksum_ok);
    }

    static Result<void> transmit_thunk(void* self, std::span<const Fragment> fragments) {
        return static_cast<DeviceLink*>(self)->dev_.transmit(fragments);
    }

    Device& dev_;
    Pool pool_;
    Interface iface_;
};

}  // namespace keel::net
