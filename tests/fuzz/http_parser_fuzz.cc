// Fuzz target for keel::http, the first parser that faces the network. For each input:
//  - the RequestParser, under two sets of limits, reads it as a stream of pipelined requests
//    all at once and in pieces (sizes derived from the input); both must see the same
//    requests and the same error, and every view must lie inside the buffer;
//  - a Session serves it (pieces in, pieces out) and must only ever emit well-formed heads and
//    end closed after end_of_input.
// Built as a libFuzzer binary with clang (-fsanitize=fuzzer,address,undefined), and with
// KEEL_FUZZ_REPLAY as a plain program that runs the entry point over corpus files (a unit test).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "http.h"

namespace {

using namespace keel::http;

using keel::fuzz::Pieces;

class Stream {
public:
    explicit Stream(const Limits& limits) : parser_(buf_, limits) {}

    void feed(std::string_view piece) {
        while (!failed_) {
            const ParseResult r = parser_.feed(piece);
            CHECK(r.consumed <= piece.size());
            pos_ += r.consumed;
            piece.remove_prefix(r.consumed);
            if (r.state == ParseState::incomplete) {
                CHECK(piece.empty());
                return;
            }
            if (r.state == ParseState::error) {
                const unsigned c = code(parser_.error());
                CHECK(c >= 400 && c <= 505);
                trace_ += "error " + std::to_string(c) + "\n";
                failed_ = true;
                return;
            }
            record(parser_.request());
            parser_.reset();
            CHECK(parser_.idle());
            if (piece.empty()) return;
        }
    }

    const std::string& trace() const { return trace_; }

private:
    bool inside(std::string_view v) const {
        return v.empty() || (v.data() >= buf_.data() && v.data() + v.size() <= buf_.data() + buf_.size());
    }

    void record(const Request& req) {
        CHECK(!req.method_name.empty() && inside(req.method_name));
        CHECK(!req.target.empty() && inside(req.target));
        CHECK(!req.path.empty() && (inside(req.path) || req.path == "/"));
        CHECK(inside(req.query) && inside(req.host) && inside(req.body));
        CHECK(req.body.size() == req.content_length);
        CHECK(req.headers.size() <= max_headers);
        if (req.version == Version::http_1_1) CHECK(req.header("host").has_value());
        trace_ += "at " + std::to_string(pos_) + ": " + std::string(req.method_name) + " " +
                  std::string(req.path) + " ? " + std::string(req.query) + " host " + std::string(req.host) +
                  " ka " + std::to_string(req.keep_alive) + " body " + std::string(req.body);
        for (const Header& h : req.headers) {
            CHECK(inside(h.name) && inside(h.value) && !h.name.empty());
            trace_ += " | " + std::string(h.name) + ": " + std::string(h.value);
        }
        trace_ += "\n";
    }

    std::array<char, 10000> buf_;
    RequestParser parser_;
    std::string trace_;
    std::size_t pos_ = 0;
    bool failed_ = false;
};

constexpr Page pages[] = {
    {"/index.html", "text/html; charset=utf-8", "<!doctype html><p>keel</p>\n"},
    {"/a.css", "text/css", "p{}\n"},
};

std::optional<std::uint64_t> clock_now() { return 1700000000; }

void check_head(std::span<const char> head) {
    const std::string_view h(head.data(), head.size());
    CHECK(h.starts_with("HTTP/1.1 "));
    CHECK(h.ends_with("\r\n\r\n"));
    CHECK(h.find("\r\nContent-Length: ") != std::string_view::npos);
}

void check_session(std::string_view data) {
    static Stats stats;
    Router router(pages);
    router.set_metrics("/metrics", [](MetricsWriter& w) { write_metrics(w, stats); });
    static SessionStorage<8192, 1024> storage;
    SessionOptions options;
    options.stats = &stats;
    options.wall_clock = clock_now;
    options.max_requests = data.size() % 5;
    Session s(router, storage.buffers(), options);
    Pieces sizes(data);
    std::string_view rest = data;
    while (!rest.empty() && s.state() != SessionState::closed) {
        const std::size_t n = s.feed(rest.substr(0, sizes.next()));
        CHECK(n <= rest.size());
        rest.remove_prefix(n);
        bool at_head = true;
        while (s.state() == SessionState::writing) {
            const auto out = s.output();
            CHECK(!out.empty());
            if (at_head) check_head(out);
            at_head = false;
            s.sent(sizes.next());
        }
        CHECK(n > 0 || s.state() != SessionState::writing);
    }
    s.end_of_input();
    while (s.state() == SessionState::writing) s.sent(s.output().size());
    CHECK(s.state() == SessionState::closed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr Limits tight{
        .max_header_bytes = 300, .max_target_bytes = 64, .max_header_count = 4, .max_body_bytes = 32};
    return keel::fuzz::check_input<Stream>(data, size, tight, check_session);
}
