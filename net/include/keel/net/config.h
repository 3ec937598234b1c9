// Network configuration from the guest command line:
//   ip=ADDR/PREFIX [gw=ADDR]   static IPv4 (otherwise DHCP)
//   dns=ADDR                   DNS server (IPv4 or IPv6); overrides the one DHCP offers
// IPv6 always gets a link-local address and SLAAC addresses from router advertisements.
// The command line is untrusted: every problem is an Error with a human-readable reason, and the
// service decides what to do about it.
#pragma once

#include <cstdint>
#include <optional>

#include "keel/cmdline.h"
#include "keel/net/addr.h"
#include "keel/result.h"

namespace keel::net {

/// A static IPv4 configuration.
struct Ipv4Static {
    IpAddr address;       ///< a unicast IPv4 address
    std::uint8_t prefix;  ///< 1..32
    IpAddr gateway;       ///< IPv4, or Family::none for a network without a router
};

struct Config {
    std::optional<Ipv4Static> ipv4;  ///< nullopt: DHCP
    std::optional<IpAddr> dns;       ///< overrides DHCP's DNS server
    bool dhcp() const { return !ipv4.has_value(); }
};

/// Read ip=, gw= and dns= from the command line (other keys are ignored). On error returns
/// Error::invalid_argument and sets *why (if non-null) to a fixed reason naming the key, e.g.
/// "ip=: prefix must be a number from 1 to 32".
Result<Config> parse_config(const CommandLine& args, const char** why = nullptr);

/// Netmask of an IPv4 prefix length (0..32) in host byte order.
constexpr std::uint32_t prefix_mask(unsigned prefix) {
    return prefix == 0 ? 0u : prefix >= 32 ? ~0u : ~0u << (32 - prefix);
}

}  // namespace keel::net
