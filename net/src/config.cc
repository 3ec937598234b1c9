// Network configuration from the command line: strict, with one reason per failure.
#include "keel/net/config.h"

namespace keel::net {
namespace {

Error fail(const char** why, const char* reason) {
    if (why != nullptr) *why = reason;
    return Error::invalid_argument;
}

/// Not usable as a host's own address or a router: 0/8, 127/8, multicast, 240/4 (reserved and
/// the limited broadcast).
bool unicast_v4(const IpAddr& a) {
    const std::uint8_t first = a.bytes()[0];
    return first != 0 && first != 127 && first < 224;
}

}  // namespace

Result<Config> parse_config(const CommandLine& args, const char** why) {
    Config cfg;

    if (args.has("ip")) {
        const auto text = args.get("ip");
        if (!text || text->empty())
            return fail(why, "ip= needs a value: ip=ADDR/PREFIX (e.g. ip=10.0.0.2/24)");
        std::size_t slash = text->size();
        for (std::size_t i = 0; i < text->size(); ++i) {
            if ((*text)[i] == '/') {
                slash = i;
                break;
            }
        }
        if (slash == text->size()) return fail(why, "ip=: missing /PREFIX (e.g. ip=10.0.0.2/24)");
        const auto addr = IpAddr::parse(std::string_view(text->data(), slash));
        if (!addr || !addr->is_v4()) return fail(why, "ip=: not an IPv4 address (a.b.c.d)");
        const std::string_view ptext(text->data() + slash + 1, text->size() - slash - 1);
        unsigned prefix = 0;
        if (ptext.empty() || ptext.size() > 2) return fail(why, "ip=: prefix must be a number from 1 to 32");
        for (char c : ptext) {
            if (c < '0' || c > '9') return fail(why, "ip=: prefix must be a number from 1 to 32");
            prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        }
        if (prefix < 1 || prefix > 32 || (ptext.size() == 2 && ptext[0] == '0')) {
            return fail(why, "ip=: prefix must be a number from 1 to 32");
        }
        if (!unicast_v4(*addr)) return fail(why, "ip=: not a unicast address");
        const std::uint32_t mask = prefix_mask(prefix);
        const std::uint32_t host = addr->v4_host_order() & ~mask;
        if (prefix <= 30 && (host == 0 || host == ~mask)) {
            return fail(why, "ip=: the network or broadcast address of its subnet");
        }
        cfg.ipv4 = Ipv4Static{*addr, static_cast<std::uint8_t>(prefix), IpAddr()};
    }

    if (args.has("gw")) {
        const auto text = args.get("gw");
        if (!text || text->empty()) return fail(why, "gw= needs a value: gw=ADDR");
        if (!cfg.ipv4) return fail(why, "gw= needs ip=ADDR/PREFIX (with DHCP the lease names the gateway)");
        const auto gw = IpAddr::parse(*text);
        if (!gw || !gw->is_v4()) return fail(why, "gw=: not an IPv4 address (a.b.c.d)");
        if (!unicast_v4(*gw)) return fail(why, "gw=: not a unicast address");
        if (*gw == cfg.ipv4->address) return fail(why, "gw=: the same address as ip=");
        const std::uint32_t mask = prefix_mask(cfg.ipv4->prefix);
        // A /32 (or /31) names no subnet to check against: the gateway is a point-to-point peer.
        if (cfg.ipv4->prefix <= 30 &&
            (gw->v4_host_order() & mask) != (cfg.ipv4->address.v4_host_order() & mask)) {
            return fail(why, "gw=: not in the subnet of ip=");
        }
        cfg.ipv4->gateway = *gw;
    }

    if (args.has("dns")) {
        const auto text = args.get("dns");
        if (!text || text->empty()) return fail(why, "dns= needs a value: dns=ADDR");
        const auto dns = IpAddr::parse(*text);
        if (!dns) return fail(why, "dns=: not an IP address");
        if (dns->is_unspecified() || dns->is_multicast() || (dns->is_v4() && !unicast_v4(*dns))) {
            return fail(why, "dns=: not a unicast address");
        }
        cfg.dns = *dns;
    }
    return cfg;
}

}  // namespace keel::net
