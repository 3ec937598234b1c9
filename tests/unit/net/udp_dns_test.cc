// UDP and DNS through the coroutine API.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "fakes/fake_link.h"
#include "fakes/scarce_heap.h"

namespace keel::net::test {
namespace {

using Udp = TwoHosts<>;

Task<Result<Datagram>> recv(UdpSocket& sock, std::span<std::byte> buf, std::uint64_t timeout = 0) {
    co_return co_await sock.recv_from(buf, timeout);
}

TEST_F(Udp, RoundTrip) {
    auto server = UdpSocket::bind(5000);
    auto client = UdpSocket::bind(0, addr_a);
    ASSERT_TRUE(server.ok() && client.ok());
    EXPECT_NE(client->port(), 0);
    ASSERT_TRUE(client->send_to({addr_b, 5000}, as_bytes("ping")).ok());

    std::byte buf[64];
    auto d = run(recv(*server, buf));
    ASSERT_TRUE(d && d->ok());
    EXPECT_EQ((*d)->size, 4u);
    EXPECT_FALSE((*d)->truncated);
    EXPECT_EQ((*d)->from, (Endpoint{addr_a, client->port()}));
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 4), "ping");

    ASSERT_TRUE(server->send_to((*d)->from, as_bytes("pong!")).ok());
    auto e = run(recv(*client, buf));
    ASSERT_TRUE(e && e->ok());
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), (*e)->size), "pong!");
}

TEST_F(Udp, TruncatesLongDatagramsAndTimesOut) {
    auto server = UdpSocket::bind(5001);
    auto client = UdpSocket::bind(0);
    ASSERT_TRUE(client->send_to({addr_b, 5001}, as_bytes("0123456789")).ok());
    std::byte small[4];
    auto d = run(recv(*server, small));
    ASSERT_TRUE(d && d->ok());
    EXPECT_TRUE((*d)->truncated);
    EXPECT_EQ((*d)->size, 4u);
    auto t = run(recv(*server, small, s(1)));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->error(), Error::timed_out);
}

TEST_F(Udp, FullQueueDropsAndCounts) {
    auto server = UdpSocket::bind(5002);
    auto client = UdpSocket::bind(0);
    const auto dropped = stats().udp_rx_dropped;
    for (std::size_t i = 0; i < UdpSocket::queue_capacity + 3; ++i) {
        ASSERT_TRUE(client->send_to({addr_b, 5002}, as_bytes("x")).ok());
        run_until([&] { return !dev_a.pending(); });
    }
    run_until([] { return false; }, ms(10));
    EXPECT_EQ(server->queued(), UdpSocket::queue_capacity);
    EXPECT_EQ(stats().udp_rx_dropped, dropped + 3);
}

/// Receive every queued datagram of `sock` (without waiting): their texts, in order.
Task<std::vector<std::string>> drain(UdpSocket& sock) {
    std::vector<std::string> got;
    std::byte buf[64];
    while (sock.queued() > 0) {
        auto d = co_await sock.recv_from(buf);
        if (!d) break;
        got.emplace_back(reinterpret_cast<char*>(buf), d->size);
    }
    co_return got;
}

class UdpFlood : public TwoHosts<> {
protected:
    /// Send "datagram 0", "datagram 1", ... (`n` of them) from `from` to B's `port`, one at a time.
    void flood(UdpSocket& from, std::uint16_t port, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::string text = "datagram " + std::to_string(i);
            ASSERT_TRUE(from.send_to({addr_b, port}, as_bytes(text.c_str())).ok());
            run_until([&] { return !dev_a.pending(); });
        }
        run_until([] { return false; }, ms(10));
    }
};

// A flood to a socket its service does not read keeps at most UdpSocket::pinned_max of the
// link's receive buffers: the datagrams beyond are copied onto the heap and their pages go back
// at once. Read later, every queued datagram is intact and in order. (Before, each queued
// datagram kept its page: a few flooded sockets held the link's buffers and it received
// nothing else.)
TEST_F(UdpFlood, AFloodToAnUnreadSocketPinsFewLinkBuffers) {
    auto server = UdpSocket::bind(5004);
    auto client = UdpSocket::bind(0);
    ASSERT_TRUE(server.ok() && client.ok());
    ASSERT_NO_FATAL_FAILURE(flood(*client, 5004, UdpSocket::queue_capacity));
    EXPECT_EQ(server->queued(), UdpSocket::queue_capacity);
    EXPECT_LE(link_b->rx_held(), UdpSocket::pinned_max);
    auto got = run(drain(*server));
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), UdpSocket::queue_capacity);
    for (std::size_t i = 0; i < got->size(); ++i) EXPECT_EQ((*got)[i], "datagram " + std::to_string(i));
    EXPECT_EQ(link_b->rx_held(), 0u);
    EXPECT_EQ(stats().rx_heap_bytes, 0u);
}

// With no share of the heap left for copies, the datagrams beyond the pinned share are dropped
// and counted (UDP may lose datagrams; the link may not lose its buffers).
TEST_F(UdpFlood, AFloodWithoutHeapForCopiesIsDroppedAndCounted) {
    ScarceHeap scarce;
    scarce.left = 0;
    auto server = UdpSocket::bind(5005);
    auto client = UdpSocket::bind(0);
    ASSERT_TRUE(server.ok() && client.ok());
    const auto dropped = stats().udp_rx_dropped;
    ASSERT_NO_FATAL_FAILURE(flood(*client, 5005, UdpSocket::queue_capacity));
    EXPECT_EQ(server->queued(), UdpSocket::pinned_max);
    EXPECT_EQ(stats().udp_rx_dropped, dropped + UdpSocket::queue_capacity - UdpSocket::pinned_max);
    EXPECT_LE(link_b->rx_held(), UdpSocket::pinned_max);
}

TEST_F(Udp, ErrorsAreValues) {
    auto sock = UdpSocket::bind(5003);
    ASSERT_TRUE(sock.ok());
    EXPECT_EQ(UdpSocket::bind(5003).error(), Error::exists);
    std::vector<std::byte> huge(70000);
    EXPECT_EQ(sock->send_to({addr_b, 1}, huge).error(), Error::no_space);
    EXPECT_EQ(sock->send_to({IpAddr(), 1}, as_bytes("x")).error(), Error::invalid_argument);
    UdpSocket none;
    EXPECT_EQ(none.send_to({addr_b, 1}, as_bytes("x")).error(), Error::closed);
    std::byte buf[4];
    auto r = run(recv(none, buf));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::closed);
}

TEST_F(Udp, ClosingCancelsAPendingReceive) {
    auto sock = UdpSocket::bind(5004);
    std::optional<Result<Datagram>> got;
    std::byte buf[4];
    start([](UdpSocket& s, std::span<std::byte> b, std::optional<Result<Datagram>>& out) -> Task<void> {
        out.emplace(co_await s.recv_from(b));
    }(*sock, buf, got));
    sock->close();
    ASSERT_TRUE(run_until([&] { return got.has_value(); }));
    EXPECT_EQ(got->error(), Error::cancelled);
}

// ---- DNS: B plays the server --------------------------------------------------------------------

/// Answer one query on `sock` with an A record for `answer` (or NXDOMAIN if none).
Task<void> dns_server(UdpSocket& sock, std::optional<IpAddr> answer, std::string& asked) {
    std::byte q[512];
    auto d = co_await sock.recv_from(q);
    if (!d || d->size < 12) co_return;
    // Header (RFC 1035 4.1.1), then the question: name labels, type, class.
    std::size_t i = 12;
    while (i < d->size && q[i] != std::byte{0}) {
        const auto len = static_cast<std::size_t>(q[i]);
        if (!asked.empty()) asked += '.';
        asked.append(reinterpret_cast<const char*>(q + i + 1), len);
        i += 1 + len;
    }
    const std::size_t question_end = i + 1 + 4;
    std::vector<std::byte> r(q, q + question_end);
    r[2] = std::byte{0x81};                             // QR, RD
    r[3] = answer ? std::byte{0x80} : std::byte{0x83};  // RA, RCODE 0 or 3 (NXDOMAIN)
    r[6] = std::byte{0};
    r[7] = answer ? std::byte{1} : std::byte{0};  // ANCOUNT
    if (answer) {
        const std::uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4};
        for (auto b : rr) r.push_back(std::byte{b});
        for (auto b : answer->bytes()) r.push_back(std::byte{b});
    }
    (void)sock.send_to(d->from, r);
}

TEST_F(Udp, DnsLookupAsksTheServerAndReturnsTheAnswer) {
    auto server = UdpSocket::bind(53, addr_b);
    ASSERT_TRUE(server.ok());
    ASSERT_TRUE(set_dns_server(0, addr_b).ok());
    std::string asked;
    start(dns_server(*server, IpAddr::v4(192, 0, 2, 7), asked));
    auto r = run(dns_lookup("www.example.test"), s(30));
    ASSERT_TRUE(r && r->ok()) << to_string(r ? r->error() : Error::ok);
    EXPECT_EQ(**r, IpAddr::v4(192, 0, 2, 7));
    EXPECT_EQ(asked, "www.example.test");
}

TEST_F(Udp, DnsLookupReportsNameErrors) {
    auto server = UdpSocket::bind(53, addr_b);
    ASSERT_TRUE(set_dns_server(0, addr_b).ok());
    std::string asked;
    start(dns_server(*server, std::nullopt, asked));
    auto r = run(dns_lookup("missing.example.test"), s(60));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::not_found);
}

TEST_F(Udp, DnsLookupOfLiteralsAndBadNames) {
    auto r = run(dns_lookup("10.1.2.3"));
    ASSERT_TRUE(r && r->ok());
    EXPECT_EQ(**r, IpAddr::v4(10, 1, 2, 3));
    EXPECT_EQ(run(dns_lookup(""))->error(), Error::invalid_argument);
    EXPECT_EQ(run(dns_lookup(std::string(300, 'a')))->error(), Error::invalid_argument);
    EXPECT_EQ(set_dns_server(5, addr_b).error(), Error::invalid_argument);
}

}  // namespace
}  // namespace keel::net::test
