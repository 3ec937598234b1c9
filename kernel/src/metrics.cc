// The metrics registry (metrics.h) and the kernel's own families.
#include "keel/metrics.h"

namespace keel::metrics {
namespace {

// Built on first use: a global IntrusiveList would need a global constructor (its sentinel
// points at itself), and sources register from KEEL_INIT functions, before those run.
IntrusiveList<Source, detail::SourceTag>& sources() {
    static IntrusiveList<Source, detail::SourceTag> list;
    return list;
}

}  // namespace

void add(Source& source) {
    if (source.linked()) return;
    sources().push_back(source);
}

void write_all(MetricsWriter& w) {
    auto& list = sources();
    for (Source* s = list.front(); s != nullptr; s = list.next(*s)) s->write(w);
}

std::size_t source_count() { return sources().size(); }

void write_kernel(MetricsWriter& w, const Heap& heap, std::uint64_t uptime_ns) {
    w.gauge("keel_uptime_seconds", "Seconds since the kernel started.", uptime_ns / 1'000'000'000ull);
    w.gauge("keel_heap_in_use_bytes", "Heap bytes handed out.", heap.in_use());
    w.gauge("keel_heap_peak_bytes", "Most heap bytes handed out at once so far.", heap.peak());
    w.gauge("keel_heap_headroom_bytes", "Heap bytes still to be had.", heap.headroom());
    w.gauge("keel_heap_pages", "Pages the heap holds (slabs, cached slabs, page blocks).", heap.pages());
    w.counter("keel_heap_allocations_total", "Heap allocations.", heap.allocations());
}

}  // namespace keel::metrics
