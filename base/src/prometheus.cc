// MetricsWriter (prometheus.h): the text exposition format 0.0.4.
#include "keel/prometheus.h"

namespace keel {

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: the same without ':'.
bool is_metric_name(std::string_view s, bool allow_colon) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool letter =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

// HELP text escapes '\' and newline; label values also '"'.
void MetricsWriter::put_escaped(std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') {
            put("\\\\");
        } else if (c == '\n') {
            put("\\n");
        } else if (quote && c == '"') {
            put("\\\"");
        } else {
            put(std::string_view(&c, 1));
        }
    }
}

void MetricsWriter::family(std::string_view name, std::string_view help, MetricType type) {
    if (!is_metric_name(name, true)) {
        fail();
        return;
    }
    name_ = name;
    put("# HELP ");
    put(name);
    put(" ");
    put_escaped(help, false);
    put("\n# TYPE ");
    put(name);
    put(type == MetricType::counter ? " counter\n" : " gauge\n");
}

void MetricsWriter::sample_line(std::string_view label, std::string_view label_value, bool negative,
                                std::uint64_t mag) {
    if (name_.empty() || (!label.empty() && !is_metric_name(label, false))) {
        fail();
        return;
    }
    put(name_);
    if (!label.empty()) {
        put("{");
        put(label);
        put("=\"");
        put_escaped(label_value, true);
        put("\"}");
    }
    put(" ");
    if (negative) put("-");
    put_u64(mag);
    put("\n");
}

}  // namespace keel
