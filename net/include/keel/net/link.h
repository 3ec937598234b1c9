// DeviceLink: an Interface over an Ethernet device (netfront, or a fake in the tests), with
// zero-copy receive. A template over the device so the receive path makes no virtual calls.
//
// What Device must offer (netfront::Netfront does):
//   typename Device::RxBuffer          move-only handle of one received frame; returns its
//                                      buffer to the device when destroyed
//     .data()                          the frame (std::span of std::byte, const or not)
//     .checksum_ok()                   the device vouches for the frame's TCP/UDP checksum
//   transmit(std::span<const std::span<const std::byte>> fragments) -> Result<void>
//                                      Error::again when the device is full; it copies the
//                                      fragments before returning
//   set_receive_handler(Function<void(RxBuffer)>), set_tx_ready_handler(Function<void()>)
//   mac() -> MacAddr (std::array<std::uint8_t, 6>), mtu() -> std::uint16_t
//
// Receive: each frame's RxBuffer is parked in a slot and lwIP gets a custom pbuf pointing into
// the device's buffer; the buffer goes back to the device when lwIP (or the application, which
// reads TCP data straight out of it) frees the pbuf. When fewer than a quarter of the slots are
// free, frames are copied instead and their buffers returned at once, so a peer that sends many
// tiny segments cannot starve the device of receive buffers.
#pragma once

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
template <typename Device, std::size_t Slots = 256>
class DeviceLink {
public:
    using RxBuffer = typename Device::RxBuffer;
    /// Fewer free slots than this: copy received frames.
    static constexpr std::size_t copy_below = Slots / 4;

    explicit DeviceLink(Device& dev)
        : dev_(dev), iface_(this, Interface::LinkOps{&transmit_thunk}, dev.mac(), dev.mtu()) {
        dev_.set_receive_handler([this](RxBuffer b) { receive(std::move(b)); });
        dev_.set_tx_ready_handler([this] { iface_.tx_ready(); });
    }
    ~DeviceLink() {
        dev_.set_receive_handler(nullptr);
        dev_.set_tx_ready_handler(nullptr);
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

    void receive(RxBuffer b) {
        const auto data = b.data();
        const std::span<std::byte> frame(const_cast<std::byte*>(data.data()), data.size());
        const bool checksum_ok = b.checksum_ok();
        if (pool_.free <= copy_below) {
            iface_.input_copy(frame, checksum_ok);
            return;  // b returns its buffer here
        }
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
