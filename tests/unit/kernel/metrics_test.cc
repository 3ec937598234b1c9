// The metrics registry (keel/metrics.h): every registered source is written, in the order it
// was added, once each; a destroyed source is gone; the kernel's own families carry the heap's
// numbers.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "fakes/prometheus_check.h"
#include "keel/heap.h"
#include "keel/metrics.h"

namespace keel {
namespace {

using test::check_prometheus;
using test::family_names;
using test::sample_int;

std::string write_all_text() {
    static std::array<char, 65536> buf;
    MetricsWriter w(buf);
    metrics::write_all(w);
    EXPECT_TRUE(w.ok());
    return std::string(w.text());
}

TEST(MetricsRegistry, WritesEverySourceInOrderOnce) {
    const std::size_t before = metrics::source_count();
    std::uint64_t ticks = 7;
    metrics::Source a("a", [](MetricsWriter& w) { w.counter("keel_a_total", "A.", 1); });
    metrics::Source b("b", [&ticks](MetricsWriter& w) {
        w.gauge("keel_b", "B.", ticks);
        w.family("keel_b_by_kind_total", "B by kind.", MetricType::counter);
        w.sample("kind", "x", 2);
        w.sample("kind", "y", 3);
    });
    EXPECT_FALSE(a.registered());
    metrics::add(a);
    metrics::add(b);
    metrics::add(a);  // again: keeps its place, written once
    EXPECT_TRUE(a.registered());
    EXPECT_EQ(metrics::source_count(), before + 2);
    std::string text = write_all_text();
    EXPECT_EQ(check_prometheus(text), "") << text;
    EXPECT_EQ(family_names(text),
              (std::vector<std::string>{"keel_a_total", "keel_b", "keel_b_by_kind_total"}));
    EXPECT_EQ(sample_int(text, "keel_a_total"), 1);
    EXPECT_EQ(sample_int(text, "keel_b"), 7);
    EXPECT_EQ(sample_int(text, "keel_b_by_kind_total{kind=\"y\"}"), 3);
    ticks = 9;  // written when asked, not when registered
    EXPECT_EQ(sample_int(write_all_text(), "keel_b"), 9);
}

TEST(MetricsRegistry, ADestroyedSourceIsNoLongerWritten) {
    const std::size_t before = metrics::source_count();
    metrics::Source keep("keep", [](MetricsWriter& w) { w.counter("keel_keep_total", "Kept.", 1); });
    metrics::add(keep);
    {
        metrics::Source gone("gone", [](MetricsWriter& w) { w.counter("keel_gone_total", "Gone.", 1); });
        metrics::add(gone);
        EXPECT_EQ(metrics::source_count(), before + 2);
    }
    EXPECT_EQ(metrics::source_count(), before + 1);
    const std::string text = write_all_text();
    EXPECT_EQ(family_names(text), std::vector<std::string>{"keel_keep_total"});
}

TEST(MetricsRegistry, AFullBufferFailsTheWriter) {
    metrics::Source big("big", [](MetricsWriter& w) {
        for (int i = 0; i < 50; ++i) w.counter("keel_big_total", "Big.", 1);
    });
    metrics::add(big);
    std::array<char, 256> buf;
    MetricsWriter w(buf);
    metrics::write_all(w);
    EXPECT_FALSE(w.ok());
    EXPECT_LE(w.text().size(), buf.size());
}

struct Pages : Heap::PageSource {
    std::size_t limit = 64, held = 0;
    void* alloc_pages(std::size_t n) override {
        if (held + n > limit) return nullptr;
        held += n;
        return std::aligned_alloc(4096, n * 4096);
    }
    void free_pages(void* p, std::size_t n) override {
        held -= n;
        std::free(p);
    }
    std::size_t free_page_count() const override { return limit - held; }
};

TEST(KernelMetrics, HeapAndUptime) {
    Pages pages;
    Heap heap(pages);
    void* a = heap.alloc(100);
    void* b = heap.alloc(10000);
    std::array<char, 4096> buf;
    MetricsWriter w(buf);
    metrics::write_kernel(w, heap, 3'500'000'000ull);
    ASSERT_TRUE(w.ok());
    const std::string_view text = w.text();
    EXPECT_EQ(check_prometheus(text), "") << text;
    EXPECT_EQ(sample_int(text, "keel_uptime_seconds"), 3);
    EXPECT_EQ(sample_int(text, "keel_heap_in_use_bytes"), static_cast<long long>(heap.in_use()));
    EXPECT_GE(sample_int(text, "keel_heap_in_use_bytes"), 10100);
    EXPECT_EQ(sample_int(text, "keel_heap_peak_bytes"), static_cast<long long>(heap.peak()));
    EXPECT_EQ(sample_int(text, "keel_heap_headroom_bytes"), static_cast<long long>((64 - pages.held) * 4096));
    EXPECT_EQ(sample_int(text, "keel_heap_pages"), static_cast<long long>(pages.held));
    EXPECT_EQ(sample_int(text, "keel_heap_allocations_total"), 2);
    heap.free(a);
    heap.free(b);
}

}  // namespace
}  // namespace keel
