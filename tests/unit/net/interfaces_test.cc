// keel/net/interfaces.h: the list of interfaces services can read and the event that says one
// was added; the address a vif gets from its backend's `ip` node (xl network-attach ip=...).
#include "keel/net/interfaces.h"

#include <gtest/gtest.h>

#include "fakes/fake_link.h"
#include "fakes/fake_loop.h"

namespace keel::net::test {
namespace {

using Interfaces = TwoHosts<>;

TEST_F(Interfaces, AddedInterfacesAreListedInOrderAndAnnounced) {
    clear_interfaces();
    EXPECT_TRUE(interfaces().empty());
    EXPECT_FALSE(interface_added().is_set());
    ASSERT_TRUE(add_interface(a()).ok());
    EXPECT_TRUE(interface_added().is_set());
    interface_added().reset();
    ASSERT_TRUE(add_interface(b()).ok());
    EXPECT_TRUE(interface_added().is_set()) << "a waiting service is not told about the second one";
    ASSERT_EQ(interfaces().size(), 2u);
    EXPECT_EQ(interfaces()[0], &a());
    EXPECT_EQ(interfaces()[1], &b());
    clear_interfaces();
}

TEST_F(Interfaces, AtMostMaxInterfaces) {
    clear_interfaces();
    for (std::size_t i = 0; i < max_interfaces; ++i) ASSERT_TRUE(add_interface(a()).ok());
    EXPECT_EQ(add_interface(b()).error(), Error::no_space);
    EXPECT_EQ(interfaces().size(), max_interfaces);
    clear_interfaces();
}

// A hot-plugged vif must not get an address in the subnet of an interface we have: lwIP would
// route that subnet's traffic (and the first interface's replies) through the newcomer.
TEST_F(Interfaces, AnAddressInTheSubnetOfAnExistingInterfaceIsRefused) {
    clear_interfaces();
    ASSERT_TRUE(add_interface(a()).ok());  // 10.0.0.1/24
    auto v4 = [](const char* text, std::uint8_t prefix) {
        return Ipv4Static{.address = *IpAddr::parse(text), .prefix = prefix, .gateway = IpAddr{}};
    };
    EXPECT_EQ(check_no_overlap(v4("10.0.0.1", 24)).error(), Error::busy) << "its very address";
    EXPECT_EQ(check_no_overlap(v4("10.0.0.77", 24)).error(), Error::busy) << "its subnet";
    EXPECT_EQ(check_no_overlap(v4("10.0.0.200", 28)).error(), Error::busy) << "inside its /24";
    EXPECT_EQ(check_no_overlap(v4("10.9.9.9", 8)).error(), Error::busy) << "a subnet around it";
    EXPECT_TRUE(check_no_overlap(v4("10.0.1.2", 24)).ok());
    EXPECT_TRUE(check_no_overlap(v4("192.168.0.2", 24)).ok());
    clear_interfaces();
    EXPECT_TRUE(check_no_overlap(v4("10.0.0.1", 24)).ok()) << "no interfaces, nothing to take";
}

// xl network-detach: the vif's device is gone for good. Its interface stays listed (services
// may hold it) but is shut: down, no address, its connections aborted; so a vif attached next
// may take the same subnet (before, the dead interface kept its address, and a re-attach with
// the same ip= was left without one).
TEST_F(Interfaces, AnInterfaceWhoseDeviceIsGoneDropsItsAddresses) {
    clear_interfaces();
    ASSERT_TRUE(add_interface(a()).ok());
    IpAddr v6[4];
    ASSERT_TRUE(run_until([&] { return a().ipv6_addresses(v6) == 1; }, s(10)));  // link-local, DAD done
    ASSERT_TRUE(a().is_default());
    Connected c;
    connect_pair(7100, c);
    keel::test::CaptureSink sink;
    set_log_sink(&sink);
    dev_a.go_away();
    set_log_sink(nullptr);
    EXPECT_FALSE(a().ipv4().has_value());
    EXPECT_EQ(a().ipv6_addresses(v6), 0u);
    EXPECT_TRUE(b().is_default()) << "the default route stayed on the gone interface";
    EXPECT_EQ(a().configure(config(addr_a)).error(), Error::closed) << "a gone interface took an address again";
    EXPECT_FALSE(a().ipv4().has_value());
    dev_a.set_link(true);
    EXPECT_FALSE(a().ipv4().has_value());
    run_until([] { return false; }, s(5));
    EXPECT_EQ(a().ipv6_addresses(v6), 0u) << "IPv6 came back on the gone interface";
    EXPECT_TRUE(check_no_overlap(Ipv4Static{.address = addr_a, .prefix = 24, .gateway = IpAddr{}}).ok())
        << "the gone interface still holds its subnet";
    std::byte buf[8];
    auto r = run([](TcpStream& st, std::span<std::byte> b) -> Task<Result<std::size_t>> {
        co_return co_await st.read(b);
    }(c.client, buf));
    ASSERT_TRUE(r) << "a connection over the gone interface is still open";
    EXPECT_EQ(r->error(), Error::closed);
    std::size_t lines = 0;
    const std::string name = std::string(a().name()) + ":";
    for (const auto& line : sink.lines) lines += line.find(name) < line.size() ? 1 : 0;
    ASSERT_EQ(lines, 1u) << "one line, not also \"address lost\"";
    EXPECT_NE(sink.lines.back().find("its device is gone"), std::string::npos);
    EXPECT_EQ(interfaces().size(), 1u);
    clear_interfaces();
}

TEST(ToolstackConfig, TheFirstAddressBecomesAStaticSlash24WithoutGateway) {
    Result<Config> c = toolstack_config("10.0.1.2");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->ipv4.has_value());
    EXPECT_EQ(c->ipv4->address, IpAddr::v4(10, 0, 1, 2));
    EXPECT_EQ(c->ipv4->prefix, 24);
    EXPECT_EQ(c->ipv4->gateway.family(), IpAddr::Family::none);
    EXPECT_FALSE(c->dns.has_value());
    Result<Config> two = toolstack_config("10.0.1.5 10.0.1.6");  // libxl: space-separated
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(two->ipv4->address, IpAddr::v4(10, 0, 1, 5));
}

TEST(ToolstackConfig, AnythingButAUnicastIpv4AddressIsRefused) {
    for (const char* bad : {"", " ", "10.0.1", "10.0.1.2/24", "fe80::1", "0.0.0.0", "224.0.0.1", "127.0.0.1",
                            "255.255.255.255", "10.0.1.2x", "\xff"}) {
        EXPECT_EQ(toolstack_config(bad).error(), Error::bad_input) << bad;
    }
}

}  // namespace
}  // namespace keel::net::test
