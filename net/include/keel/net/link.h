// DeviceLink: an Interface over an Ethernet device (netfront, or a fake in the tests), with
// zero-copy receive. A template over the device so the receive path makes no virtual calls.
//
// What Device and its RxBuffer must offer (keel::netfront::Netfront and netfront::RxBuffer do):
//   RxBuffer: move-only handle of one received frame; destroying it returns its pages to the
//     device (and runs no handler). size(), segment_count(), segment(i) (writable
//     std::span<std::byte>), flags().data_validated / .checksum_blank / .gso_size.
//   Device: transmit(std::span<const std::span<const std::byte>> fragments, TxFlags flags,
//     std::uint16_t gso_size) -> Result<void>, where TxFlags is an enum with none and
//     checksum_blank; Error::again when full (it copies the fragments before returning);
//     features().tx_gso_tcpv4; set_receive_handler(Function<void(RxBuffer)>),
//     set_tx_ready_handler(Function<void()>), set_link_handler(Function<void(bool)>), link_up(),
//     mac() (.bytes: 6 bytes), mtu().
//
// Receive: each segment of a frame is parked in a slot and lwIP gets a chain of custom pbufs,
// one per segment, pointing into the device's buffer; the frame's buffer goes back to the device
// when lwIP (or the application, which reads TCP data straight out of it) has freed every pbuf
// of the chain. A frame has several segments when it is larger than a page: a GSO frame (up to
// 64 KiB of one TCP connection) or an MTU above ~4000. When fewer than a quarter of the slots
// would stay free, frames are copied instead and their buffers returned at once, so a peer that
// sends many tiny segments cannot starve the device of receive buffers. Slots should be at
// least the device's number of receive buffers (pages), so that the device runs dry before the
// slots do.
//
// Transmit: the Interface hands over single frames, or (when the device's features() say
// tx_gso_tcpv4) a TCP/IPv4 super-segment with its gso_size, sent with a blank checksum.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
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
    /// Fewer free slots than this left after taking a frame: copy it instead.
    static constexpr std::size_t copy_below = Slots / 4;
    /// Segments of one frame handed up; more cannot come from a device (io/netif.h: 18).
    static constexpr std::size_t max_segments = 32;

    explicit DeviceLink(Device& dev)
        : dev_(dev),
          iface_(this, Interface::LinkOps{&transmit_thunk, &gso_thunk}, to_mac(dev.mac()), dev.mtu()) {
        iface_.set_link(dev_.link_up());
        dev_.set_receive_handler([this](RxBuffer b) { receive(std::move(b)); });
        dev_.set_tx_ready_handler([this] { iface_.tx_ready(); });
        dev_.set_link_handler([this](bool up) { iface_.set_link(up); });
        if constexpr (can_go) dev_.set_gone_handler([this] { iface_.shut(); });
    }
    ~DeviceLink() {
        dev_.set_receive_handler(nullptr);
        dev_.set_tx_ready_handler(nullptr);
        dev_.set_link_handler(nullptr);
        if constexpr (can_go) dev_.set_gone_handler(nullptr);
    }
    DeviceLink(const DeviceLink&) = delete;
    DeviceLink& operator=(const DeviceLink&) = delete;

    Interface& interface() { return iface_; }
    Device& device() { return dev_; }
    /// Segments of received frames lwIP or the application still hold (a frame's first
    /// segment counts until the whole frame is freed).
    std::size_t rx_held() const { return Slots - pool_.free; }

private:
    /// A device that can go away for good (a detached vif) says so: the interface is shut.
    static constexpr bool can_go = requires(Device& d) { d.set_gone_handler(nullptr); };
    struct Pool;
    /// One segment of a received frame under a custom pbuf. The frame's first slot also holds
    /// the device's buffer and counts the frame's segments still alive.
    struct Slot : detail::RxSlot {
        Slot* head = nullptr;          ///< the frame's first slot
        std::uint16_t alive = 0;       ///< head only: pbufs of the frame not yet freed
        std::optional<RxBuffer> buf;   ///< head only
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
        /// lwIP freed the pbuf of one segment (in any order: a trimmed chain loses its front
        /// first). The frame's buffer goes back to the device with its last segment.
        static void release(detail::RxSlot* rs) {
            Slot* s = static_cast<Slot*>(rs);
            Slot* h = s->head;
            if (s != h) s->pool->push(*s);
            if (--h->alive == 0) {
                h->buf.reset();
                h->pool->push(*h);
            }
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
        const auto flags = b.flags();
        const bool checksum_ok = flags.data_validated || flags.checksum_blank;
        const std::size_t n = std::min<std::size_t>(b.segment_count(), max_segments);
        if (n == 0 || pool_.free < n + copy_below) {
            std::span<const std::byte> parts[max_segments];
            for (std::size_t i = 0; i < n; ++i) parts[i] = b.segment(i);
            iface_.input_copy(std::span<const std::span<const std::byte>>(parts, n), checksum_ok);
            return;  // b returns its pages here
        }
        detail::RxSegment segs[max_segments];
        Slot* h = nullptr;
        for (std::size_t i = 0; i < n; ++i) {
            Slot* s = pool_.pop();
            if (h == nullptr) h = s;
            s->head = h;
            segs[i] = {s, b.segment(i)};
        }
        h->alive = static_cast<std::uint16_t>(n);
        h->buf.emplace(std::move(b));
        iface_.input(std::span<detail::RxSegment>(segs, n), checksum_ok);
    }

    /// The device's tx flags type, from its transmit() signature.
    template <typename D, typename F>
    static F flags_of(Result<void> (D::*)(std::span<const std::span<const std::byte>>, F, std::uint16_t));
    using TxFlags = decltype(flags_of(&Device::transmit));

    static Result<void> transmit_thunk(void* self, std::span<const Fragment> fragments, std::uint16_t gso_size) {
        auto* link = static_cast<DeviceLink*>(self);
        return link->dev_.transmit(fragments, gso_size > 0 ? TxFlags::checksum_blank : TxFlags::none, gso_size);
    }
    static bool gso_thunk(void* self) { return static_cast<DeviceLink*>(self)->dev_.features().tx_gso_tcpv4; }

    Device& dev_;
    Pool pool_;
    Interface iface_;
};

}  // namespace keel::net
