// 10k random mutations of valid requests through the parser (and the session), under ASan and
// UBSan: no crash, every view inside the buffer, the same outcome whether the bytes come at
// once or in random pieces, and with a line terminator appended the parser always ends in
// complete or error (or, for input of only empty lines, still waits for a request).
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"

namespace keel::http {
namespace {

const char* const seeds[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    "GET http://h:80/a/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.1\nHost: h\n\n",
    "\r\nGET /x HTTP/1.0\r\nX:  y \r\n\r\n",
};

const char interesting[] = {' ', ':', '\r',   '\n',   '\t',   '\0', '/', '?', '#', 'H', '1',
                            '0', '9', '\x7f', '\x80', '\xff', ',',  '"', '*', '.', 'a', 'Z'};

const char* const lines[] = {
    "Content-Length: 5\r\n",
    "Content-Length: 0\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Host: x\r\n",
    "Connection: close\r\n",
    "Content-Length: 99999999999999999999\r\n",
    " folded\r\n",
    "\r\n",
    "GET / HTTP/1.1\r\n",
    "Host: [::1]:8080\r\n",
    "X: \xc3\xa9\r\n",
};

std::string mutate(std::string s, std::mt19937& rng) {
    auto pick = [&rng](std::size_t n) {
        return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    const std::size_t count = pick(2) ? 1 : 1 + pick(6);  // half of them: a single change
    for (std::size_t k = 0; k < count; ++k) {
        const std::size_t at = pick(s.size() + 1);
        switch (pick(9)) {
            case 0:
                if (at < s.size()) s[at] = interesting[pick(sizeof interesting)];
                break;
            case 1:
                s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), interesting[pick(sizeof interesting)]);
                break;
            case 2:
                if (at < s.size()) s.erase(at, 1);
                break;
            case 3: {  // duplicate a slice
                const std::size_t len = pick(s.size() - at + 1);
                s.insert(at, s.substr(at, len));
                break;
            }
            case 4:
                s.erase(at, pick(s.size() - at + 1));
                break;
            case 5:
                s.resize(at);
                break;
            case 6:
                s.insert(at, std::string(pick(2) ? 1 + pick(300) : 1 + pick(10000),
                                         interesting[pick(sizeof interesting)]));
                break;
            case 7:
                s.insert(at, lines[pick(std::size(lines))]);
                break;
            case 8:
                if (at < s.size()) s[at] = static_cast<char>(pick(256));
                break;
        }
    }
    return s;
}

struct Event {
    ParseState state;
    unsigned status;
    std::size_t end;  // position in the stream where the request ended (0 for an error)
    std::string summary;
    bool operator==(const Event&) const = default;
};

class Stream {
public:
    explicit Stream(const Limits& limits) : parser_(buf_, limits) {}

    // Feed `piece`, taking every request it completes (pipelining); stops at an error.
    void feed(std::string_view piece) {
        while (!failed_) {
            const ParseResult r = parser_.feed(piece);
            EXPECT_LE(r.consumed, piece.size());
            pos_ += r.consumed;
            piece.remove_prefix(r.consumed);
            if (r.state == ParseState::incomplete) {
                EXPECT_TRUE(piece.empty());
                return;
            }
            if (r.state == ParseState::error) {
                events_.push_back({r.state, code(parser_.error()), 0, ""});  // where: depends on the pieces
                failed_ = true;
                return;
            }
            record(parser_.request());
            parser_.reset();
            if (piece.empty()) return;
        }
    }

    const std::vector<Event>& events() const { return events_; }
    ParseState state() const { return parser_.state(); }
    bool idle() const { return parser_.idle(); }

private:
    bool inside(std::string_view v) const {
        return v.empty() || (v.data() >= buf_.data() && v.data() + v.size() <= buf_.data() + buf_.size());
    }

    void record(const Request& req) {
        EXPECT_TRUE(inside(req.method_name) && inside(req.target) && inside(req.query) && inside(req.body));
        EXPECT_TRUE(inside(req.path) || req.path == "/");
        EXPECT_TRUE(inside(req.host));
        EXPECT_FALSE(req.method_name.empty());
        EXPECT_FALSE(req.path.empty());
        EXPECT_EQ(req.body.size(), req.content_length);
        std::string s = std::string(req.method_name) + " " + std::string(req.path) + "?" +
                        std::string(req.query) + " host=" + std::string(req.host) +
                        " ka=" + std::to_string(req.keep_alive) + " body=" + std::string(req.body);
        for (const Header& h : req.headers) {
            EXPECT_TRUE(inside(h.name) && inside(h.value));
            EXPECT_FALSE(h.name.empty());
            s += "|" + std::string(h.name) + "=" + std::string(h.value);
        }
        events_.push_back({ParseState::complete, 0, pos_, s});
    }

    std::array<char, 12288> buf_;
    RequestParser parser_;
    std::vector<Event> events_;
    std::size_t pos_ = 0;
    bool failed_ = false;
};

Limits config(int which) {
    Limits l;
    if (which == 1) {
        l.max_header_bytes = 200;
        l.max_target_bytes = 40;
        l.max_header_count = 3;
    } else if (which == 2) {
        l.max_body_bytes = 16;
    }
    return l;
}

TEST(HttpMutation, TenThousandMutatedRequests) {
    std::mt19937 rng(20240917);
    std::size_t complete = 0, errors = 0, waiting = 0;
    for (int iter = 0; iter < 10000; ++iter) {
        const std::string input = mutate(seeds[iter % std::size(seeds)], rng);
        const int which = iter % 3;
        const Limits limits = config(which);

        Stream whole(limits);
        whole.feed(input);

        Stream pieces(limits);
        for (std::size_t pos = 0; pos < input.size();) {
            std::size_t n = 1 + std::uniform_int_distribution<std::size_t>(0, rng() % 4 == 0 ? 600 : 8)(rng);
            n = std::min(n, input.size() - pos);
            pieces.feed(std::string_view(input).substr(pos, n));
            pos += n;
        }
        ASSERT_EQ(whole.events(), pieces.events()) << "iteration " << iter;

        if (which == 2) continue;  // a body limit may leave the parser waiting for body bytes
        whole.feed("\r\n\r\n");
        const ParseState end = whole.state();
        if (end == ParseState::incomplete) {
            // Every request so far was complete and only empty lines followed.
            ASSERT_TRUE(whole.idle()) << "iteration " << iter;
        }
        if (end == ParseState::error) {
            ++errors;
        } else if (end == ParseState::complete || !whole.events().empty()) {
            ++complete;
        } else {
            ++waiting;
        }
    }
    // The mutations are varied enough to reach both ends.
    EXPECT_GT(complete, 500u);
    EXPECT_GT(errors, 500u);
    RecordProperty("complete", static_cast<int>(complete));
    RecordProperty("errors", static_cast<int>(errors));
    RecordProperty("waiting", static_cast<int>(waiting));
}

TEST(HttpMutation, SessionSurvivesMutatedStreams) {
    static constexpr Page pages[] = {{"/index.html", "text/html", "<p>x</p>"}};
    Router router(pages);
    Stats stats;
    router.set_metrics("/metrics", [&stats](MetricsWriter& w) { write_metrics(w, stats); });
    SessionStorage<> storage;
    std::mt19937 rng(7);
    for (int iter = 0; iter < 3000; ++iter) {
        std::string input = mutate(seeds[iter % std::size(seeds)], rng);
        if (iter % 5 == 0) input += "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
        SessionOptions options;
        options.stats = &stats;
        options.max_requests = iter % 4;
        Session s(router, storage.buffers(), options);
        std::string_view rest = input;
        std::size_t rounds = 0;
        while (!rest.empty() && s.state() != SessionState::closed) {
            ASSERT_LT(++rounds, 100000u);
            const std::size_t n = s.feed(rest.substr(0, 1 + rng() % 64));
            ASSERT_LE(n, rest.size());
            rest.remove_prefix(n);
            while (s.state() == SessionState::writing) {
                const auto out = s.output();
                ASSERT_FALSE(out.empty());
                s.sent(1 + rng() % 100);
            }
        }
        if (iter % 2) {
            s.timed_out();
        } else {
            s.end_of_input();
        }
        while (s.state() == SessionState::writing) s.sent(s.output().size());
        EXPECT_EQ(s.state(), SessionState::closed);
    }
    EXPECT_GT(stats.requests, 0u);
    EXPECT_GT(stats.parse_errors, 0u);
}

}  // namespace
}  // namespace keel::http
