// The network stack's metric families (keel/net/metrics.h): every counter of Stats and
// LinkStats is exported once, under its own name, and httpd's names of old are kept.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fakes/prometheus_check.h"
#include "keel/net/metrics.h"

namespace keel::net {
namespace {

using test::check_prometheus;
using test::family_names;
using test::sample_int;

// Fills every counter of a plain struct of uint64_t with 1, 2, 3, ...
template <typename S>
S numbered() {
    static_assert(sizeof(S) % sizeof(std::uint64_t) == 0);
    std::array<std::uint64_t, sizeof(S) / sizeof(std::uint64_t)> values;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = i + 1;
    S s;
    std::memcpy(static_cast<void*>(&s), values.data(), sizeof(S));  // plain counters
    return s;
}

// The sample values in `text`, one per family; each counter appears exactly once.
void expect_each_value_once(std::string_view text, std::size_t n) {
    const std::vector<std::string> names = family_names(text);
    ASSERT_EQ(names.size(), n) << text;
    std::set<long long> seen;
    for (const std::string& name : names) {
        const long long v = sample_int(text, name);
        EXPECT_TRUE(v >= 1 && v <= static_cast<long long>(n)) << name << " " << v;
        EXPECT_TRUE(seen.insert(v).second) << name << " repeats value " << v;
        EXPECT_TRUE(name.starts_with("keel_")) << name;
    }
}

TEST(NetMetrics, EveryStackCounterOnce) {
    const Stats s = numbered<Stats>();
    std::array<char, 16384> buf;
    MetricsWriter w(buf);
    write_metrics(w, s);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(check_prometheus(w.text()), "") << w.text();
    expect_each_value_once(w.text(), sizeof(Stats) / sizeof(std::uint64_t));
    // Names httpd's /metrics had before the registry (dashboards may use them).
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_open_connections"), static_cast<long long>(s.tcp_open));
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_refused_total"), static_cast<long long>(s.tcp_refused));
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_orphans_reclaimed_total"),
              static_cast<long long>(s.tcp_orphans_reclaimed));
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_rx_copied_total"), static_cast<long long>(s.tcp_rx_copied));
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_rx_refused_total"), static_cast<long long>(s.tcp_rx_refused));
    EXPECT_EQ(sample_int(w.text(), "keel_net_rx_heap_bytes"), static_cast<long long>(s.rx_heap_bytes));
    EXPECT_EQ(sample_int(w.text(), "keel_net_tx_heap_bytes"), static_cast<long long>(s.tx_heap_bytes));
    EXPECT_EQ(sample_int(w.text(), "keel_tcp_tx_held_back_total"), static_cast<long long>(s.tcp_tx_held_back));
    EXPECT_EQ(sample_int(w.text(), "keel_net_tx_gso_segments_total"),
              static_cast<long long>(s.tx_gso_segments));
    // Counters end in _total, gauges do not.
    for (const std::string& name : family_names(w.text())) {
        const bool total = name.ends_with("_total");
        EXPECT_NE(w.text().find("# TYPE " + name + (total ? " counter\n" : " gauge\n")),
                  std::string_view::npos)
            << name;
    }
}

TEST(NetMetrics, EveryLinkCounterOnce) {
    const LinkStats ls = numbered<LinkStats>();
    std::array<char, 8192> buf;
    MetricsWriter w(buf);
    write_link_metrics(w, ls);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(check_prometheus(w.text()), "") << w.text();
    expect_each_value_once(w.text(), sizeof(LinkStats) / sizeof(std::uint64_t));
    EXPECT_EQ(sample_int(w.text(), "keel_netfront_rx_packets_total"), static_cast<long long>(ls.rx_packets));
    EXPECT_EQ(sample_int(w.text(), "keel_netfront_drops_total"), static_cast<long long>(ls.drops));
    EXPECT_EQ(sample_int(w.text(), "keel_netfront_held_pages"), static_cast<long long>(ls.held_pages));
}

}  // namespace
}  // namespace keel::net
