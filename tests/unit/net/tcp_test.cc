// TCP through the coroutine API, between two lwIP interfaces wired back to back.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "fakes/fake_link.h"
#include "keel/net/serve.h"
#include "fakes/scarce_heap.h"

namespace keel::net::test {
namespace {

/// Accept one connection on `l` into `out`.
Task<void> accept_one(TcpListener& l, std::optional<Result<TcpStream>>& out) {
    out.emplace(co_await l.accept());
}

/// Read once from `st` (into 8 bytes) and keep the result in `out`.
Task<void> read_into(TcpStream& st, std::optional<Result<std::size_t>>& out) {
    std::byte buf[8];
    out.emplace(co_await st.read(buf));
}

Task<Result<std::size_t>> read_some(TcpStream& st, std::span<std::byte> b) { co_return co_await st.read(b); }
Task<Result<std::size_t>> write_text(TcpStream& st, const char* text) {
    co_return co_await st.write(as_bytes(text));
}

/// Everything `st` receives until the peer closes (or a read fails).
Task<Result<std::size_t>> read_to_end(TcpStream& st, std::vector<std::byte>& out) {
    std::byte buf[256];
    for (;;) {
        auto n = co_await st.read_for(buf, s(10));
        if (!n || *n == 0) co_return n;
        out.insert(out.end(), buf, buf + *n);
    }
}

class Tcp : public TwoHosts<> {
protected:
    /// Write `text` on `st` (run to completion): all of it must be queued.
    void write_ok(TcpStream& st, const char* text) {
        auto w = run(write_text(st, text));
        ASSERT_TRUE(w && w->ok());
    }

    /// `i`'s IPv6 link-local address, once both interfaces' have passed duplicate address
    /// detection (invalid if not).
    IpAddr link_local(const Interface& i) {
        IpAddr addrs[3];
        EXPECT_TRUE(
            run_until([&] { return a().ipv6_addresses(addrs) > 0 && b().ipv6_addresses(addrs) > 0; }, s(10)));
        EXPECT_EQ(i.ipv6_addresses(addrs), 1u);
        return addrs[0];
    }

    /// One read from `st` (run to completion) must succeed with `n` bytes.
    void expect_read(TcpStream& st, std::size_t n) {
        std::byte buf[8];
        auto r = run(read_some(st, buf));
        ASSERT_TRUE(r && r->ok());
        EXPECT_EQ(**r, n);
    }
};

TEST_F(Tcp, ConnectAcceptAndExchange) {
    auto l = TcpListener::listen(7000);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->port(), 7000);
    std::optional<Result<TcpStream>> server;
    start(accept_one(*l, server));

    auto client = run(TcpStream::connect(addr_b, 7000, s(5), addr_a));
    ASSERT_TRUE(client && client->ok()) << to_string(client ? client->error() : Error::ok);
    ASSERT_TRUE(run_until([&] { return server.has_value(); }));
    ASSERT_TRUE(server->ok());
    TcpStream& c = client->value();
    TcpStream& srv = server->value();
    EXPECT_EQ(c.peer(), (Endpoint{addr_b, 7000}));
    EXPECT_EQ(srv.peer().addr, addr_a);
    EXPECT_EQ(srv.peer().port, c.local().port);
    EXPECT_EQ(stats().tcp_open, 2u);

    auto w = run(write_text(c, "hello"));
    ASSERT_TRUE(w && w->ok());
    EXPECT_EQ(**w, 5u);
    std::byte buf[16];
    auto r = run(read_some(srv, buf));
    ASSERT_TRUE(r && r->ok());
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), **r), "hello");
}

// 1 MiB each way through an echo server that reads in small pieces and pauses: the client's
// single write of 1 MiB can only finish once the server has taken most of it (back-pressure:
// send buffer + window are ~128 KiB), and every byte comes back in order.
TEST_F(Tcp, EchoOneMebibyteWithBackPressure) {
    constexpr std::size_t total = 1 << 20;
    const auto data = pattern(total);
    auto l = TcpListener::listen(7001);
    ASSERT_TRUE(l.ok());

    std::size_t server_read = 0;
    std::size_t read_when_write_done = 0;
    bool server_done = false;
    start([](TcpListener& li, std::size_t& got, bool& done) -> Task<void> {
        auto conn = co_await li.accept();
        if (!conn) co_return;
        std::byte buf[1000];
        for (;;) {
            auto n = co_await conn->read(buf);
            if (!n || *n == 0) break;
            got += *n;
            if (!(co_await conn->write({buf, *n}))) break;
            if (got % 50000 < 1000) co_await sleep_for(ms(20));  // a slow reader now and then
        }
        auto c = co_await conn->close();
        EXPECT_TRUE(c.ok()) << to_string(c.error());
        done = true;
    }(*l, server_read, server_done));

    auto client = run(TcpStream::connect(addr_b, 7001, s(5)));
    ASSERT_TRUE(client && client->ok());
    TcpStream& c = client->value();

    std::vector<std::byte> echoed;
    bool reader_done = false;
    start([](TcpStream& st, std::vector<std::byte>& out, bool& done) -> Task<void> {
        std::byte buf[4096];
        while (out.size() < total) {
            auto n = co_await st.read(buf);
            EXPECT_TRUE(n.ok());
            if (!n || *n == 0) break;
            out.insert(out.end(), buf, buf + *n);
        }
        done = true;
    }(c, echoed, reader_done));

    auto w = run([](TcpStream& st, std::span<const std::byte> d, std::size_t& server,
                    std::size_t& snap) -> Task<Result<std::size_t>> {
        auto r = co_await st.write(d);
        snap = server;
        co_return r;
    }(c, data, server_read, read_when_write_done));
    ASSERT_TRUE(w && w->ok());
    EXPECT_EQ(**w, total);
    EXPECT_GE(read_when_write_done, total - 3 * 65536) << "write() returned before the peer made room";

    ASSERT_TRUE(run_until([&] { return echoed.size() == total; }));
    EXPECT_TRUE(echoed == data);
    auto closed = run(c.close());
    ASSERT_TRUE(closed);
    ASSERT_TRUE(closed->ok()) << to_string(closed->error());
    EXPECT_TRUE(run_until([&] { return server_done && reader_done; }));
    EXPECT_EQ(server_read, total);
}

TEST_F(Tcp, PeerCloseReadsZeroAfterTheData) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7002, c));
    TcpStream srv = std::move(c.server);

    auto sent = run([](TcpStream& st) -> Task<Result<void>> {
        auto w = co_await st.write(as_bytes("bye"));
        if (!w) co_return w.error();
        co_return co_await st.close();
    }(srv));
    ASSERT_TRUE(sent && sent->ok());
    EXPECT_FALSE(srv);  // close() empties the handle

    ASSERT_NO_FATAL_FAILURE(expect_read(c.client, 3));
    ASSERT_NO_FATAL_FAILURE(expect_read(c.client, 0));
}

// The lingering close httpd does: FIN at once behind the response, keep reading what the
// client still sends until it closes, then close. Both sides end cleanly, no reset.
TEST_F(Tcp, ShutdownWriteSendsFinAndKeepsReading) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7010, c));
    TcpStream srv = std::move(c.server);
    TcpStream& cli = c.client;
    const auto resets = stats().tcp_reset;
    const auto closed = stats().tcp_closed;
    const auto aborted = stats().tcp_aborted;

    ASSERT_NO_FATAL_FAILURE(write_ok(srv, "answer"));
    ASSERT_TRUE(srv.shutdown_write().ok());
    EXPECT_TRUE(srv.shutdown_write().ok());  // twice is harmless
    auto again = run(write_text(srv, "x"));
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->ok()) << "writing after shutdown_write must fail";

    // The client sees the answer, then end of stream, while the server has not closed yet.
    std::vector<std::byte> got;
    auto eof = run(read_to_end(cli, got));
    ASSERT_TRUE(eof && eof->ok());
    EXPECT_EQ(**eof, 0u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()), "answer");
    EXPECT_TRUE(srv.is_open());

    // The half-closed server still reads what the client sends, then the client's FIN.
    ASSERT_NO_FATAL_FAILURE(write_ok(cli, "late"));
    std::vector<std::byte> drained;
    start([](TcpStream& st, std::vector<std::byte>& out) -> Task<void> {
        std::byte buf[64];
        for (;;) {
            auto n = co_await st.read(buf);
            if (!n || *n == 0) co_return;
            out.insert(out.end(), buf, buf + *n);
        }
    }(srv, drained));
    auto cli_closed = run(cli.close(s(5)));
    ASSERT_TRUE(cli_closed && cli_closed->ok());
    ASSERT_TRUE(run_until([&] { return drained.size() == 4; }));
    auto srv_closed = run(srv.close(s(5)));
    ASSERT_TRUE(srv_closed && srv_closed->ok());
    EXPECT_EQ(stats().tcp_reset, resets);
    EXPECT_EQ(stats().tcp_aborted, aborted);
    EXPECT_EQ(stats().tcp_closed, closed + 2);
}

/// The server writes a head and a body (as httpd does), the first with `head_end`, the second
/// with `body_end`, then shuts its side (a no-op if the body's write did); returns the data
/// segments it sent, after the client read both and the end of the stream.
class TcpWriteEnd : public Tcp {
protected:
    std::vector<DataSegment> head_then_body(WriteEnd head_end, WriteEnd body_end) {
        Connected c;
        connect_pair(7030, c);
        if (::testing::Test::HasFatalFailure()) return {};
        dev_b.capture = true;
        const auto head = as_bytes("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        const auto body = as_bytes("<p>hi</p>");
        auto w = run([](TcpStream& st, std::span<const std::byte> h, std::span<const std::byte> b, WriteEnd he,
                        WriteEnd be) -> Task<bool> {
            if (!co_await st.write(h, he)) co_return false;
            if (!co_await st.write(b, be)) co_return false;
            co_return st.shutdown_write().ok();
        }(c.server, head, body, head_end, body_end));
        EXPECT_TRUE(w && *w);
        std::vector<std::byte> got;
        auto eof = run(read_to_end(c.client, got));
        EXPECT_TRUE(eof && eof->ok() && **eof == 0);
        EXPECT_EQ(got.size(), head.size() + body.size());
        if (got.size() == head.size() + body.size()) {
            EXPECT_EQ(std::memcmp(got.data(), head.data(), head.size()), 0);
            EXPECT_EQ(std::memcmp(got.data() + head.size(), body.data(), body.size()), 0);
        }
        dev_b.capture = false;
        return data_segments(dev_b.captured);
    }
};

// The control: written plainly (Nagle is off), the head and the body leave as a segment each,
// and the FIN as a third.
TEST_F(TcpWriteEnd, PlainWritesTakeASegmentEach) {
    const auto segs = head_then_body(WriteEnd::send, WriteEnd::send);
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_FALSE(segs[1].fin);
}

TEST_F(TcpWriteEnd, MoreJoinsTheHeadAndTheBody) {
    const auto segs = head_then_body(WriteEnd::more, WriteEnd::send);
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_FALSE(segs[0].fin);
}

TEST_F(TcpWriteEnd, ShutdownPutsTheFinOnTheLastDataSegment) {
    const auto segs = head_then_body(WriteEnd::more, WriteEnd::shutdown);
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_TRUE(segs[0].fin);
}

// A write held by `more` goes out with the shutdown that follows it (one segment, with the FIN),
// or with close(), at once: no virtual time passes (lwIP's poll timer would send it within a
// second anyway).
TEST_F(TcpWriteEnd, HeldDataGoesWithTheShutdownOrTheClose) {
    for (const bool by_close : {false, true}) {
        Connected c;
        ASSERT_NO_FATAL_FAILURE(connect_pair(by_close ? 7032 : 7031, c));
        dev_b.captured.clear();
        dev_b.capture = true;
        auto w = run([](TcpStream& st) -> Task<bool> {
            co_return (co_await st.write(as_bytes("held"), WriteEnd::more)).ok();
        }(c.server));
        ASSERT_TRUE(w && *w);
        EXPECT_TRUE(data_segments(dev_b.captured).empty()) << "held data left before its shutdown";
        const std::uint64_t t0 = platform.now;
        if (by_close) {
            start([](TcpStream& st) -> Task<void> { (void)co_await st.close(s(5)); }(c.server));
        } else {
            ASSERT_TRUE(c.server.shutdown_write().ok());
        }
        ASSERT_TRUE(run_until([&] { return !data_segments(dev_b.captured).empty(); }, ms(1)));
        EXPECT_LT(platform.now - t0, ms(1));
        const auto segs = data_segments(dev_b.captured);
        ASSERT_EQ(segs.size(), 1u) << "by_close " << by_close;
        EXPECT_TRUE(segs[0].fin);
        dev_b.capture = false;
        std::vector<std::byte> got;
        auto eof = run(read_to_end(c.client, got));
        ASSERT_TRUE(eof && eof->ok());
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()), "held");
    }
}

// The peer closes first; our close then goes through LAST_ACK, which lwIP ends with ERR_CLSD:
// a clean close, not a reset.
TEST_F(Tcp, CloseAfterThePeerClosedIsClean) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7011, c));
    TcpStream srv = std::move(c.server);
    const auto resets = stats().tcp_reset;
    auto c1 = run(c.client.close(s(5)));
    ASSERT_TRUE(c1 && c1->ok());
    auto eof = run([](TcpStream& st) -> Task<Result<std::size_t>> {
        std::byte buf[8];
        co_return co_await st.read(buf);
    }(srv));
    ASSERT_TRUE(eof && eof->ok());
    EXPECT_EQ(**eof, 0u);
    auto c2 = run(srv.close(s(5)));
    ASSERT_TRUE(c2 && c2->ok());
    EXPECT_EQ(stats().tcp_reset, resets);
}

TEST_F(Tcp, AbortResetsThePeer) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7003, c));

    std::optional<Result<std::size_t>> got;
    start(read_into(c.server, got));
    const auto aborted = stats().tcp_aborted;
    c.client.abort();
    EXPECT_FALSE(c.client);
    EXPECT_EQ(stats().tcp_aborted, aborted + 1);
    ASSERT_TRUE(run_until([&] { return got.has_value(); }));
    EXPECT_EQ(got->error(), Error::closed);
    EXPECT_FALSE(c.server.is_open());
}

TEST_F(Tcp, ReadTimesOut) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7004, c));
    const std::uint64_t t0 = platform.now;
    auto r = run([](TcpStream& st) -> Task<Result<std::size_t>> {
        std::byte buf[8];
        co_return co_await st.read_for(buf, s(3));
    }(c.server));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::timed_out);
    EXPECT_GE(platform.now - t0, s(3));
    EXPECT_LT(platform.now - t0, s(4));
    // The connection is still fine afterwards.
    EXPECT_TRUE(c.server.is_open());
}

TEST_F(Tcp, DestroyingAStreamCancelsItsPendingRead) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7005, c));

    std::optional<Result<std::size_t>> got;
    start(read_into(c.server, got));
    c.server = TcpStream();  // the stream goes away under the waiting reader
    ASSERT_TRUE(run_until([&] { return got.has_value(); }));
    EXPECT_EQ(got->error(), Error::cancelled);

    // The peer's data now finds nothing to call; nothing crashes.
    auto w = run(write_text(c.client, "late"));
    ASSERT_TRUE(w);
    run_until([] { return false; }, s(2));
}

TEST_F(Tcp, DestroyingAWaitingTaskLeavesTheStreamUsable) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7006, c));

    {
        Task<void> t = [](TcpStream& st) -> Task<void> {
            std::byte buf[8];
            (void)co_await st.read(buf);
            ADD_FAILURE() << "the destroyed task resumed";
        }(c.server);
        t.start();
    }  // destroyed while suspended in read()
    ASSERT_NO_FATAL_FAILURE(write_ok(c.client, "data"));
    ASSERT_NO_FATAL_FAILURE(expect_read(c.server, 4));
}

TEST_F(Tcp, SecondConcurrentReadIsBusy) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7007, c));
    std::optional<Result<std::size_t>> first;
    start([](TcpStream& st, std::optional<Result<std::size_t>>& out) -> Task<void> {
        std::byte buf[8];
        out.emplace(co_await st.read_for(buf, s(1)));
    }(c.server, first));
    auto second = run([](TcpStream& st) -> Task<Result<std::size_t>> {
        std::byte buf[8];
        co_return co_await st.read(buf);
    }(c.server));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->error(), Error::busy);
    ASSERT_TRUE(run_until([&] { return first.has_value(); }));
    EXPECT_EQ(first->error(), Error::timed_out);
}

TEST_F(Tcp, ConnectToAClosedPortIsRefused) {
    auto r = run(TcpStream::connect(addr_b, 7999, s(5)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::closed);
}

TEST_F(Tcp, ConnectTimesOutWhenNothingAnswers) {
    dev_a.on_wire = [](std::vector<std::byte>&) { return true; };  // A's frames never arrive
    const auto failed = stats().tcp_connect_failed;
    auto r = run(TcpStream::connect(addr_b, 7008, s(2)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::timed_out);
    EXPECT_EQ(stats().tcp_connect_failed, failed + 1);
    dev_a.on_wire = nullptr;
}

TEST_F(Tcp, CloseAbortsWhenThePeerNeverAcknowledges) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7009, c));
    dev_b.on_wire = [](std::vector<std::byte>&) { return true; };  // B's ACKs are lost
    auto r = run([](TcpStream& st) -> Task<Result<void>> {
        auto w = co_await st.write(as_bytes("unacknowledged"));
        if (!w) co_return w.error();
        co_return co_await st.close(s(2));
    }(c.client));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::timed_out);
    dev_b.on_wire = nullptr;
}

TEST_F(Tcp, ClosingTheListenerCancelsAccept) {
    auto l = TcpListener::listen(0);
    ASSERT_TRUE(l.ok());
    EXPECT_NE(l->port(), 0);
    std::optional<Result<TcpStream>> got;
    start(accept_one(*l, got));
    l->close();
    ASSERT_TRUE(run_until([&] { return got.has_value(); }));
    EXPECT_EQ(got->error(), Error::cancelled);
}

TEST_F(Tcp, AcceptTimesOutAndPortsAreExclusive) {
    auto l = TcpListener::listen(7010);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(TcpListener::listen(7010).error(), Error::exists);
    EXPECT_EQ(TcpListener::listen(7010, 0).error(), Error::invalid_argument);
    auto r =
        run([](TcpListener& li) -> Task<Result<TcpStream>> { co_return co_await li.accept_for(s(1)); }(*l));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::timed_out);
}

TEST_F(Tcp, AFullBacklogRefusesTheNextSynAtOnce) {
    auto l = TcpListener::listen(7011, 1);
    ASSERT_TRUE(l.ok());
    auto first = run(TcpStream::connect(addr_b, 7011, s(5)));
    ASSERT_TRUE(first && first->ok());
    ASSERT_TRUE(run_until([&] { return l->pending() == 1; }));
    // The backlog is full: the next SYN is refused at once (lwIP alone would drop it without a
    // word, and the client would wait for its SYN retransmissions).
    auto second = run(TcpStream::connect(addr_b, 7011, s(2)));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->error(), Error::closed);
    // Data sent before accept() is kept for whoever accepts.
    ASSERT_NO_FATAL_FAILURE(write_ok(first->value(), "early"));
    auto acc = run([](TcpListener& li) -> Task<Result<TcpStream>> { co_return co_await li.accept(); }(*l));
    ASSERT_TRUE(acc && acc->ok());
    ASSERT_TRUE(run_until([&] { return acc->value().buffered() == 5; }));
}

TEST_F(Tcp, DroppingTheListenerResetsQueuedConnections) {
    auto l = TcpListener::listen(7012);
    auto client = run(TcpStream::connect(addr_b, 7012, s(5)));
    ASSERT_TRUE(client && client->ok());
    ASSERT_TRUE(run_until([&] { return l->pending() == 1; }));
    *l = TcpListener();
    auto r = run([](TcpStream& st) -> Task<Result<std::size_t>> {
        std::byte buf[8];
        co_return co_await st.read_for(buf, s(5));
    }(client->value()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::closed);
}

TEST_F(Tcp, WorksWhileTheLinkIsFull) {
    dev_a.tx_capacity = 2;  // A's device takes two frames, then says "again" until delivery
    auto l = TcpListener::listen(7013);
    const auto deferred = stats().tx_deferred;
    std::size_t got = 0;
    start([](TcpListener& li, std::size_t& n) -> Task<void> {
        auto conn = co_await li.accept();
        if (!conn) co_return;
        std::byte buf[4096];
        for (;;) {
            auto r = co_await conn->read(buf);
            if (!r || *r == 0) break;
            n += *r;
        }
    }(*l, got));
    auto client = run(TcpStream::connect(addr_b, 7013, s(5)));
    ASSERT_TRUE(client && client->ok());
    const auto data = pattern(200'000);
    auto w = run([](TcpStream& st, std::span<const std::byte> d) -> Task<Result<std::size_t>> {
        co_return co_await st.write(d);
    }(client->value(), data));
    ASSERT_TRUE(w && w->ok());
    ASSERT_TRUE(run_until([&] { return got == data.size(); }));
    EXPECT_GT(stats().tx_deferred, deferred);
    EXPECT_GT(dev_a.tx_again, 0u);
}

TEST_F(Tcp, Ipv6LinkLocal) {
    const IpAddr b_ll = link_local(b());
    ASSERT_TRUE(b_ll.is_link_local());
    EXPECT_EQ(b_ll.zone(), b().index());

    auto l = TcpListener::listen(7014);
    std::optional<Result<TcpStream>> server;
    start(accept_one(*l, server));
    auto client = run(TcpStream::connect(b_ll.with_zone(a().index()), 7014, s(5)));
    ASSERT_TRUE(client && client->ok()) << to_string(client ? client->error() : Error::ok);
    ASSERT_TRUE(run_until([&] { return server.has_value(); }));
    EXPECT_TRUE(server->value().peer().addr.is_v6());
    ASSERT_NO_FATAL_FAILURE(write_ok(client->value(), "v6"));
    ASSERT_TRUE(run_until([&] { return server->value().buffered() == 2; }));
}

/// An ICMPv6 Packet Too Big from `src` to `dst` (link-local, A's MAC to B's) reporting `mtu` for
/// a packet `dst` sent to `src` (its first 48 bytes), checksum filled in.
std::vector<std::byte> packet_too_big(const IpAddr& src, const IpAddr& dst, std::uint32_t mtu) {
    constexpr std::size_t ip = 14, icmp = ip + 40, quoted = icmp + 8, len = 8 + 48;
    std::vector<std::uint8_t> f(quoted + 48);
    const std::uint8_t macs[12] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
    std::copy(macs, macs + 12, f.begin());
    f[12] = 0x86;
    f[13] = 0xdd;
    auto ip6 = [&f](std::size_t at, const IpAddr& from, const IpAddr& to, std::uint8_t next, std::size_t payload) {
        f[at] = 0x60;
        f[at + 4] = static_cast<std::uint8_t>(payload >> 8);
        f[at + 5] = static_cast<std::uint8_t>(payload);
        f[at + 6] = next;
        f[at + 7] = 255;
        std::copy(from.bytes().begin(), from.bytes().end(), f.begin() + at + 8);
        std::copy(to.bytes().begin(), to.bytes().end(), f.begin() + at + 24);
    };
    ip6(ip, src, dst, 58, len);
    f[icmp] = 2;  // Packet Too Big
    for (int i = 0; i < 4; ++i) f[icmp + 4 + i] = static_cast<std::uint8_t>(mtu >> (24 - 8 * i));
    ip6(quoted, dst, src, 6, 1000);  // what dst sent to src: TCP
    std::uint32_t sum = 58 + len;    // pseudo-header: addresses, length, next header
    for (std::size_t i = ip + 8; i < ip + 40; i += 2) sum += (std::uint32_t{f[i]} << 8) | f[i + 1];
    for (std::size_t i = icmp; i < f.size(); i += 2) sum += (std::uint32_t{f[i]} << 8) | f[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    f[icmp + 2] = static_cast<std::uint8_t>(~sum >> 8);
    f[icmp + 3] = static_cast<std::uint8_t>(~sum);
    std::vector<std::byte> out(f.size());
    std::memcpy(out.data(), f.data(), f.size());
    return out;
}

// lwIP takes the MTU of an ICMPv6 Packet Too Big into its destination cache whatever it is; one
// of 60 or less gave every later TCP connection with that host an MSS of 0. The first write
// on one never ended: tcp_write() made empty segments until ERR_MEM, the write retried with
// ever smaller pieces down to 0 bytes, which lwIP accepts, and started over, so the loop never
// yielded: any host the guest had sent to could hang it. Such a message is now dropped before
// lwIP (RFC 8201: under IPv6's minimum MTU, discard); one at the minimum, 1280, is taken. (With
// the drop disabled, the write here waits and the test fails.)
TEST_F(Tcp, Ipv6PacketTooBigUnderTheMinimumMtuIsDropped) {
    const IpAddr a_ll = link_local(a()), b_ll = link_local(b());
    ASSERT_TRUE(a_ll.is_link_local() && b_ll.is_link_local());
    auto l = TcpListener::listen(7016);
    ASSERT_TRUE(l.ok());
    // A reply of 10,000 bytes from B on a new connection from A, read whole by A.
    auto exchange = [&] {
        std::optional<Result<TcpStream>> server;
        start(accept_one(*l, server));
        auto client = run(TcpStream::connect(b_ll.with_zone(a().index()), 7016, s(5)));
        ASSERT_TRUE(client && client->ok());
        ASSERT_TRUE(run_until([&] { return server.has_value(); }));
        ASSERT_TRUE(server->ok());
        const auto reply = pattern(10000);
        auto w = run([](TcpStream st, std::vector<std::byte> d) -> Task<Result<std::size_t>> {
            auto r = co_await st.write(d);
            (void)co_await st.close();
            co_return r;
        }(std::move(server->value()), reply), s(30));
        ASSERT_TRUE(w && w->ok() && **w == reply.size());
        std::vector<std::byte> got;
        auto r = run(read_to_end(client->value(), got));
        ASSERT_TRUE(r && r->ok());
        EXPECT_TRUE(got == reply);
    };
    ASSERT_NO_FATAL_FAILURE(exchange());  // B now has A in its destination cache

    const auto dropped = stats().rx_dropped;
    ASSERT_TRUE(dev_b.receive(packet_too_big(a_ll, b_ll, 40)));
    EXPECT_EQ(stats().rx_dropped, dropped + 1);
    ASSERT_NO_FATAL_FAILURE(exchange());

    ASSERT_TRUE(dev_b.receive(packet_too_big(a_ll, b_ll, 1280)));
    EXPECT_EQ(stats().rx_dropped, dropped + 1) << "a Packet Too Big at the minimum MTU was dropped";
    ASSERT_NO_FATAL_FAILURE(exchange());
}

TEST_F(Tcp, ChecksumsAreVerifiedUnlessTheDeviceVouches) {
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7015, c));

    // Corrupt the TCP checksum of A's data segments (IPv4, no options: TCP at 34, checksum at
    // 34 + 16) on the wire. Unvalidated, B drops them; lwIP's retransmissions meet the same fate.
    bool corrupt = true;
    dev_a.on_wire = [&corrupt](std::vector<std::byte>& f) {
        if (corrupt && f.size() > 54) f[50] ^= std::byte{0xff};
        return false;
    };
    ASSERT_NO_FATAL_FAILURE(write_ok(c.client, "x"));
    run_until([] { return false; }, s(1));
    EXPECT_EQ(c.server.buffered(), 0u);
    // A device that validated checksums is trusted: the same corruption gets through.
    dev_b.mark_validated = true;
    ASSERT_TRUE(run_until([&] { return c.server.buffered() == 1; }, s(30)));
    corrupt = false;
    dev_a.on_wire = nullptr;
}

/// A connection handler that holds its connection until `release`, then closes it.
Task<void> hold_until(TcpStream s, Event& release, int& served) {
    ++served;
    co_await release.wait();
    (void)co_await s.close();
}

// net::serve: at most max_conns handlers at a time; one more connection is reset at once and
// counted as refused; the loop ends when its listener is closed.
TEST_F(Tcp, ServeLimitsConnectionsAndEndsWithTheListener) {
    auto l = TcpListener::listen(7030);
    ASSERT_TRUE(l.ok());
    ServeCounters conns;
    Event release;
    int served = 0;
    Task<void> loop_task =
        serve(*l, 1, conns, "test", [&](TcpStream st) { return hold_until(std::move(st), release, served); });
    loop_task.start();

    auto first = run(TcpStream::connect(addr_b, 7030, s(5)));
    ASSERT_TRUE(first && first->ok());
    ASSERT_TRUE(run_until([&] { return conns.open == 1; }));
    auto second = run(TcpStream::connect(addr_b, 7030, s(5)));
    ASSERT_TRUE(second && second->ok());  // lwIP completes the handshake before accept()
    ASSERT_TRUE(run_until([&] { return conns.refused == 1; }));
    std::byte buf[8];
    auto r = run(read_some(second->value(), buf));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::closed);
    EXPECT_EQ(served, 1);
    EXPECT_EQ(conns.open, 1u);

    release.set();
    ASSERT_TRUE(run_until([&] { return conns.open == 0; }));
    EXPECT_EQ(served, 1);
    l->close();
    ASSERT_TRUE(run_until([&] { return loop_task.done(); }));
}

// net::serve keeps serve_heap_reserve of heap for the connections it serves: below it, a new
// connection is reset before its handler (frame, buffers) is created, counted and logged; the
// connection being served goes on, and new ones are taken again once memory is back. (Before,
// the handler's frame came from operator new, which panics when the heap is out: a client
// opening connections at the wrong moment crashed the guest.)
TEST_F(Tcp, ServeRefusesNewConnectionsWhileTheHeapIsUnderItsReserve) {
    ScarceHeap scarce;
    keel::test::CaptureSink sink;
    set_log_sink(&sink);
    auto l = TcpListener::listen(7031);
    ASSERT_TRUE(l.ok());
    ServeCounters conns;
    Event release;
    int served = 0;
    Task<void> loop_task =
        serve(*l, 8, conns, "test", [&](TcpStream st) { return hold_until(std::move(st), release, served); });
    loop_task.start();

    auto first = run(TcpStream::connect(addr_b, 7031, s(5)));
    ASSERT_TRUE(first && first->ok());
    ASSERT_TRUE(run_until([&] { return conns.open == 1; }));

    scarce.left = serve_heap_reserve / 4096 - 1;
    auto second = run(TcpStream::connect(addr_b, 7031, s(5)));
    ASSERT_TRUE(second && second->ok());  // lwIP completes the handshake before accept()
    ASSERT_TRUE(run_until([&] { return conns.refused_memory == 1; }, s(5)));
    std::byte buf[8];
    auto r = run(read_some(second->value(), buf));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::closed);
    EXPECT_EQ(served, 1);
    EXPECT_EQ(conns.refused, 0u);
    bool logged = false;
    for (const auto& line : sink.lines) logged = logged || line.find("test: refusing new connections") < line.size();
    EXPECT_TRUE(logged);

    scarce.left = 1024;
    auto third = run(TcpStream::connect(addr_b, 7031, s(5)));
    ASSERT_TRUE(third && third->ok());
    ASSERT_TRUE(run_until([&] { return conns.open == 2; }));
    EXPECT_EQ(served, 2);

    release.set();
    ASSERT_TRUE(run_until([&] { return conns.open == 0; }));
    l->close();
    ASSERT_TRUE(run_until([&] { return loop_task.done(); }));
    set_log_sink(nullptr);
}

}  // namespace
}  // namespace keel::net::test

namespace keel::net::test {
namespace {

// Like `ab -n 5000 -c 50` against an HTTP/1.0 server: 50 clients, 100 short connections each;
// the server answers and closes first, so its side collects TIME_WAIT connections far beyond
// the 256 PCBs (lwIP recycles the oldest).
TEST_F(Tcp, ManyShortConnections) {
    auto l = TcpListener::listen(7020, 128);
    ASSERT_TRUE(l.ok());
    int served = 0;
    start([](TcpListener& li, int& n) -> Task<void> {
        for (;;) {
            auto conn = co_await li.accept();
            if (!conn) co_return;
            spawn([](TcpStream st, int& count) -> Task<void> {
                std::byte buf[512];
                std::size_t got = 0;
                while (got < 16) {
                    auto r = co_await st.read_for({buf + got, sizeof(buf) - got}, s(5));
                    if (!r || *r == 0) co_return;
                    got += *r;
                }
                std::vector<std::byte> reply(300, std::byte{'r'});
                if (!(co_await st.write(reply))) co_return;
                if ((co_await st.close()).ok()) ++count;
            }(std::move(*conn), n));
        }
    }(*l, served));

    int ok = 0, failed = 0;
    for (int c = 0; c < 50; ++c) {
        start([](int& good, int& bad) -> Task<void> {
            for (int i = 0; i < 100; ++i) {
                auto conn = co_await TcpStream::connect(addr_b, 7020, s(10));
                if (!conn) {
                    ++bad;
                    continue;
                }
                if (!(co_await conn->write(as_bytes("GET / HTTP/1.0\r\n\r\n")))) {
                    ++bad;
                    continue;
                }
                std::byte buf[512];
                std::size_t total = 0;
                for (;;) {
                    auto r = co_await conn->read_for(buf, s(10));
                    if (!r) break;
                    if (*r == 0) break;
                    total += *r;
                }
                if (total == 300) {
                    ++good;
                } else {
                    ++bad;
                }
            }
        }(ok, failed));
    }
    ASSERT_TRUE(run_until([&] { return ok + failed == 5000; }, s(3600)));
    EXPECT_EQ(ok, 5000);
    EXPECT_EQ(failed, 0);
    EXPECT_TRUE(run_until([&] { return served == 5000; }, s(60)));
    l->close();
    run_until([&] { return stats().tcp_open == 0; }, s(60));
}

}  // namespace
}  // namespace keel::net::test
