// Server and Session as the network glue drives them: pipelining, byte-at-a-time input,
// protocol errors and QUIT closing the connection, the output high-water mark, replies held
// back until the log made them durable (also replies to reads), background expiry and
// compaction.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "kv/server.h"
#include "rig.h"

namespace keel::kv::test {
namespace {

using namespace std::literals;

class SessionTest : public KvTest {
protected:
    Config config() {
        Config c;
        c.log = small_log_options();
        return c;
    }
    Clock clock() {
        return Clock([this] { return now_; });
    }

    // Everything the session has to say (no log: nothing to wait for).
    static std::string drain(Session& s) {
        std::string out;
        while (!s.output().empty()) {
            out.append(s.output().data(), s.output().size());
            s.sent(s.output().size());
        }
        return out;
    }

    std::uint64_t now_ = wall_t0;
};

TEST_F(SessionTest, AnswersInOrder) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    Session s(server);
    const std::string_view in =
        "PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nget k\r\n*1\r\n$6\r\nDBSIZE\r\n";
    EXPECT_EQ(s.feed(in), in.size());
    EXPECT_FALSE(s.needs_commit());
    EXPECT_EQ(drain(s), "+PONG\r\n+OK\r\n$1\r\nv\r\n:1\r\n");
    EXPECT_EQ(s.state(), SessionState::reading);
    EXPECT_EQ(server.stats().commands, 4u);
}

TEST_F(SessionTest, ByteAtATimeGivesTheSameOutput) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    const std::string_view in =
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\nINCR n\r\n\r\nMGET key n "
        "x\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
    Session a(server);
    a.feed(in);
    const std::string whole = drain(a);
    server.store().clear();
    Session b(server);
    std::string pieces;
    for (char c : in) {
        EXPECT_EQ(b.feed(std::string_view(&c, 1)), 1u);
        pieces += drain(b);
    }
    EXPECT_EQ(pieces, whole);
    EXPECT_EQ(whole, "+OK\r\n:1\r\n*3\r\n$5\r\nva\r\nl\r\n$1\r\n1\r\n$-1\r\n$0\r\n\r\n");
}

TEST_F(SessionTest, ProtocolErrorAnswersThenCloses) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    Session s(server);
    const std::string_view in = "PING\r\n*1\r\n$x\r\nPING\r\n";
    EXPECT_EQ(s.feed(in), in.size());
    EXPECT_EQ(s.state(), SessionState::writing);
    EXPECT_EQ(drain(s), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    EXPECT_EQ(s.state(), SessionState::closed);
    EXPECT_EQ(s.feed("PING\r\n"sv), 6u);  // taken and ignored
    EXPECT_TRUE(s.output().empty());
    EXPECT_EQ(server.stats().protocol_errors, 1u);
}

TEST_F(SessionTest, QuitCloses) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    Session s(server);
    s.feed("QUIT\r\nPING\r\n"sv);
    EXPECT_EQ(drain(s), "+OK\r\n");
    EXPECT_EQ(s.state(), SessionState::closed);
}

TEST_F(SessionTest, EndOfInputClosesAfterTheOutput) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    Session s(server);
    s.feed("PING\r\n*2\r\n$3\r\nGET"sv);  // the second command never completes
    s.end_of_input();
    EXPECT_EQ(s.state(), SessionState::writing);
    EXPECT_EQ(drain(s), "+PONG\r\n");
    EXPECT_EQ(s.state(), SessionState::closed);
}

TEST_F(SessionTest, HighWaterMarkStopsTakingInput) {
    Config c = config();
    c.output_high_water = 100;
    Server server(c, clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    ASSERT_TRUE(server.store().set("k", std::string(40, 'v'), 0).ok());
    Session s(server);
    std::string in;
    for (int i = 0; i < 10; ++i) in += "GET k\r\n";
    std::size_t off = 0;
    std::string out;
    int rounds = 0;
    while (off < in.size()) {
        off += s.feed(std::string_view(in).substr(off));
        if (off < in.size()) {
            EXPECT_EQ(s.state(), SessionState::writing);
        }
        out += drain(s);
        EXPECT_EQ(s.state(), SessionState::reading);
        ++rounds;
    }
    EXPECT_GT(rounds, 1);
    std::string want;
    for (int i = 0; i < 10; ++i) want += "$40\r\n" + std::string(40, 'v') + "\r\n";
    EXPECT_EQ(out, want);
}

TEST_F(SessionTest, CountsConnections) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    {
        Session a(server), b(server);
        EXPECT_EQ(server.stats().connected, 2u);
    }
    EXPECT_EQ(server.stats().connected, 0u);
    EXPECT_EQ(server.stats().connections_received, 2u);
}

TEST_F(SessionTest, RepliesWaitForTheLog) {
    FakeDisk disk(512);
    disk.latency_ns = 10'000;
    Server server(config(), clock());
    auto rep = run(server.open(&disk));
    ASSERT_TRUE(rep.ok()) << server.failure();
    EXPECT_TRUE(rep.value().formatted);
    Session w(server), r(server);
    w.feed("SET k v\r\n"sv);
    EXPECT_TRUE(w.needs_commit());
    // Another connection reads the value: its reply waits for the same commit, so nobody
    // ever sees what a crash could take back.
    r.feed("GET k\r\n"sv);
    EXPECT_TRUE(r.needs_commit());
    EXPECT_EQ(disk.flushes, 3u);  // format (2) + epoch bump: nothing of SET yet
    ASSERT_TRUE(run(w.commit()).ok());
    EXPECT_FALSE(w.needs_commit());
    EXPECT_FALSE(r.needs_commit());
    EXPECT_EQ(drain(w), "+OK\r\n");
    EXPECT_EQ(drain(r), "$1\r\nv\r\n");
    // A read with nothing pending does not wait.
    r.feed("GET k\r\n"sv);
    EXPECT_FALSE(r.needs_commit());
    Expect e;
    e.issue("k", "v");
    e.ack("k");
    reopen_and_check(disk.durable, e, "after the session");
}

TEST_F(SessionTest, FailedLogFailsTheCommit) {
    FakeDisk disk(512);
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(&disk)).ok());
    Session s(server);
    disk.fail_op = disk.ops;
    s.feed("SET k v\r\n"sv);
    EXPECT_EQ(run(s.commit()).error(), Error::io);
    EXPECT_TRUE(server.failed());
    EXPECT_NE(std::string(server.failure()).find("I/O error"), std::string::npos);
}

// Issue 11: once the disk has failed (an I/O error, or blkfront failing a disk that changed
// across a reconnect), writes are refused with a clear error and reads are still answered;
// before, every later reply waited for a commit that could only fail, so the connection was cut.
TEST_F(SessionTest, AFailedDiskRefusesWritesAndStillAnswersReads) {
    FakeDisk disk(512);
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(&disk)).ok());
    Session s(server);
    s.feed("SET a 1\r\n"sv);
    ASSERT_TRUE(run(s.commit()).ok());
    EXPECT_EQ(drain(s), "+OK\r\n");
    disk.fail_op = disk.ops;
    s.feed("SET b 2\r\n"sv);
    EXPECT_EQ(run(s.commit()).error(), Error::io);  // that reply is never sent
    ASSERT_TRUE(server.failed());
    Session t(server);
    t.feed("GET a\r\nSET c 3\r\n"sv);
    EXPECT_FALSE(t.needs_commit());
    EXPECT_EQ(drain(t),
              "$1\r\n1\r\n-ERR disk failed: the append-only log cannot be written (I/O error); writes are "
              "refused, reads are served from memory\r\n");
}

TEST_F(SessionTest, ASessionWithoutMemoryForItsBufferIsRefusedAndCounted) {
    Config c = config();
    c.input_bytes = static_cast<std::size_t>(-1) / 2 + 1;  // no heap can give that
    Server server(c, clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    Session s(server);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(server.stats().rejected_connections, 1u);
}

TEST_F(SessionTest, BlankReadOnlyDiskDoesNotOpen) {
    FakeDisk disk(512);
    disk.geo.read_only = true;
    Server server(config(), clock());
    EXPECT_EQ(run(server.open(&disk)).error(), Error::permission);
    EXPECT_NE(std::string(server.failure()).find("read-only"), std::string::npos);
}

TEST_F(SessionTest, InfoReportsTheLog) {
    FakeDisk disk(512);
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(&disk)).ok());
    Session s(server);
    s.feed("SET a 1\r\n"sv);
    ASSERT_TRUE(run(s.commit()).ok());
    drain(s);
    s.feed("INFO persistence\r\nCONFIG GET appendonly\r\n"sv);
    const std::string out = drain(s);
    for (std::string_view want :
         {"aof_enabled:1\r\n"sv, "aof_last_write_status:ok\r\n"sv, "keel_log_device:fake0\r\n"sv,
          "keel_log_epoch:2\r\n"sv, "keel_log_durable_records:1\r\n"sv, "keel_log_replay_end:clean end\r\n"sv,
          "$10\r\nappendonly\r\n$3\r\nyes\r\n"sv}) {
        EXPECT_NE(out.find(want), std::string::npos) << want << " in " << out;
    }
}

TEST_F(SessionTest, BackgroundExpiresAndCompacts) {
    FakeDisk disk(512);
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(&disk)).ok());
    Session s(server);
    std::string in;
    for (int i = 0; i < 200; ++i)
        in += "SET k" + std::to_string(i % 10) + " " + std::string(50, 'x') + "\r\n";
    in += "SET short-lived v PX 50\r\n";
    s.feed(std::string_view(in));
    ASSERT_TRUE(run(s.commit()).ok());
    drain(s);
    EXPECT_TRUE(server.log()->wants_compaction());
    EXPECT_EQ(server.store().size(), 11u);
    bool finished = false;
    auto bg = [&]() -> Task<void> {
        co_await server.background();
        finished = true;
    };
    spawn(bg());
    now_ += 60'000'000;  // the wall clock moves on: the short-lived key is due
    ASSERT_TRUE(
        run_until([&] { return server.log()->stats().compactions == 1 && server.store().size() == 10; }));
    server.stop();
    ASSERT_TRUE(run_until([&] { return finished; }));
    EXPECT_FALSE(server.failed());
    EXPECT_EQ(server.log()->stats().region, 1u);
}

}  // namespace
}  // namespace keel::kv::test
