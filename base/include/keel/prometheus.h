// The Prometheus text exposition format (0.0.4), written into a caller's buffer: what every
// /metrics page is made of. The families themselves come from keel/metrics.h (kernel/), where
// each component registers the ones it exports.
//
//   MetricsWriter w(buffer);
//   w.counter("keel_http_requests_total", "HTTP requests parsed completely.", stats.requests);
//   w.gauge("keel_heap_in_use_bytes", "Heap bytes handed out.", heap.in_use());
//   w.family("keel_http_responses_total", "HTTP responses, by status class.", MetricType::counter);
//   w.sample("class", "2xx", stats.responses_2xx);
//   if (!w.ok()) ...   // an invalid name, a sample before a family, or the buffer was full
//
// Names: keel_<component>_<what>, counters end in _total, byte counts say _bytes (before the
// _total of a counter): see README.md "Metrics".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "keel/text_buffer.h"

namespace keel {

enum class MetricType : std::uint8_t { counter, gauge };

/// Content-Type of a metrics response.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// A Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or with allow_colon false a label name.
bool is_metric_name(std::string_view s, bool allow_colon = true);

/// Writes Prometheus text: a family ("# HELP", "# TYPE") then its samples ("name value",
/// "name{label=\"value\"} value"). HELP text and label values are escaped. An invalid
/// metric/label name, a sample before any family, or a full buffer turn ok() false; nothing is
/// written past the buffer. Context: any.
class MetricsWriter : private TextBuffer {
public:
    explicit MetricsWriter(std::span<char> out) : TextBuffer(out) {}

    void family(std::string_view name, std::string_view help, MetricType type);

    template <typename T>
    requires std::is_integral_v<T>
    void sample(T value) { sample_line({}, {}, negative(value), magnitude(value)); }
    template <typename T>
    requires std::is_integral_v<T>
    void sample(std::string_view label, std::string_view label_value, T value) {
        sample_line(label, label_value, negative(value), magnitude(value));
    }

    /// family(counter) + sample.
    void counter(std::string_view name, std::string_view help, std::uint64_t value) {
        family(name, help, MetricType::counter);
        sample(value);
    }
    /// family(gauge) + sample (signed or unsigned: the value is written as it is).
    template <typename T>
    requires std::is_integral_v<T>
    void gauge(std::string_view name, std::string_view help, T value) {
        family(name, help, MetricType::gauge);
        sample(value);
    }

    using TextBuffer::ok;
    using TextBuffer::text;

private:
    template <typename T>
    static bool negative(T v) {
        if constexpr (std::is_signed_v<T>) {
            return v < 0;
        } else {
            return false;
        }
    }
    template <typename T>
    static std::uint64_t magnitude(T v) {
        if constexpr (std::is_signed_v<T>) {
            return v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
        } else {
            return static_cast<std::uint64_t>(v);
        }
    }
    void sample_line(std::string_view label, std::string_view label_value, bool negative, std::uint64_t mag);
    void put_escaped(std::string_view s, bool quote);

    std::string_view name_;  // current family
};

}  // namespace keel
