// The interfaces the stack uses, for services that want to know about more than the one
// net::start() returned: every netfront device becomes one, the first by net::start() with the
// service's Config, later ones (more vifs at boot, `xl network-attach`) by the net layer's
// hot-plug wiring (net/guest/start.cc) with the address the toolstack gave the vif (its
// backend's `ip` node, taken as a /24: toolstack_config()) or DHCP. An interface whose device
// is detached stays in the list with its link down (interfaces live forever).
//
//   net::interface_added().reset();
//   for (net::Interface* i : net::interfaces()) listen_on(*i);
//   co_await net::interface_added().wait();             // then look again
//
// Header-only and pure. Context: event loop only.
#pragma once

#include <algorithm>

#include <cstddef>
#include <span>
#include <string_view>

#include "keel/net/config.h"
#include "keel/net/interface.h"
#include "keel/registry.h"
#include "keel/result.h"
#include "keel/task.h"

namespace keel::net {

/// The most interfaces the stack takes over the guest's life, those of detached vifs included
/// (netfront takes as many, xenbus::max_attached; at most 8 at once).
inline constexpr std::size_t max_interfaces = 32;

namespace detail {
inline Registry<Interface, max_interfaces>& interface_registry() {
    static Registry<Interface, max_interfaces> r;
    return r;
}
}  // namespace detail

/// Every interface the stack uses, in the order they were added (net::start()'s first).
inline std::span<Interface* const> interfaces() { return detail::interface_registry().devices(); }

/// Set each time an interface is added (the stack never resets it): a service that waits for
/// one resets it, then reads interfaces() again.
inline Event& interface_added() {
    static Event added;
    return added;
}

/// For the wiring: make `iface` one of interfaces() and set interface_added().
/// Error::no_space beyond max_interfaces.
inline Result<void> add_interface(Interface& iface) {
    TRY_VOID(detail::interface_registry().add(iface));
    interface_added().set();
    return {};
}

/// Forget every interface and reset interface_added() (tests).
inline void clear_interfaces() {
    detail::interface_registry().clear();
    interface_added().reset();
}

/// The prefix given to an address the toolstack wrote for a vif (xl's `ip=` in a vif spec or
/// `xl network-attach ... ip=`): xl has no way to say the prefix, so keel takes a /24.
inline constexpr std::uint8_t toolstack_prefix = 24;

/// The static configuration for a vif from its backend's `ip` node (untrusted: the toolstack's
/// text). libxl writes the addresses as given, space-separated; the first is used, as a /24
/// without a gateway. Error::bad_input unless it is a unicast IPv4 address.
inline Result<Config> toolstack_config(std::string_view ip_node) {
    const std::size_t end = ip_node.find(' ');
    const std::optional<IpAddr> a = IpAddr::parse(ip_node.substr(0, end));
    if (!a || !a->is_v4() || a->is_unspecified() || a->is_multicast() || a->is_loopback() ||
        a->v4_host_order() == 0xFFFFFFFFu) {
        return Error::bad_input;
    }
    Config cfg;
    cfg.ipv4 = Ipv4Static{.address = *a, .prefix = toolstack_prefix, .gateway = IpAddr{}};
    return cfg;
}

/// Error::busy if `candidate` (an IPv4 address with its prefix) is one of interfaces()' own
/// addresses or shares a subnet with one of them (compared at the shorter prefix). A second
/// interface with such an address would take traffic meant for the first: lwIP routes by the
/// first interface in its list that matches, and the newest comes first. So a hot-plugged vif
/// whose backend (or toolstack) names an address there is left without one.
inline Result<void> check_no_overlap(const Ipv4Static& candidate) {
    for (const Interface* iface : interfaces()) {
        const std::optional<Ipv4Static> have = iface->ipv4();
        if (!have || !have->address.is_v4()) continue;
        const unsigned prefix = std::min<unsigned>(have->prefix, candidate.prefix);
        const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
        if ((have->address.v4_host_order() & mask) == (candidate.address.v4_host_order() & mask)) {
            return Error::busy;
        }
    }
    return {};
}

}  // namespace keel::net
