// httpd's metrics: the server's own families and the /metrics route, checked with the
// Prometheus text-format checker of tests/fakes/prometheus_check.h. (MetricsWriter itself is
// keel's: tests/unit/base/prometheus_test.cc.)
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "fakes/prometheus_check.h"
#include "http.h"

namespace keel::http {
namespace {

using test::check_prometheus;

TEST(MetricsWriter, ServerStats) {
    const Stats stats{
        .requests = 10, .parse_errors = 2, .responses_2xx = 7, .responses_4xx = 4, .responses_5xx = 1,
        .request_timeouts = 3, .idle_timeouts = 5, .write_timeouts = 6};
    std::array<char, 2048> buf;
    MetricsWriter w(buf);
    write_metrics(w, stats);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(check_prometheus(w.text()), "");
    EXPECT_NE(w.text().find("keel_http_requests_total 10\n"), std::string_view::npos);
    EXPECT_NE(w.text().find("keel_http_responses_total{class=\"4xx\"} 4\n"), std::string_view::npos);
    EXPECT_NE(w.text().find("keel_http_request_timeouts_total 3\n"), std::string_view::npos);
    EXPECT_NE(w.text().find("keel_http_idle_timeouts_total 5\n"), std::string_view::npos);
    EXPECT_NE(w.text().find("keel_http_write_timeouts_total 6\n"), std::string_view::npos);
}

// The whole path: GET /metrics through a Session, the body parses, the counters move.
TEST(MetricsRoute, ThroughASession) {
    static constexpr Page pages[] = {{"/index.html", "text/html", "<p>hi</p>\n"}};
    Router router(pages);
    Stats stats;
    std::uint64_t hook_calls = 0;
    router.set_metrics("/metrics", [&stats, &hook_calls](MetricsWriter& w) {
        ++hook_calls;
        write_metrics(w, stats);
        w.gauge("keel_http_hook_calls", "Times the hook ran.", static_cast<std::int64_t>(hook_calls));
    });
    SessionStorage<> storage;
    SessionOptions options;
    options.stats = &stats;
    Session s(router, storage.buffers(), options);

    auto get = [&s](std::string_view req) {
        EXPECT_EQ(s.feed(req), req.size());
        std::string out;
        while (s.state() == SessionState::writing) {
            const auto chunk = s.output();
            out.append(chunk.data(), chunk.size());
            s.sent(chunk.size());
        }
        return out;
    };
    get("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    get("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    const std::string out = get("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
    EXPECT_NE(out.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
    const std::string body = out.substr(out.find("\r\n\r\n") + 4);
    EXPECT_EQ(check_prometheus(body), "") << body;
    EXPECT_NE(body.find("keel_http_requests_total 3\n"), std::string::npos)
        << body;  // counted before routing
    EXPECT_NE(body.find("keel_http_responses_total{class=\"2xx\"} 1\n"), std::string::npos) << body;
    EXPECT_NE(body.find("keel_http_responses_total{class=\"4xx\"} 1\n"), std::string::npos) << body;
    EXPECT_NE(body.find("keel_http_hook_calls 1\n"), std::string::npos) << body;
    EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);

    // HEAD runs the hook for the length but sends no body.
    const std::string head = get("HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_TRUE(head.ends_with("\r\n\r\n"));
    EXPECT_EQ(hook_calls, 2u);
    // Other methods: 405.
    EXPECT_TRUE(get("DELETE /metrics HTTP/1.1\r\nHost: h\r\n\r\n").starts_with("HTTP/1.1 405 "));
    EXPECT_EQ(stats.requests, 5u);
    EXPECT_EQ(stats.responses_2xx, 3u);
    EXPECT_EQ(stats.responses_4xx, 2u);
}

TEST(MetricsRoute, TooLargeForScratchIs500) {
    Router router(Site{});
    router.set_metrics("/metrics", [](MetricsWriter& w) {
        for (int i = 0; i < 100; ++i) w.counter("keel_many_total", "Many.", 1);
    });
    std::array<char, 8192> req_buf;
    std::array<char, 512> head_buf;
    std::array<char, 64> scratch;
    Stats stats;
    SessionOptions options;
    options.stats = &stats;
    Session s(router, SessionBuffers{req_buf, head_buf, scratch}, options);
    s.feed(std::string_view("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(s.state(), SessionState::writing);
    const auto chunk = s.output();
    EXPECT_TRUE(
        std::string_view(chunk.data(), chunk.size()).starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    EXPECT_EQ(stats.responses_5xx, 1u);
}

// A page larger than the scratch is written again into the buffer SessionBuffers::more_scratch
// finds (conn.cc allocates it on first use); without one, or when that is too small, it is 500.
TEST(MetricsRoute, ALargePageGoesToTheLargerScratch) {
    Router router(Site{});
    std::uint64_t hook_calls = 0;
    router.set_metrics("/metrics", [&hook_calls](MetricsWriter& w) {
        ++hook_calls;
        w.family("keel_many_total", "Many.", MetricType::counter);
        for (int i = 0; i < 300; ++i) w.sample("i", std::to_string(i), i);
    });
    struct Larger {
        std::array<char, 16384> buf;
        unsigned asked = 0;
        std::size_t size = 16384;
        static std::span<char> get(void* ctx) {
            auto* self = static_cast<Larger*>(ctx);
            ++self->asked;
            return std::span<char>(self->buf.data(), self->size);
        }
    } larger;
    std::array<char, 8192> req_buf;
    std::array<char, 512> head_buf;
    std::array<char, 64> scratch;
    auto get_metrics = [&](MoreScratch more) {
        Session s(router, SessionBuffers{req_buf, head_buf, scratch, more});
        s.feed(std::string_view("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"));
        std::string out;
        while (s.state() == SessionState::writing) {
            const auto chunk = s.output();
            out.append(chunk.data(), chunk.size());
            s.sent(chunk.size());
        }
        return out;
    };
    const std::string out = get_metrics({&Larger::get, &larger});
    ASSERT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out.substr(0, 200);
    const std::string body = out.substr(out.find("\r\n\r\n") + 4);
    EXPECT_EQ(check_prometheus(body), "");
    EXPECT_EQ(test::sample_int(body, "keel_many_total{i=\"299\"}"), 299);
    EXPECT_EQ(larger.asked, 1u);
    EXPECT_EQ(hook_calls, 2u);  // once into the scratch, once into the larger buffer

    larger.size = 128;  // still too small: 500
    EXPECT_TRUE(get_metrics({&Larger::get, &larger}).starts_with("HTTP/1.1 500 "));
    larger.size = 0;  // none to be had (the allocation failed): 500
    EXPECT_TRUE(get_metrics({&Larger::get, &larger}).starts_with("HTTP/1.1 500 "));
}

}  // namespace
}  // namespace keel::http
