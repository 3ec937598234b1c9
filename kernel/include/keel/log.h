// Kernel log: timestamped lines handed to one sink (the PV console once it is up, the debug
// port before). Formatting happens on the caller's stack; nothing allocates.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string_view>

#include "keel/result.h"

namespace keel {

enum class LogLevel { debug, info, warn, error };

/// "debug", "info", "warn", "error".
const char* to_string(LogLevel level);

/// Receives complete lines ("[     1.234567] info: text\n"), one write per line.
/// Context: called from whatever context logs (the loop, a panic, a trap report).
class LogSink {
public:
    virtual ~LogSink() = default;
    virtual void write(std::string_view line) = 0;
};

/// Where complete lines go; nullptr = nowhere (the default).
void set_log_sink(LogSink* sink);
LogSink* log_sink();

/// Monotonic nanoseconds for the timestamp; nullptr = timestamps are 0 (the default).
void set_log_clock(std::uint64_t (*now_ns)());

/// Lines below `min` are dropped before formatting. Default: LogLevel::info (no debug lines).
void set_log_level(LogLevel min);
LogLevel log_level();

/// The `loglevel=` command-line value: "LEVEL" or "LEVEL,SUBSYSTEM=LEVEL,..." (e.g.
/// "warn,netfront=debug"). A subsystem is the word a line's format starts with, before its
/// colon ("netfront: ..."); at most max_log_subsystems of them. Levels: error, warn, info,
/// debug. Error::invalid_argument (and nothing changes) for anything else.
inline constexpr std::size_t max_log_subsystems = 8;
Result<void> set_log_levels(std::string_view spec);

/// The longest line handed to the sink, newline included. Longer lines are cut to this length
/// and end with "...\n".
inline constexpr std::size_t max_log_line = 512;

/// Format and emit one line: "[%6u.%06u] <level>: <text>\n" (seconds.microseconds).
/// A trailing newline in the formatted text is not doubled.
void log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void vlog(LogLevel level, const char* fmt, va_list ap);

}  // namespace keel

#define KLOG_DEBUG(...) ::keel::log(::keel::LogLevel::debug, __VA_ARGS__)
#define KLOG_INFO(...) ::keel::log(::keel::LogLevel::info, __VA_ARGS__)
#define KLOG_WARN(...) ::keel::log(::keel::LogLevel::warn, __VA_ARGS__)
#define KLOG_ERROR(...) ::keel::log(::keel::LogLevel::error, __VA_ARGS__)
