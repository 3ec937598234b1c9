// Network configuration from the command line: the good cases and every error.
#include <gtest/gtest.h>

#include <string>

#include "keel/net/config.h"

namespace keel::net {
namespace {

Result<Config> parse(const char* line, std::string* why_out = nullptr) {
    auto args = CommandLine::parse(line);
    EXPECT_TRUE(args.ok()) << line;
    const char* why = nullptr;
    auto r = parse_config(*args, &why);
    if (why_out) *why_out = why ? why : "";
    return r;
}

TEST(NetConfig, DefaultsToDhcp) {
    auto c = parse("wait other=1");
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->dhcp());
    EXPECT_FALSE(c->dns);
}

TEST(NetConfig, StaticAddressGatewayAndDns) {
    auto c = parse("ip=10.0.0.2/24 gw=10.0.0.1 dns=10.0.0.53");
    ASSERT_TRUE(c.ok());
    ASSERT_FALSE(c->dhcp());
    EXPECT_EQ(c->ipv4->address, IpAddr::v4(10, 0, 0, 2));
    EXPECT_EQ(c->ipv4->prefix, 24);
    EXPECT_EQ(c->ipv4->gateway, IpAddr::v4(10, 0, 0, 1));
    EXPECT_EQ(*c->dns, IpAddr::v4(10, 0, 0, 53));
}

TEST(NetConfig, GatewayIsOptionalAndDnsMayBeIpv6WithDhcp) {
    auto c = parse("ip=192.168.7.9/16");
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->ipv4->gateway.is_unspecified());
    auto d = parse("dns=2001:db8::53");
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d->dhcp());
    EXPECT_EQ(*d->dns, *IpAddr::parse("2001:db8::53"));
}

TEST(NetConfig, PointToPointPrefixesAllowAnyGateway) {
    EXPECT_TRUE(parse("ip=203.0.113.5/32 gw=203.0.113.1").ok());
    EXPECT_TRUE(parse("ip=10.0.0.0/31 gw=10.0.0.1").ok());  // RFC 3021: both ends usable
}

TEST(NetConfig, EveryErrorHasAReason) {
    struct Case {
        const char* line;
        const char* why;
    } cases[] = {
        {"ip", "ip= needs a value: ip=ADDR/PREFIX (e.g. ip=10.0.0.2/24)"},
        {"ip=", "ip= needs a value: ip=ADDR/PREFIX (e.g. ip=10.0.0.2/24)"},
        {"ip=10.0.0.2", "ip=: missing /PREFIX (e.g. ip=10.0.0.2/24)"},
        {"ip=10.0.0/24", "ip=: not an IPv4 address (a.b.c.d)"},
        {"ip=2001:db8::1/64", "ip=: not an IPv4 address (a.b.c.d)"},
        {"ip=10.0.0.2/", "ip=: prefix must be a number from 1 to 32"},
        {"ip=10.0.0.2/0", "ip=: prefix must be a number from 1 to 32"},
        {"ip=10.0.0.2/33", "ip=: prefix must be a number from 1 to 32"},
        {"ip=10.0.0.2/024", "ip=: prefix must be a number from 1 to 32"},
        {"ip=10.0.0.2/08", "ip=: prefix must be a number from 1 to 32"},
        {"ip=10.0.0.2/2x", "ip=: prefix must be a number from 1 to 32"},
        {"ip=0.1.2.3/8", "ip=: not a unicast address"},
        {"ip=127.0.0.1/8", "ip=: not a unicast address"},
        {"ip=224.0.0.1/4", "ip=: not a unicast address"},
        {"ip=255.255.255.255/32", "ip=: not a unicast address"},
        {"ip=10.0.0.0/24", "ip=: the network or broadcast address of its subnet"},
        {"ip=10.0.0.255/24", "ip=: the network or broadcast address of its subnet"},
        {"gw", "gw= needs a value: gw=ADDR"},
        {"gw=10.0.0.1", "gw= needs ip=ADDR/PREFIX (with DHCP the lease names the gateway)"},
        {"ip=10.0.0.2/24 gw=10.0.0", "gw=: not an IPv4 address (a.b.c.d)"},
        {"ip=10.0.0.2/24 gw=fe80::1", "gw=: not an IPv4 address (a.b.c.d)"},
        {"ip=10.0.0.2/24 gw=0.0.0.0", "gw=: not a unicast address"},
        {"ip=10.0.0.2/24 gw=10.0.0.2", "gw=: the same address as ip="},
        {"ip=10.0.0.2/24 gw=10.0.1.1", "gw=: not in the subnet of ip="},
        {"dns", "dns= needs a value: dns=ADDR"},
        {"dns=", "dns= needs a value: dns=ADDR"},
        {"dns=resolver", "dns=: not an IP address"},
        {"dns=0.0.0.0", "dns=: not a unicast address"},
        {"dns=::", "dns=: not a unicast address"},
        {"dns=ff02::1", "dns=: not a unicast address"},
        {"dns=239.1.1.1", "dns=: not a unicast address"},
    };
    for (const Case& c : cases) {
        std::string why;
        auto r = parse(c.line, &why);
        EXPECT_FALSE(r.ok()) << c.line;
        EXPECT_EQ(r.error(), Error::invalid_argument) << c.line;
        EXPECT_EQ(why, c.why) << c.line;
    }
}

TEST(NetConfig, WhyMayBeNull) {
    auto args = CommandLine::parse("ip=bad");
    ASSERT_TRUE(args.ok());
    EXPECT_EQ(parse_config(*args).error(), Error::invalid_argument);
}

TEST(NetConfig, PrefixMask) {
    EXPECT_EQ(prefix_mask(0), 0u);
    EXPECT_EQ(prefix_mask(1), 0x80000000u);
    EXPECT_EQ(prefix_mask(24), 0xffffff00u);
    EXPECT_EQ(prefix_mask(32), 0xffffffffu);
}

}  // namespace
}  // namespace keel::net
