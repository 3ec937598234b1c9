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

/// One segment of a received frame: the bytes, and the slot its pbuf lives in.
struct RxSegment {
    RxSlot* slot = nullptr;
    std::span<std::byte> data;
};

/// Send what every interface queued during this entry into lwIP (LwipCall's end, lwIP's timers).
void flush_output();

struct InterfaceHooks;
struct TxRun;

}  // namespace detail

/// One piece of an outgoing frame; valid only during the transmit call.
using Fragment = std::span<const std::byte>;

/// Context: loop only. Not movable (lwIP points at it). Destroy it before its link.
class Interface {
public:
    /// How the interface reaches its link (filled in by DeviceLink).
    struct LinkOps {
        /// Send one frame made of `fragments`. gso_size 0: an ordinary frame (at most the MTU
        /// plus the Ethernet header, at most max_fragments pieces). gso_size > 0: a TCP/IPv4
        /// super-segment of up to max_gso_frame bytes, the TCP checksum field holding only the
        /// pseudo-header sum, for the link to cut into segments of gso_size payload bytes.
        /// Error::again: the link is full: the frame is kept and offered again after
        /// tx_ready(). Any other error drops the frame.
        Result<void> (*transmit)(void* link, std::span<const Fragment> fragments, std::uint16_t gso_size);
        /// True while the link takes TCP/IPv4 super-segments (io/netif.h feature-gso-tcpv4).
        bool (*tx_gso)(void* link);
    };
    /// Frames longer than this many pbufs are first copied into one buffer.
    static constexpr std::size_t max_fragments = 16;
    /// Largest super-segment, Ethernet header included (netif.h: a 16-bit request size).
    static constexpr std::size_t max_gso_frame = 65535;
    /// Pieces of one super-segment (its header, then the payload pbufs of its segments).
    static constexpr std::size_t max_gso_fragments = 96;
    /// Frames waiting to be handed to the link: those of the current entry into lwIP (sent
    /// together at its end, consecutive TCP segments merged into super-segments when the link
    /// takes them) and those the full link refused. Beyond it lwIP is told ERR_MEM (TCP
    /// retries).
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
    /// lwIP's default interface: what matches no subnet is routed through it.
    bool is_default() const;
    /// Index for IPv6 zones (fe80::1%INDEX); 1-based.
    std::uint8_t index() const;
    const MacAddr& mac() const { return mac_; }
    std::uint16_t mtu() const { return mtu_; }
    /// "en" + index - 1: "en0".
    const char* name() const { return name_; }

    // ---- Data path (the link, from the loop) ----

    /// Hand a received Ethernet frame, the concatenation of `segments`, to lwIP without copying
    /// it, as a chain of pbufs: each segment lies in memory the link keeps, with its slot, until
    /// slot->release(slot) runs (when lwIP and the application are done with that segment,
    /// possibly much later; segments of one frame are released in any order). `checksum_ok`:
    /// the device vouches for the TCP/UDP checksums (or they are blank, computed by a local
    /// sender's offload). A frame may exceed the MTU (a GSO super-segment), not 65535 bytes.
    void input(std::span<detail::RxSegment> segments, bool checksum_ok);
    /// Hand a received frame, the concatenation of `segments`, to lwIP as a copy (for links
    /// short of buffers, and frames of several segments).
    void input_copy(std::span<const std::span<const std::byte>> segments, bool checksum_ok);
    /// The link came up or went down (lwIP stops sending while it is down).
    void set_link(bool up);
    /// The device is gone for good (a detached vif): DHCP stops, the interface and its link go
    /// down, its addresses are dropped (connections using them are aborted; ipv4() turns
    /// nullopt, so a new vif may take the same subnet), queued frames are freed, and lwIP's
    /// default route moves to another interface that is up. The netif stays (services may keep
    /// the Interface); configure() fails with Error::closed and set_link(true) is ignored from
    /// now on. One log line.
    void shut();
    /// The link has room again: send the queued frames.
    void tx_ready();
    /// Frames waiting for room on the link.
    std::size_t tx_queued() const { return txq_count_; }

private:
    friend struct detail::InterfaceHooks;
    friend void detail::flush_output();

    void deliver(struct pbuf* p, bool checksum_ok);
    /// Free the frames waiting for room on the link.
    void drop_queued();
    /// Hand queued frames to the link until it is full or the queue empty.
    void pump();
    /// The frames at the head of the queue that form one super-segment (one frame: send the
    /// head alone).
    void gather(detail::TxRun& run) const;
    /// Send the run at the head of the queue as one frame; false: the link is full.
    bool send_head(const detail::TxRun& run);
    /// Send one frame as it is; false: the link is full.
    bool send_now(struct pbuf* p);
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
    std::size_t txq_waited_ = 0;   ///< queued frames already counted as tx_deferred
    bool tx_blocked_ = false;      ///< the link said again: wait for tx_ready()
    Interface* next_ = nullptr;    ///< every interface, for flush_output()
    Config config_;
    bool configured_ = false;
    bool gone_ = false;  ///< shut(): configure() and a link coming up are refused
    bool had_ipv4_ = false;
    std::uint8_t ipv6_logged_ = 0;  // bit per lwIP address slot already reported as usable
    Event ready_;
};

}  // namespace keel::net
