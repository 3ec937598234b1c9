// RESP2, the Redis protocol, as far as redis-cli and redis-benchmark need it: commands in, replies
// out. Pure: no I/O, no clock; host-tested and fuzzed.
//
// What the parser accepts, and why where it had a choice:
// - Multibulk commands, what every client library sends: "*<n>\r\n" then n times
//   "$<len>\r\n<len bytes>\r\n". Count and length lines must end in CRLF and hold a decimal
//   number ("-" allowed only for the count); "*0" and "*-1" are empty commands and are skipped
//   (as Redis does). Every bulk must be followed by CRLF (Redis skips those two bytes
//   unchecked; we refuse anything else, since it means the framing is lost).
// - Inline commands, what people type into nc/telnet: a line up to LF (a CR before it is
//   dropped), split at whitespace. A word may hold "double quoted" parts with \n \r \t \b \a
//   \\ \" \xHH escapes and 'single quoted' parts with \' ; a closing quote must be followed by
//   whitespace or the end of the line. Empty lines are skipped.
// - Limits: arguments per command (max_args), bytes of one argument (max_bulk_bytes), bytes
//   of all arguments of one command (max_command_bytes), length of an inline line
//   (max_inline_bytes). Going over one is a protocol error.
// - A protocol error (malformed framing, a broken limit, out of memory for the command) is
//   answered with "-ERR Protocol error: ..." and the connection is closed after the reply, as
//   Redis does: after a framing error the rest of the stream cannot be trusted.
// The outcome never depends on how the bytes were split into feed() calls, and no input makes
// the parser assert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kv/vec.h"

namespace keel::kv {

struct Limits {
    std::size_t max_args = 4096;                      ///< arguments of one command
    std::size_t max_bulk_bytes = 512 * 1024;          ///< one argument (a key or a value)
    std::size_t max_command_bytes = 2 * 1024 * 1024;  ///< all arguments of one command
    std::size_t max_inline_bytes = 64 * 1024;         ///< an inline command line, without LF
};

enum class ParseState : std::uint8_t { incomplete, complete, error };

struct ParseResult {
    ParseState state;
    /// Bytes of this feed() taken: all of them while incomplete; after `complete` the rest
    /// belongs to the next command; after `error` the connection closes anyway.
    std::size_t consumed;
};

/// Incremental command parser. Feed it bytes as they arrive, in pieces of any size; it copies
/// the current command's arguments into its own buffer (grown as needed, up to the limits) and
/// stops at the end of the command. After `complete`, read args(), then reset() before feeding
/// the rest. After `error`, error() is the message to answer with; the connection must close.
class CommandParser {
public:
    explicit CommandParser(const Limits& limits = {});
    CommandParser(const CommandParser&) = delete;
    CommandParser& operator=(const CommandParser&) = delete;

    ParseResult feed(std::span<const char> data);
    ParseResult feed(std::string_view data) { return feed(std::span<const char>(data.data(), data.size())); }

    ParseState state() const;
    /// The arguments (at least one) of the command; valid in state complete, until reset().
    std::span<const std::string_view> args() const { return {views_.data(), views_.size()}; }
    /// What went wrong, e.g. "Protocol error: invalid bulk length"; valid in state error. Holds
    /// no CR or LF, so it can go out as a simple error as is ("-ERR " + error()).
    std::string_view error() const { return {error_, error_len_}; }
    /// No byte of a command has been received since the last reset.
    bool idle() const { return phase_ == Phase::start; }
    /// Forget the current command and start over (keeps the buffers unless they grew large).
    void reset();

private:
    enum class Phase : std::uint8_t {
        start,
        count_line,
        bulk_line,
        bulk_data,
        bulk_cr,
        bulk_lf,
        inline_line,
        complete,
        failed
    };
    struct Arg {
        std::size_t offset;
        std::size_t size;
    };

    std::size_t take_number_line(const char* p, std::size_t n);
    void on_count_line();
    void on_bulk_line();
    void on_inline_line();
    bool split_inline(std::size_t len);
    void finish();
    void fail(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

    Limits limits_;
    Phase phase_ = Phase::start;
    char line_[24];  // a count or bulk length line ("*"/"$" not included)
    std::size_t line_len_ = 0;
    std::size_t args_expected_ = 0;
    std::size_t bulk_remaining_ = 0;
    Bytes buf_;  // argument bytes (multibulk) or the inline line
    Vec<Arg> args_;
    Vec<std::string_view> views_;
    char error_[128];
    std::size_t error_len_ = 0;
};

/// Appends RESP2 replies to a byte vector. When an append fails (out of memory, or the vector's
/// limit), ok() turns false and stays false; the caller must then throw away what was written
/// since it started the reply (see Vec::truncate).
class ReplyWriter {
public:
    explicit ReplyWriter(Bytes& out) : out_(out) {}

    /// "+s\r\n". CR and LF in s become spaces (they would end the line).
    void simple(std::string_view s);
    /// "-s\r\n", s starting with the error code ("ERR ...", "WRONGTYPE ..."). CR/LF become spaces.
    void error(std::string_view s);
    /// error() with printf formatting; the message is cut at 480 bytes.
    void errorf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    /// ":v\r\n".
    void integer(std::int64_t v);
    /// "$<len>\r\n<s>\r\n".
    void bulk(std::string_view s);
    /// "$-1\r\n", the nil reply.
    void null();
    /// "*<n>\r\n"; n elements follow.
    void array(std::size_t n);
    /// "*-1\r\n".
    void null_array();

    bool ok() const { return ok_; }
    Bytes& out() { return out_; }

private:
    void put(std::string_view s);
    void put_line(char type, std::string_view s);
    void put_number(char type, std::int64_t v);

    Bytes& out_;
    bool ok_ = true;
};

/// Decimal text of v into `buf` (at least 20 bytes); returns the length.
std::size_t format_int(std::int64_t v, char* buf);

/// A signed 64-bit decimal as Redis reads one: an optional '-', digits without leading zeros
/// ("0" alone is fine), no sign "+", no spaces, in range. False otherwise.
bool parse_int(std::string_view s, std::int64_t& out);

}  // namespace keel::kv
