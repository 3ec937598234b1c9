// A small checker of the Prometheus text exposition format (0.0.4), written here rather than
// taken from the writer under test, and helpers to read samples back: for every test of a
// /metrics page or a component's metric families.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace keel::test {

inline bool metric_name_ok(std::string_view s, bool label) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool letter =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

// A number as Prometheus reads it: [+-] digits [. digits] [e [+-] digits], or NaN / +Inf / -Inf.
inline bool value_ok(std::string_view v) {
    if (v == "NaN" || v == "+Inf" || v == "-Inf") return true;
    std::size_t i = 0;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    const std::size_t digits_start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == digits_start) return false;
    if (i < v.size() && v[i] == '.') {
        ++i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    }
    if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
        ++i;
        if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
        const std::size_t e = i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
        if (i == e) return false;
    }
    return i == v.size();
}

// Returns "" if `text` is valid exposition format, else what is wrong with which line. Checks:
// every line ends in '\n'; HELP/TYPE name a valid metric, TYPE once per name, before its
// samples, with a known type; HELP escapes are \\ or \n; samples are name{label="v",...} value
// with valid names, closed quotes, known escapes, a number, non-negative for counters; and
// every sample belongs to a family declared by TYPE.
inline std::string check_prometheus(std::string_view text) {
    if (!text.empty() && text.back() != '\n') return "does not end in a newline";
    std::map<std::string, std::string> types;
    std::set<std::string> sampled;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + " '" + std::string(line) + "': ";
        if (line.empty()) continue;
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const bool is_type = line[2] == 'T';
            const std::string_view rest = line.substr(7);
            const std::size_t sp = rest.find(' ');
            if (sp == std::string_view::npos) return where + "no text after the name";
            const std::string name(rest.substr(0, sp));
            const std::string_view arg = rest.substr(sp + 1);
            if (!metric_name_ok(name, false)) return where + "bad metric name";
            if (is_type) {
                if (types.count(name)) return where + "second TYPE";
                if (sampled.count(name)) return where + "TYPE after samples";
                if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" &&
                    arg != "untyped") {
                    return where + "unknown type";
                }
                types[name] = std::string(arg);
            } else {
                for (std::size_t i = 0; i < arg.size(); ++i) {
                    if (arg[i] != '\\') continue;
                    if (i + 1 >= arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n'))
                        return where + "bad escape";
                    ++i;
                }
            }
            continue;
        }
        if (line.front() == '#') continue;  // a comment
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        const std::string name(line.substr(0, i));
        if (!metric_name_ok(name, false)) return where + "bad sample name";
        if (i < line.size() && line[i] == '{') {
            ++i;
            for (;;) {
                if (i < line.size() && line[i] == '}') {
                    ++i;
                    break;
                }
                const std::size_t start = i;
                while (i < line.size() && line[i] != '=') ++i;
                if (!metric_name_ok(line.substr(start, i - start), true)) return where + "bad label name";
                if (i + 1 >= line.size() || line[i + 1] != '"') return where + "label value not quoted";
                i += 2;
                bool closed = false;
                while (i < line.size()) {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size() ||
                            (line[i + 1] != '\\' && line[i + 1] != 'n' && line[i + 1] != '"')) {
                            return where + "bad escape in label value";
                        }
                        i += 2;
                    } else if (line[i] == '"') {
                        ++i;
                        closed = true;
                        break;
                    } else {
                        ++i;
                    }
                }
                if (!closed) return where + "unterminated label value";
                if (i < line.size() && line[i] == ',') ++i;
            }
        }
        if (i >= line.size() || line[i] != ' ') return where + "no value";
        std::string_view rest = line.substr(i + 1);
        const std::size_t sp = rest.find(' ');
        const std::string_view value = rest.substr(0, sp);
        if (!value_ok(value)) return where + "bad value";
        if (sp != std::string_view::npos) {  // a timestamp: an integer
            const std::string_view ts = rest.substr(sp + 1);
            if (ts.empty() || !value_ok(ts) || ts.find_first_of(".eE") != std::string_view::npos) {
                return where + "bad timestamp";
            }
        }
        auto type = types.find(name);
        if (type == types.end()) return where + "sample without a TYPE";
        if (type->second == "counter" && value.front() == '-') return where + "negative counter";
        sampled.insert(name);
    }
    return "";
}

/// The value of the sample `series` ("name" or "name{label=\"v\"}") in `text`, if present.
inline std::optional<std::string> sample_value(std::string_view text, std::string_view series) {
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
            return std::string(line.substr(series.size() + 1));
    }
    return std::nullopt;
}

/// The value of `series` as an integer, or -1 if it is absent.
inline long long sample_int(std::string_view text, std::string_view series) {
    const auto v = sample_value(text, series);
    return v ? std::stoll(*v) : -1;
}

/// The family names declared by "# TYPE" lines, in order.
inline std::vector<std::string> family_names(std::string_view text) {
    std::vector<std::string> names;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.starts_with("# TYPE ")) continue;
        line.remove_prefix(7);
        names.emplace_back(line.substr(0, line.find(' ')));
    }
    return names;
}

}  // namespace keel::test
