// kvstore's metric families (kv::write_metrics): they follow the commands, the keys, memory
// and the log, as INFO does.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "fakes/prometheus_check.h"
#include "kv/server.h"
#include "rig.h"

namespace keel::kv::test {
namespace {

using namespace std::literals;
using keel::test::check_prometheus;
using keel::test::sample_int;

class KvMetricsTest : public KvTest {
protected:
    Config config() {
        Config c;
        c.log = small_log_options();
        c.store.max_memory = 1 << 20;
        return c;
    }
    Clock clock() {
        return Clock([this] { return now_; });
    }
    std::string metrics(Server& server) {
        MetricsWriter w(buf_);
        write_metrics(w, server);
        EXPECT_TRUE(w.ok());
        const std::string text(w.text());
        EXPECT_EQ(check_prometheus(text), "") << text;
        return text;
    }
    static std::string drain(Session& s) {
        std::string out;
        while (!s.output().empty()) {
            out.append(s.output().data(), s.output().size());
            s.sent(s.output().size());
        }
        return out;
    }

    std::uint64_t now_ = wall_t0;
    std::array<char, 16384> buf_;
};

TEST_F(KvMetricsTest, FollowTheCommandsInMemory) {
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(nullptr)).ok());
    std::string m = metrics(server);
    EXPECT_EQ(sample_int(m, "keel_kvstore_commands_total"), 0);
    EXPECT_EQ(sample_int(m, "keel_kvstore_keys"), 0);
    EXPECT_EQ(sample_int(m, "keel_kvstore_memory_max_bytes"), 1 << 20);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_enabled"), 0);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_commits_total"), -1);  // no log: no log families
    {
        Session s(server);
        s.feed("SET a 1\r\nSET b 22\r\nGET a\r\nGET nope\r\nBOGUS\r\n"sv);
        EXPECT_EQ(drain(s).substr(0, 10), "+OK\r\n+OK\r\n");
        m = metrics(server);
        EXPECT_EQ(sample_int(m, "keel_kvstore_connections"), 1);
    }
    m = metrics(server);
    EXPECT_EQ(sample_int(m, "keel_kvstore_connections"), 0);
    EXPECT_EQ(sample_int(m, "keel_kvstore_commands_total"), 5);
    EXPECT_EQ(sample_int(m, "keel_kvstore_error_replies_total"), 1);
    EXPECT_EQ(sample_int(m, "keel_kvstore_keyspace_hits_total"), 1);
    EXPECT_EQ(sample_int(m, "keel_kvstore_keyspace_misses_total"), 1);
    EXPECT_EQ(sample_int(m, "keel_kvstore_keys"), 2);
    EXPECT_EQ(sample_int(m, "keel_kvstore_memory_used_bytes"),
              static_cast<long long>(server.store().memory()));
    EXPECT_GT(sample_int(m, "keel_kvstore_memory_used_bytes"), 0);
    // The same numbers INFO reports (INFO counts itself, as Redis does).
    Session s(server);
    s.feed("INFO\r\n"sv);
    const std::string info = drain(s);
    EXPECT_NE(info.find("total_commands_processed:6\r\n"), std::string::npos) << info;
    EXPECT_NE(info.find("used_memory:" + std::to_string(server.store().memory()) + "\r\n"),
              std::string::npos);
}

TEST_F(KvMetricsTest, FollowTheLog) {
    FakeDisk disk(512);
    Server server(config(), clock());
    ASSERT_TRUE(run(server.open(&disk)).ok());
    std::string m = metrics(server);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_enabled"), 1);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_failed"), 0);
    const long long commits = sample_int(m, "keel_kvstore_log_commits_total");
    const long long written = sample_int(m, "keel_kvstore_log_written_bytes_total");
    Session s(server);
    s.feed("SET k v\r\nSET k2 v2\r\n"sv);
    ASSERT_TRUE(run(s.commit()).ok());
    EXPECT_EQ(drain(s), "+OK\r\n+OK\r\n");
    m = metrics(server);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_appended_records_total"), 2);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_durable_records_total"), 2);
    EXPECT_GT(sample_int(m, "keel_kvstore_log_commits_total"), commits);
    EXPECT_GT(sample_int(m, "keel_kvstore_log_written_bytes_total"), written);
    EXPECT_GT(sample_int(m, "keel_kvstore_log_bytes"), 0);
    EXPECT_EQ(sample_int(m, "keel_kvstore_log_region_bytes"),
              static_cast<long long>(server.log()->stats().region_bytes));
}

}  // namespace
}  // namespace keel::kv::test
