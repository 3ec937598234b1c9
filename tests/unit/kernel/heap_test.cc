// Heap over host memory: size classes, page blocks, realloc, statistics, misuse detection.
#include "keel/heap.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "fakes/fake_loop.h"

namespace keel {
namespace {

/// Pages from the host, with a limit and a ledger that checks every free.
struct HostPages : Heap::PageSource {
    std::map<void*, std::size_t> out;
    std::size_t limit = ~std::size_t{0};
    std::size_t held = 0;

    void* alloc_pages(std::size_t n) override {
        if (held + n > limit) return nullptr;
        void* p = std::aligned_alloc(4096, n * 4096);
        std::memset(p, 0xa5, n * 4096);  // garbage, like real free memory
        out[p] = n;
        held += n;
        return p;
    }
    void free_pages(void* p, std::size_t n) override {
        auto it = out.find(p);
        ASSERT_NE(it, out.end()) << "heap freed pages it never got";
        ASSERT_EQ(it->second, n) << "heap freed a different page count";
        out.erase(it);
        held -= n;
        std::free(p);
    }
    std::size_t free_page_count() const override { return limit - held; }
    ~HostPages() override {
        for (auto& [p, n] : out) std::free(p);
    }
};

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

TEST(Heap, SmallAllocationsUseSizeClasses) {
    HostPages src;
    Heap heap(src);
    void* a = heap.alloc(1);
    void* b = heap.alloc(16);
    void* c = heap.alloc(17);
    void* d = heap.alloc(2016);
    ASSERT_TRUE(a && b && c && d);
    EXPECT_EQ(heap.usable_size(a), 16u);
    EXPECT_EQ(heap.usable_size(b), 16u);
    EXPECT_EQ(heap.usable_size(c), 32u);
    EXPECT_EQ(heap.usable_size(d), 2016u);
    for (void* p : {a, b, c, d}) EXPECT_TRUE(aligned(p, 16));
    // a and b share a slab page.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) / 4096, reinterpret_cast<std::uintptr_t>(b) / 4096);
    EXPECT_EQ(heap.in_use(), 16u + 16u + 32u + 2016u);
    EXPECT_EQ(heap.pages(), 3u);
    for (void* p : {a, b, c, d}) heap.free(p);
    EXPECT_EQ(heap.in_use(), 0u);
    EXPECT_EQ(heap.peak(), 16u + 16u + 32u + 2016u);
    EXPECT_EQ(heap.allocations(), 4u);
}

TEST(Heap, EveryClassFillsAndDrainsItsSlabs) {
    HostPages src;
    Heap heap(src);
    for (std::size_t size : {16, 24, 48, 100, 128, 200, 256, 300, 500, 700, 1000, 1300, 2000}) {
        std::vector<void*> ps;
        for (int i = 0; i < 600; ++i) {
            void* p = heap.alloc(size);
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(aligned(p, 16));
            ASSERT_GE(heap.usable_size(p), size);
            std::memset(p, i & 0xff, size);
            ps.push_back(p);
        }
        for (std::size_t i = 0; i < ps.size(); ++i) {
            const auto* q = static_cast<const unsigned char*>(ps[i]);
            for (std::size_t k = 0; k < size; ++k) ASSERT_EQ(q[k], i & 0xff) << "size " << size;
        }
        for (void* p : ps) heap.free(p);
        EXPECT_EQ(heap.in_use(), 0u);
    }
    // One cached empty slab per class at most.
    EXPECT_LE(heap.pages(), Heap::class_count);
}

TEST(Heap, EmptySlabsGoBackButOneIsCached) {
    HostPages src;
    Heap heap(src);
    std::vector<void*> ps;
    for (int i = 0; i < 252 * 3; ++i) ps.push_back(heap.alloc(16));  // exactly three full slabs
    EXPECT_EQ(heap.pages(), 3u);
    for (void* p : ps) heap.free(p);
    EXPECT_EQ(heap.pages(), 1u);
    // Alloc/free of one object no longer touches the page source.
    const std::size_t held = src.held;
    for (int i = 0; i < 100; ++i) heap.free(heap.alloc(10));
    EXPECT_EQ(src.held, held);
}

TEST(Heap, LargeAllocationsAreWholePages) {
    HostPages src;
    Heap heap(src);
    void* p = heap.alloc(2017);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(heap.pages(), 1u);  // 64-byte header + 2017 bytes fit in one page
    EXPECT_EQ(heap.usable_size(p), 4096u - 64u);
    void* q = heap.alloc(100000);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(heap.pages(), 1u + 25u);  // (64 + 100000) / 4096 rounded up
    std::memset(q, 0x5a, 100000);
    EXPECT_EQ(heap.in_use(), (4096u - 64u) + (25u * 4096u - 64u));
    heap.free(p);
    heap.free(q);
    EXPECT_EQ(heap.pages(), 0u);
    EXPECT_EQ(src.held, 0u);
    EXPECT_EQ(heap.in_use(), 0u);
}

TEST(Heap, Alignment) {
    HostPages src;
    Heap heap(src);
    for (std::size_t align : {1, 2, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}) {
        for (std::size_t size : {1, 40, 100, 3000, 5000}) {
            void* p = heap.alloc(size, align);
            ASSERT_NE(p, nullptr) << size << "/" << align;
            EXPECT_TRUE(aligned(p, align < 16 ? 16 : align)) << size << "/" << align;
            EXPECT_GE(heap.usable_size(p), size);
            std::memset(p, 1, size);
            heap.free(p);
        }
    }
    // 32- and 64-aligned small requests stay in slabs.
    void* p = heap.alloc(40, 64);
    EXPECT_EQ(heap.usable_size(p), 64u);
    heap.free(p);
    EXPECT_EQ(heap.alloc(8, 3), nullptr);
    EXPECT_EQ(heap.alloc(8, 8192), nullptr);
    EXPECT_EQ(heap.in_use(), 0u);
}

TEST(Heap, PageAlignedBlocksCostAHeaderPage) {
    HostPages src;
    Heap heap(src);
    void* p = heap.alloc(4096, 4096);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, 4096));
    EXPECT_EQ(heap.pages(), 2u);
    EXPECT_EQ(heap.usable_size(p), 4096u);
    heap.free(p);
    EXPECT_EQ(src.held, 0u);
}

TEST(Heap, Realloc) {
    HostPages src;
    Heap heap(src);
    auto* p = static_cast<unsigned char*>(heap.realloc(nullptr, 10));
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 10; ++i) p[i] = static_cast<unsigned char>(i);
    // Fits the class: stays.
    EXPECT_EQ(heap.realloc(p, 16), p);
    EXPECT_EQ(heap.realloc(p, 3), p);
    // Grows: moves and keeps the contents.
    auto* q = static_cast<unsigned char*>(heap.realloc(p, 5000));
    ASSERT_NE(q, nullptr);
    EXPECT_NE(q, p);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(q[i], i);
    std::memset(q + 10, 0x77, 4990);
    // Page block shrunk below half: moves to a small block.
    auto* r = static_cast<unsigned char*>(heap.realloc(q, 100));
    ASSERT_NE(r, nullptr);
    EXPECT_NE(r, q);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(r[i], i);
    for (int i = 10; i < 100; ++i) EXPECT_EQ(r[i], 0x77);
    // Page block shrunk a little: stays.
    void* big = heap.alloc(8000);
    EXPECT_EQ(heap.realloc(big, 7000), big);
    // Size 0 frees.
    EXPECT_EQ(heap.realloc(r, 0), nullptr);
    heap.free(big);
    EXPECT_EQ(heap.in_use(), 0u);
}

TEST(Heap, ReallocFailureLeavesTheBlock) {
    HostPages src;
    Heap heap(src);
    void* p = heap.alloc(100);
    std::memset(p, 3, 100);
    src.limit = src.held;
    EXPECT_EQ(heap.realloc(p, 10000), nullptr);
    EXPECT_EQ(static_cast<unsigned char*>(p)[99], 3);
    heap.free(p);
}

TEST(Heap, OutOfMemory) {
    HostPages src;
    src.limit = 4;
    Heap heap(src);
    EXPECT_EQ(heap.alloc(5 * 4096), nullptr);
    EXPECT_EQ(heap.alloc(SIZE_MAX), nullptr);  // no overflow in the page count
    EXPECT_EQ(heap.alloc(SIZE_MAX - 4096, 4096), nullptr);
    void* big = heap.alloc(3 * 4096 - 64);
    ASSERT_NE(big, nullptr);
    void* small = heap.alloc(16);
    ASSERT_NE(small, nullptr);
    EXPECT_EQ(heap.alloc(32), nullptr);  // a new class needs a page: none left
    void* small2 = heap.alloc(16);       // the existing slab still has room
    EXPECT_NE(small2, nullptr);
    heap.free(small);
    heap.free(small2);
    heap.free(big);
    void* c = heap.alloc(32);
    EXPECT_NE(c, nullptr);
    heap.free(c);
}

// headroom() is what the checks before client-driven work rely on (net::serve's reserve): the
// source's free pages, shrinking as blocks take pages and growing as they are freed.
TEST(Heap, HeadroomIsTheSourcesFreePages) {
    HostPages src;
    src.limit = 8;
    Heap heap(src);
    EXPECT_EQ(heap.headroom(), 8u * 4096);
    void* big = heap.alloc(3 * 4096 - 64);
    EXPECT_EQ(heap.headroom(), 5u * 4096);
    void* small = heap.alloc(16);
    EXPECT_EQ(heap.headroom(), 4u * 4096);
    heap.free(big);
    EXPECT_EQ(heap.headroom(), 7u * 4096);
    heap.free(small);

    EXPECT_EQ(heap_headroom(), SIZE_MAX);  // no global heap: the host's operator new
    set_global_heap(&heap);
    EXPECT_EQ(heap_headroom(), heap.headroom());
    set_global_heap(nullptr);
}

TEST(Heap, ZeroSizeGivesAUniqueBlock) {
    HostPages src;
    Heap heap(src);
    void* a = heap.alloc(0);
    void* b = heap.alloc(0);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a, b);
    heap.free(a);
    heap.free(b);
    heap.free(nullptr);
}

TEST(Heap, RandomWithPatterns) {
    HostPages src;
    Heap heap(src);
    struct Live {
        unsigned char* p;
        std::size_t size;
        unsigned char tag;
    };
    std::vector<Live> live;
    std::mt19937 rng(1234);
    std::size_t expect_in_use = 0;
    for (int step = 0; step < 30000; ++step) {
        const unsigned r = rng() % 100;
        if (live.empty() || r < 55) {
            std::size_t size;
            const unsigned kind = rng() % 10;
            if (kind < 7)
                size = rng() % 256;
            else if (kind < 9)
                size = rng() % 2100;
            else
                size = rng() % 20000;
            const std::size_t align = std::size_t{1} << (rng() % 13);
            auto* p = static_cast<unsigned char*>(heap.alloc(size, align));
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(aligned(p, align));
            const auto tag = static_cast<unsigned char>(rng());
            std::memset(p, tag, size);
            live.push_back({p, size, tag});
            expect_in_use += heap.usable_size(p);
        } else if (r < 90) {
            const std::size_t k = rng() % live.size();
            Live l = live[k];
            for (std::size_t i = 0; i < l.size; ++i) ASSERT_EQ(l.p[i], l.tag) << "block corrupted";
            expect_in_use -= heap.usable_size(l.p);
            heap.free(l.p);
            live[k] = live.back();
            live.pop_back();
        } else {
            const std::size_t k = rng() % live.size();
            Live& l = live[k];
            const std::size_t size = rng() % 6000;
            expect_in_use -= heap.usable_size(l.p);
            auto* p = static_cast<unsigned char*>(heap.realloc(l.p, size));
            if (size == 0) {
                ASSERT_EQ(p, nullptr);
                live[k] = live.back();
                live.pop_back();
                continue;
            }
            ASSERT_NE(p, nullptr);
            const std::size_t keep = size < l.size ? size : l.size;
            for (std::size_t i = 0; i < keep; ++i) ASSERT_EQ(p[i], l.tag) << "realloc lost data";
            std::memset(p, l.tag, size);
            l.p = p;
            l.size = size;
            expect_in_use += heap.usable_size(p);
        }
        ASSERT_EQ(heap.in_use(), expect_in_use);
    }
    for (const Live& l : live) heap.free(l.p);
    EXPECT_EQ(heap.in_use(), 0u);
    EXPECT_GT(heap.peak(), 0u);
    EXPECT_LE(heap.pages(), Heap::class_count);
}

TEST(Heap, DestructorReturnsCachedSlabs) {
    HostPages src;
    {
        Heap heap(src);
        for (std::size_t size : {16, 64, 1000}) heap.free(heap.alloc(size));
        EXPECT_EQ(src.held, 3u);
    }
    EXPECT_EQ(src.held, 0u);
}

TEST(Heap, AllocationCounter) {
    HostPages src;
    Heap heap(src);
    const std::size_t before = heap.allocations();
    void* p = heap.alloc(8);
    p = heap.realloc(p, 12);  // in place: not an allocation
    EXPECT_EQ(heap.allocations(), before + 1);
    p = heap.realloc(p, 400);  // moves: one more
    EXPECT_EQ(heap.allocations(), before + 2);
    heap.free(p);
    EXPECT_EQ(heap.allocations(), before + 2);
}

TEST(Heap, GlobalHeap) {
    HostPages src;
    Heap heap(src);
    set_global_heap(&heap);
    EXPECT_EQ(&global_heap(), &heap);
    set_global_heap(nullptr);
}

TEST(Heap, OverPageAllocator) {
    // PageAllocatorSource with a virtual offset, over real host memory.
    void* arena = std::aligned_alloc(4096, 64 * 4096);
    const std::uintptr_t fake_phys = 0x100000;
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(fake_phys, 64 * 4096).ok());
    PageAllocatorSource src(pa, reinterpret_cast<std::uintptr_t>(arena) - fake_phys);
    {
        Heap heap(src);
        void* p = heap.alloc(10000);
        ASSERT_NE(p, nullptr);
        EXPECT_GE(p, arena);
        EXPECT_LT(p, static_cast<char*>(arena) + 64 * 4096);
        EXPECT_EQ(pa.free_pages(), 64u - 3u);
        heap.free(p);
        EXPECT_EQ(pa.free_pages(), 64u);
    }
    std::free(arena);
}

class HeapDeathTest : public ::testing::Test {};

// Runs `misuse` on a fresh heap in a child that panics for real: it must die with `message`.
template <typename Misuse>
void expect_heap_panic(Misuse misuse, const char* message) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            HostPages src;
            Heap heap(src);
            misuse(heap);
        },
        message);
}

TEST_F(HeapDeathTest, DoubleFreeSmall) {
    expect_heap_panic(
        [](Heap& heap) {
            void* keep = heap.alloc(32);  // keeps the slab alive
            void* p = heap.alloc(32);
            heap.free(p);
            heap.free(p);
            heap.free(keep);
        },
        "already freed");
}

TEST_F(HeapDeathTest, DoubleFreeLarge) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            struct KeepPages : HostPages {
                // Keep freed pages mapped so the second free reads a cleared header.
                void free_pages(void*, std::size_t n) override { held -= n; }
            } src;
            Heap heap(src);
            void* p = heap.alloc(10000);
            heap.free(p);
            heap.free(p);
        },
        "not a heap block, or already freed");
}

TEST_F(HeapDeathTest, ForeignPointer) {
    expect_heap_panic(
        [](Heap& heap) {
            auto* page = static_cast<char*>(std::aligned_alloc(4096, 2 * 4096));
            std::memset(page, 0, 2 * 4096);
            heap.free(page + 100);
        },
        "not a heap block");
}

TEST_F(HeapDeathTest, PointerIntoTheMiddleOfABlock) {
    for (std::size_t size : {64u, 9000u}) {  // a slab block and a large one
        SCOPED_TRACE(size);
        expect_heap_panic(
            [size](Heap& heap) {
                auto* p = static_cast<char*>(heap.alloc(size));
                heap.free(p + 16);
            },
            "not the start of a heap block");
    }
}

TEST_F(HeapDeathTest, GlobalHeapUnset) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            set_global_heap(nullptr);
            (void)global_heap();
        },
        "g_heap != nullptr");
}

}  // namespace
}  // namespace keel
