// The metrics every service exports: each component (the kernel, the drivers, the network
// stack, the service itself) registers a Source once at init, and a /metrics page writes them
// all with one call, in the Prometheus text format (keel/prometheus.h).
//
//   void start() {                                    // a driver's KEEL_INIT function
//       static metrics::Source src("blkfront", [](MetricsWriter& w) { write_metrics(w); });
//       metrics::add(src);
//   }
//   ...
//   router.set_metrics("/metrics", [this](MetricsWriter& w) {
//       metrics::write_all(w);                         // kernel, drivers, net, ...
//       w.counter("keel_myapp_requests_total", "Requests.", requests_);   // the service's own
//   });
//
// Names: keel_<component>_<what>, counters end in _total, byte counts say _bytes. Two sources
// must not write the same family. What each component exports: README.md "Metrics".
// Context: loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "keel/function.h"
#include "keel/heap.h"
#include "keel/intrusive_list.h"
#include "keel/prometheus.h"

namespace keel::metrics {

namespace detail {
struct SourceTag;
}

/// One component's families. Registered sources stay registered until destroyed (a Source
/// unlinks itself), so keep them in static storage (tests may keep them on the stack).
class Source : private ListNode<detail::SourceTag> {
public:
    using Writer = Function<void(MetricsWriter&)>;

    Source(const char* name, Writer write) : name_(name), write_(std::move(write)) {}
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    const char* name() const { return name_; }
    bool registered() const { return linked(); }
    void write(MetricsWriter& w) { write_(w); }

private:
    friend class IntrusiveList<Source, detail::SourceTag>;
    friend void add(Source& source);

    const char* name_;
    Writer write_;
};

/// Register `source`: write_all() writes it after those registered before. Adding a source
/// twice keeps its first place.
void add(Source& source);

/// Every registered source's families, in the order they were added.
void write_all(MetricsWriter& w);

/// Registered sources (tests, status reports).
std::size_t source_count();

/// The kernel's own families: keel_uptime_seconds, keel_heap_in_use_bytes,
/// keel_heap_peak_bytes, keel_heap_headroom_bytes, keel_heap_pages, keel_heap_allocations_total.
/// The guest registers them (as source "kernel") before any driver starts.
void write_kernel(MetricsWriter& w, const Heap& heap, std::uint64_t uptime_ns);

}  // namespace keel::metrics
