// CommandParser and ReplyWriter. The parser runs a small state machine over the bytes; the count
// and length lines are short (at most 24 bytes are kept), the argument bytes are copied into
// one buffer whose offsets are turned into string_views when the command is complete (the
// buffer may move while it grows). The rules are listed in resp.h.
#include "kv/resp.h"

#include <cstdarg>
#include <cstring>

#include "keel/format.h"

namespace keel::kv {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Buffers above these sizes are given back after the command that needed them.
constexpr std::size_t keep_bytes = 16 * 1024;
constexpr std::size_t keep_args = 256;

}  // namespace

bool parse_int(std::string_view s, std::int64_t& out) {
    if (s.empty() || s.size() > 20) return false;
    if (s.size() == 1 && s[0] == '0') {
        out = 0;
        return true;
    }
    std::size_t i = 0;
    const bool negative = s[0] == '-';
    if (negative) i = 1;
    if (i == s.size() || s[i] < '1' || s[i] > '9') return false;
    std::uint64_t v = 0;
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        const auto d = static_cast<std::uint64_t>(s[i] - '0');
        if (v > (~0ull - d) / 10) return false;
        v = v * 10 + d;
    }
    constexpr std::uint64_t max_positive = 0x7fffffffffffffffull;
    if (negative) {
        if (v > max_positive + 1) return false;
        out = static_cast<std::int64_t>(0 - v);  // two's complement: fine for 2^63 too
    } else {
        if (v > max_positive) return false;
        out = static_cast<std::int64_t>(v);
    }
    return true;
}

std::size_t format_int(std::int64_t v, char* buf) {
    char tmp[20];
    std::size_t n = 0;
    std::uint64_t m = v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
    do {
        tmp[n++] = static_cast<char>('0' + m % 10);
        m /= 10;
    } while (m != 0);
    std::size_t len = 0;
    if (v < 0) buf[len++] = '-';
    while (n != 0) buf[len++] = tmp[--n];
    return len;
}

// ---------------------------------------------------------------------------------------------
// CommandParser

CommandParser::CommandParser(const Limits& limits) : limits_(limits) {
    buf_.set_limit(limits_.max_command_bytes > limits_.max_inline_bytes ? limits_.max_command_bytes
                                                                        : limits_.max_inline_bytes);
    args_.set_limit(limits_.max_args);
    views_.set_limit(limits_.max_args);
}

ParseState CommandParser::state() const {
    if (phase_ == Phase::complete) return ParseState::complete;
    if (phase_ == Phase::failed) return ParseState::error;
    return ParseState::incomplete;
}

void CommandParser::reset() {
    phase_ = Phase::start;
    line_len_ = 0;
    args_expected_ = 0;
    bulk_remaining_ = 0;
    buf_.clear();
    args_.clear();
    views_.clear();
    buf_.shrink_if_empty(keep_bytes);
    args_.shrink_if_empty(keep_args);
    views_.shrink_if_empty(keep_args);
}

void CommandParser::fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vformat(error_, sizeof(error_), fmt, ap);
    va_end(ap);
    error_len_ = n < 0 ? 0
                       : (static_cast<std::size_t>(n) < sizeof(error_) ? static_cast<std::size_t>(n)
                                                                       : sizeof(error_) - 1);
    phase_ = Phase::failed;
}

ParseResult CommandParser::feed(std::span<const char> data) {
    const char* p = data.data();
    const std::size_t n = data.size();
    std::size_t i = 0;
    // The byte after a bulk string's data must be `want` ('\r', then '\n'); else the command fails.
    const auto crlf_byte = [&](char want) {
        if (p[i] == want) return true;
        fail("ERR Protocol error: expected CRLF after a bulk string");
        return false;
    };
    while (i < n && phase_ != Phase::complete && phase_ != Phase::failed) {
        switch (phase_) {
            case Phase::start:
                if (p[i] == '*') {
                    phase_ = Phase::count_line;
                    line_len_ = 0;
                    ++i;
                } else {
                    phase_ = Phase::inline_line;
                }
                break;
            case Phase::count_line:
            case Phase::bulk_line:
                i += take_number_line(p + i, n - i);
                break;
            case Phase::bulk_data: {
                const std::size_t k = bulk_remaining_ < n - i ? bulk_remaining_ : n - i;
                if (!buf_.append(p + i, k)) {
                    fail("ERR out of memory for the command");
                    break;
                }
                i += k;
                bulk_remaining_ -= k;
                if (bulk_remaining_ == 0) phase_ = Phase::bulk_cr;
                break;
            }
            case Phase::bulk_cr:
                if (!crlf_byte('\r')) break;
                ++i;
                phase_ = Phase::bulk_lf;
                break;
            case Phase::bulk_lf:
                if (!crlf_byte('\n')) break;
                ++i;
                if (args_.size() == args_expected_) {
                    finish();
                } else {
                    phase_ = Phase::bulk_line;
                    line_len_ = 0;
                }
                break;
            case Phase::inline_line: {
                const void* nl = std::memchr(p + i, '\n', n - i);
                const std::size_t k =
                    nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - (p + i)) : n - i;
                if (k > limits_.max_inline_bytes - buf_.size()) {
                    fail("ERR Protocol error: too big inline request");
                    break;
                }
                if (!buf_.append(p + i, k)) {
                    fail("ERR out of memory for the command");
                    break;
                }
                i += k;
                if (nl != nullptr) {
                    ++i;
                    on_inline_line();
                }
                break;
            }
            case Phase::complete:
            case Phase::failed:
                break;
        }
    }
    return {state(), i};
}

// Collects a count ("*" already taken) or bulk length ("$" kept in line_[0]) line up to its LF.
std::size_t CommandParser::take_number_line(const char* p, std::size_t n) {
    const bool bulk = phase_ == Phase::bulk_line;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = p[i];
        if (bulk && line_len_ == 0 && c != '$') {
            const auto u = static_cast<unsigned char>(c);
            if (u >= 0x20 && u < 0x7f) {
                fail("ERR Protocol error: expected '$', got '%c'", c);
            } else {
                fail("ERR Protocol error: expected '$', got byte 0x%02x", u);
            }
            return i;
        }
        if (c == '\n') {
            if (bulk) {
                on_bulk_line();
            } else {
                on_count_line();
            }
            return i + 1;
        }
        if (line_len_ == sizeof(line_)) {
            fail(bulk ? "ERR Protocol error: invalid bulk length"
                      : "ERR Protocol error: invalid multibulk length");
            return i;
        }
        line_[line_len_++] = c;
    }
    return n;
}

void CommandParser::on_count_line() {
    std::int64_t v = 0;
    if (line_len_ < 2 || line_[line_len_ - 1] != '\r' || !parse_int({line_, line_len_ - 1}, v)) {
        fail("ERR Protocol error: invalid multibulk length");
        return;
    }
    if (v <= 0) {  // an empty command: nothing to run, read the next one
        reset();
        return;
    }
    if (static_cast<std::uint64_t>(v) > limits_.max_args) {
        fail("ERR Protocol error: %lld arguments are over the limit of %zu", static_cast<long long>(v),
             limits_.max_args);
        return;
    }
    args_expected_ = static_cast<std::size_t>(v);
    buf_.clear();
    args_.clear();
    phase_ = Phase::bulk_line;
    line_len_ = 0;
}

void CommandParser::on_bulk_line() {
    std::int64_t v = 0;
    // line_ = "$<digits>\r"
    if (line_len_ < 3 || line_[line_len_ - 1] != '\r' || !parse_int({line_ + 1, line_len_ - 2}, v) || v < 0) {
        fail("ERR Protocol error: invalid bulk length");
        return;
    }
    const auto len = static_cast<std::uint64_t>(v);
    if (len > limits_.max_bulk_bytes) {
        fail("ERR Protocol error: a bulk string of %llu bytes is over the limit of %zu",
             static_cast<unsigned long long>(len), limits_.max_bulk_bytes);
        return;
    }
    if (len > limits_.max_command_bytes - buf_.size()) {
        fail("ERR Protocol error: the command is over the limit of %zu bytes", limits_.max_command_bytes);
        return;
    }
    if (!args_.push_back(Arg{buf_.size(), static_cast<std::size_t>(len)})) {
        fail("ERR out of memory for the command");
        return;
    }
    bulk_remaining_ = static_cast<std::size_t>(len);
    phase_ = len != 0 ? Phase::bulk_data : Phase::bulk_cr;
}

void CommandParser::on_inline_line() {
    std::size_t len = buf_.size();
    if (len != 0 && buf_[len - 1] == '\r') --len;
    args_.clear();
    if (!split_inline(len)) return;  // failed
    if (args_.empty()) {
        reset();  // an empty line
        return;
    }
    finish();
}

// Splits the inline line buf_[0, len) into words in place: unescaping only ever shortens, so
// the write position never passes the read position.
bool CommandParser::split_inline(std::size_t len) {
    char* s = buf_.data();
    std::size_t r = 0, w = 0;
    for (;;) {
        while (r < len && is_space(s[r])) ++r;
        if (r == len) return true;
        const std::size_t start = w;
        char quote = 0;  // the quote the word is in ('"' or '\''), 0 outside quotes
        for (;;) {
            if (r == len) {
                if (quote != 0) {
                    fail("ERR Protocol error: unbalanced quotes in request");
                    return false;
                }
                break;
            }
            const char c = s[r];
            if (quote != 0 && c == quote) {
                // The closing quote ends the word: a space or the end of the line must follow.
                ++r;
                if (r < len && !is_space(s[r])) {
                    fail("ERR Protocol error: unbalanced quotes in request");
                    return false;
                }
                break;
            }
            if (quote == '"' && c == '\\' && r + 3 < len && s[r + 1] == 'x' && hex_value(s[r + 2]) >= 0 &&
                hex_value(s[r + 3]) >= 0) {
                s[w++] = static_cast<char>(hex_value(s[r + 2]) * 16 + hex_value(s[r + 3]));
                r += 4;
            } else if (quote == '"' && c == '\\' && r + 1 < len) {
                const char e = s[r + 1];
                s[w++] = e == 'n'   ? '\n'
                         : e == 'r' ? '\r'
                         : e == 't' ? '\t'
                         : e == 'b' ? '\b'
                         : e == 'a' ? '\a'
                                    : e;
                r += 2;
            } else if (quote == '\'' && c == '\\' && r + 1 < len && s[r + 1] == '\'') {
                s[w++] = '\'';
                r += 2;
            } else if (quote == 0 && is_space(c)) {
                break;
            } else if (quote == 0 && (c == '"' || c == '\'')) {
                quote = c;
                ++r;
            } else {
                s[w++] = c;
                ++r;
            }
        }
        if (args_.size() == limits_.max_args) {
            fail("ERR Protocol error: more than %zu arguments", limits_.max_args);
            return false;
        }
        if (!args_.push_back(Arg{start, w - start})) {
            fail("ERR out of memory for the command");
            return false;
        }
    }
}

void CommandParser::finish() {
    if (!views_.resize(args_.size())) {
        fail("ERR out of memory for the command");
        return;
    }
    for (std::size_t k = 0; k < args_.size(); ++k) {
        views_[k] = std::string_view(buf_.data() + args_[k].offset, args_[k].size);
    }
    phase_ = Phase::complete;
}

// ---------------------------------------------------------------------------------------------
// ReplyWriter

void ReplyWriter::put(std::string_view s) {
    if (ok_ && !out_.append(s.data(), s.size())) ok_ = false;
}

void ReplyWriter::put_line(char type, std::string_view s) {
    if (!ok_) return;
    const std::size_t at = out_.size();
    if (s.size() > out_.limit() || !out_.resize(at + s.size() + 3)) {
        ok_ = false;
        return;
    }
    char* d = out_.data() + at;
    *d++ = type;
    for (char c : s) *d++ = (c == '\r' || c == '\n') ? ' ' : c;
    *d++ = '\r';
    *d = '\n';
}

void ReplyWriter::put_number(char type, std::int64_t v) {
    char buf[24];
    buf[0] = type;
    std::size_t n = 1 + format_int(v, buf + 1);
    buf[n++] = '\r';
    buf[n++] = '\n';
    put({buf, n});
}

void ReplyWriter::simple(std::string_view s) { put_line('+', s); }
void ReplyWriter::error(std::string_view s) { put_line('-', s); }

void ReplyWriter::errorf(const char* fmt, ...) {
    char buf[480];
    va_list ap;
    va_start(ap, fmt);
    const int n = vformat(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    const std::size_t len =
        n < 0 ? 0
              : (static_cast<std::size_t>(n) < sizeof(buf) ? static_cast<std::size_t>(n) : sizeof(buf) - 1);
    error({buf, len});
}

void ReplyWriter::integer(std::int64_t v) { put_number(':', v); }

void ReplyWriter::bulk(std::string_view s) {
    put_number('$', static_cast<std::int64_t>(s.size()));
    put(s);
    put("\r\n");
}

void ReplyWriter::null() { put("$-1\r\n"); }
void ReplyWriter::array(std::size_t n) { put_number('*', static_cast<std::int64_t>(n)); }
void ReplyWriter::null_array() { put("*-1\r\n"); }

}  // namespace keel::kv
