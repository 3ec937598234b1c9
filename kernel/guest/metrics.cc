// Registers the kernel's metrics (metrics::write_kernel) first of all sources, before the
// drivers' KEEL_INIT entries run; uptime counts from here.
#include "keel/metrics.h"
#include "keel/heap.h"
#include "keel/init.h"
#include "keel/loop.h"
#include "keel/xen/platform.h"

namespace keel::metrics {
namespace {

std::uint64_t g_started_ns = 0;

void start() {
    g_started_ns = loop().now();
    static Source kernel(
        "kernel", [](MetricsWriter& w) {
            write_kernel(w, global_heap(), loop().now() - g_started_ns);
            const xen::StackUse s = xen::stack_use();
            w.gauge("keel_stack_bytes", "Size of the event loop's stack.", s.size);
            w.gauge("keel_stack_peak_bytes", "Most bytes of the event loop's stack used at once so far.", s.peak);
            const xen::XenCalls x = xen::xen_calls();
            w.family("keel_xen_hypercalls_total", "Hypercalls made (each a VM exit in PVH), by Xen's name.",
                     MetricType::counter);
            for (unsigned nr = 0; nr < 64; ++nr) {
                if (x.hypercalls[nr] == 0) continue;
                const char* name = xen::hypercall_name(nr);
                char unnamed[] = "nr_00";  // a number hypercall_name() does not know yet
                unnamed[3] = static_cast<char>('0' + nr / 10);
                unnamed[4] = static_cast<char>('0' + nr % 10);
                w.sample("op", name != nullptr ? name : unnamed, x.hypercalls[nr]);
            }
            w.counter("keel_xen_upcalls_total", "Event-channel upcalls taken (each an injected interrupt).", x.upcalls);
        });
    add(kernel);
}

}  // namespace
}  // namespace keel::metrics

KEEL_INIT(01, kernel_metrics, keel::metrics::start);
