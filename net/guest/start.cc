// Guest wiring: the first netfront device becomes the interface net::start() returns; every
// later one (more vifs at boot, `xl network-attach`: netfront_added()) becomes one more
// interface, addressed from its backend's `ip` node as a /24 or else by DHCP
// (keel/net/interfaces.h); every netfront device's counters are summed for link_stats(), and
// the stack's random numbers are keyed from random_seed() (RDRAND, or the TSC without it).
#include <cstdint>
#include <new>

#include "keel/log.h"
#include "keel/net/interfaces.h"
#include "keel/net/link.h"
#include "keel/net/net.h"
#include "keel/net/stats.h"
#include "keel/system.h"

#ifdef KEEL_HAVE_NETFRONT
#include "keel/netfront/netfront.h"
#endif

namespace keel::net {
namespace {

#ifdef KEEL_HAVE_NETFRONT
using Link = DeviceLink<netfront::Netfront, netfront::RxBuffer, netfront::RxRing::size>;
// Built on first start() and never destroyed (the device lives forever too).
alignas(Link) unsigned char g_link_storage[sizeof(Link)];
Link* g_link = nullptr;

/// Backend errors and protocol violations of one direction (what keel_netfront_errors_total counts).
std::uint64_t errors_of(const netfront::DirectionStats& d) {
    return d.bad_id + d.bad_status + d.bad_length + d.too_many_slots + d.bad_extra + d.ring_overrun +
           d.backend_error;
}

/// netfront_devices() that have an interface (the first is g_link's).
std::size_t g_linked = 0;

/// One more interface over `nic`: the address the toolstack gave the vif (its backend's `ip`
/// node: xl's vif `ip=`, `xl network-attach DOM ip=...`) as a /24, else DHCP.
Task<void> add_link(netfront::Netfront& nic) {
    const auto node = nic.nodename();
    if (interfaces().size() == max_interfaces) {
        KLOG_WARN("net: %.*s: not used: %zu interfaces already", static_cast<int>(node.size()), node.data(),
                  max_interfaces);
        co_return;
    }
    Link* link = new Link(nic);  // lives forever, like the device
    Interface& iface = link->interface();
    Config cfg;  // DHCP
    char ip[64];
    Result<std::size_t> n = co_await nic.xenbus().read_backend("ip", ip);
    if (n) {
        const std::string_view text(ip, *n);
        Result<Config> c = toolstack_config(text);
        if (c && !check_no_overlap(*c->ipv4)) {
            KLOG_WARN("net: %s on %.*s: the vif's ip %.*s lies in the subnet of an interface we have; left "
                      "without an address (it would take that interface's traffic)",
                      iface.name(), static_cast<int>(node.size()), node.data(),
                      static_cast<int>(text.find(' ') == std::string_view::npos ? text.size() : text.find(' ')),
                      text.data());
            (void)add_interface(iface);
            co_return;
        }
        if (c) {
            cfg = *c;
            KLOG_INFO(
                "net: %s on %.*s, mtu %u: address %.*s/%u from the toolstack (the vif's ip; xl gives no "
                "prefix, /%u assumed)",
                iface.name(), static_cast<int>(node.size()), node.data(), iface.mtu(),
                static_cast<int>(text.find(' ') == std::string_view::npos ? text.size() : text.find(' ')),
                text.data(), toolstack_prefix, toolstack_prefix);
        } else {
            KLOG_WARN("net: %s on %.*s: the vif's ip is not a unicast IPv4 address; using DHCP", iface.name(),
                      static_cast<int>(node.size()), node.data());
        }
    } else {
        KLOG_INFO("net: %s on %.*s, mtu %u: no address from the toolstack (%s); DHCP", iface.name(),
                  static_cast<int>(node.size()), node.data(), iface.mtu(), to_string(n.error()));
    }
    if (Result<void> r = iface.configure(cfg); !r) {
        KLOG_ERROR("net: %s: cannot configure: %s", iface.name(), to_string(r.error()));
    }
    (void)add_interface(iface);  // room checked above
}

/// Every netfront device after the first becomes an interface, at boot and when hot-plugged.
Task<void> follow_devices() {
    Event& added = netfront::netfront_added();
    for (;;) {
        added.reset();  // a device added while we bring one up sets it again
        const auto devices = netfront::netfront_devices();
        while (g_linked < devices.size()) co_await add_link(*devices[g_linked++]);
        co_await added.wait();
    }
}
#endif

}  // namespace

LinkStats link_stats() {
    LinkStats sum;
#ifdef KEEL_HAVE_NETFRONT
    for (netfront::Netfront* dev : netfront::netfront_devices()) {
        const netfront::Stats st = dev->stats();
        sum.rx_packets += st.rx.packets;
        sum.rx_bytes += st.rx.bytes;
        sum.tx_packets += st.tx.packets;
        sum.tx_bytes += st.tx.bytes;
        sum.rx_gso += st.rx.gso;
        sum.tx_gso += st.tx.gso;
        sum.drops += st.rx.dropped + st.tx.dropped;
        sum.errors += errors_of(st.rx) + errors_of(st.tx);
        sum.rx_missed_events += st.rx_missed_events;
        sum.rx_ring_empty += st.rx_ring_empty;
        sum.resets += st.resets;
        sum.given_up += st.given_up;
        sum.held_pages += st.held_pages;
    }
#endif
    return sum;
}

namespace {

/// lwIP's pools for this guest's memory, once.
void apply_pool_limits() {
    static bool applied = false;
    if (applied) return;
    applied = true;
    const PoolLimits l = pool_limits_for_memory(ram_bytes());
    set_pool_limits(l);
    KLOG_INFO("net: for %llu MiB: up to %u TCP connections, %u queued segments, %u+%u pbufs",
              static_cast<unsigned long long>(ram_bytes() >> 20), l.tcp_pcbs, l.tcp_segments, l.pbufs, l.pool_pbufs);
}

}  // namespace

Task<Result<Interface*>> start(Config cfg) {
#ifdef KEEL_HAVE_NETFRONT
    if (g_link != nullptr) co_return &g_link->interface();
    seed_random(random_seed());
    apply_pool_limits();
    co_await netfront::netfront_discovered().wait();
    if (g_link != nullptr) co_return &g_link->interface();  // a concurrent start() won
    const auto devices = netfront::netfront_devices();
    if (devices.empty()) {
        KLOG_ERROR("net: no network device (add a vif to the xl config)");
        co_return Error::not_found;
    }
    netfront::Netfront& nic = *devices[0];
    g_link = new (g_link_storage) Link(nic);
    Interface& iface = g_link->interface();
    KLOG_INFO("net: %s on %.*s, mtu %u", iface.name(), static_cast<int>(nic.nodename().size()),
              nic.nodename().data(), iface.mtu());
    if (Result<void> r = iface.configure(cfg); !r) co_return r.error();
    (void)add_interface(iface);  // the first: there is room
    g_linked = 1;
    spawn(follow_devices());
    co_return &iface;
#else
    (void)cfg;
    seed_random(random_seed());
    KLOG_ERROR("net: this image was built without netfront");
    co_return Error::not_supported;
#endif
}

}  // namespace keel::net
