// IpAddr parsing and formatting.
#include <gtest/gtest.h>

#include <string>

#include "keel/net/addr.h"

namespace keel::net {
namespace {

std::string text(const IpAddr& a) {
    char buf[IpAddr::max_text];
    a.format(buf);
    return buf;
}

std::string round_trip(const char* s) {
    auto a = IpAddr::parse(s);
    return a ? text(*a) : "<invalid>";
}

TEST(IpAddr, ParsesDottedQuads) {
    auto a = IpAddr::parse("192.0.2.1");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->is_v4());
    EXPECT_EQ(a->v4_host_order(), 0xc0000201u);
    EXPECT_EQ(*a, IpAddr::v4(192, 0, 2, 1));
    EXPECT_EQ(round_trip("0.0.0.0"), "0.0.0.0");
    EXPECT_EQ(round_trip("255.255.255.255"), "255.255.255.255");
}

TEST(IpAddr, RejectsMalformedIpv4) {
    for (const char* bad :
         {"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
          "1..2.3", "1.2.3.", "a.b.c.d", "1.2.3.4/24", "1234.1.1.1", "0x1.2.3.4"}) {
        EXPECT_FALSE(IpAddr::parse(bad)) << bad;
    }
}

TEST(IpAddr, ParsesAndFormatsIpv6PerRfc5952) {
    EXPECT_EQ(round_trip("::"), "::");
    EXPECT_EQ(round_trip("::1"), "::1");
    EXPECT_EQ(round_trip("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    EXPECT_EQ(round_trip("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");     // first of equal runs
    EXPECT_EQ(round_trip("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // a single 0 stays
    EXPECT_EQ(round_trip("fe80::1%3"), "fe80::1%3");
    EXPECT_EQ(round_trip("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    EXPECT_EQ(round_trip("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
    EXPECT_EQ(round_trip("64:ff9b::192.0.2.33"), "64:ff9b::c000:221");
    auto ll = IpAddr::parse("fe80::abcd%2");
    ASSERT_TRUE(ll);
    EXPECT_TRUE(ll->is_link_local());
    EXPECT_EQ(ll->zone(), 2);
}

TEST(IpAddr, RejectsMalformedIpv6) {
    for (const char* bad : {":", ":::", "1:2", "1::2::3", ":1::2", "1::2:", "12345::", "1:2:3:4:5:6:7:8:9",
                            "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "g::1", "fe80::1%", "fe80::1%x",
                            "fe80::1%256", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::1 "}) {
        EXPECT_FALSE(IpAddr::parse(bad)) << bad;
    }
}

TEST(IpAddr, Classifies) {
    EXPECT_TRUE(IpAddr().is_unspecified());
    EXPECT_TRUE(IpAddr::any_v6().is_unspecified());
    EXPECT_TRUE(IpAddr::parse("224.0.0.1")->is_multicast());
    EXPECT_TRUE(IpAddr::parse("ff02::1")->is_multicast());
    EXPECT_TRUE(IpAddr::parse("127.0.0.5")->is_loopback());
    EXPECT_TRUE(IpAddr::parse("::1")->is_loopback());
    EXPECT_FALSE(IpAddr::parse("10.0.0.1")->is_multicast());
    EXPECT_EQ(text(IpAddr()), "none");
}

TEST(IpAddr, FormatsEndpointsAndRefusesSmallBuffers) {
    EXPECT_STREQ(AddrText(Endpoint{IpAddr::v4(10, 0, 0, 1), 80}).c_str(), "10.0.0.1:80");
    EXPECT_STREQ(AddrText(Endpoint{*IpAddr::parse("2001:db8::1"), 443}).c_str(), "[2001:db8::1]:443");
    char small[4];
    EXPECT_EQ(IpAddr::v4(10, 0, 0, 1).format(small), 0u);
    EXPECT_EQ(small[0], '\0');
}

}  // namespace
}  // namespace keel::net
