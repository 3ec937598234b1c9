// TCP against hostile clients: one connection cannot starve the link of receive buffers, and a
// flood of connections cannot push out the ones already being served.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "fakes/fake_link.h"
#include "fakes/scarce_heap.h"

namespace keel::net::test {
namespace {

/// Write `n` one-byte segments on `st` (byte i is i mod 251), one write each; `sent` counts them.
Task<void> trickle(TcpStream& st, std::size_t n, std::size_t& sent) {
    for (; sent < n; ++sent) {
        const std::byte b{static_cast<unsigned char>(sent % 251)};
        if (!(co_await st.write({&b, 1}))) co_return;
        if (sent % 8 == 7) co_await sleep_for(ms(1));  // let each byte leave as its own segment
    }
}

/// Read from `st` until `want` bytes arrived (or an error / end): all of them.
Task<std::vector<std::byte>> read_all(TcpStream& st, std::size_t want) {
    std::vector<std::byte> got;
    std::byte buf[4096];
    while (got.size() < want) {
        auto r = co_await st.read(buf);
        if (!r || *r == 0) break;
        got.insert(got.end(), buf, buf + *r);
    }
    co_return got;
}

Task<Result<TcpStream>> accept_within(TcpListener& l, std::uint64_t timeout_ns) {
    co_return co_await l.accept_for(timeout_ns);
}

/// Send `data` on `st` and close the sending side.
Task<void> send_all(TcpStream& st, std::vector<std::byte> data) { (void)co_await st.write(data); }

class Hostile : public TwoHosts<> {
protected:
    /// The largest value `gauge` returned while the loop ran for `ns`.
    template <typename Gauge>
    std::uint64_t peak_over(std::uint64_t ns, Gauge gauge) {
        std::uint64_t peak = 0;
        run_until([&] {
            peak = std::max<std::uint64_t>(peak, gauge());
            return false;
        }, ns);
        return peak;
    }
    /// `n` connections to a listener on `port` (backlog `backlog`), their clients and servers.
    void open_pairs(std::uint16_t port, int backlog, std::size_t n, std::vector<TcpStream>& clients,
                    std::vector<TcpStream>& servers) {
        auto l = TcpListener::listen(port, backlog);
        ASSERT_TRUE(l.ok());
        for (std::size_t i = 0; i < n; ++i) {
            auto c = run(TcpStream::connect(addr_b, port, s(5)));
            ASSERT_TRUE(c && c->ok());
            clients.push_back(std::move(c->value()));
            auto a = run(accept_within(*l, s(5)));
            ASSERT_TRUE(a && a->ok());
            servers.push_back(std::move(a->value()));
        }
    }
};

// A client sending thousands of one-byte segments on a connection its service does not read (a
// kvstore client that stopped reading its replies) keeps only a bounded share of the link's
// receive buffers: the rest of its data is copied out of them. Another connection still gets
// 64 KiB through, and the first one's bytes are all there, in order, once the service reads.
// (Before the bound, every tiny segment pinned a page, then a pool buffer, and the link dropped
// everything else.)
TEST_F(Hostile, TinySegmentsOnAnUnreadConnectionDoNotStarveTheLink) {
    Connected slow, other;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7100, slow));
    ASSERT_NO_FATAL_FAILURE(connect_pair(7101, other));
    constexpr std::size_t tiny = 3000;
    std::size_t sent = 0;
    start(trickle(slow.client, tiny, sent));
    ASSERT_TRUE(run_until([&] { return slow.server.buffered() == tiny; }, s(600)));
    EXPECT_GE(dev_b.rx_frames, tiny);  // they did arrive as (about) one segment each
    EXPECT_LE(link_b->rx_held(), 40u) << "the unread connection pins the link's buffers";

    const auto data = pattern(64 * 1024);
    start(send_all(other.client, data));
    auto got = run(read_all(other.server, data.size()), s(120));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->size(), data.size());
    EXPECT_TRUE(*got == data);

    auto slow_got = run(read_all(slow.server, tiny), s(60));
    ASSERT_TRUE(slow_got);
    ASSERT_EQ(slow_got->size(), tiny);
    for (std::size_t i = 0; i < tiny; ++i) {
        ASSERT_EQ((*slow_got)[i], std::byte{static_cast<unsigned char>(i % 251)}) << "at " << i;
    }
    EXPECT_EQ(link_b->rx_held(), 0u);
}

// Many connections whose service does not read, each sent a whole window of full segments:
// beyond the pinned share their data is copied onto the heap, but the copies together take at
// most half of what the heap has left, plus a small floor per connection; the rest is refused
// (the window closes, lwIP keeps the segment, the peer sends again later). A connection that is
// read still gets 64 KiB through (on its floor), and once read every unread byte is there, in
// order. (Before the cap, the copies grew with the number of connections, a window each, until
// the heap ran out under everything else.)
TEST_F(Hostile, UnreadConnectionsTogetherHoldABoundedShareOfTheHeap) {
    ScarceHeap scarce;
    // 520 KiB of headroom (it does not shrink here: the copies come from the host's heap). The
    // connections are few enough for the clients' unacknowledged segments to fit lwIP's pool:
    // both ends are in this one stack.
    scarce.left = 130;
    constexpr std::size_t conns = 16, each = 60000;
    // The share (here all the headroom, which does not shrink) plus a floor of 16 KiB and a
    // segment per connection.
    const std::size_t bound = scarce.left * 4096 + (conns + 1) * (16 * 1024 + 1460);
    std::vector<TcpStream> clients, servers;
    ASSERT_NO_FATAL_FAILURE(open_pairs(7300, 128, conns + 1, clients, servers));
    const auto data = pattern(each);
    for (std::size_t i = 0; i < conns; ++i) start(send_all(clients[i], data));
    const std::uint64_t peak = peak_over(s(20), [] { return stats().rx_heap_bytes; });
    EXPECT_LE(peak, bound) << "the unread connections' copies outgrew the heap's share";
    EXPECT_GT(stats().tcp_rx_refused, 0u);
    EXPECT_LE(link_b->rx_held(), 100u) << "the unread connections pin the link's buffers";

    const auto big = pattern(64 * 1024);
    start(send_all(clients[conns], big));
    auto got = run(read_all(servers[conns], big.size()), s(120));
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == big);

    for (std::size_t i = 0; i < conns; ++i) {
        auto r = run(read_all(servers[i], each), s(120));
        ASSERT_TRUE(r);
        EXPECT_TRUE(*r == data) << "connection " << i;
    }
    EXPECT_EQ(stats().rx_heap_bytes, 0u);
    EXPECT_EQ(link_b->rx_held(), 0u);
}

// Many connections whose clients never read their replies (the service writes, the client's
// window closes, the rest waits in the service's send queues): the send queues together hold at
// most half of what the heap has left, plus a small floor per connection; a write beyond waits
// for its share. A connection whose client reads still gets its whole reply, and once the
// others read, every byte arrives, in order. (Before the bound, every connection kept its whole
// send buffer queued, 125 KiB and the buffers' overhead, till the heap ran out under everything
// else: here 2,162,688 bytes against a bound of 891,520, and the unread queues took lwIP's
// segment pool, so the connection that reads did not get its reply.)
TEST_F(Hostile, UnreadRepliesTogetherHoldABoundedShareOfTheHeap) {
    ScarceHeap scarce;
    // 520 KiB of headroom; it does not shrink here (lwIP's buffers come from the host's heap).
    scarce.left = 130;
    constexpr std::size_t conns = 16, each = 200000;
    // The share (here all the headroom, which does not shrink) plus a floor of 8 pbufs per
    // connection and two more that lwIP may add when it splits a segment for a small window,
    // each counted as 2,112 bytes (tcp.cc).
    const std::size_t bound = scarce.left * 4096 + (conns + 1) * (8 + 2) * 2112;
    std::vector<TcpStream> clients, servers;
    ASSERT_NO_FATAL_FAILURE(open_pairs(7320, 128, conns + 1, clients, servers));
    const auto data = pattern(each);
    const auto held_back = stats().tcp_tx_held_back;
    for (std::size_t i = 0; i < conns; ++i) start(send_all(servers[i], data));
    const std::uint64_t peak = peak_over(s(20), [] { return stats().tx_heap_bytes; });
    EXPECT_LE(peak, bound) << "the unread connections' send queues outgrew the heap's share";
    EXPECT_GT(peak, scarce.left * 4096 / 2) << "the send queues never came near their share";
    EXPECT_GT(stats().tcp_tx_held_back, held_back);

    const auto big = pattern(each);
    start(send_all(servers[conns], big));
    auto got = run(read_all(clients[conns], big.size()), s(120));
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == big) << "the connection that reads did not get its reply";

    for (std::size_t i = 0; i < conns; ++i) {
        auto r = run(read_all(clients[i], each), s(120));
        ASSERT_TRUE(r);
        EXPECT_TRUE(*r == data) << "connection " << i;
    }
    run_until([] { return stats().tx_heap_bytes == 0; }, s(10));
    EXPECT_EQ(stats().tx_heap_bytes, 0u);
}


// The same with heap to spare and lwIP's segment pool small (256, what a guest of 8 MiB has):
// the unread connections' send queues take at most half of the pool, so a connection that reads
// still gets its reply. (Before, six unread connections queued a whole send buffer each, about
// 88 segments, the pool ran out and the reading connection's writes waited for it for good.)
TEST_F(Hostile, UnreadRepliesLeaveSegmentsForAConnectionThatReads) {
    struct RestoreLimits {
        PoolLimits saved = pool_limits();
        ~RestoreLimits() { set_pool_limits(saved); }
    } restore;
    PoolLimits small = restore.saved;
    small.tcp_segments = 256;
    set_pool_limits(small);
    constexpr std::size_t conns = 6, each = 200000;
    std::vector<TcpStream> clients, servers;
    ASSERT_NO_FATAL_FAILURE(open_pairs(7330, 16, conns + 1, clients, servers));
    const auto data = pattern(each);
    for (std::size_t i = 0; i < conns; ++i) start(send_all(servers[i], data));
    run_until([] { return false; }, s(10));
    EXPECT_GT(stats().tx_heap_bytes, 64u * 2112) << "the unread connections queued little";

    start(send_all(servers[conns], data));
    auto got = run(read_all(clients[conns], each), s(60));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->size(), each) << "the connection that reads did not get its reply";
    EXPECT_TRUE(*got == data);

    for (std::size_t i = 0; i < conns; ++i) {
        auto r = run(read_all(clients[i], each), s(120));
        ASSERT_TRUE(r);
        EXPECT_TRUE(*r == data) << "connection " << i;
    }
}

// A flood of half-open connections (SYNs whose SYN-ACKs are lost), more than lwIP has PCBs,
// spread over three listeners so that no listen backlog stops it. lwIP's own answer to running
// out of PCBs is to kill others (TIME_WAIT, then LAST_ACK and CLOSING, then lower priorities):
// here that would be a served connection whose response is still on its way (LAST_ACK). With
// the fix the newcomers are refused (RST, counted) once the PCBs near their end: the response
// arrives whole, an established keep-alive connection keeps answering, and a new connection is
// refused at once instead of pushing anyone out.
TEST_F(Hostile, ConnectionFloodNeverDropsServedConnections) {
    Connected keep, closing;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7200, keep));
    ASSERT_NO_FATAL_FAILURE(connect_pair(7201, closing));
    auto first = run(ping_pong(keep.client, keep.server));
    ASSERT_TRUE(first && *first);

    // `closing`: the client sent its request and closed its side; the server answers and
    // closes (LAST_ACK) while its answer is held up on the wire.
    ASSERT_TRUE(closing.client.shutdown_write().ok());
    auto eof = run(read_all(closing.server, 1));
    ASSERT_TRUE(eof && eof->empty());
    const std::uint16_t closing_port = closing.client.local().port;
    bool hold = true;
    dev_b.on_wire = [&](std::vector<std::byte>& f) {
        if (f.size() < 38 || f[12] != std::byte{0x08} || f[13] != std::byte{0x00} || f[23] != std::byte{6}) {
            return false;
        }
        const unsigned dport = (unsigned(f[36]) << 8) | unsigned(f[37]);
        return (hold && dport == closing_port) || (dport >= 20000 && dport < 21000);  // lost
    };
    const auto answer = pattern(1000);
    std::optional<Result<void>> closed;
    start([](TcpStream st, std::vector<std::byte> data, std::optional<Result<void>>& out) -> Task<void> {
        if (!(co_await st.write(data))) co_return;
        out.emplace(co_await st.close(s(120)));
    }(std::move(closing.server), answer, closed));
    run_until([] { return false; }, ms(100));

    // The flood: 300 SYNs to three listeners (backlog 128 each), from ports whose answers are lost.
    TcpListener flooded[3];
    for (std::uint16_t i = 0; i < 3; ++i) {
        auto l = TcpListener::listen(static_cast<std::uint16_t>(7210 + i));
        ASSERT_TRUE(l.ok());
        flooded[i] = std::move(l.value());
    }
    const auto refused = stats().tcp_refused;
    for (std::uint16_t i = 0; i < 300; ++i) {
        TcpFrame syn;
        syn.src = addr_a;
        syn.dst = addr_b;
        syn.sport = static_cast<std::uint16_t>(20000 + i);
        syn.dport = static_cast<std::uint16_t>(7210 + i % 3);
        syn.seq = 1000u * i;
        ASSERT_TRUE(dev_b.receive(make_tcp_frame(syn)));
        loop.run_once(false);
    }
    run_until([] { return false; }, ms(500));
    EXPECT_GT(stats().tcp_refused, refused) << "the flood never reached the PCB limit";

    auto again = run(ping_pong(keep.client, keep.server));
    ASSERT_TRUE(again);
    EXPECT_TRUE(*again) << "the established connection stopped answering";
    auto newcomer = run(TcpStream::connect(addr_b, 7200, s(5)));
    ASSERT_TRUE(newcomer);
    EXPECT_EQ(newcomer->error(), Error::closed) << "a new connection must be refused (RST)";

    hold = false;
    auto got = run(read_all(closing.client, answer.size() + 1), s(120));
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == answer) << "the answer of a closing connection was cut off";
    ASSERT_TRUE(run_until([&] { return closed.has_value(); }, s(120)));
    EXPECT_TRUE(closed->ok()) << to_string(closed->error());
    dev_b.on_wire = nullptr;
}

// Connections the service closed that their clients hold open ("orphans") fill the PCBs up to
// the limit; a newcomer then takes the place of the longest-waiting one instead of being
// refused until lwIP's timers free them (20 s in FIN_WAIT_2; minutes in FIN_WAIT_1 or LAST_ACK
// when the client never acknowledges our FIN), and the connection still served keeps working.
// (Before, every SYN was refused meanwhile: new HTTP clients waited over 30 s in the nested
// hostile scenario, with tricklers that got their 408 and stayed silent.)
enum class OrphanKind {
    fin_wait_2,  ///< we closed, the client acknowledged and stays silent
    fin_wait_1,  ///< we closed, the client never acknowledges our FIN
    last_ack,    ///< the client closed first, then never acknowledges our FIN
};

class Orphans : public Hostile, public ::testing::WithParamInterface<OrphanKind> {};

TEST_P(Orphans, GiveWayToANewcomer) {
    constexpr std::uint16_t port = 7300;
    Connected keep;
    ASSERT_NO_FATAL_FAILURE(connect_pair(port, keep));
    std::vector<TcpStream> clients, servers;
    for (int i = 0; i < 119; ++i) {  // with keep: 240 PCBs, the limit
        ASSERT_NO_FATAL_FAILURE(connect_through(keep.listener, port, clients.emplace_back(), servers.emplace_back()))
            << "connection " << i;
    }
    const bool client_first = GetParam() == OrphanKind::last_ack;
    if (GetParam() != OrphanKind::fin_wait_2) {
        // B's FINs on this port never arrive (a client that drops them).
        dev_b.on_wire = [](std::vector<std::byte>& f) {
            if (f.size() < 54 || f[12] != std::byte{0x08} || f[13] != std::byte{0x00}) return false;
            const std::size_t tcp = 14 + (std::to_integer<std::size_t>(f[14]) & 0xf) * 4;
            const unsigned sport = std::to_integer<unsigned>(f[tcp]) << 8 | std::to_integer<unsigned>(f[tcp + 1]);
            return sport == port && (std::to_integer<unsigned>(f[tcp + 13]) & 0x01) != 0;
        };
    }
    if (client_first) {
        for (TcpStream& c : clients) ASSERT_TRUE(c.shutdown_write().ok());
    }
    int closed = 0;
    for (TcpStream& st : servers) {
        start([](TcpStream st2, bool wait_eof, int& n) -> Task<void> {
            if (wait_eof) {
                std::byte b[16];
                auto r = co_await st2.read(b);
                if (!r.ok() || r.value() != 0) co_return;
            }
            if ((co_await st2.close()).ok()) ++n;
        }(std::move(st), client_first, closed));
    }
    ASSERT_TRUE(run_until([&] { return closed == 119; }, s(10)));
    run_until([] { return false; }, ms(500));  // the FINs (and ACKs) that get through arrive

    const auto reclaimed = stats().tcp_orphans_reclaimed;
    auto newcomer = run(TcpStream::connect(addr_b, port, s(5)));
    ASSERT_TRUE(newcomer);
    EXPECT_TRUE(newcomer->ok()) << "refused while closed connections held the PCBs";
    EXPECT_EQ(stats().tcp_orphans_reclaimed, reclaimed + 1);
    auto again = run(ping_pong(keep.client, keep.server));
    ASSERT_TRUE(again);
    EXPECT_TRUE(*again) << "the served connection stopped answering";
    dev_b.on_wire = nullptr;
}

// A client may open a new connection from the source port of one we closed a moment ago: we
// close first (httpd answering "Connection: close"), so we hold the old one in TIME_WAIT for
// 2 minutes, and Linux reuses its ephemeral ports after a few thousand connections. The SYN
// opens the new connection at once when its sequence number is past the old connection's (as a
// real client's RFC 6528 ISN is; review_time_wait_test.cc has the other cases). (Before, lwIP answered it
// with an ACK, or an RST when it fell in the old window; the client's connect() timed out or
// failed: 6 of 100 requests in the nested httpd scenario, after ab.)
class TimeWaitReuse : public Hostile, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(TimeWaitReuse, ASynForAConnectionInTimeWaitOpensANewOne) {
    constexpr std::uint16_t port = 7400;
    Connected old;
    ASSERT_NO_FATAL_FAILURE(connect_pair(port, old));
    const std::uint16_t cport = old.client.local().port;
    std::uint32_t client_next = 0;  // the old client's next sequence number, as B saw it last
    dev_a.on_wire = [&](std::vector<std::byte>& f) {
        if (f.size() >= 54 && f[23] == std::byte{6}) {
            const std::size_t tcp = 14 + (std::to_integer<std::size_t>(f[14]) & 0xf) * 4;
            std::uint32_t seq = 0;
            for (int i = 0; i < 4; ++i) seq = seq << 8 | std::to_integer<std::uint32_t>(f[tcp + 4 + i]);
            client_next = seq + 1;  // the FIN's, at the end
        }
        return false;
    };
    // B closes first, then A: B's end stays in TIME_WAIT.
    std::optional<Result<void>> closed;
    start([](TcpStream st, std::optional<Result<void>>& out) -> Task<void> {
        out.emplace(co_await st.close());
    }(std::move(old.server), closed));
    auto eof = run(read_all(old.client, 1));
    ASSERT_TRUE(eof && eof->empty());
    auto client_closed = run(old.client.close());
    ASSERT_TRUE(client_closed && client_closed->ok());
    ASSERT_TRUE(run_until([&] { return closed.has_value(); }));
    ASSERT_TRUE(closed->ok());
    run_until([] { return false; }, ms(500));
    dev_a.on_wire = nullptr;

    std::optional<std::uint32_t> syn_ack;  // B's sequence number in its SYN-ACK to `cport`
    int other = 0;                          // anything else B sends there (ACK, RST)
    dev_b.on_wire = [&](std::vector<std::byte>& f) {
        if (f.size() < 54 || f[12] != std::byte{0x08} || f[13] != std::byte{0x00} || f[23] != std::byte{6}) return false;
        const std::size_t tcp = 14 + (std::to_integer<std::size_t>(f[14]) & 0xf) * 4;
        const unsigned dport = std::to_integer<unsigned>(f[tcp + 2]) << 8 | std::to_integer<unsigned>(f[tcp + 3]);
        if (dport != cport) return false;
        std::uint32_t seq = 0;
        for (int i = 0; i < 4; ++i) seq = seq << 8 | std::to_integer<std::uint32_t>(f[tcp + 4 + i]);
        if ((std::to_integer<unsigned>(f[tcp + 13]) & 0x12) == 0x12) {
            syn_ack = seq;
        } else {
            ++other;
        }
        return true;  // A's stack, with no connection on that port, never sees it
    };
    std::optional<Result<TcpStream>> accepted;
    start([](TcpListener& l, std::optional<Result<TcpStream>>& out) -> Task<void> {
        out.emplace(co_await l.accept());
    }(old.listener, accepted));
    const auto reopened = stats().tcp_time_wait_reopened;
    TcpFrame syn;
    syn.src = addr_a;
    syn.dst = addr_b;
    syn.sport = cport;
    syn.dport = port;
    syn.seq = client_next + GetParam();  // in the old window, or far past it
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(syn)));
    ASSERT_TRUE(run_until([&] { return syn_ack.has_value(); }, ms(200)))
        << "no SYN-ACK: the SYN met the connection in TIME_WAIT (" << other << " other answers)";
    EXPECT_EQ(other, 0);
    EXPECT_EQ(stats().tcp_time_wait_reopened, reopened + 1);
    TcpFrame ack = syn;
    ack.flags = 0x10;
    ack.seq = syn.seq + 1;
    ack.ack = *syn_ack + 1;
    ASSERT_TRUE(dev_b.receive(make_tcp_frame(ack)));
    ASSERT_TRUE(run_until([&] { return accepted.has_value(); }, ms(200)));
    EXPECT_TRUE(accepted->ok()) << "the new connection was not accepted";
    dev_b.on_wire = nullptr;
}

INSTANTIATE_TEST_SUITE_P(Hostile, TimeWaitReuse, ::testing::Values(std::uint32_t{10}, std::uint32_t{0x40000000}));

INSTANTIATE_TEST_SUITE_P(Hostile, Orphans,
                         ::testing::Values(OrphanKind::fin_wait_2, OrphanKind::fin_wait_1, OrphanKind::last_ack));

}  // namespace
}  // namespace keel::net::test
