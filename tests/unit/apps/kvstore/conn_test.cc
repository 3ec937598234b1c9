// serve_connection over lwIP (two interfaces back to back, virtual time) with a log on a fake
// disk: a benchmark-like load (many clients, round trips and pipelines) is answered in full with
// the deadlines on; the command deadline runs from a command's first byte and is not restarted
// by later bytes, nor carried over from the previous command; unread replies are reset at the
// write deadline; the idle deadline applies only when set. Each timeout is counted.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "fakes/fake_disk.h"
#include "fakes/fake_link.h"
#include "fakes/no_gso.h"
#include "keel/net/serve.h"
#include "kv/conn.h"
#include "rig.h"


namespace keel::kv {
namespace {

using net::TcpListener;
using net::TcpStream;
using namespace std::literals;

constexpr std::uint16_t port = 6379;

std::span<const std::byte> bytes(std::string_view s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

std::string set_cmd(std::string_view k, std::string_view v) {
    std::string c = "*3\r\n$3\r\nSET\r\n$" + std::to_string(k.size()) + "\r\n";
    c.append(k);
    c += "\r\n$" + std::to_string(v.size()) + "\r\n";
    c.append(v);
    return c + "\r\n";
}
std::string get_cmd(std::string_view k) {
    std::string c = "*2\r\n$3\r\nGET\r\n$" + std::to_string(k.size()) + "\r\n";
    c.append(k);
    return c + "\r\n";
}
std::string bulk(std::string_view v) { return "$" + std::to_string(v.size()) + "\r\n" + std::string(v) + "\r\n"; }

// Read from `c` until `want` bytes arrived (or the connection ends): what came.
Task<std::string> read_n(TcpStream& c, std::size_t want) {
    std::string got;
    std::byte buf[2048];
    while (got.size() < want) {
        auto r = co_await c.read(buf);
        if (!r.ok() || r.value() == 0) break;
        got.append(reinterpret_cast<const char*>(buf), r.value());
    }
    co_return got;
}

// What a client got until the server closed or reset its connection.
struct Ending {
    std::string data;
    bool reset = false;  ///< reset, not closed
    bool done = false;
};
Task<void> read_to_end(TcpStream& c, Ending& e) {
    std::byte buf[2048];
    for (;;) {
        auto r = co_await c.read(buf);
        if (!r.ok()) {
            e.reset = true;
            break;
        }
        if (r.value() == 0) break;
        e.data.append(reinterpret_cast<const char*>(buf), r.value());
    }
    e.done = true;
}

// Connection tasks that net::serve spawned end only when the fixture's links go, in TwoHosts'
// destructor: the server they use is built before it and goes after it.
struct ServerFirst {
    test::FakeDisk disk{4096};
    std::optional<Server> server;
};

class Conn : public ServerFirst, public net::test::TwoHosts<> {
protected:
    void SetUp() override {
        Config config;
        config.log = test::small_log_options();
        server.emplace(config, [this] { return test::wall_t0 + platform.now; });
        disk.latency_ns = ms(2);  // commits take time, so connections wait for shared flushes
        auto opened = run(server->open(&disk));
        ASSERT_TRUE(opened && opened->ok());
        auto l = TcpListener::listen(port);
        ASSERT_TRUE(l.ok());
        listener = std::move(l.value());
        start(net::serve(listener, 64, conns, "test", [this](TcpStream s) {
            return serve_connection(std::move(s), *server, limits);
        }));
    }
    void TearDown() override { listener.close(); }

    TcpStream connect() {
        auto c = run(TcpStream::connect(net::test::addr_b, port, s(5)));
        EXPECT_TRUE(c && c->ok());
        return c && c->ok() ? std::move(c->value()) : TcpStream();
    }
    std::uint64_t timeouts() { return server->stats().timed_out_connections; }

    // The virtual clock runs until `ns` later.
    void wait(std::uint64_t ns) {
        const std::uint64_t until = platform.now + ns;
        run_until([&] { return platform.now >= until; }, ns + s(1));
    }
    Result<std::size_t> send(TcpStream& c, std::string data) {
        auto r = run([](TcpStream& to, std::string d) -> Task<Result<std::size_t>> {
            co_return co_await to.write(bytes(d));
        }(c, std::move(data)));
        return r ? *r : Result<std::size_t>(Error::timed_out);
    }

    ConnLimits limits{s(10), 0, s(30)};
    net::ServeCounters conns;
    TcpListener listener;
};

// As redis-benchmark -c 40 -t set,get does it: each client sends one command, waits for its
// reply, sends the next; plus clients that pipeline 8 at a time (-P 8). Every reply is right
// and nobody is timed out.
TEST_F(Conn, ABenchmarkLoadIsAnsweredInFullWithTheDeadlinesOn) {
    constexpr int clients = 40, rounds = 25, pipelined = 4, depth = 8;
    int finished = 0, wrong = 0;
    auto one = [&](int id) -> Task<void> {
        auto c = co_await TcpStream::connect(net::test::addr_b, port, s(5));
        if (!c.ok()) co_return;
        TcpStream& s = c.value();
        for (int i = 0; i < rounds; ++i) {
            const std::string k = "key:" + std::to_string(id) + ":" + std::to_string(i);
            if (!(co_await s.write(bytes(set_cmd(k, "xxx")))).ok()) co_return;
            if (co_await read_n(s, 5) != "+OK\r\n") ++wrong;
            if (!(co_await s.write(bytes(get_cmd(k)))).ok()) co_return;
            if (co_await read_n(s, bulk("xxx").size()) != bulk("xxx")) ++wrong;
        }
        ++finished;
    };
    auto piped = [&](int id) -> Task<void> {
        auto c = co_await TcpStream::connect(net::test::addr_b, port, s(5));
        if (!c.ok()) co_return;
        TcpStream& s = c.value();
        for (int i = 0; i < rounds; ++i) {
            std::string batch, want;
            for (int j = 0; j < depth; ++j) {
                const std::string k = "p:" + std::to_string(id) + ":" + std::to_string(j);
                batch += set_cmd(k, "v" + std::to_string(i)) + get_cmd(k);
                want += "+OK\r\n" + bulk("v" + std::to_string(i));
            }
            if (!(co_await s.write(bytes(batch))).ok()) co_return;
            if (co_await read_n(s, want.size()) != want) ++wrong;
        }
        ++finished;
    };
    for (int i = 0; i < clients; ++i) start(one(i));
    for (int i = 0; i < pipelined; ++i) start(piped(i));
    ASSERT_TRUE(run_until([&] { return finished == clients + pipelined; }, s(600)))
        << finished << " of " << clients + pipelined << " clients finished";
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(timeouts(), 0u);
    EXPECT_EQ(server->stats().commands, std::uint64_t{2} * rounds * (clients + pipelined * depth));
}

// Each byte comes well inside the limit (2 s), but the whole command would take 2 s * 31 bytes:
// the command deadline (10 s from its first byte) resets the connection long before the end,
// and the SET never runs.
TEST_F(Conn, ATricklingCommandIsResetAtTheWholeCommandDeadline) {
    TcpStream c = connect();
    Ending reply;
    start(read_to_end(c, reply));
    start([](TcpStream& to, std::string cmd) -> Task<void> {
        for (char ch : cmd) {
            if (!(co_await to.write(bytes(std::string_view(&ch, 1)))).ok()) break;
            co_await sleep_for(s(2));
        }
    }(c, set_cmd("trickled", "value")));
    ASSERT_TRUE(run_until([&] { return reply.done; }, s(300)));
    EXPECT_TRUE(reply.reset);
    EXPECT_EQ(reply.data, "");
    EXPECT_EQ(timeouts(), 1u);
    EXPECT_EQ(server->store().peek("trickled"), nullptr);
}

// Commands 9 s apart, and one that takes 8 s, begun 9 s after the previous one ended: each is
// inside its own deadline, so all are answered (a deadline carried over from the previous
// command, or one counted per connection, would reset it).
TEST_F(Conn, EachCommandHasItsOwnDeadline) {
    TcpStream c = connect();
    Ending reply;
    start(read_to_end(c, reply));
    bool sent = false;
    start([](TcpStream& to, bool& all_sent) -> Task<void> {
        for (int i = 0; i < 4; ++i) {
            (void)co_await to.write(bytes("PING\r\n"));
            co_await sleep_for(s(9));
        }
        const std::string cmd = "PING\r\n" + set_cmd("slow", "v");  // a PING, then half a SET
        const std::size_t half = 6 + cmd.size() / 2;
        (void)co_await to.write(bytes(std::string_view(cmd).substr(0, half)));
        co_await sleep_for(s(8));
        (void)co_await to.write(bytes(std::string_view(cmd).substr(half)));
        co_await sleep_for(s(1));
        (void)to.shutdown_write();
        all_sent = true;
    }(c, sent));
    ASSERT_TRUE(run_until([&] { return reply.done; }, s(300)));
    EXPECT_TRUE(sent);
    EXPECT_FALSE(reply.reset);
    EXPECT_EQ(reply.data, "+PONG\r\n+PONG\r\n+PONG\r\n+PONG\r\n+PONG\r\n+OK\r\n");
    EXPECT_EQ(timeouts(), 0u);
}

// A client that sends GETs of a big value and never reads the replies: once its window and
// the send buffer are full, the write deadline resets it.
TEST_F(Conn, UnreadRepliesAreResetAtTheWriteDeadline) {
    const std::string big(64 * 1024, 'b');
    TcpStream w = connect();
    ASSERT_TRUE(send(w, set_cmd("big", big)).ok());
    EXPECT_EQ(run(read_n(w, 5)), "+OK\r\n");

    TcpStream c = connect();
    std::string gets;
    for (int i = 0; i < 64; ++i) gets += get_cmd("big");
    ASSERT_TRUE(send(c, gets).ok());
    ASSERT_TRUE(run_until([&] { return timeouts() == 1; }, s(120)));
    // The server reset it: the client sees that once it reads what was queued.
    Ending rest;
    start(read_to_end(c, rest));
    ASSERT_TRUE(run_until([&] { return rest.done; }, s(60)));
    EXPECT_TRUE(rest.reset);
    EXPECT_LT(rest.data.size(), gets.size() / get_cmd("big").size() * bulk(big).size());
    // The writer's connection is still served.
    ASSERT_TRUE(send(w, "PING\r\n").ok());
    EXPECT_EQ(run(read_n(w, 7)), "+PONG\r\n");
}

// timeout=0 (the default) keeps an idle client; a set idle timeout closes it.
TEST_F(Conn, TheIdleDeadlineAppliesOnlyWhenSet) {
    TcpStream kept = connect();
    ASSERT_TRUE(send(kept, "PING\r\n").ok());
    EXPECT_EQ(run(read_n(kept, 7)), "+PONG\r\n");
    wait(s(200));
    ASSERT_TRUE(send(kept, "PING\r\n").ok());
    EXPECT_EQ(run(read_n(kept, 7)), "+PONG\r\n");
    EXPECT_EQ(timeouts(), 0u);
    kept = TcpStream();

    limits.idle_ns = s(20);
    TcpStream idle = connect();
    ASSERT_TRUE(send(idle, "PING\r\n").ok());
    EXPECT_EQ(run(read_n(idle, 7)), "+PONG\r\n");
    Ending rest;
    start(read_to_end(idle, rest));
    ASSERT_TRUE(run_until([&] { return rest.done; }, s(60)));
    EXPECT_TRUE(rest.reset);
    EXPECT_EQ(timeouts(), 1u);
}

// A connection that sends nothing at all holds its slot for the command deadline only (240 such
// connections would otherwise lock every new client out, with timeout=0).
TEST_F(Conn, ASilentConnectionIsResetAtTheCommandDeadline) {
    TcpStream c = connect();
    Ending rest;
    start(read_to_end(c, rest));
    ASSERT_TRUE(run_until([&] { return rest.done; }, s(60)));
    EXPECT_TRUE(rest.reset);
    EXPECT_EQ(timeouts(), 1u);
}

// A client reads a 400 KB reply at 20 KB/s (20 s) and sends the rest of its next command 1 s
// after its start: the reply gets time by its size, and the next command's deadline runs from
// when it was fed (after the reply), not from when its first bytes arrived.
TEST_F(Conn, ABigReplyToASlowReaderAndTheCommandAfterItAreServed) {
    const std::string big(400 * 1000, 'b');
    TcpStream w = connect();
    ASSERT_TRUE(send(w, set_cmd("big", big)).ok());
    EXPECT_EQ(run(read_n(w, 5), s(120)), "+OK\r\n");

    TcpStream c = connect();
    const std::string next = set_cmd("after", "v");
    ASSERT_TRUE(send(c, get_cmd("big") + next.substr(0, 10)).ok());
    bool sent = false;
    start([](TcpStream& to, std::string rest, bool& out) -> Task<void> {
        co_await sleep_for(s(1));
        out = (co_await to.write(bytes(rest))).ok();
    }(c, next.substr(10), sent));
    std::string got;
    bool done = false;
    start([](TcpStream& from, std::size_t want, std::string& out, bool& fin) -> Task<void> {
        std::byte buf[4096];
        while (out.size() < want) {
            auto r = co_await from.read(buf);
            if (!r.ok() || r.value() == 0) break;
            out.append(reinterpret_cast<const char*>(buf), r.value());
            co_await sleep_for(ms(200));  // 4 KiB per 200 ms at most: 20 KB/s
        }
        fin = true;
    }(c, bulk(big).size() + 5, got, done));
    ASSERT_TRUE(run_until([&] { return done; }, s(300)));
    EXPECT_TRUE(sent);
    EXPECT_EQ(got.size(), bulk(big).size() + 5);
    EXPECT_EQ(got.substr(got.size() - 5), "+OK\r\n");
    EXPECT_EQ(timeouts(), 0u);
    ASSERT_NE(server->store().peek("after"), nullptr);
}

// A 400 KB SET over a 25 KB/s link takes 16 s: more than the 10 s command deadline, but the
// command gets 1 s per 16 KiB of it, so it is served; a trickle of a few bytes gains nothing.
TEST_F(Conn, ABigCommandOverASlowLinkGetsTimeByItsSize) {
    const std::string cmd = set_cmd("slow", std::string(400 * 1000, 's'));
    TcpStream c = connect();
    Ending reply;
    start(read_to_end(c, reply));
    bool sent = false;
    start([](TcpStream& to, std::string data, bool& out) -> Task<void> {
        for (std::size_t at = 0; at < data.size(); at += 2500) {
            if (!(co_await to.write(bytes(std::string_view(data).substr(at, 2500)))).ok()) co_return;
            co_await sleep_for(ms(100));
        }
        out = to.shutdown_write().ok();
    }(c, cmd, sent));
    ASSERT_TRUE(run_until([&] { return reply.done; }, s(300)));
    EXPECT_TRUE(sent);
    EXPECT_FALSE(reply.reset);
    EXPECT_EQ(reply.data, "+OK\r\n");
    EXPECT_EQ(timeouts(), 0u);
}

}  // namespace
}  // namespace keel::kv
