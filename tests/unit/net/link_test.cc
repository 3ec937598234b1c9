// DeviceLink and Interface: zero-copy receive, copying under pressure, no allocation on the
// receive path, transmit queueing, link state and address reporting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "keel/log.h"
#include "fakes/fake_link.h"

namespace keel::net::test {
namespace {

using Link = TwoHosts<>;

Task<Result<Datagram>> recv(UdpSocket& sock, std::span<std::byte> buf) {
    co_return co_await sock.recv_from(buf);
}

// The UDP payload the application reads is the bytes in the device's page: the test changes
// the page after the frame was handed up, and the application sees the change.
TEST_F(Link, ReceiveIsZeroCopy) {
    auto server = UdpSocket::bind(6000);
    auto client = UdpSocket::bind(0);
    const std::size_t free_before = dev_b.pages_free();
    const std::size_t held_before = link_b->rx_held();
    ASSERT_TRUE(client->send_to({addr_b, 6000}, as_bytes("original")).ok());
    ASSERT_TRUE(run_until([&] { return server->queued() == 1; }));

    // The datagram waits in the socket's queue inside the device's page.
    EXPECT_EQ(dev_b.pages_free(), free_before - 1);
    EXPECT_EQ(link_b->rx_held(), held_before + 1);
    std::byte* page = dev_b.delivered_pages.back();
    constexpr std::size_t payload = 14 + 20 + 8;  // Ethernet, IPv4, UDP
    ASSERT_EQ(std::memcmp(page + payload, "original", 8), 0);
    std::memcpy(page + payload, "modified", 8);

    std::byte buf[16];
    auto d = run(recv(*server, buf));
    ASSERT_TRUE(d && d->ok());
    EXPECT_EQ(std::memcmp(buf, "modified", 8), 0);
    // Read: the pbuf is freed and the page goes back to the device.
    EXPECT_EQ(dev_b.pages_free(), free_before);
    EXPECT_EQ(link_b->rx_held(), held_before);
}

TEST_F(Link, TcpDataIsReadStraightFromThePages) {
    auto l = TcpListener::listen(6001);
    std::optional<Result<TcpStream>> server;
    start([](TcpListener& li, std::optional<Result<TcpStream>>& out) -> Task<void> {
        out.emplace(co_await li.accept());
    }(*l, server));
    auto client = run(TcpStream::connect(addr_b, 6001, s(5)));
    ASSERT_TRUE(client && client->ok());
    ASSERT_TRUE(run_until([&] { return server.has_value(); }));
    const std::size_t held = link_b->rx_held();
    std::vector<std::byte> data(10 * 1460, std::byte{0x5a});
    auto w = run([](TcpStream& st, std::span<const std::byte> d) -> Task<Result<std::size_t>> {
        co_return co_await st.write(d);
    }(client->value(), data));
    ASSERT_TRUE(w && w->ok());
    ASSERT_TRUE(run_until([&] { return server->value().buffered() == data.size(); }));
    EXPECT_EQ(link_b->rx_held(), held + 10);  // ten segments, ten pages, no copies
    std::vector<std::byte> got(data.size());
    auto r = run([](TcpStream& st, std::span<std::byte> b) -> Task<Result<std::size_t>> {
        co_return co_await st.read(b);
    }(server->value(), got));
    ASSERT_TRUE(r && r->ok());
    EXPECT_EQ(**r, data.size());
    EXPECT_EQ(got, data);
    EXPECT_EQ(link_b->rx_held(), held);
}

// With few free slots, frames are copied and their pages returned at once.
class SmallLink : public TwoHosts<8> {};

TEST_F(SmallLink, CopiesWhenShortOfSlots) {
    auto server = UdpSocket::bind(6002);
    auto client = UdpSocket::bind(0);
    // Warm up ARP so that only our datagrams arrive below.
    ASSERT_TRUE(client->send_to({addr_b, 6002}, as_bytes("warm")).ok());
    ASSERT_TRUE(run_until([&] { return server->queued() == 1; }));
    const auto copied = stats().rx_copied;
    const std::size_t free_pages = dev_b.pages_free();
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(client->send_to({addr_b, 6002}, as_bytes("datagram")).ok());
        run_until([&] { return !dev_a.pending(); });
    }
    ASSERT_TRUE(run_until([&] { return server->queued() == 11; }));
    // 8 slots, copying at 2 free or fewer: 6 frames stay in pages ("warm" among them), the
    // rest (and any IPv6 neighbour traffic meanwhile) were copied and their pages returned.
    EXPECT_EQ(link_b->rx_held(), 6u);
    EXPECT_EQ(dev_b.pages_free(), free_pages - 5);
    EXPECT_GE(stats().rx_copied, copied + 5);
    std::byte buf[16];
    for (int i = 0; i < 11; ++i) {
        auto d = run(recv(*server, buf));
        ASSERT_TRUE(d && d->ok());
    }
    EXPECT_EQ(link_b->rx_held(), 0u);
}

// Style rule 7: no allocation in steady state. 10k frames through the receive path into a UDP
// socket and out to the application: lwIP's heap, the C++ heap (counted by coroutine frames and
// socket state) and the pbuf pool see nothing new.
TEST_F(Link, ReceivePathDoesNotAllocate) {
    auto server = UdpSocket::bind(6003);
    auto client = UdpSocket::bind(0);
    dev_a.capture = true;
    ASSERT_TRUE(client->send_to({addr_b, 6003}, as_bytes("template")).ok());
    ASSERT_TRUE(run_until([&] { return server->queued() == 1; }));
    dev_a.capture = false;
    std::vector<std::byte> frame;
    for (auto& f : dev_a.captured) {
        if (f.size() > 42 && std::memcmp(f.data() + 42, "template", 8) == 0) frame = f;
    }
    ASSERT_FALSE(frame.empty());

    std::size_t received = 0;
    start([](UdpSocket& s, std::size_t& n) -> Task<void> {
        std::byte buf[64];
        for (;;) {
            auto d = co_await s.recv_from(buf);
            if (!d) break;
            ++n;
        }
    }(*server, received));
    ASSERT_TRUE(run_until([&] { return received == 1; }));
    // Let neighbour discovery and MLD finish their start-up messages (those allocate to send),
    // then stop the clock: run_once(false) never idles, so no timer comes due below.
    run_until([] { return false; }, s(10));

    const auto heap = stats().heap_allocations;
    const auto frames = live_task_frames();
    const auto copied = stats().rx_copied;
    for (int i = 0; i < 10000; ++i) {
        ASSERT_TRUE(dev_b.receive(frame));
        if (i % 16 == 15) loop.run_once(false);  // let the reader drain the queue
    }
    for (int i = 0; i < 100 && received < 10001; ++i) loop.run_once(false);
    EXPECT_EQ(received, 10001u);
    EXPECT_EQ(stats().heap_allocations, heap);
    EXPECT_EQ(live_task_frames(), frames);
    EXPECT_EQ(stats().rx_copied, copied);
    EXPECT_EQ(link_b->rx_held(), 0u);
}

// lwIP reads fixed headers before checking the frame holds them (ARP's 28 bytes, IPv4's total
// length; the lwip_input fuzzer found both): a frame too short for its network header is
// dropped and counted before lwIP sees it.
TEST_F(Link, FramesTooShortForTheirHeaderAreDropped) {
    for (const std::uint8_t type : {0x06, 0x00}) {  // 0x0806 ARP, 0x0800 IPv4
        std::vector<std::byte> f(14 + 3, std::byte{0x45});
        for (std::size_t i = 0; i < 6; ++i) f[i] = std::byte{0xff};
        f[12] = std::byte{0x08};
        f[13] = std::byte{type};
        const auto dropped = stats().rx_dropped;
        ASSERT_TRUE(dev_b.receive(f));
        EXPECT_EQ(stats().rx_dropped, dropped + 1);
    }
    EXPECT_EQ(link_b->rx_held(), 0u);
}

/// An IPv6 frame from ::1 (not ours; lwIP drops what gets past us) to ff02::1: `first` is the
/// fixed header's next header, `payload` the bytes after the fixed header.
std::vector<std::byte> ipv6_frame(std::uint8_t first, const std::vector<std::uint8_t>& payload) {
    std::vector<std::byte> f(14 + 40);
    for (std::size_t i = 0; i < 6; ++i) f[i] = std::byte{0xff};
    f[12] = std::byte{0x86};
    f[13] = std::byte{0xdd};
    f[14] = std::byte{0x60};
    f[14 + 4] = std::byte(payload.size() >> 8);
    f[14 + 5] = std::byte(payload.size() & 0xff);
    f[14 + 6] = std::byte{first};
    f[14 + 7] = std::byte{64};
    f[14 + 8 + 15] = std::byte{1};
    f[14 + 24] = std::byte{0xff};
    f[14 + 25] = std::byte{0x02};
    f[14 + 39] = std::byte{1};
    for (std::uint8_t b : payload) f.push_back(std::byte{b});
    return f;
}

// The same for IPv6's extension headers: lwIP's ip6_input() reads a Hop-by-Hop, Routing or
// Destination Options header's length byte before checking the header is there (the
// lwip_input fuzzer found it: next header Hop-by-Hop, a payload of 1 byte).
TEST_F(Link, Ipv6ExtensionHeadersCutShortAreDropped) {
    const std::vector<std::byte> cut[] = {
        ipv6_frame(0, {59}),                                 // the fuzzer's: Hop-by-Hop, 1 byte
        ipv6_frame(60, {59, 0, 0, 0}),                       // Destination Options, 4 bytes
        ipv6_frame(0, {60, 0, 1, 0, 0, 0, 0, 0, 59}),        // Hop-by-Hop whole, then 1 byte of the next
        ipv6_frame(44, {0, 0, 0, 0, 0, 0, 0, 1, 43, 0, 0}),  // Fragment whole, then a Routing cut short
    };
    for (const auto& f : cut) {
        const auto dropped = stats().rx_dropped;
        ASSERT_TRUE(dev_b.receive(f));
        EXPECT_EQ(stats().rx_dropped, dropped + 1);
    }
    // Whole headers pass to lwIP (it drops these itself: nothing follows them).
    const auto dropped = stats().rx_dropped;
    ASSERT_TRUE(dev_b.receive(ipv6_frame(0, {59, 0, 1, 0, 0, 0, 0, 0})));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(0, {60, 0, 1, 0, 0, 0, 0, 0, 59, 0, 1, 0, 0, 0, 0, 0})));
    EXPECT_EQ(stats().rx_dropped, dropped);
    EXPECT_EQ(link_b->rx_held(), 0u);
}

// An ICMPv6 Packet Too Big under IPv6's minimum MTU is dropped before lwIP (an MTU of 60 or less
// gave TCP connections an MSS of 0: Tcp.Ipv6PacketTooBigUnderTheMinimumMtuIsDropped), also in
// the first fragment of a fragmented one, the only one that can hold the MTU, and so is one
// over the link's MTU (frames too large for the link); a later fragment is data, whatever its
// bytes look like, and the minimum MTU and the link's own pass.
TEST_F(Link, Ipv6PacketTooBigUnderTheMinimumMtuIsDropped) {
    auto too_big = [](std::uint32_t mtu) {
        return std::vector<std::uint8_t>{2, 0, 0, 0, std::uint8_t(mtu >> 24), std::uint8_t(mtu >> 16),
                                         std::uint8_t(mtu >> 8), std::uint8_t(mtu)};
    };
    // A Fragment header (next header ICMPv6) at `offset` (in units of 8), more to come, then `rest`.
    auto fragment = [](std::uint16_t offset, std::vector<std::uint8_t> rest) {
        const std::uint16_t field = static_cast<std::uint16_t>(offset << 3 | 1);
        std::vector<std::uint8_t> f{58, 0, std::uint8_t(field >> 8), std::uint8_t(field), 0, 0, 0, 7};
        f.insert(f.end(), rest.begin(), rest.end());
        return f;
    };
    const auto dropped = stats().rx_dropped;
    ASSERT_TRUE(dev_b.receive(ipv6_frame(58, too_big(40))));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(58, too_big(1279))));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(44, fragment(0, too_big(40)))));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(58, too_big(9000))));  // over the link's 1500
    EXPECT_EQ(stats().rx_dropped, dropped + 4);
    ASSERT_TRUE(dev_b.receive(ipv6_frame(58, too_big(1280))));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(58, too_big(1500))));
    ASSERT_TRUE(dev_b.receive(ipv6_frame(44, fragment(1, too_big(40)))));
    EXPECT_EQ(stats().rx_dropped, dropped + 4);
    // The later fragment waits in lwIP's reassembly until it times out (IPV6_REASS_MAXAGE).
    EXPECT_TRUE(run_until([&] { return link_b->rx_held() == 0; }, s(120)));
}

TEST_F(Link, LinkDownStopsTraffic) {
    auto server = UdpSocket::bind(6004);
    auto client = UdpSocket::bind(0);
    // Both links down (with one up, lwIP would route around through the other interface).
    dev_a.set_link(false);
    dev_b.set_link(false);
    EXPECT_EQ(client->send_to({addr_b, 6004}, as_bytes("x")).error(), Error::not_found);
    dev_a.set_link(true);
    dev_b.set_link(true);
    ASSERT_TRUE(client->send_to({addr_b, 6004}, as_bytes("x")).ok());
    ASSERT_TRUE(run_until([&] { return server->queued() == 1; }));
}

// A link reset while it was full (netfront clears its ring and owes no tx-ready call): the
// frames that waited go out when the link comes back up, and traffic goes on.
TEST_F(Link, QueuedFramesGoOutWhenTheLinkComesBack) {
    auto server = UdpSocket::bind(6005);
    auto client = UdpSocket::bind(0);
    ASSERT_TRUE(client->send_to({addr_b, 6005}, as_bytes("warm")).ok());  // ARP
    ASSERT_TRUE(run_until([&] { return server->queued() == 1; }));
    dev_a.tx_capacity = 1;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->send_to({addr_b, 6005}, as_bytes("queued")).ok());
    EXPECT_EQ(a().tx_queued(), 4u);  // one on the wire, four refused with Error::again
    dev_a.reset_tx();
    dev_a.tx_capacity = 1024;
    dev_a.set_link(false);
    dev_a.set_link(true);
    EXPECT_EQ(a().tx_queued(), 0u);
    ASSERT_TRUE(client->send_to({addr_b, 6005}, as_bytes("after")).ok());
    ASSERT_TRUE(run_until([&] { return server->queued() == 6; }));
}

// After a resume in a new domain netfront reconnects to another backend port (after a migration,
// on another host's bridge): the link comes back up, and the interface announces itself at once
// with a gratuitous ARP (sender and target its own address, broadcast), so the bridge learns
// where its MAC is now before any peer has to ask.
TEST_F(Link, ALinkThatComesBackAnnouncesItsAddress) {
    dev_a.capture = true;
    dev_a.set_link(false);
    dev_a.set_link(true);
    run_until([&] { return !dev_a.captured.empty(); }, ms(100));
    const std::uint8_t* mac = dev_a.mac().bytes.data();
    bool announced = false;
    for (const auto& f : dev_a.captured) {
        auto at = [&](std::size_t i) { return std::to_integer<std::uint8_t>(f[i]); };
        if (f.size() < 42 || at(12) != 0x08 || at(13) != 0x06) continue;  // ARP
        const bool broadcast = std::all_of(f.begin(), f.begin() + 6, [](std::byte b) { return b == std::byte{0xff}; });
        const bool from_us = std::memcmp(f.data() + 22, mac, 6) == 0;
        const bool sender_is_target = std::memcmp(f.data() + 28, f.data() + 38, 4) == 0;
        const bool ours = at(28) == 10 && at(29) == 0 && at(30) == 0 && at(31) == 1;
        announced = announced || (broadcast && from_us && sender_is_target && ours);
    }
    EXPECT_TRUE(announced) << dev_a.captured.size() << " frames sent, no gratuitous ARP for 10.0.0.1";
}

TEST_F(Link, ReportsAddresses) {
    auto v4 = a().ipv4();
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->address, addr_a);
    EXPECT_EQ(v4->prefix, 24);
    EXPECT_TRUE(a().ready().is_set());
    EXPECT_NE(a().index(), b().index());
    EXPECT_EQ(a().mac()[5], 1);
    EXPECT_EQ(a().mtu(), 1500);
    IpAddr v6[3];
    ASSERT_TRUE(run_until([&] { return a().ipv6_addresses(v6) == 1; }, s(10)));
    // Modified EUI-64 from 02:00:00:00:00:01.
    char text[IpAddr::max_text];
    v6[0].format(text);
    EXPECT_EQ(std::string(text), "fe80::ff:fe00:1%" + std::to_string(a().index()));
}

TEST_F(Link, LogsOneLinePerAddress) {
    keel::test::CaptureSink sink;
    set_log_sink(&sink);
    FakeDevice dev_c{3};
    {
        FakeLink<> c(dev_c);
        Config cfg;
        cfg.ipv4 = Ipv4Static{IpAddr::v4(10, 0, 0, 3), 24, IpAddr::v4(10, 0, 0, 1)};
        cfg.dns = IpAddr::v4(10, 0, 0, 53);
        ASSERT_TRUE(c.interface().configure(cfg).ok());
        IpAddr v6[3];
        run_until([&] { return c.interface().ipv6_addresses(v6) == 1; }, s(10));
    }
    set_log_sink(nullptr);
    std::string all;
    for (auto& l : sink.lines) all += l;
    EXPECT_NE(all.find("ipv4 10.0.0.3/24 gateway 10.0.0.1 (static)"), std::string::npos) << all;
    EXPECT_NE(all.find("dns server 10.0.0.53 (dns=)"), std::string::npos) << all;
    EXPECT_NE(all.find("ipv6 fe80::ff:fe00:3%"), std::string::npos) << all;
    EXPECT_NE(all.find("(link-local)"), std::string::npos) << all;
}

}  // namespace
}  // namespace keel::net::test
