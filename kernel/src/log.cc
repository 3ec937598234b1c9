// Kernel log: one formatted line per call, built on the caller's stack and handed to the sink.
#include "keel/log.h"

#include "keel/format.h"
#include "keel/panic.h"

namespace keel {
namespace {

// Context: set during boot, read from every context that logs. Single vCPU, no preemption.
LogSink* g_sink = nullptr;
std::uint64_t (*g_clock)() = nullptr;
LogLevel g_min_level = LogLevel::info;

// Per-subsystem levels (set_log_levels): a line whose format starts with "name:" uses its own.
struct SubsystemLevel {
    char name[16];
    std::size_t len;
    LogLevel min;
};
SubsystemLevel g_subsystems[max_log_subsystems];
std::size_t g_subsystem_count = 0;

LogLevel min_level_for(const char* fmt) {
    for (std::size_t i = 0; i < g_subsystem_count; ++i) {
        const SubsystemLevel& e = g_subsystems[i];
        std::size_t k = 0;
        while (k < e.len && fmt[k] == e.name[k]) ++k;
        if (k == e.len && fmt[k] == ':') return e.min;
    }
    return g_min_level;
}

bool parse_level(std::string_view word, LogLevel& out) {
    for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
        if (word == to_string(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

void report_panic(const char* message) { log(LogLevel::error, "panic: %s", message); }

}  // namespace

const char* to_string(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "?";
}

void set_log_sink(LogSink* sink) {
    g_sink = sink;
    set_panic_reporter(sink != nullptr ? report_panic : nullptr);  // panics reach the log too
}
LogSink* log_sink() { return g_sink; }
void set_log_clock(std::uint64_t (*now_ns)()) { g_clock = now_ns; }
void set_log_level(LogLevel min) { g_min_level = min; }
LogLevel log_level() { return g_min_level; }

Result<void> set_log_levels(std::string_view spec) {
    if (spec.empty()) return Error::invalid_argument;
    LogLevel base = LogLevel::info;
    SubsystemLevel parsed[max_log_subsystems];
    std::size_t n = 0;
    for (std::size_t item = 0; spec.size() > 0; ++item) {
        const std::size_t comma = spec.find(',');
        const std::string_view word = spec.substr(0, comma);
        spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
        if (comma != std::string_view::npos && spec.empty()) return Error::invalid_argument;  // "warn,"
        const std::size_t eq = word.find('=');
        if (item == 0) {
            if (eq != std::string_view::npos || !parse_level(word, base)) return Error::invalid_argument;
            continue;
        }
        if (eq == std::string_view::npos || eq == 0 || eq >= sizeof parsed[0].name || n == max_log_subsystems)
            return Error::invalid_argument;
        SubsystemLevel& e = parsed[n++];
        if (!parse_level(word.substr(eq + 1), e.min)) return Error::invalid_argument;
        for (std::size_t i = 0; i < eq; ++i) {
            const char c = word[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                return Error::invalid_argument;
            e.name[i] = c;
        }
        e.len = eq;
    }
    g_min_level = base;
    for (std::size_t i = 0; i < n; ++i) g_subsystems[i] = parsed[i];
    g_subsystem_count = n;
    return {};
}

void vlog(LogLevel level, const char* fmt, va_list ap) {
    LogSink* sink = g_sink;
    if (sink == nullptr || level < (g_subsystem_count == 0 ? g_min_level : min_level_for(fmt))) return;

    const std::uint64_t ns = g_clock ? g_clock() : 0;
    // One byte more than the longest line, for vformat's NUL.
    char line[max_log_line + 1];
    const int prefix_len =
        format(line, sizeof line, "[%6llu.%06llu] %s: ", static_cast<unsigned long long>(ns / 1'000'000'000u),
               static_cast<unsigned long long>(ns % 1'000'000'000u / 1000u), to_string(level));
    const std::size_t prefix = static_cast<std::size_t>(prefix_len);
    const std::size_t room = sizeof line - prefix;  // text characters that fit, plus the NUL
    std::size_t text = static_cast<std::size_t>(vformat(line + prefix, room, fmt, ap));
    // A text that ends in a newline already gets ours. Any text whose newline could matter is
    // short enough to be stored whole, so checking the stored copy is enough.
    if (text > 0 && text < room && line[prefix + text - 1] == '\n') --text;

    std::size_t len = prefix + text + 1;
    if (len <= max_log_line) {
        line[len - 1] = '\n';
    } else {
        constexpr char cut[] = "...\n";
        len = max_log_line;
        for (std::size_t i = 0; i < sizeof cut - 1; ++i) line[len - (sizeof cut - 1) + i] = cut[i];
    }
    sink->write(std::string_view(line, len));
}

void log(LogLevel level, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

}  // namespace keel
