// RequestParser: the grammar, every error status, limits, pipelining, and that the outcome is
// the same however the bytes are split (all at once, byte by byte, every two-piece split).
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"

namespace keel::http {
namespace {

using namespace std::literals;

struct Outcome {
    ParseState state;
    Status error;          // meaningful for ParseState::error
    std::size_t consumed;  // total over all feeds (0 for errors)
    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    return os << "{state " << static_cast<int>(o.state) << ", status " << code(o.error) << ", consumed "
              << o.consumed << "}";
}

// Feed `text` in pieces of the given sizes (the last size repeats), stopping at the end of the
// first request or error.
Outcome run(RequestParser& p, std::string_view text, std::vector<std::size_t> pieces) {
    std::size_t pos = 0, i = 0, consumed = 0;
    ParseState st = ParseState::incomplete;
    while (pos < text.size() && st == ParseState::incomplete) {
        const std::size_t n = std::min(pieces[std::min(i, pieces.size() - 1)], text.size() - pos);
        ++i;
        const ParseResult r = p.feed(text.substr(pos, n));
        EXPECT_LE(r.consumed, n);
        if (r.state == ParseState::incomplete) {
            EXPECT_EQ(r.consumed, n);
        }
        consumed += r.consumed;
        pos += n;
        st = r.state;
    }
    // Where an error is noticed depends on the pieces (a partial line can already break a
    // limit); only the status is part of the contract, the connection closes anyway.
    if (st == ParseState::error) return {st, p.error(), 0};
    return {st, Status::ok, consumed};
}

class ParserTest : public ::testing::Test {
protected:
    RequestParser& parser(const Limits& limits = {}) {
        parser_.emplace(std::span<char>(buf_), limits);
        return *parser_;
    }

    // Parse all at once; also check that byte-at-a-time and every two-piece split (for short
    // inputs; a few piece sizes for long ones) give the same outcome. Leaves the parser in
    // the all-at-once state for inspection.
    Outcome parse(std::string_view text, const Limits& limits = {}) {
        const Outcome ref = run(parser(limits), text, {text.size() ? text.size() : 1});
        EXPECT_EQ(run(parser(limits), text, {1}), ref) << "byte at a time";
        if (text.size() <= 400) {
            for (std::size_t cut = 1; cut < text.size(); ++cut) {
                EXPECT_EQ(run(parser(limits), text, {cut, text.size()}), ref) << "split at " << cut;
            }
        } else {
            for (std::size_t piece : {2u, 3u, 7u, 100u, 1000u, 4095u}) {
                EXPECT_EQ(run(parser(limits), text, {piece}), ref) << "pieces of " << piece;
            }
        }
        return run(parser(limits), text, {text.size() ? text.size() : 1});
    }

    Status error_of(std::string_view text, const Limits& limits = {}) {
        const Outcome o = parse(text, limits);
        EXPECT_EQ(o.state, ParseState::error) << text;
        return o.error;
    }

    const Request& req() { return parser_->request(); }

    std::array<char, 16384> buf_;
    std::optional<RequestParser> parser_;
};

TEST_F(ParserTest, SimpleGet) {
    const std::string_view text =
        "GET /index.html?a=1&b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    const Outcome o = parse(text);
    ASSERT_EQ(o.state, ParseState::complete);
    EXPECT_EQ(o.consumed, text.size());
    EXPECT_EQ(req().method, Method::get);
    EXPECT_EQ(req().method_name, "GET");
    EXPECT_EQ(req().target, "/index.html?a=1&b");
    EXPECT_EQ(req().path, "/index.html");
    EXPECT_EQ(req().query, "a=1&b");
    EXPECT_EQ(req().host, "example.com");
    EXPECT_EQ(req().version, Version::http_1_1);
    EXPECT_TRUE(req().keep_alive);
    EXPECT_EQ(req().content_length, 0u);
    EXPECT_EQ(req().body, "");
    ASSERT_EQ(req().headers.size(), 2u);
    EXPECT_EQ(req().headers[1].name, "User-Agent");
    EXPECT_EQ(req().header("user-agent"), std::optional<std::string_view>("t"));
    EXPECT_EQ(req().header("HOST"), std::optional<std::string_view>("example.com"));
    EXPECT_EQ(req().header("missing"), std::nullopt);
}

TEST_F(ParserTest, Methods) {
    struct Case {
        std::string_view name;
        Method method;
    };
    for (const Case& c :
         {Case{"GET", Method::get}, Case{"HEAD", Method::head}, Case{"POST", Method::post},
          Case{"PUT", Method::put}, Case{"DELETE", Method::delete_}, Case{"PATCH", Method::patch},
          Case{"OPTIONS", Method::options}, Case{"TRACE", Method::trace}, Case{"BREW", Method::other},
          Case{"get", Method::other}}) {
        const std::string text = std::string(c.name) + " / HTTP/1.1\r\nHost: h\r\n\r\n";
        ASSERT_EQ(parse(text).state, ParseState::complete) << text;
        EXPECT_EQ(req().method, c.method) << text;
        EXPECT_EQ(req().method_name, c.name);
    }
}

TEST_F(ParserTest, KeepAliveRules) {
    struct Case {
        std::string_view text;
        bool keep_alive;
    };
    for (const Case& c : {
             Case{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
             Case{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
             Case{"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false},
             Case{"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", false},
             Case{"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nConnection: ,close ,\r\n\r\n", false},
             Case{"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
             Case{"GET / HTTP/1.0\r\n\r\n", false},
             Case{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
             Case{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
         }) {
        ASSERT_EQ(parse(c.text).state, ParseState::complete) << c.text;
        EXPECT_EQ(req().keep_alive, c.keep_alive) << c.text;
    }
}

TEST_F(ParserTest, VersionsAnd505) {
    ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n").state, ParseState::complete);  // 1.0 needs no Host
    EXPECT_EQ(req().version, Version::http_1_0);
    ASSERT_EQ(parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().version, Version::http_1_1);  // higher minor: served as 1.1
    for (std::string_view v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.1", "HTTP/9.9"}) {
        EXPECT_EQ(error_of("GET / " + std::string(v) + "\r\nHost: h\r\n\r\n"), Status::version_not_supported)
            << v;
    }
    for (std::string_view v : {"HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/1.", "HTTP/a.1", "HTTP/1.x",
                               "HTTP 1.1", "HTTP/11", "", "HTTPS/1.1"}) {
        EXPECT_EQ(error_of("GET / " + std::string(v) + "\r\nHost: h\r\n\r\n"), Status::bad_request) << v;
    }
}

TEST_F(ParserTest, MalformedRequestLine400) {
    for (std::string_view line : {
             "GET/ HTTP/1.1",
             "GET  / HTTP/1.1",
             "GET / HTTP/1.1 ",
             "GET /  HTTP/1.1",
             "GET /",
             "GET",
             " GET / HTTP/1.1",
             "G(T / HTTP/1.1",
             "GET / HTTP/1.1\r",
             "GET\t/ HTTP/1.1",
             "GET /a\rb HTTP/1.1",
             "GET a HTTP/1.1",
             "GET /a#b HTTP/1.1",
             "GET /\x7f HTTP/1.1",
             "GET /\x80 HTTP/1.1",
             "GET * HTTP/1.1",
             "GET ftp://x/ HTTP/1.1",
             "GET http:// HTTP/1.1",
             "GET http://a b/ HTTP/1.1",
             "GET http://u@h/ HTTP/1.1",
             "GET example.com:80 HTTP/1.1",
             "\x01 / HTTP/1.1",
         }) {
        EXPECT_EQ(error_of(std::string(line) + "\r\nHost: h\r\n\r\n"), Status::bad_request) << line;
    }
    EXPECT_EQ(error_of("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"sv), Status::bad_request);
}

TEST_F(ParserTest, TargetForms) {
    ASSERT_EQ(parse("GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n").state,
              ParseState::complete);
    EXPECT_EQ(req().path, "/a/b");
    EXPECT_EQ(req().query, "c=d");
    EXPECT_EQ(req().host, "Example.com:8080");  // the target's authority wins over Host
    ASSERT_EQ(parse("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/");
    ASSERT_EQ(parse("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/");
    EXPECT_EQ(req().query, "q");
    ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "*");
    ASSERT_EQ(parse("GET /? HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/");
    EXPECT_EQ(req().query, "");
    ASSERT_EQ(parse("GET /%7E/a?b?c HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/%7E/a");  // not decoded
    EXPECT_EQ(req().query, "b?c");
}

TEST_F(ParserTest, Headers) {
    ASSERT_EQ(
        parse("GET / HTTP/1.1\r\nHost:h\r\nX-A:  \t a b \t \r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\n").state,
        ParseState::complete);
    EXPECT_EQ(req().host, "h");
    EXPECT_EQ(req().header("x-a"), std::optional<std::string_view>("a b"));
    EXPECT_EQ(req().header("x-empty"), std::optional<std::string_view>(""));
    EXPECT_EQ(req().header("X-OBS"), std::optional<std::string_view>("caf\xc3\xa9"));
    // Repeated fields are all kept, lookup finds the first.
    ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\na: 2\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().header("A"), std::optional<std::string_view>("1"));
    EXPECT_EQ(req().headers.size(), 3u);
}

TEST_F(ParserTest, BadHeaders400) {
    for (std::string_view field : {
             "Bad Name: x",
             "Name : x",
             "Name\t: x",
             ": x",
             "NoColon",
             " Folded: x",
             "\tFolded: x",
             "X(: y",
             "X-\x01: y",
             "X: a\x01z",
             "X: a\x7fz",
             "X: a\rb",
             "X\r: y",
             "\xc3\xa9: y",
         }) {
        EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\n" + std::string(field) + "\r\n\r\n"),
                  Status::bad_request)
            << field;
    }
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"sv), Status::bad_request);
    // obs-fold continuation of a valid field.
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n"), Status::bad_request);
}

TEST_F(ParserTest, Host) {
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\r\n"), Status::bad_request);  // missing
    EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), Status::bad_request);
    EXPECT_EQ(error_of("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), Status::bad_request);
    for (std::string_view bad : {"a b", "a/b", "a@b", "a\xc3\xa9", "a\"b"}) {
        EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: " + std::string(bad) + "\r\n\r\n"), Status::bad_request)
            << bad;
    }
    for (std::string_view good : {"", "localhost", "10.0.0.1:8080", "[::1]:80", "xn--caf-dma.example"}) {
        ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: " + std::string(good) + "\r\n\r\n").state,
                  ParseState::complete)
            << good;
        EXPECT_EQ(req().host, good);
    }
}

TEST_F(ParserTest, ContentLengthAndBody) {
    Limits limits;
    limits.max_body_bytes = 10;
    const std::string text = "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const Outcome o = parse(text + "GET", limits);
    ASSERT_EQ(o.state, ParseState::complete);
    EXPECT_EQ(o.consumed, text.size());  // stops at the end of the body
    EXPECT_EQ(req().content_length, 5u);
    EXPECT_EQ(req().body, "hello");
    // Repeated and equal: fine. Leading zeros are digits.
    ASSERT_EQ(
        parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 003\r\n\r\nabc", limits)
            .state,
        ParseState::complete);
    EXPECT_EQ(req().body, "abc");
    // Exactly the limit.
    EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits).state,
              ParseState::complete);
    EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").state, ParseState::complete);
    // Not digits, disagreeing duplicates, overflow.
    for (std::string_view v :
         {"", "abc", "-1", "+5", "1 2", "5, 5", "0x10", "18446744073709551616", "99999999999999999999999"}) {
        EXPECT_EQ(
            error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::string(v) + "\r\n\r\n", limits),
            Status::bad_request)
            << v;
    }
    EXPECT_EQ(
        error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", limits),
        Status::bad_request);
    // The largest 64-bit number parses, and is far too large.
    EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n", limits),
              Status::content_too_large);
}

TEST_F(ParserTest, BodyTooLarge413) {
    // Default: a GET/HEAD server takes no body at all.
    EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"),
              Status::content_too_large);
    Limits limits;
    limits.max_body_bytes = 10;
    EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits),
              Status::content_too_large);
    // The limit is also the buffer: a body that would not fit after the header block is 413.
    std::array<char, 64> small;
    limits.max_body_bytes = 1000;
    RequestParser p(small, limits);
    const ParseResult r = p.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n"sv);
    EXPECT_EQ(r.state, ParseState::error);
    EXPECT_EQ(p.error(), Status::content_too_large);
}

TEST_F(ParserTest, TransferEncoding501) {
    EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
              Status::not_implemented);
    EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\ntransfer-encoding: gzip\r\n\r\n"),
              Status::not_implemented);
}

TEST_F(ParserTest, UriTooLong414) {
    const std::string ok_target = "/" + std::string(4095, 'a');  // exactly max_target_bytes
    EXPECT_EQ(parse("GET " + ok_target + " HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    const std::string long_target = "/" + std::string(4096, 'a');
    EXPECT_EQ(error_of("GET " + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n"), Status::uri_too_long);
    // Detected before the line ends: the client need not finish sending.
    RequestParser& p = parser();
    const ParseResult r = p.feed(std::string_view("GET " + long_target + "aaaa"));
    EXPECT_EQ(r.state, ParseState::error);
    EXPECT_EQ(p.error(), Status::uri_too_long);
    // A target limit above the header limit: the header limit catches it, still as 414.
    Limits limits;
    limits.max_target_bytes = 100000;
    EXPECT_EQ(error_of("GET /" + std::string(9000, 'b') + " HTTP/1.1\r\nHost: h\r\n\r\n", limits),
              Status::uri_too_long);
}

TEST_F(ParserTest, MethodTooLong501) {
    const std::string m32(max_method_bytes, 'M');
    EXPECT_EQ(parse(m32 + " / HTTP/1.1\r\nHost: h\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(error_of(m32 + "M / HTTP/1.1\r\nHost: h\r\n\r\n"), Status::not_implemented);
    EXPECT_EQ(error_of(std::string(100, 'x')), Status::not_implemented);  // no SP, no LF
}

TEST_F(ParserTest, HeaderFieldsTooLarge431) {
    // One field that pushes the block over 8 KiB.
    std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(8200, 'v') + "\r\n\r\n";
    EXPECT_EQ(error_of(text), Status::header_fields_too_large);
    // Many fields of modest size.
    text = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 30; ++i) text += "X-F" + std::to_string(i) + ": " + std::string(300, 'v') + "\r\n";
    EXPECT_EQ(error_of(text + "\r\n"), Status::header_fields_too_large);
    // Too many fields (max_header_count = 32 by default).
    text = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 31; ++i) text += "A: b\r\n";
    EXPECT_EQ(parse(text + "\r\n").state, ParseState::complete);
    EXPECT_EQ(error_of(text + "A: b\r\n\r\n"), Status::header_fields_too_large);
    // A header block of exactly the limit fits.
    Limits limits;
    limits.max_header_bytes = 64;
    std::string exact = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    exact += std::string(64 - exact.size() - 4, 'v') + "\r\n\r\n";
    ASSERT_EQ(exact.size(), 64u);
    EXPECT_EQ(parse(exact, limits).state, ParseState::complete);
    exact.insert(30, "v");
    EXPECT_EQ(error_of(exact, limits), Status::header_fields_too_large);
}

TEST_F(ParserTest, SmallBufferClampsTheLimit) {
    std::array<char, 40> small;
    RequestParser p(small);
    const ParseResult r = p.feed("GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\n\r\n"sv);
    EXPECT_EQ(r.state, ParseState::error);
    EXPECT_EQ(p.error(), Status::header_fields_too_large);
    EXPECT_EQ(r.consumed, 40u);
}

TEST_F(ParserTest, BareLfAndLeadingEmptyLines) {
    ASSERT_EQ(parse("GET /lf HTTP/1.1\nHost: h\nX: y\r\n\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/lf");
    EXPECT_EQ(req().header("x"), std::optional<std::string_view>("y"));
    ASSERT_EQ(parse("\r\n\n\r\n\r\nGET / HTTP/1.0\r\n\r\n").state, ParseState::complete);
    EXPECT_EQ(req().path, "/");
    EXPECT_EQ(error_of("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n"), Status::bad_request);
    EXPECT_EQ(error_of("\rGET / HTTP/1.0\r\n\r\n"), Status::bad_request);
    RequestParser& p = parser();
    EXPECT_TRUE(p.idle());
    EXPECT_EQ(p.feed("\r\n"sv).state, ParseState::incomplete);
    EXPECT_TRUE(p.idle());
    EXPECT_EQ(p.feed("G"sv).state, ParseState::incomplete);
    EXPECT_FALSE(p.idle());
}

TEST_F(ParserTest, PipelinedRequests) {
    const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string second = "HEAD /two?x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const std::string both = first + second;
    RequestParser& p = parser();
    ParseResult r = p.feed(std::string_view(both));
    ASSERT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, first.size());
    EXPECT_EQ(p.request().path, "/one");
    // Until reset, nothing more is taken.
    r = p.feed(std::string_view(both).substr(first.size()));
    EXPECT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, 0u);
    p.reset();
    r = p.feed(std::string_view(both).substr(first.size()));
    ASSERT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, second.size());
    EXPECT_EQ(p.request().method, Method::head);
    EXPECT_EQ(p.request().path, "/two");
    EXPECT_EQ(p.request().query, "x");
    EXPECT_FALSE(p.request().keep_alive);
}

TEST_F(ParserTest, PipelinedWithBodyByteAtATime) {
    Limits limits;
    limits.max_body_bytes = 100;
    const std::string text =
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbodyGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET "
        "/c HTTP/1.0\r\n\r\n";
    RequestParser& p = parser(limits);
    std::vector<std::string> paths, bodies;
    for (char c : text) {
        ParseResult r = p.feed(std::string_view(&c, 1));
        ASSERT_EQ(r.consumed, 1u);
        ASSERT_NE(r.state, ParseState::error);
        if (r.state == ParseState::complete) {
            paths.emplace_back(p.request().path);
            bodies.emplace_back(p.request().body);
            p.reset();
        }
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"/a", "/b", "/c"}));
    EXPECT_EQ(bodies, (std::vector<std::string>{"body", "", ""}));
}

TEST_F(ParserTest, ErrorIsSticky) {
    RequestParser& p = parser();
    ParseResult r = p.feed("BAD\r\n"sv);
    ASSERT_EQ(r.state, ParseState::error);
    EXPECT_EQ(p.error(), Status::bad_request);
    r = p.feed("GET / HTTP/1.0\r\n\r\n"sv);
    EXPECT_EQ(r.state, ParseState::error);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(p.state(), ParseState::error);
    p.reset();
    EXPECT_EQ(p.feed("GET / HTTP/1.0\r\n\r\n"sv).state, ParseState::complete);
}

TEST_F(ParserTest, MethodKnownForErrors) {
    RequestParser& p = parser();
    EXPECT_EQ(p.method(), Method::other);
    ASSERT_EQ(p.feed("HEAD / HTTP/1.1\r\n\r\n"sv).state, ParseState::error);  // no Host
    EXPECT_EQ(p.method(), Method::head);
}

TEST_F(ParserTest, EmptyFeed) {
    RequestParser& p = parser();
    const ParseResult r = p.feed(std::string_view());
    EXPECT_EQ(r.state, ParseState::incomplete);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_TRUE(p.idle());
}

}  // namespace
}  // namespace keel::http
