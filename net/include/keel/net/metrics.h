// The network stack's metrics (keel/metrics.h). The guest registers them (net/guest/metrics.cc)
// as two sources: "netfront" (link_stats(): keel_netfront_*) and "net" (stats(): keel_net_*,
// keel_tcp_*, keel_udp_*, keel_dns_*). Context: loop only.
#pragma once

#include "keel/net/stats.h"
#include "keel/prometheus.h"

namespace keel::net {

/// Every counter of Stats: keel_net_* (links, the rx copies, lwIP's heap), keel_tcp_*,
/// keel_udp_*, keel_dns_*.
void write_metrics(MetricsWriter& w, const Stats& stats);

/// The link devices' counters, summed over the devices: keel_netfront_*.
void write_link_metrics(MetricsWriter& w, const LinkStats& stats);

}  // namespace keel::net
