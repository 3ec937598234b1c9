// Engine without a disk: every command against the replies Redis 7 gives (as redis-cli and
// redis-benchmark see them), with a fake clock for expiry.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "kv/engine.h"

namespace keel::kv {
namespace {

using namespace std::literals;

constexpr std::uint64_t t0 = 1'700'000'000'000'000'000ull;  // ns of Unix time
constexpr std::uint64_t sec = 1'000'000'000ull;

class EngineTest : public ::testing::Test {
protected:
    EngineTest() : engine_(store_, nullptr, Clock([this] { return now_; }), config()) {}

    static Config config() {
        Config c;
        c.max_key_bytes = 16;
        c.max_value_bytes = 64;
        return c;
    }

    std::string run(std::initializer_list<std::string_view> args) {
        const std::vector<std::string_view> a(args);
        Bytes out;
        last_ = engine_.execute(Args(a.data(), a.size()), out);
        return std::string(out.data(), out.size());
    }

    std::uint64_t now_ = t0;
    Store store_;
    Engine engine_;
    Engine::Outcome last_ = Engine::Outcome::reply;
};

TEST_F(EngineTest, PingEcho) {
    EXPECT_EQ(run({"PING"}), "+PONG\r\n");
    EXPECT_EQ(run({"ping", "hi"}), "$2\r\nhi\r\n");
    EXPECT_EQ(run({"PING", "a", "b"}), "-ERR wrong number of arguments for 'ping' command\r\n");
    EXPECT_EQ(run({"ECHO", "a\r\nb"}), "$4\r\na\r\nb\r\n");
    EXPECT_EQ(run({"ECHO"}), "-ERR wrong number of arguments for 'echo' command\r\n");
}

TEST_F(EngineTest, UnknownCommand) {
    EXPECT_EQ(run({"FOO"}), "-ERR unknown command 'FOO', with args beginning with: \r\n");
    EXPECT_EQ(run({"hset", "h", "f", "v"}),
              "-ERR unknown command 'hset', with args beginning with: 'h' 'f' 'v' \r\n");
    EXPECT_EQ(run({"x\r\ny"}), "-ERR unknown command 'x  y', with args beginning with: \r\n");
    EXPECT_EQ(engine_.stats().error_replies, 3u);
}

TEST_F(EngineTest, GetSet) {
    EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
    EXPECT_EQ(run({"SET", "k", "v"}), "+OK\r\n");
    EXPECT_EQ(run({"get", "k"}), "$1\r\nv\r\n");
    EXPECT_EQ(run({"set", "k", ""}), "+OK\r\n");
    EXPECT_EQ(run({"GET", "k"}), "$0\r\n\r\n");
    EXPECT_EQ(run({"SET", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
    EXPECT_EQ(run({"GET", "k", "x"}), "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_EQ(engine_.stats().keyspace_hits, 2u);
    EXPECT_EQ(engine_.stats().keyspace_misses, 1u);
}

TEST_F(EngineTest, SetConditionsAndGet) {
    EXPECT_EQ(run({"SET", "k", "1", "XX"}), "$-1\r\n");
    EXPECT_EQ(run({"SET", "k", "1", "NX"}), "+OK\r\n");
    EXPECT_EQ(run({"SET", "k", "2", "NX"}), "$-1\r\n");
    EXPECT_EQ(run({"SET", "k", "3", "xx"}), "+OK\r\n");
    EXPECT_EQ(run({"SET", "k", "4", "GET"}), "$1\r\n3\r\n");
    EXPECT_EQ(run({"SET", "n", "4", "GET"}), "$-1\r\n");
    EXPECT_EQ(run({"SET", "k", "5", "NX", "GET"}), "$1\r\n4\r\n");  // not set; the old value
    EXPECT_EQ(run({"GET", "k"}), "$1\r\n4\r\n");
    EXPECT_EQ(run({"SET", "k", "1", "NX", "XX"}), "-ERR syntax error\r\n");
    EXPECT_EQ(run({"SET", "k", "1", "BOGUS"}), "-ERR syntax error\r\n");
}

TEST_F(EngineTest, SetExpiry) {
    EXPECT_EQ(run({"SET", "k", "v", "EX", "10"}), "+OK\r\n");
    EXPECT_EQ(run({"TTL", "k"}), ":10\r\n");
    EXPECT_EQ(run({"PTTL", "k"}), ":10000\r\n");
    now_ += 9 * sec;
    EXPECT_EQ(run({"GET", "k"}), "$1\r\nv\r\n");
    now_ += sec;
    EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
    EXPECT_EQ(run({"TTL", "k"}), ":-2\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "PX", "1500"}), "+OK\r\n");
    EXPECT_EQ(run({"TTL", "k"}), ":2\r\n");  // rounded, as Redis does
    EXPECT_EQ(run({"SET", "k", "w", "KEEPTTL"}), "+OK\r\n");
    EXPECT_EQ(run({"PTTL", "k"}), ":1500\r\n");
    EXPECT_EQ(run({"SET", "k", "w"}), "+OK\r\n");
    EXPECT_EQ(run({"TTL", "k"}), ":-1\r\n");
    const std::string at = std::to_string(t0 / sec + 100);
    EXPECT_EQ(run({"SET", "a", "v", "EXAT", at}), "+OK\r\n");
    EXPECT_EQ(run({"TTL", "a"}), ":" + std::to_string(100 - 10) + "\r\n");  // now_ is t0 + 10 s
    EXPECT_EQ(run({"SET", "p", "v", "PXAT", "1000"}), "+OK\r\n");           // in the past: gone at once
    EXPECT_EQ(run({"EXISTS", "p"}), ":0\r\n");
}

TEST_F(EngineTest, SetExpiryErrors) {
    EXPECT_EQ(run({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "EX", "-1"}), "-ERR invalid expire time in 'set' command\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "EX", "9223372036854775807"}),
              "-ERR invalid expire time in 'set' command\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "PX", "abc"}), "-ERR value is not an integer or out of range\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "EX"}), "-ERR syntax error\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "EX", "1", "PX", "1"}), "-ERR syntax error\r\n");
    EXPECT_EQ(run({"SET", "k", "v", "EX", "1", "KEEPTTL"}), "-ERR syntax error\r\n");
    EXPECT_EQ(run({"EXISTS", "k"}), ":0\r\n");
}

TEST_F(EngineTest, SizeLimits) {
    EXPECT_EQ(run({"SET", "0123456789abcdefX", "v"}),
              "-ERR key is too large (17 bytes, the limit is 16)\r\n");
    EXPECT_EQ(run({"SET", "k", std::string(65, 'v')}),
              "-ERR value is too large (65 bytes, the limit is 64)\r\n");
    EXPECT_EQ(run({"MSET", "a", "1", "k", std::string(65, 'v')}),
              "-ERR value is too large (65 bytes, the limit is 64)\r\n");
    EXPECT_EQ(run({"EXISTS", "a"}), ":0\r\n");  // MSET checks everything first
}

TEST_F(EngineTest, DelExists) {
    run({"MSET", "a", "1", "b", "2", "c", "3"});
    EXPECT_EQ(run({"EXISTS", "a", "a", "x"}), ":2\r\n");
    EXPECT_EQ(run({"DEL", "a", "x", "a"}), ":1\r\n");
    EXPECT_EQ(run({"DEL", "b", "c"}), ":2\r\n");
    EXPECT_EQ(run({"DBSIZE"}), ":0\r\n");
    EXPECT_EQ(run({"DEL"}), "-ERR wrong number of arguments for 'del' command\r\n");
    run({"SET", "e", "v", "PX", "5"});
    now_ += 5'000'000;
    EXPECT_EQ(run({"DEL", "e"}), ":0\r\n");  // expired keys do not count
}

TEST_F(EngineTest, IncrDecr) {
    EXPECT_EQ(run({"INCR", "n"}), ":1\r\n");
    EXPECT_EQ(run({"INCR", "n"}), ":2\r\n");
    EXPECT_EQ(run({"DECR", "n"}), ":1\r\n");
    EXPECT_EQ(run({"DECR", "m"}), ":-1\r\n");
    EXPECT_EQ(run({"INCRBY", "n", "41"}), ":42\r\n");
    EXPECT_EQ(run({"DECRBY", "n", "-8"}), ":50\r\n");
    EXPECT_EQ(run({"GET", "n"}), "$2\r\n50\r\n");
    EXPECT_EQ(run({"INCRBY", "n", "x"}), "-ERR value is not an integer or out of range\r\n");
    EXPECT_EQ(run({"DECRBY", "n", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
    run({"SET", "s", "abc"});
    EXPECT_EQ(run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
    run({"SET", "s", " 1"});
    EXPECT_EQ(run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
    run({"SET", "big", "9223372036854775807"});
    EXPECT_EQ(run({"INCR", "big"}), "-ERR increment or decrement would overflow\r\n");
    EXPECT_EQ(run({"GET", "big"}), "$19\r\n9223372036854775807\r\n");
    run({"SET", "small", "-9223372036854775808"});
    EXPECT_EQ(run({"DECR", "small"}), "-ERR increment or decrement would overflow\r\n");
    EXPECT_EQ(run({"INCR"}), "-ERR wrong number of arguments for 'incr' command\r\n");
}

TEST_F(EngineTest, IncrKeepsTheTtl) {
    run({"SET", "n", "1", "EX", "100"});
    EXPECT_EQ(run({"INCR", "n"}), ":2\r\n");
    EXPECT_EQ(run({"TTL", "n"}), ":100\r\n");
}

TEST_F(EngineTest, MgetMset) {
    EXPECT_EQ(run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
    EXPECT_EQ(run({"MGET", "a", "x", "b"}), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
    EXPECT_EQ(run({"MSET", "a", "1", "b"}), "-ERR wrong number of arguments for 'mset' command\r\n");
    EXPECT_EQ(run({"MSET", "a"}), "-ERR wrong number of arguments for 'mset' command\r\n");
}

TEST_F(EngineTest, Keys) {
    run({"MSET", "user:1", "a", "user:2", "b", "item:1", "c", "user:10", "d"});
    auto sorted_keys = [&](std::string_view pattern) {
        const std::string r = run({"KEYS", pattern});
        std::vector<std::string> keys;
        std::size_t pos = r.find("\r\n") + 2;
        while (pos < r.size()) {
            const std::size_t eol = r.find("\r\n", pos);
            const std::size_t len = std::stoul(r.substr(pos + 1, eol - pos - 1));
            keys.push_back(r.substr(eol + 2, len));
            pos = eol + 2 + len + 2;
        }
        std::sort(keys.begin(), keys.end());
        return keys;
    };
    EXPECT_EQ(sorted_keys("*"), (std::vector<std::string>{"item:1", "user:1", "user:10", "user:2"}));
    EXPECT_EQ(sorted_keys("user:?"), (std::vector<std::string>{"user:1", "user:2"}));
    EXPECT_EQ(sorted_keys("user:[2-9]*"), (std::vector<std::string>{"user:2"}));
    EXPECT_EQ(sorted_keys("*:1*"), (std::vector<std::string>{"item:1", "user:1", "user:10"}));
    EXPECT_EQ(run({"KEYS", "nothing*"}), "*0\r\n");
    run({"SET", "user:3", "x", "PX", "1"});
    now_ += 1'000'000;
    EXPECT_EQ(sorted_keys("user:3"), std::vector<std::string>{});  // expired: not listed
}

TEST_F(EngineTest, FlushallDbsize) {
    run({"MSET", "a", "1", "b", "2"});
    EXPECT_EQ(run({"DBSIZE"}), ":2\r\n");
    EXPECT_EQ(run({"FLUSHALL", "BOGUS"}), "-ERR syntax error\r\n");
    EXPECT_EQ(run({"FLUSHALL", "ASYNC"}), "+OK\r\n");
    EXPECT_EQ(run({"DBSIZE"}), ":0\r\n");
    EXPECT_EQ(run({"FLUSHALL"}), "+OK\r\n");
}

TEST_F(EngineTest, WhatRedisCliAndBenchmarkAsk) {
    EXPECT_EQ(run({"COMMAND", "DOCS"}), "*0\r\n");
    EXPECT_EQ(run({"COMMAND"}), "*0\r\n");
    EXPECT_EQ(run({"COMMAND", "INFO", "get"}), "*1\r\n*-1\r\n");
    EXPECT_EQ(run({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    EXPECT_EQ(run({"CONFIG", "GET", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    EXPECT_EQ(run({"config", "get", "APPENDFSYNC"}), "*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n");
    EXPECT_EQ(run({"CONFIG", "GET", "nothing"}), "*0\r\n");
    EXPECT_EQ(run({"CONFIG", "GET", "save", "sa*"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    EXPECT_EQ(run({"CONFIG", "GET"}), "-ERR wrong number of arguments for 'config|get' command\r\n");
    EXPECT_EQ(run({"CONFIG", "SET", "save", ""}).substr(0, 22), "-ERR CONFIG SET is not");
    EXPECT_EQ(run({"CONFIG", "REWRITE"}), "-ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.\r\n");
    EXPECT_EQ(run({"SELECT", "0"}), "+OK\r\n");
    EXPECT_EQ(run({"SELECT", "1"}), "-ERR DB index is out of range\r\n");
    EXPECT_EQ(run({"SELECT", "x"}), "-ERR value is not an integer or out of range\r\n");
}

TEST_F(EngineTest, Info) {
    run({"SET", "a", "1"});
    run({"SET", "b", "1", "EX", "100"});
    const std::string all = run({"INFO"});
    ASSERT_EQ(all[0], '$');
    for (std::string_view want :
         {"# Server\r\n"sv, "redis_version:"sv, "# Clients\r\n"sv, "# Memory\r\n"sv, "# Persistence\r\n"sv,
          "aof_enabled:0\r\n"sv, "# Stats\r\n"sv, "total_commands_processed:3\r\n"sv, "# Keyspace\r\n"sv,
          "db0:keys=2,expires=1,avg_ttl=0\r\n"sv}) {
        EXPECT_NE(all.find(want), std::string::npos) << want;
    }
    const std::string ks = run({"INFO", "keyspace"});
    EXPECT_EQ(ks.find("# Server"), std::string::npos);
    EXPECT_NE(ks.find("db0:keys=2"), std::string::npos);
    EXPECT_EQ(run({"INFO", "nosuchsection"}), "$0\r\n\r\n");
}

TEST_F(EngineTest, Quit) {
    EXPECT_EQ(run({"QUIT"}), "+OK\r\n");
    EXPECT_EQ(last_, Engine::Outcome::close);
}

TEST_F(EngineTest, CaseInsensitiveNames) {
    EXPECT_EQ(run({"sEt", "k", "v", "ex", "5"}), "+OK\r\n");
    EXPECT_EQ(run({"GeT", "k"}), "$1\r\nv\r\n");
}

TEST(EngineLimits, ReplyOverTheOutputLimitBecomesAnError) {
    Store store;
    Config cfg;
    Engine engine(store, nullptr, Clock([] { return t0; }), cfg);
    const std::string v(1000, 'x');
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(store.set("k" + std::to_string(i), v, 0).ok());
    Bytes out(4096);  // the session's output limit
    const std::vector<std::string_view> keys = {"KEYS", "*"};
    EXPECT_EQ(engine.execute(Args(keys.data(), keys.size()), out), Engine::Outcome::reply);
    std::vector<std::string_view> mget = {"MGET"};
    std::vector<std::string> names;
    for (int i = 0; i < 20; ++i) names.push_back("k" + std::to_string(i));
    for (const auto& n : names) mget.push_back(n);
    out.clear();
    EXPECT_EQ(engine.execute(Args(mget.data(), mget.size()), out), Engine::Outcome::reply);
    EXPECT_EQ(
        std::string(out.data(), out.size()),
        "-ERR the reply does not fit in the output buffer (out of memory or over the output limit)\r\n");
    Bytes tiny(8);  // not even the error fits: close
    EXPECT_EQ(engine.execute(Args(mget.data(), mget.size()), tiny), Engine::Outcome::close);
    EXPECT_EQ(tiny.size(), 0u);
}

TEST(EngineLimits, MaxMemory) {
    StoreOptions so;
    so.max_memory = 2600;  // one 1500-byte value and the table fit, two do not
    Store store(so);
    Config cfg;
    Engine engine(store, nullptr, Clock([] { return t0; }), cfg);
    auto run = [&](std::vector<std::string_view> a) {
        Bytes out;
        engine.execute(Args(a.data(), a.size()), out);
        return std::string(out.data(), out.size());
    };
    const std::string v(1500, 'x');
    EXPECT_EQ(run({"SET", "a", v}), "+OK\r\n");
    EXPECT_EQ(run({"SET", "b", v}), "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    EXPECT_EQ(run({"CONFIG", "GET", "maxmemory"}), "*2\r\n$9\r\nmaxmemory\r\n$4\r\n2600\r\n");
}

}  // namespace
// Issue 11: maxmemory was 0 (no limit) unless a test set it, so SETs ran the heap dry and the
// next connection's buffer allocation panicked the guest.
TEST(EngineLimits, MaxMemoryDefaultsFromTheDomainsMemoryWithRoomForConnections) {
    const std::uint64_t mib = 1 << 20;
    EXPECT_EQ(default_max_memory(64 * mib, 256), 64 * mib - 16 * mib - 256 * 32 * 1024);
    EXPECT_EQ(default_max_memory(1024 * mib, 256), 1024 * mib - 24 * mib);
    EXPECT_EQ(default_max_memory(8 * mib, 4096), mib) << "never 0 (no limit), never below 1 MiB";
}

TEST(EngineLimits, MaxMemoryOnTheCommandLine) {
    EXPECT_EQ(parse_memory("1000"), 1000u);
    EXPECT_EQ(parse_memory("32m"), 32u << 20);
    EXPECT_EQ(parse_memory("32MB"), 32u << 20);
    EXPECT_EQ(parse_memory("2g"), 2ull << 30);
    EXPECT_EQ(parse_memory("100kb"), 100u << 10);
    for (const char* bad : {"", "0", "m", "12x", "12mbb", "-1", "99999999999999999999", "300000000g"}) {
        EXPECT_EQ(parse_memory(bad), std::nullopt) << bad;
    }
}

}  // namespace keel::kv
