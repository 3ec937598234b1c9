// An IP interface: one lwIP netif over one Ethernet link, with its addresses (static IPv4 or
// DHCP, IPv6 link-local + SLAAC). The link side is DeviceLink (link.h), which owns the device's
// receive buffers and calls input() / tx_ready() here from the event loop.
// lwIP types appear only as opaque pointers: this header does not include lwIP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "keel/net/addr.h"
#include "keel/net/config.h"
#include "keel/result.h"
#include "keel/task.h"

struct netif;
struct pbuf;

namespace keel::net {

namespace detail {

/// Room for lwIP's `struct pbuf_custom` over one received frame (the size is checked against
/// lwIP's in interface.cc), and the function lwIP's free of that pbuf ends in. The link owns
/// the slot and the buffer behind it until `release` runs.
struct RxSlot {
    alignas(8) unsigned char pbuf_storage[40];
    void (*release)(RxSlot* slot) = nullptr;
};

struct InterfaceHooks;

}  // namespace detail

/// One piece of an outgoing frame; valid only during the transmit call.
using Fragment = std::span<const std::byte>;

/// Context: loop only. Not movable (lwIP points at it). Destroy it before its link.
class Interface {
public:
    /// How the interface reaches its link (filled in by DeviceLink).
    struct LinkOps {
        /// Send one frame made of `fragments` (at most max_fragments, together at most the MTU
        /// plus the Ethernet header). Error::again: the link is full: the frame is kept and
        /// offered again after tx_ready(). Any other error drops the frame.
        Result<void> (*transmit)(void* link, std::span<const Fragment> fragments);
    };
    /// Frames longer than this many pbufs are first copied into one buffer.
    static constexpr std::size_t max_fragments = 16;
    /// Frames kept while the link is full; beyond that lwIP is told ERR_MEM (TCP retries).
    static constexpr std::size_t tx_queue_capacity = 128;

    /// Adds a netif to lwIP (initialising lwIP on first use), link up, interface down until
    /// configure(). `mtu` is the IP MTU (1500 for Ethernet).
    Interface(void* link, LinkOps ops, const MacAddr& mac, std::uint16_t mtu);
    /// Removes the netif (connections using its addresses are aborted) and drops queued frames.
    ~Interface();
    Interface(const Interface&) = delete;
    Interface& operator=(const Interface&) = delete;

    /// Bring the interface up: the static IPv4 address or DHCP, the DNS server, IPv6
    /// link-local + SLAAC. Logs one line per address as it becomes usable (DHCP: with the
    /// gateway and lease time). Error::no_memory if lwIP cannot start DHCP.
    Result<void> configure(const Config& cfg);

    /// Set while the interface has an IPv4 address (at once for a static one; when DHCP binds).
    /// `co_await iface.ready().wait_for(s(30))`.
    Event& ready() { return ready_; }

    /// The current IPv4 address, prefix and gateway (gateway none if unset); nullopt while there
    /// is no address.
    std::optional<Ipv4Static> ipv4() const;
    /// The usable (preferred) IPv6 addresses, link-local ones with this interface's zone.
    /// Returns how many were written.
    std::size_t ipv6_addresses(std::span<IpAddr> out) const;
    /// Index for IPv6 zones (fe80::1%INDEX); 1-based.
    std::uint8_t index() const;
    const MacAddr& mac() const { return mac_; }
    std::uint16_t mtu() const { return mtu_; }
    /// "en" + index - 1: "en0".
    const char* name() const { return name_; }

    // ---- Data path (the link, from the loop) ----

    /// Hand a received Ethernet frame to lwIP without copying it: `frame` lies in memory the
    /// link keeps, with `slot`, until slot.release(&slot) runs (when lwIP and the application
    /// are done with the frame, possibly much later). `checksum_ok`: the device vouches for the
    /// TCP/UDP checksums (or they are blank, computed by a local sender's offload).
    void input(detail::RxSlot& slot, std::span<std::byte> frame, bool checksum_ok);
    /// Hand a received frame, the concatenation of `segments`, to lwIP as a copy (for links
    /// short of buffers, and frames of several segments).
    void input_copy(std::span<const std::span<const std::byte>> segments, bool checksum_ok);
    /// The link came up or went down (lwIP stops sending while it is down).
    void set_link(bool up);
    /// The link has room again: send the queued frames.
    void tx_ready();
    /// Frames waiting for room on the link.
    std::size_t tx_queued() const { return txq_count_; }

private:
    friend struct detail::InterfaceHooks;

    void deliver(struct pbuf* p, bool checksum_ok);
    bool send_now(struct pbuf* p);  // false: link full
    void on_status_change();

    void* link_;
    LinkOps ops_;
    MacAddr mac_;
    std::uint16_t mtu_;
    char name_[8] = {};
    struct netif* netif_ = nullptr;  // owned (heap: its layout is lwIP's)
    struct pbuf* txq_[tx_queue_capacity] = {};
    std::size_t txq_head_ = 0;
    std::size_t txq_count_ = 0;
    Config config_;
    bool configured_ = false;
    bool had_ipv4_ = false;
    std::uint8_t ipv6_logged_ = 0;  // bit per lwIP address slot already reported as usable
    Event ready_;
};

}  // namespace keel::net
