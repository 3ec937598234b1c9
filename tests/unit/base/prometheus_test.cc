// MetricsWriter (keel/prometheus.h) and TextBuffer, checked against the Prometheus text-format
// checker of tests/fakes/prometheus_check.h (which is tested here too).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "fakes/prometheus_check.h"
#include "keel/prometheus.h"
#include "keel/text_buffer.h"

namespace keel {
namespace {

using test::check_prometheus;

TEST(PrometheusChecker, KnowsGoodFromBad) {
    EXPECT_EQ(check_prometheus(""), "");
    EXPECT_EQ(check_prometheus(
                  "# HELP a_total x\\ny\n# TYPE a_total counter\na_total{k=\"v\\\"\",l=\"\"} 1 1700\n"),
              "");
    EXPECT_EQ(check_prometheus("# TYPE g gauge\ng -1.5e3\ng NaN\n"), "");
    for (const char* bad : {
             "# TYPE g gauge\ng 1",  // no newline
             "g 1\n",                // no TYPE
             "# TYPE 1g gauge\n",    // bad name
             "# TYPE g gauge\n# TYPE g gauge\n",
             "# TYPE g widget\n",
             "# TYPE c counter\nc -1\n",
             "# TYPE g gauge\ng{a=\"x} 1\n",
             "# TYPE g gauge\ng{a=x} 1\n",
             "# TYPE g gauge\ng 1x\n",
             "# HELP g a\\tb\n",
         }) {
        EXPECT_NE(check_prometheus(bad), "") << bad;
    }
}

TEST(MetricsWriter, CountersGaugesLabels) {
    std::array<char, 1024> buf;
    MetricsWriter w(buf);
    w.counter("keel_up_total", "Things.", 42);
    w.gauge("keel_temp", "Degrees; may be below zero.", -7);
    w.family("keel_by_kind_total", "By kind, with a \\ and a\nnewline.", MetricType::counter);
    w.sample("kind", "a", 1u);
    w.sample("kind", "quote\" back\\ nl\n", std::uint64_t{18446744073709551615u});
    w.family("keel_min", "Smallest.", MetricType::gauge);
    w.sample(std::int64_t{INT64_MIN});
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.text(),
              "# HELP keel_up_total Things.\n"
              "# TYPE keel_up_total counter\n"
              "keel_up_total 42\n"
              "# HELP keel_temp Degrees; may be below zero.\n"
              "# TYPE keel_temp gauge\n"
              "keel_temp -7\n"
              "# HELP keel_by_kind_total By kind, with a \\\\ and a\\nnewline.\n"
              "# TYPE keel_by_kind_total counter\n"
              "keel_by_kind_total{kind=\"a\"} 1\n"
              "keel_by_kind_total{kind=\"quote\\\" back\\\\ nl\\n\"} 18446744073709551615\n"
              "# HELP keel_min Smallest.\n"
              "# TYPE keel_min gauge\n"
              "keel_min -9223372036854775808\n");
    EXPECT_EQ(check_prometheus(w.text()), "");
}

TEST(MetricsWriter, Refuses) {
    std::array<char, 256> buf;
    {
        MetricsWriter w(buf);
        w.sample(1);  // no family yet
        EXPECT_FALSE(w.ok());
    }
    for (std::string_view name : {"", "1abc", "a-b", "a b", "a{b}"}) {
        MetricsWriter w(buf);
        w.counter(name, "x", 1);
        EXPECT_FALSE(w.ok()) << name;
    }
    {
        MetricsWriter w(buf);
        w.family("ok:name_1", "x", MetricType::gauge);
        EXPECT_TRUE(w.ok());
        w.sample("a:b", "v", 1);  // ':' is not allowed in label names
        EXPECT_FALSE(w.ok());
    }
    {
        MetricsWriter w(std::span<char>(buf.data(), 40));
        w.counter("keel_requests_total", "Requests.", 1);
        EXPECT_FALSE(w.ok());
        EXPECT_LE(w.text().size(), 40u);
    }
}

TEST(MetricsWriter, UnsignedGaugesAreWrittenWhole) {
    std::array<char, 256> buf;
    MetricsWriter w(buf);
    w.gauge("keel_big_bytes", "Unsigned.", std::uint64_t{18446744073709551615u});
    w.gauge("keel_flag", "A bool as 0/1.", true);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(test::sample_value(w.text(), "keel_big_bytes"), "18446744073709551615");
    EXPECT_EQ(test::sample_int(w.text(), "keel_flag"), 1);
    EXPECT_EQ(check_prometheus(w.text()), "");
}

TEST(MetricsWriter, ANameCheckForEachKind) {
    EXPECT_TRUE(is_metric_name("keel_a:b_1"));
    EXPECT_FALSE(is_metric_name("keel_a:b_1", false));
    EXPECT_FALSE(is_metric_name("_1a-"));
    EXPECT_TRUE(is_metric_name("_1a", false));
    EXPECT_FALSE(is_metric_name(""));
}

TEST(TextBuffer, NeverPastTheEndAndStaysFailed) {
    std::array<char, 8> buf;
    TextBuffer t(buf);
    t.put("abc");
    t.put_u64(12345);
    EXPECT_TRUE(t.ok());
    EXPECT_EQ(t.text(), "abc12345");
    t.put("x");
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.text(), "abc12345");
    TextBuffer u(std::span<char>(buf.data(), 4));
    u.put_u64(123456);  // does not fit: nothing of it is written
    u.put("ab");        // and nothing after
    EXPECT_FALSE(u.ok());
    EXPECT_EQ(u.text(), "");
    TextBuffer z(buf);
    z.put_u64(0);
    EXPECT_EQ(z.text(), "0");
}

}  // namespace
}  // namespace keel
