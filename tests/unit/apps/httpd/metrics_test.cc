// MetricsWriter and the /metrics route, checked against a small Prometheus text-format
// (exposition format 0.0.4) checker written here.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "http.h"

namespace keel::http {
namespace {

bool metric_name_ok(std::string_view s, bool label) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool letter =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

// A number as Prometheus reads it: [+-] digits [. digits] [e [+-] digits], or NaN / +Inf / -Inf.
bool value_ok(std::string_view v) {
    if (v == "NaN" || v == "+Inf" || v == "-Inf") return true;
    std::size_t i = 0;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    const std::size_t digits_start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == digits_start) return false;
    if (i < v.size() && v[i] == '.') {
        ++i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    }
    if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
        ++i;
        if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
        const std::size_t e = i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
        if (i == e) return false;
    }
    return i == v.size();
}

// Returns "" if `text` is valid exposition format, else what is wrong with which line. Checks:
// every line ends in '\n'; HELP/TYPE name a valid metric, TYPE once per name, before its
// samples, with a known type; HELP escapes are \\ or \n; samples are name{label="v",...} value
// with valid names, closed quotes, known escapes, a number, non-negative for counters; and
// every sample belongs to a family declared by TYPE.
std::string check_prometheus(std::string_view text) {
    if (!text.empty() && text.back() != '\n') return "does not end in a newline";
    std::map<std::string, std::string> types;
    std::set<std::string> sampled;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + " '" + std::string(line) + "': ";
        if (line.empty()) continue;
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const bool is_type = line[2] == 'T';
            const std::string_view rest = line.substr(7);
            const std::size_t sp = rest.find(' ');
            if (sp == std::string_view::npos) return where + "no text after the name";
            const std::string name(rest.substr(0, sp));
            const std::string_view arg = rest.substr(sp + 1);
            if (!metric_name_ok(name, false)) return where + "bad metric name";
            if (is_type) {
                if (types.count(name)) return where + "second TYPE";
                if (sampled.count(name)) return where + "TYPE after samples";
                if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" &&
                    arg != "untyped") {
                    return where + "unknown type";
                }
                types[name] = std::string(arg);
            } else {
                for (std::size_t i = 0; i < arg.size(); ++i) {
                    if (arg[i] != '\\') continue;
                    if (i + 1 >= arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n'))
                        return where + "bad escape";
                    ++i;
                }
            }
            continue;
        }
        if (line.front() == '#') continue;  // a comment
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        const std::string name(line.substr(0, i));
        if (!metric_name_ok(name, false)) return where + "bad sample name";
        if (i < line.size() && line[i] == '{') {
            ++i;
            for (;;) {
                if (i < line.size() && line[i] == '}') {
                    ++i;
                    break;
                }
                const std::size_t start = i;
                while (i < line.size() && line[i] != '=') ++i;
                if (!metric_name_ok(line.substr(start, i - start), true)) return where + "bad label name";
                if (i + 1 >= line.size() || line[i + 1] != '"') return where + "label value not quoted";
                i += 2;
                bool closed = false;
                while (i < line.size()) {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size() ||
                            (line[i + 1] != '\\' && line[i + 1] != 'n' && line[i + 1] != '"')) {
                            return where + "bad escape in label value";
                        }
                        i += 2;
                    } else if (line[i] == '"') {
                        ++i;
                        closed = true;
                        break;
                    } else {
                        ++i;
                    }
                }
                if (!closed) return where + "unterminated label value";
                if (i < line.size() && line[i] == ',') ++i;
            }
        }
        if (i >= line.size() || line[i] != ' ') return where + "no value";
        std::string_view rest = line.substr(i + 1);
        const std::size_t sp = rest.find(' ');
        const std::string_view value = rest.substr(0, sp);
        if (!value_ok(value)) return where + "bad value";
        if (sp != std::string_view::npos) {  // a timestamp: an integer
            const std::string_view ts = rest.substr(sp + 1);
            if (ts.empty() || !value_ok(ts) || ts.find_first_of(".eE") != std::string_view::npos) {
                return where + "bad timestamp";
            }
        }
        auto type = types.find(name);
        if (type == types.end()) return where + "sample without a TYPE";
        if (type->second == "counter" && value.front() == '-') return where + "negative counter";
        sampled.insert(name);
    }
    return "";
}

TEST(PrometheusChecker, KnowsGoodFromBad) {
    EXPECT_EQ(check_prometheus(""), "");
    EXPECT_EQ(check_prometheus(
                  "# HELP a_total x\\ny\n# TYPE a_total counter\na_total{k=\"v\\\"\",l=\"\"} 1 1700\n"),
              "");
    EXPECT_EQ(check_prometheus("# TYPE g gauge\ng -1.5e3\ng NaN\n"), "");
    for (const char* bad : {
             "# TYPE g gauge\ng 1",  // no newline
             "g 1\n",                // no TYPE
             "# TYPE 1g gauge\n",    // bad name
             "# TYPE g gauge\n# TYPE g gauge\n",
             "# TYPE g widget\n",
             "# TYPE c counter\nc -1\n",
             "# TYPE g gauge\ng{a=\"x} 1\n",
             "# TYPE g gauge\ng{a=x} 1\n",
             "# TYPE g gauge\ng 1x\n",
             "# HELP g a\\tb\n",
         }) {
        EXPECT_NE(check_prometheus(bad), "") << bad;
    }
}

TEST(MetricsWriter, CountersGaugesLabels) {
    std::array<char, 1024> buf;
    MetricsWriter w(buf);
    w.counter("keel_up_total", "Things.", 42);
    w.gauge("keel_temp", "Degrees; may be below zero.", -7);
    w.family("keel_by_kind_total", "By kind, with a \\ and a\nnewline.", MetricType::counter);
    w.sample("kind", "a", 1u);
    w.sample("kind", "quote\" back\\ nl\n", std::uint64_t{18446744073709551615u});
    w.family("keel_min", "Smallest.", MetricType::gauge);
    w.sample(std::int64_t{INT64_MIN});
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.text(),
              "# HELP keel_up_total Things.\n"
              "# TYPE keel_up_total counter\n"
              "keel_up_total 42\n"
              "# HELP keel_temp Degrees; may be below zero.\n"
              "# TYPE keel_temp gauge\n"
              "keel_temp -7\n"
              "# HELP keel_by_kind_total By kind, with a \\\\ and a\\nnewline.\n"
              "# TYPE keel_by_kind_total counter\n"
              "keel_by_kind_total{kind=\"a\"} 1\n"
              "keel_by_kind_total{kind=\"quote\\\" back\\\\ nl\\n\"} 18446744073709551615\n"
              "# HELP keel_min Smallest.\n"
              "# TYPE keel_min gauge\n"
              "keel_min -9223372036854775808\n");
    EXPECT_EQ(check_prometheus(w.text()), "");
}

TEST(MetricsWriter, Refuses) {
    std::array<char, 256> buf;
    {
        MetricsWriter w(buf);
        w.sample(1);  // no family yet
        EXPECT_FALSE(w.ok());
    }
    for (std::string_view name : {"", "1abc", "a-b", "a b", "a{b}"}) {
        MetricsWriter w(buf);
        w.counter(name, "x", 1);
        EXPECT_FALSE(w.ok()) << name;
    }
    {
        MetricsWriter w(buf);
        w.family("ok:name_1", "x", MetricType::gauge);
        EXPECT_TRUE(w.ok());
        w.sample("a:b", "v", 1);  // ':' is not allowed in label names
        EXPECT_FALSE(w.ok());
    }
    {
        MetricsWriter w(std::span<char>(buf.data(), 40));
        w.counter("keel_requests_total", "Requests.", 1);
        EXPECT_FALSE(w.ok());
        EXPECT_LE(w.text().size(), 40u);
    }
}

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

}  // namespace
}  // namespace keel::http
