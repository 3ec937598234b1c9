// Fuzz target for keel::kv, the key-value store's face to the network. For each input:
//  - the CommandParser, under two sets of limits, reads it as a stream of commands all at once
//    and in pieces (sizes derived from the input); both must see the same commands and the
//    same error, and no command may break a limit;
//  - a Session of a memory-only Server runs it (pieces in, pieces out): every byte it sends
//    must parse as complete RESP2 replies, and it must end closed after end_of_input.
// Built as a libFuzzer binary with clang (-fsanitize=fuzzer,address,undefined), and with
// KEEL_FUZZ_REPLAY as a plain program that runs the entry point over corpus files (a unit test).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "kv/server.h"

namespace {

using namespace keel::kv;

using keel::fuzz::Pieces;

class Stream {
public:
    explicit Stream(const Limits& limits) : parser_(limits), limits_(limits) {}

    void feed(std::string_view piece) {
        while (!failed_) {
            const ParseResult r = parser_.feed(piece);
            CHECK(r.consumed <= piece.size());
            piece.remove_prefix(r.consumed);
            if (r.state == ParseState::incomplete) {
                CHECK(piece.empty());
                return;
            }
            if (r.state == ParseState::error) {
                const std::string_view e = parser_.error();
                CHECK(e.starts_with("ERR "));
                CHECK(e.find_first_of("\r\n") == std::string_view::npos);
                trace_ += "error " + std::string(e) + "\n";
                failed_ = true;
                return;
            }
            record();
            parser_.reset();
            CHECK(parser_.idle());
            if (piece.empty()) return;
        }
    }

    const std::string& trace() const { return trace_; }

private:
    void record() {
        const auto args = parser_.args();
        CHECK(!args.empty() && args.size() <= limits_.max_args);
        std::size_t total = 0;
        trace_ += "[";
        for (const std::string_view a : args) {
            CHECK(a.size() <= limits_.max_bulk_bytes || a.size() <= limits_.max_inline_bytes);
            total += a.size();
            trace_ += std::string(a) + "|";
        }
        CHECK(total <= limits_.max_command_bytes || total <= limits_.max_inline_bytes);
        trace_ += "]\n";
    }

    CommandParser parser_;
    Limits limits_;
    std::string trace_;
    bool failed_ = false;
};

// Reads one RESP2 reply at `pos`; false if the bytes there are not one.
bool parse_reply(std::string_view s, std::size_t& pos, int depth = 0) {
    if (pos >= s.size() || depth > 4) return false;
    const std::size_t eol = s.find("\r\n", pos);
    if (eol == std::string_view::npos) return false;
    const char type = s[pos];
    const std::string_view line = s.substr(pos + 1, eol - pos - 1);
    pos = eol + 2;
    std::int64_t n = 0;
    switch (type) {
        case '+':
        case '-':
            return line.find('\n') == std::string_view::npos && line.find('\r') == std::string_view::npos;
        case ':':
            return parse_int(line, n);
        case '$':
            if (line == "-1") return true;
            if (!parse_int(line, n) || n < 0 || static_cast<std::size_t>(n) > s.size() - pos ||
                s.size() - pos - static_cast<std::size_t>(n) < 2) {
                return false;
            }
            pos += static_cast<std::size_t>(n);
            if (s.substr(pos, 2) != "\r\n") return false;
            pos += 2;
            return true;
        case '*':
            if (line == "-1") return true;
            if (!parse_int(line, n) || n < 0) return false;
            for (std::int64_t i = 0; i < n; ++i) {
                if (!parse_reply(s, pos, depth + 1)) return false;
            }
            return true;
        default:
            return false;
    }
}

std::uint64_t fake_now = 1'700'000'000'000'000'000ull;

void check_session(std::string_view data) {
    Config config;
    config.output_high_water = 1 + data.size() % 300;
    config.max_output_bytes = 4096 + data.size() % 5000;
    config.max_key_bytes = 64;
    config.max_value_bytes = 256;
    config.limits.max_args = 16;
    config.limits.max_bulk_bytes = 300;
    config.limits.max_command_bytes = 1000;
    config.limits.max_inline_bytes = 600;
    config.store.max_memory = 64 * 1024;
    Server server(config, Clock([] { return fake_now += 1'000'000; }));
    Session s(server);
    Pieces sizes(data);
    std::string out;
    std::string_view rest = data;
    while (!rest.empty() && s.state() != SessionState::closed) {
        const std::size_t n = s.feed(rest.substr(0, sizes.next()));
        CHECK(n <= rest.size());
        rest.remove_prefix(n);
        CHECK(!s.needs_commit());  // no log
        while (!s.output().empty()) {
            const auto o = s.output();
            const std::size_t k = std::min(o.size(), sizes.next());
            out.append(o.data(), k);
            s.sent(k);
        }
        CHECK(s.state() != SessionState::writing);
        CHECK(n > 0 || s.state() == SessionState::closed);
    }
    s.end_of_input();
    while (!s.output().empty()) {
        out.append(s.output().data(), s.output().size());
        s.sent(s.output().size());
    }
    CHECK(s.state() == SessionState::closed);
    std::size_t pos = 0;
    while (pos < out.size()) CHECK(parse_reply(out, pos));
    server.store().sweep(fake_now + 1'000'000'000'000ull, 1u << 20);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr Limits tight{
        .max_args = 4, .max_bulk_bytes = 16, .max_command_bytes = 40, .max_inline_bytes = 32};
    return keel::fuzz::check_input<Stream>(data, size, tight, check_session);
}
