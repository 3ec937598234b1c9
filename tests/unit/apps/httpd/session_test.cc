// Router and Session: every status a client can cause, HEAD vs GET, keep-alive vs close,
// pipelining, byte-at-a-time input, partial sends, end of input, timeouts, request limits.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "http.h"

namespace keel::http {
namespace {

using namespace std::literals;

constexpr std::string_view index_body = "<!doctype html><h1>keel</h1>\n";
constexpr std::string_view css_body = "h1 { color: teal }\n";
constexpr Page site_pages[] = {
    {"/index.html", "text/html; charset=utf-8", index_body},
    {"/style.css", "text/css", css_body},
    {"/empty", "text/plain", ""},
};

// A parsed response, as a client sees it.
struct Reply {
    unsigned status = 0;
    std::string head;
    std::string body;
    std::optional<std::string> header(std::string_view name) const {
        const std::string key = "\r\n" + std::string(name) + ": ";
        const std::size_t at = head.find(key);
        if (at == std::string::npos) return std::nullopt;
        const std::size_t start = at + key.size();
        return head.substr(start, head.find("\r\n", start) - start);
    }
};

class SessionTest : public ::testing::Test {
protected:
    Session& session(const SessionOptions& options = {}) {
        session_.emplace(router_, storage_.buffers(), options);
        return *session_;
    }

    // Send everything the session has to say, `step` bytes at a time.
    std::string drain(Session& s, std::size_t step = SIZE_MAX) {
        std::string out;
        while (s.state() == SessionState::writing) {
            const auto chunk = s.output();
            const std::size_t n = std::min(step, chunk.size());
            out.append(chunk.data(), n);
            s.sent(n);
        }
        return out;
    }

    // Offer all of `input` as the glue would: feed, send what comes out, feed the rest.
    std::string exchange(Session& s, std::string_view input, std::size_t piece = SIZE_MAX) {
        std::string out;
        while (!input.empty() && s.state() != SessionState::closed) {
            const std::size_t n = s.feed(input.substr(0, std::min(piece, input.size())));
            input.remove_prefix(n);
            out += drain(s);
        }
        return out;
    }

    // Split a byte stream into responses. A HEAD response has a Content-Length but no body;
    // `head_requests` says which responses answer HEAD.
    static std::vector<Reply> split(std::string_view out, std::vector<bool> head_requests = {}) {
        std::vector<Reply> replies;
        while (!out.empty()) {
            Reply r;
            const std::size_t end = out.find("\r\n\r\n");
            if (end == std::string_view::npos) {
                ADD_FAILURE() << "no end of head in: " << out;
                break;
            }
            r.head = std::string(out.substr(0, end + 2));
            out.remove_prefix(end + 4);
            EXPECT_TRUE(r.head.starts_with("HTTP/1.1 ")) << r.head;
            r.status = static_cast<unsigned>(std::stoul(r.head.substr(9, 3)));
            const bool head_only = replies.size() < head_requests.size() && head_requests[replies.size()];
            const auto len = r.header("Content-Length");
            EXPECT_TRUE(len.has_value()) << r.head;
            const std::size_t n = head_only || !len ? 0 : std::stoul(*len);
            EXPECT_LE(n, out.size());
            r.body = std::string(out.substr(0, n));
            out.remove_prefix(std::min(n, out.size()));
            replies.push_back(r);
        }
        return replies;
    }

    Reply one(std::string_view request, const SessionOptions& options = {}) {
        Session& s = session(options);
        const std::vector<Reply> r = split(exchange(s, request), {request.starts_with("HEAD ")});
        EXPECT_EQ(r.size(), 1u) << request;
        return r.empty() ? Reply{} : r[0];
    }

    Router router_{site_pages};
    SessionStorage<> storage_;
    std::optional<Session> session_;
};

TEST_F(SessionTest, ServesPages) {
    Reply r = one("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, index_body);
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("Content-Length"), std::to_string(index_body.size()));
    EXPECT_EQ(r.header("Server"), "keel");
    EXPECT_EQ(r.header("Connection"), std::nullopt);  // 1.1 keep-alive is the default
    EXPECT_EQ(r.header("Date"), std::nullopt);        // no clock, no Date
    EXPECT_EQ(session_->state(), SessionState::idle);
    EXPECT_EQ(session_->requests(), 1u);

    r = one("GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.body, index_body);
    r = one("GET /style.css?v=3 HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.body, css_body);
    EXPECT_EQ(r.header("Content-Type"), "text/css");
    r = one("GET /empty HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Length"), "0");
    r = one("GET http://h/style.css HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.body, css_body);
}

TEST_F(SessionTest, HeadSendsTheGetLengthButNoBody) {
    Session& s = session();
    const std::string out = exchange(s, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(
        out, "HTTP/1.1 200 OK\r\nServer: keel\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: " +
                 std::to_string(index_body.size()) + "\r\n\r\n");
    EXPECT_EQ(s.state(), SessionState::idle);
    // HEAD of a missing page: the 404 head, no body.
    const Reply r = one("HEAD /missing HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.header("Content-Length"), std::to_string(error_body(Status::not_found).size()));
    EXPECT_TRUE(r.body.empty());
    // HEAD answered with a parser error (no Host): no body either, and closed.
    Session& s2 = session();
    const std::string err = exchange(s2, "HEAD / HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(err.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_TRUE(err.ends_with("Connection: close\r\n\r\n")) << err;
    EXPECT_EQ(s2.state(), SessionState::closed);
}

TEST_F(SessionTest, NotFoundAndMethodNotAllowed) {
    Reply r = one("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.body, "404 Not Found\n");
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(session_->state(), SessionState::idle);  // a routed error keeps the connection
    for (std::string_view m : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "get"}) {
        r = one(std::string(m) + " / HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_EQ(r.status, 405u) << m;
        EXPECT_EQ(r.header("Allow"), "GET, HEAD") << m;
        EXPECT_EQ(r.body, "405 Method Not Allowed\n");
    }
    r = one("POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.status, 404u);
    r = one("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(r.status, 404u);
}

TEST_F(SessionTest, ParserErrorsAreAnsweredAndClose) {
    struct Case {
        std::string request;
        unsigned status;
    };
    const Case cases[] = {
        {"GET/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},                                 // malformed request line
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},                            // bad header name
        {"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400},                          // missing Host
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 413},       // body too large
        {"GET /" + std::string(5000, 'u') + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},  // URI too long
        {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(9000, 'x') + "\r\n\r\n", 431},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    };
    for (const Case& c : cases) {
        Session& s = session();
        // The request is followed by a valid one, which must not be answered.
        const std::string out = exchange(s, c.request + "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        const std::vector<Reply> replies = split(out);
        ASSERT_EQ(replies.size(), 1u) << out;
        EXPECT_EQ(replies[0].status, c.status) << c.request.substr(0, 60);
        EXPECT_EQ(replies[0].header("Connection"), "close");
        EXPECT_EQ(replies[0].body, error_body(static_cast<Status>(c.status)));
        EXPECT_EQ(s.state(), SessionState::closed);
        // Once closed, input is dropped.
        EXPECT_EQ(s.feed("GET / HTTP/1.1\r\n"sv), 16u);
        EXPECT_TRUE(s.output().empty());
    }
}

TEST_F(SessionTest, KeepAliveAndClose) {
    Reply r = one("GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_EQ(session_->state(), SessionState::closed);

    r = one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(r.header("Connection"), "keep-alive");
    EXPECT_EQ(session_->state(), SessionState::idle);

    r = one("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_EQ(r.body, index_body);
    EXPECT_EQ(session_->state(), SessionState::closed);
}

// What the glue does after each chunk: hold the head for its body, then send (keep-alive) or
// shut the write side with the last chunk (the connection closes after it).
TEST_F(SessionTest, OutputEndJoinsHeadAndBodyAndClosesWithTheLast) {
    using End = Session::OutputEnd;
    Session& s = session();
    EXPECT_EQ(s.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv), 27u);
    ASSERT_EQ(s.state(), SessionState::writing);
    EXPECT_EQ(s.output_end(), End::more);  // the head; the body follows
    s.sent(s.output().size());
    EXPECT_EQ(s.output_end(), End::flush);  // the body; the connection stays
    s.sent(s.output().size());
    EXPECT_EQ(s.state(), SessionState::idle);

    // HTTP/1.0 closes: the body is the last chunk. A partial send keeps the answer.
    EXPECT_EQ(s.feed("GET / HTTP/1.0\r\n\r\n"sv), 18u);
    EXPECT_EQ(s.output_end(), End::more);
    s.sent(s.output().size());
    s.sent(3);
    EXPECT_EQ(s.output_end(), End::then_close);
    s.sent(s.output().size());
    EXPECT_EQ(s.state(), SessionState::closed);

    // A head without a body (HEAD) is the last chunk itself.
    Session& h = session();
    EXPECT_EQ(h.feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"sv), 28u);
    EXPECT_EQ(h.output_end(), End::flush);
    Session& h0 = session();
    EXPECT_EQ(h0.feed("HEAD / HTTP/1.0\r\n\r\n"sv), 19u);
    EXPECT_EQ(h0.output_end(), End::then_close);

    // The peer's FIN while a keep-alive response is out: the rest is the last chunk.
    Session& f = session();
    EXPECT_EQ(f.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv), 27u);
    f.sent(f.output().size());
    f.end_of_input();
    EXPECT_EQ(f.output_end(), End::then_close);
}

TEST_F(SessionTest, PipelinedRequestsWaitForTheResponse) {
    Session& s = session();
    const std::string first = "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string second = "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string third = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const std::string all = first + second + third;
    EXPECT_EQ(s.feed(std::string_view(all)), first.size());
    EXPECT_EQ(s.state(), SessionState::writing);
    EXPECT_EQ(s.feed(std::string_view(all).substr(first.size())), 0u);  // output pending
    const std::string out1 = drain(s);
    EXPECT_EQ(s.state(), SessionState::idle);
    const std::string out2 = exchange(s, std::string_view(all).substr(first.size()));
    const std::vector<Reply> replies = split(out1 + out2, {false, true, false});
    ASSERT_EQ(replies.size(), 3u);
    EXPECT_EQ(replies[0].body, css_body);
    EXPECT_EQ(replies[1].status, 200u);
    EXPECT_EQ(replies[1].body, "");
    EXPECT_EQ(replies[2].body, index_body);
    EXPECT_EQ(replies[2].header("Connection"), "close");
    EXPECT_EQ(s.state(), SessionState::closed);
    EXPECT_EQ(s.requests(), 3u);
}

TEST_F(SessionTest, ByteAtATimeInAndOut) {
    const std::string input =
        "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\nGET /nope HTTP/1.1\r\nHost: h\r\n\r\n";
    Session& whole = session();
    const std::string expected = exchange(whole, input);
    Session& s = session();
    EXPECT_EQ(s.state(), SessionState::idle);
    std::string out;
    for (std::size_t i = 0; i < input.size(); ++i) {
        for (;;) {
            const std::size_t n = s.feed(std::string_view(input).substr(i, 1));
            if (n == 1) break;
            ASSERT_EQ(s.state(), SessionState::writing);
            out += drain(s, 1);  // the transport takes one byte at a time, too
        }
        if (s.state() != SessionState::writing) {
            EXPECT_EQ(s.state(), SessionState::reading) << i;
        }
    }
    out += drain(s, 1);
    EXPECT_EQ(out, expected);
    EXPECT_EQ(split(out).size(), 2u);
    EXPECT_EQ(s.state(), SessionState::idle);
}

TEST_F(SessionTest, MaxRequestsPerConnection) {
    SessionOptions options;
    options.max_requests = 2;
    Session& s = session(options);
    const std::string req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::vector<Reply> replies = split(exchange(s, req + req + req));
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].header("Connection"), std::nullopt);
    EXPECT_EQ(replies[1].header("Connection"), "close");
    EXPECT_EQ(s.state(), SessionState::closed);
}

TEST_F(SessionTest, EndOfInput) {
    // Idle: close at once.
    Session& a = session();
    a.end_of_input();
    EXPECT_EQ(a.state(), SessionState::closed);
    // Half a request: nothing to answer.
    Session& b = session();
    EXPECT_EQ(b.feed("GET / HT"sv), 8u);
    EXPECT_EQ(b.state(), SessionState::reading);
    b.end_of_input();
    EXPECT_EQ(b.state(), SessionState::closed);
    EXPECT_TRUE(b.output().empty());
    // A response in flight is finished, then closed, even though it said keep-alive.
    Session& c = session();
    EXPECT_EQ(c.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv), 27u);
    c.end_of_input();
    EXPECT_EQ(c.state(), SessionState::writing);
    const std::vector<Reply> r = split(drain(c));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].body, index_body);
    EXPECT_EQ(c.state(), SessionState::closed);
}

TEST_F(SessionTest, Timeouts) {
    Session& a = session();
    a.timed_out();
    EXPECT_EQ(a.state(), SessionState::closed);

    Session& b = session();
    b.feed("GET / HTTP/1.1\r\nHost"sv);
    b.timed_out();  // slowloris: answered 408 and closed
    const std::vector<Reply> r = split(drain(b));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 408u);
    EXPECT_EQ(r[0].header("Connection"), "close");
    EXPECT_EQ(b.state(), SessionState::closed);

    Session& c = session();
    c.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    ASSERT_EQ(c.state(), SessionState::writing);
    c.timed_out();  // the peer stopped reading: give up
    EXPECT_EQ(c.state(), SessionState::closed);
    EXPECT_TRUE(c.output().empty());
}

TEST_F(SessionTest, PartialSendsAndOverlongSentCounts) {
    const std::string whole = [&] {
        Session& t = session();
        t.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
        return drain(t);
    }();
    Session& u = session();
    u.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    std::string out;
    std::size_t step = 1;
    while (u.state() == SessionState::writing) {
        const auto chunk = u.output();
        const std::size_t n = std::min(step, chunk.size());
        out.append(chunk.data(), n);
        u.sent(n);
        step = step * 2 + 1;
    }
    EXPECT_EQ(out, whole);
    // sent() beyond the chunk counts as the chunk.
    Session& v = session();
    v.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    v.sent(1u << 30);  // the head
    EXPECT_EQ(std::string_view(v.output().data(), v.output().size()), index_body);
    v.sent(1u << 30);
    EXPECT_EQ(v.state(), SessionState::idle);
    v.sent(5);  // nothing pending: ignored
    EXPECT_EQ(v.state(), SessionState::idle);
}

TEST_F(SessionTest, BodyPointsIntoTheSiteWithoutCopy) {
    Session& s = session();
    s.feed("GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    s.sent(s.output().size());
    EXPECT_EQ(s.output().data(), css_body.data());
}

std::optional<std::uint64_t> fixed_clock() { return 784111777; }
std::optional<std::uint64_t> no_clock() { return std::nullopt; }

TEST_F(SessionTest, DateFromTheWallClock) {
    SessionOptions options;
    options.wall_clock = fixed_clock;
    Reply r = one("GET / HTTP/1.1\r\nHost: h\r\n\r\n", options);
    EXPECT_EQ(r.header("Date"), "Sun, 06 Nov 1994 08:49:37 GMT");
    r = one("GET / HTTP/1.1\r\n\r\n", options);  // errors carry it too
    EXPECT_EQ(r.header("Date"), "Sun, 06 Nov 1994 08:49:37 GMT");
    options.wall_clock = no_clock;
    r = one("GET / HTTP/1.1\r\nHost: h\r\n\r\n", options);
    EXPECT_EQ(r.header("Date"), std::nullopt);
}

TEST_F(SessionTest, BadContentTypeInTheSiteIs500) {
    static constexpr Page bad[] = {{"/x", "text/html\r\nSet-Cookie: a=b", "x"}};
    Router router(bad);
    Session s(router, storage_.buffers());
    s.feed("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    const std::string out = drain(s);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 500 Internal Server Error\r\n")) << out;
    EXPECT_EQ(out.find("Set-Cookie"), std::string::npos);
    EXPECT_TRUE(out.ends_with("\r\n\r\n500 Internal Server Error\n"));
    EXPECT_EQ(s.state(), SessionState::closed);
}

TEST_F(SessionTest, HeadBufferTooSmallCloses) {
    std::array<char, 8192> req;
    std::array<char, 16> head;
    std::array<char, 16> scratch;
    Session s(router_, SessionBuffers{req, head, scratch});
    EXPECT_EQ(s.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv), 27u);
    EXPECT_EQ(s.state(), SessionState::closed);
    EXPECT_TRUE(s.output().empty());
}

TEST_F(SessionTest, RootPageInTheSiteWinsOverIndex) {
    static constexpr Page pages[] = {{"/index.html", "text/html", "index"}, {"/", "text/plain", "root"}};
    Router router(pages);
    Session s(router, storage_.buffers());
    s.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    EXPECT_TRUE(drain(s).ends_with("\r\n\r\nroot"));
}

TEST_F(SessionTest, NoIndexIs404) {
    Router router(Site{});
    Session s(router, storage_.buffers());
    s.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"sv);
    EXPECT_TRUE(drain(s).starts_with("HTTP/1.1 404 "));
}

}  // namespace
}  // namespace keel::http
