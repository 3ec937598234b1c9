// Registers the network stack's metrics (keel/net/metrics.h): the link devices' counters
// (netfront) and the stack's. Every image that links net exports them, before net::start().
#include "keel/metrics.h"
#include "keel/init.h"
#include "keel/net/metrics.h"
#include "keel/net/stats.h"

namespace keel::net {
namespace {

void register_metrics() {
    static metrics::Source link("netfront", [](MetricsWriter& w) { write_link_metrics(w, link_stats()); });
    static metrics::Source stack("net", [](MetricsWriter& w) { write_metrics(w, stats()); });
    metrics::add(link);
    metrics::add(stack);
}

}  // namespace
}  // namespace keel::net

KEEL_INIT(30, net_metrics, keel::net::register_metrics);
