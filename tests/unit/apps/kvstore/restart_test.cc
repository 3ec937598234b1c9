// The restart the kvstore scenario plays, with a disk whose operations complete from the loop
// as blkfront's do: 1000 SETs acknowledged over connections driven by the network glue of
// kv/server.h, a hard kill (the Server dropped, nothing closed), a new Server on the same disk
// with background() spawned as the service does, and then the first command of a fresh
// connection (DBSIZE; PING then DBSIZE; GET; SET) must be answered without waiting on anything
// that never comes.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kv/server.h"
#include "rig.h"

namespace keel::kv::test {
namespace {

using namespace std::literals;

/// One TCP connection as the glue sees it: bytes from the client, bytes to it.
struct Conn {
    std::string in;   // sent by the client, not yet read by the server
    std::string out;  // written by the server
    bool peer_closed = false;
    bool aborted = false;
    bool done = false;
    Event readable;

    void send(std::string_view s) {
        in.append(s);
        readable.set();
    }
    void close() {
        peer_closed = true;
        readable.set();
    }
};

// A TCP write completes from the loop too.
using Posted = FakeDisk::Posted;

// The serve loop of kv/server.h (and apps/kvstore/kvstore.cc), over a Conn.
Task<void> serve(Server& server, Conn& c) {
    Session session(server);
    auto in = std::make_unique<std::array<char, 16384>>();
    std::size_t have = 0, off = 0;
    for (;;) {
        if (off < have && session.state() == SessionState::reading) {
            off += session.feed(std::span<const char>(in->data() + off, have - off));
            continue;
        }
        if (!session.output().empty()) {
            if (session.needs_commit() && !(co_await session.commit()).ok()) {
                c.aborted = true;
                break;
            }
            auto out = session.output();
            const std::string copy(out.data(), out.size());
            co_await Posted{};
            c.out += copy;
            session.sent(copy.size());
            continue;
        }
        if (session.state() == SessionState::closed) break;
        if (off < have) continue;
        while (c.in.empty() && !c.peer_closed) {
            c.readable.reset();
            co_await c.readable.wait();
        }
        if (c.in.empty()) {
            session.end_of_input();
        } else {
            have = c.in.size() < in->size() ? c.in.size() : in->size();
            c.in.copy(in->data(), have);
            c.in.erase(0, have);
            off = 0;
        }
    }
    c.done = true;
}

std::string resp(std::vector<std::string_view> args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (auto a : args) s += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
    return s;
}

struct Pattern {
    const char* name;
    std::vector<std::uint64_t> completions;  // FakeDisk::completions
    bool small_log;                          // small_log_options() (compacts early) or the service's
};

class RestartTest : public KvTest, public ::testing::WithParamInterface<Pattern> {
protected:
    Config config() {
        Config c;
        if (GetParam().small_log) {
            c.log = small_log_options();
        } else {
            c.log.format_id = 0x5eed;
        }
        return c;
    }
    Clock clock() {
        return Clock([this] { return wall_t0 + platform.now; });
    }

    /// Sends `request` on `c` and runs the loop until `want` came back, for at most 10 s of
    /// virtual time (the scenario waited minutes). False if it did not.
    ::testing::AssertionResult ask(Conn& c, std::string_view request, std::string_view want) {
        c.out.clear();
        c.send(request);
        const std::uint64_t start = platform.now, limit = 10'000'000'000ull;
        run_until([&] { return c.out.size() >= want.size() || c.aborted || platform.now - start > limit; },
                  1'000'000);
        if (c.out == want) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << "sent [" << request.substr(0, 64) << "], got [" << c.out << "] after "
               << (platform.now - start) << " ns of virtual time, want [" << want.substr(0, 64) << "]"
               << (c.aborted ? " (aborted)" : "");
    }

    void finish(Conn& c) {
        c.close();
        EXPECT_TRUE(run_until([&] { return c.done; }));
    }

    // Boot 1: the scenario's first part, then 1000 SETs, each acknowledged. Returns the disk
    // image a hard kill leaves (durable plus every completed write).
    Image first_life() {
        FakeDisk disk(512);  // regions of 255 sectors: the log (~52 KB) never wants compaction
        disk.completions = GetParam().completions;
        auto server = std::make_unique<Server>(config(), clock());
        auto rep = run(server->open(&disk));
        EXPECT_TRUE(rep.ok()) << server->failure();
        bool bg_done = false;
        auto bg = [&]() -> Task<void> {
            co_await server->background();
            bg_done = true;
        };
        spawn(bg());
        {
            Conn c;
            spawn(serve(*server, c));
            EXPECT_TRUE(ask(c, resp({"SET", "greeting", "hello"}), "+OK\r\n"));
            EXPECT_TRUE(ask(c, resp({"SET", "tmp", "v", "EX", "100"}), "+OK\r\n"));
            EXPECT_TRUE(ask(c, resp({"MSET", "a", "1", "b", "2"}), "+OK\r\n"));
            EXPECT_TRUE(ask(c, resp({"FLUSHALL"}), "+OK\r\n"));
            finish(c);
        }
        // 1000 SETs: mostly one at a time (redis-cli reading stdin), some pipelined from other
        // connections at the same time (group commit).
        Conn one, two, three;
        spawn(serve(*server, one));
        spawn(serve(*server, two));
        spawn(serve(*server, three));
        int i = 1;
        for (; i <= 1000; ++i) {
            const std::string k = "key:" + std::to_string(i), v = "value-" + std::to_string(i);
            if (i % 50 == 0 && i + 2 <= 1000) {
                const std::string k2 = "key:" + std::to_string(i + 1), v2 = "value-" + std::to_string(i + 1);
                const std::string k3 = "key:" + std::to_string(i + 2), v3 = "value-" + std::to_string(i + 2);
                two.out.clear();
                three.out.clear();
                two.send(resp({"SET", k2, v2}));
                three.send(resp({"SET", k3, v3}));
                EXPECT_TRUE(ask(one, resp({"SET", k, v}), "+OK\r\n"));
                run_until([&] { return two.out.size() >= 5 && three.out.size() >= 5; });
                EXPECT_EQ(two.out, "+OK\r\n");
                EXPECT_EQ(three.out, "+OK\r\n");
                i += 2;
                continue;
            }
            if (!ask(one, resp({"SET", k, v}), "+OK\r\n")) {
                ADD_FAILURE() << "SET " << k;
                break;
            }
        }
        EXPECT_EQ(server->store().size(), 1000u);
        // xl destroy: everything stops where it is. Let the tasks end (their frames must not
        // leak), but write nothing more.
        Image image = apply(*disk.snapshot, disk.unflushed, 512);
        server->stop();
        one.close();
        two.close();
        three.close();
        EXPECT_TRUE(run_until([&] { return bg_done && one.done && two.done && three.done; }));
        server.reset();
        return image;
    }

    struct SecondLife {
        FakeDisk disk;
        Server server;
        bool bg_done = false;
        SecondLife(const Image& image, const Config& c, Clock clock)
            : disk(image, 512), server(c, std::move(clock)) {}
    };

    std::unique_ptr<SecondLife> boot(const Image& image) {
        auto life = std::make_unique<SecondLife>(image, config(), clock());
        life->disk.completions = GetParam().completions;
        auto rep = run(life->server.open(&life->disk));
        EXPECT_TRUE(rep.ok()) << life->server.failure();
        if (rep.ok()) {
            EXPECT_FALSE(rep.value().formatted);
        }
        EXPECT_EQ(life->server.store().size(), 1000u);
        auto bg = [](SecondLife& l) -> Task<void> {
            co_await l.server.background();
            l.bg_done = true;
        };
        spawn(bg(*life));  // "kvstore: serving"
        return life;
    }

    void shut(SecondLife& life) {
        life.server.stop();
        EXPECT_TRUE(run_until([&] { return life.bg_done; }));
        EXPECT_FALSE(life.server.failed()) << life.server.failure();
    }
};

TEST_P(RestartTest, FirstCommandAfterReplayIsAnswered) {
    const Image image = first_life();
    for (int variant = 0; variant < 5; ++variant) {
        SCOPED_TRACE("variant " + std::to_string(variant));
        auto life = boot(image);
        // The first connection comes at once, or after a sweep or two went by.
        if (variant == 1) run_until([&] { return false; }, 3);
        if (variant == 2) {
            const std::uint64_t t = platform.now + 250'000'000;
            run_until([&] { return platform.now >= t; });
        }
        Conn c;
        spawn(serve(life->server, c));
        switch (variant) {
            case 0:
            case 1:
            case 2:
                EXPECT_TRUE(ask(c, "*1\r\n$6\r\nDBSIZE\r\n", ":1000\r\n"));
                break;
            case 3:
                EXPECT_TRUE(ask(c, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n"));
                EXPECT_TRUE(ask(c, "*1\r\n$6\r\nDBSIZE\r\n", ":1000\r\n"));
                break;
            case 4:
                EXPECT_TRUE(ask(c, resp({"GET", "key:7"}), "$7\r\nvalue-7\r\n"));
                EXPECT_TRUE(ask(c, resp({"SET", "key:7", "seven"}), "+OK\r\n"));
                EXPECT_TRUE(ask(c, resp({"GET", "key:7"}), "$5\r\nseven\r\n"));
                EXPECT_TRUE(ask(c, "*1\r\n$6\r\nDBSIZE\r\n", ":1000\r\n"));
                break;
        }
        // All 1000 values, as the scenario reads them back.
        if (variant == 0) {
            std::string req, want;
            for (int i = 1; i <= 1000; ++i) {
                req += resp({"GET", "key:" + std::to_string(i)});
                const std::string v = "value-" + std::to_string(i);
                want += "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
            }
            EXPECT_TRUE(ask(c, req, want));
        }
        finish(c);
        shut(*life);
    }
}

// Commands arriving while the new server's first writes (SET right after the replay) are in
// flight, from several connections, with the first DBSIZE among them.
TEST_P(RestartTest, ConcurrentFirstCommands) {
    const Image image = first_life();
    auto life = boot(image);
    Conn a, b, d;
    spawn(serve(life->server, a));
    spawn(serve(life->server, b));
    spawn(serve(life->server, d));
    a.send(resp({"SET", "new", "1"}));
    b.send(resp({"DEL", "key:1"}));
    EXPECT_TRUE(ask(d, "*1\r\n$6\r\nDBSIZE\r\n", ":1000\r\n"));  // waits for a's and b's records
    run_until([&] { return a.out.size() >= 5 && b.out.size() >= 4; }, 100000);
    EXPECT_EQ(a.out, "+OK\r\n");
    EXPECT_EQ(b.out, ":1\r\n");
    finish(a);
    finish(b);
    finish(d);
    shut(*life);
}

INSTANTIATE_TEST_SUITE_P(
    Completions, RestartTest,
    ::testing::Values(Pattern{"inline", {}, false}, Pattern{"posted", {0}, false},
                      Pattern{"mixed", {0, 200'000, 7, 0, 3'000'000, 90}, false},
                      Pattern{"reordered_small_log", {5'000'000, 0, 1'000, 20'000'000, 0}, true}),
    [](const ::testing::TestParamInfo<Pattern>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace keel::kv::test
