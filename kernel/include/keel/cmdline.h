// The guest command line (xl: cmdline = "..."). It comes from outside the guest, so parse()
// validates everything and reports what is wrong; it never asserts.
//
// Grammar: words separated by whitespace (space, tab, CR, LF). A word is KEY or KEY=VALUE.
// KEY is [A-Za-z0-9_.-]+. VALUE is either unquoted (no whitespace, no '"') or wholly
// double-quoted ("a b"; no escapes, no '"' inside, whitespace or the end must follow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "keel/result.h"

namespace keel {

/// A parsed command line. Holds its own copy of the text (inline, no allocation), so it outlives
/// the start_info page; copies re-point their arguments at their own copy.
class CommandLine {
public:
    static constexpr std::size_t max_length = 2047;  ///< bytes
    static constexpr std::size_t max_words = 64;

    struct Arg {
        std::string_view key;
        std::string_view value;  ///< empty unless has_value
        bool has_value;          ///< KEY=VALUE (possibly KEY= or KEY=""), not a bare KEY
    };

    /// Parse `text`. On error returns Error::invalid_argument, sets *why to a fixed
    /// human-readable reason and *where to the byte offset of the problem (each if non-null).
    /// Errors: longer than max_length, more than max_words words, unterminated quote, empty key,
    /// bad character in a key, control character, quote inside an unquoted value, text right
    /// after a closing quote, duplicate key.
    static Result<CommandLine> parse(std::string_view text, const char** why = nullptr,
                                     std::size_t* where = nullptr);

    /// An empty command line.
    CommandLine() { buf_[0] = '\0'; }
    CommandLine(const CommandLine& o);
    CommandLine& operator=(const CommandLine& o);

    std::size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    /// The i-th word, in command-line order; i < size().
    const Arg& operator[](std::size_t i) const { return args_[i]; }
    const Arg* begin() const { return args_; }
    const Arg* end() const { return args_ + count_; }

    /// The value of KEY=VALUE; nullopt for a bare KEY or a missing key.
    std::optional<std::string_view> get(std::string_view key) const;
    /// KEY or KEY=VALUE present.
    bool has(std::string_view key) const;
    /// KEY=N as a decimal number in [lo, hi]; `fallback` when KEY is absent. Error::invalid_argument
    /// for a bare KEY, a value that is not all digits, or one out of range (the caller reports
    /// it: the command line comes from outside).
    Result<std::uint64_t> get_uint(std::string_view key, std::uint64_t fallback, std::uint64_t lo,
                                   std::uint64_t hi) const;
    /// The whole text as given (also NUL-terminated: see c_str()).
    std::string_view text() const { return std::string_view(buf_, len_); }
    const char* c_str() const { return buf_; }

private:
    const Arg* find(std::string_view key) const;
    void copy_from(const CommandLine& o);

    char buf_[max_length + 1];
    std::size_t len_ = 0;
    Arg args_[max_words];
    std::size_t count_ = 0;
};

}  // namespace keel
