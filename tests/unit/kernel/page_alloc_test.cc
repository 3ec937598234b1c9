// PageAllocator over fake physical addresses (nothing is ever dereferenced).
#include "keel/page_alloc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "fakes/fake_loop.h"

namespace keel {
namespace {

constexpr std::uint64_t P = PageAllocator::page_size;

TEST(PageAlloc, AddRangeRoundsInward) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0x1000 + 1, 3 * P).ok());  // [0x1001, 0x4001) -> pages 0x2000, 0x3000
    EXPECT_EQ(pa.total_pages(), 2u);
    EXPECT_EQ(pa.free_pages(), 2u);
    ASSERT_TRUE(pa.add_range(0x100000, P - 1).ok());  // less than a page: nothing
    ASSERT_TRUE(pa.add_range(0x200000, 0).ok());
    EXPECT_EQ(pa.total_pages(), 2u);
    EXPECT_EQ(pa.alloc(1).value(), 0x2000u);
    EXPECT_EQ(pa.alloc(1).value(), 0x3000u);
    EXPECT_EQ(pa.alloc(1).error(), Error::no_memory);
}

TEST(PageAlloc, AddRangeRejectsBadRanges) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0x10000, 16 * P).ok());
    EXPECT_EQ(pa.add_range(0x10000 + 15 * P, 2 * P).error(), Error::exists);     // overlaps the end
    EXPECT_EQ(pa.add_range(0x8000, 9 * P).error(), Error::exists);               // overlaps the start
    EXPECT_EQ(pa.add_range(0x12000, P).error(), Error::exists);                  // inside
    EXPECT_EQ(pa.add_range(~0ull - P, 2 * P).error(), Error::invalid_argument);  // wraps
    ASSERT_TRUE(pa.add_range(0x10000 + 16 * P, P).ok());  // adjacent: fine (and merges)
    EXPECT_EQ(pa.free_extents(), 1u);
    EXPECT_EQ(pa.total_pages(), 17u);
    // The very top of the address space rounds without overflow.
    ASSERT_TRUE(pa.add_range(~0ull - 3 * P + 1, 3 * P - 1).ok());
    EXPECT_EQ(pa.total_pages(), 19u);
}

TEST(PageAlloc, ExtentTableFull) {
    PageAllocator pa;
    // Non-adjacent single pages: each needs its own entry.
    for (std::size_t i = 0; i < PageAllocator::max_ranges; ++i) ASSERT_TRUE(pa.add_range(i * 2 * P, P).ok());
    EXPECT_EQ(pa.add_range(1000 * P, P).error(), Error::no_space);
    // Adjacent to an existing range still fits: it merges.
    EXPECT_TRUE(pa.add_range(1 * P, P).ok());
}

TEST(PageAlloc, CoalescesOnFree) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0x100000, 64 * P).ok());
    std::vector<std::uint64_t> pages;
    for (int i = 0; i < 64; ++i) pages.push_back(pa.alloc(1).value());
    EXPECT_EQ(pa.free_pages(), 0u);
    EXPECT_EQ(pa.free_extents(), 0u);
    // Free every other page, then the rest: must end as one extent.
    for (std::size_t i = 0; i < pages.size(); i += 2) pa.free(pages[i], 1);
    EXPECT_EQ(pa.free_extents(), 32u);
    for (std::size_t i = 1; i < pages.size(); i += 2) pa.free(pages[i], 1);
    EXPECT_EQ(pa.free_extents(), 1u);
    EXPECT_EQ(pa.free_pages(), 64u);
    EXPECT_EQ(pa.alloc(64).value(), 0x100000u);
}

TEST(PageAlloc, Alignment) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0x1000, 100 * P).ok());  // starts at an odd page
    auto a = pa.alloc(4, 4);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a.value() % (4 * P), 0u);
    EXPECT_EQ(a.value(), 0x4000u);
    auto b = pa.alloc(1, 16);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b.value() % (16 * P), 0u);
    // The pages skipped for alignment stay free and usable.
    EXPECT_EQ(pa.alloc(3).value(), 0x1000u);
    EXPECT_EQ(pa.free_pages(), 100u - 8u);
    EXPECT_EQ(pa.alloc(1, 3).error(), Error::invalid_argument);
    EXPECT_EQ(pa.alloc(1, 0).error(), Error::invalid_argument);
    EXPECT_EQ(pa.alloc(0).error(), Error::invalid_argument);
    // No 64-page-aligned run of 64 pages exists in [0x1000, 0x65000).
    EXPECT_EQ(pa.alloc(64, 64).error(), Error::no_memory);
}

TEST(PageAlloc, Exhaustion) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0, 10 * P).ok());
    ASSERT_TRUE(pa.add_range(20 * P, 10 * P).ok());
    EXPECT_EQ(pa.alloc(11).error(), Error::no_memory);  // 20 free, but not contiguous
    EXPECT_EQ(pa.alloc(21).error(), Error::no_memory);
    auto a = pa.alloc(10);
    auto b = pa.alloc(10);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(pa.alloc(1).error(), Error::no_memory);
    pa.free(a.value(), 10);
    EXPECT_TRUE(pa.alloc(10).ok());
}

TEST(PageAlloc, RandomAgainstModel) {
    PageAllocator pa;
    constexpr std::uint64_t base = 0x4000'0000;
    constexpr std::size_t n = 2048;
    ASSERT_TRUE(pa.add_range(base, n * P).ok());
    std::vector<bool> used(n, false);
    struct Block {
        std::uint64_t addr;
        std::size_t pages;
    };
    std::vector<Block> live;
    std::mt19937 rng(42);
    std::size_t used_pages = 0;
    for (int step = 0; step < 20000; ++step) {
        if (live.empty() || rng() % 3 != 0) {
            const std::size_t pages = 1 + rng() % 16;
            const std::size_t align = std::size_t{1} << (rng() % 4);
            auto r = pa.alloc(pages, align);
            if (!r.ok()) {
                EXPECT_EQ(r.error(), Error::no_memory);
                continue;
            }
            ASSERT_EQ(r.value() % (align * P), 0u);
            ASSERT_GE(r.value(), base);
            const std::size_t first = (r.value() - base) / P;
            ASSERT_LE(first + pages, n);
            for (std::size_t i = first; i < first + pages; ++i) {
                ASSERT_FALSE(used[i]) << "page handed out twice";
                used[i] = true;
            }
            used_pages += pages;
            live.push_back({r.value(), pages});
        } else {
            const std::size_t k = rng() % live.size();
            const Block blk = live[k];
            live[k] = live.back();
            live.pop_back();
            pa.free(blk.addr, blk.pages);
            const std::size_t first = (blk.addr - base) / P;
            for (std::size_t i = first; i < first + blk.pages; ++i) used[i] = false;
            used_pages -= blk.pages;
        }
        ASSERT_EQ(pa.free_pages(), n - used_pages);
    }
    for (const Block& blk : live) pa.free(blk.addr, blk.pages);
    EXPECT_EQ(pa.free_pages(), n);
    EXPECT_EQ(pa.free_extents(), 1u);
}

TEST(PageAlloc, Manages) {
    PageAllocator pa;
    ASSERT_TRUE(pa.add_range(0x10000, 4 * P).ok());
    EXPECT_TRUE(pa.manages(0x10000, 4));
    EXPECT_TRUE(pa.manages(0x13000, 1));
    EXPECT_FALSE(pa.manages(0x13000, 2));
    EXPECT_FALSE(pa.manages(0xf000, 1));
}

// Runs `misuse` on an allocator of 8 pages in a child that panics for real: it must die with
// `message`.
template <typename Misuse>
void expect_allocator_panic(Misuse misuse, const char* message) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            PageAllocator pa;
            (void)pa.add_range(0, 8 * P);
            misuse(pa);
        },
        message);
}

TEST(PageAllocDeathTest, DoubleFree) {
    expect_allocator_panic(
        [](PageAllocator& pa) {
            const std::uint64_t a = pa.alloc(2).value();
            pa.free(a, 2);
            pa.free(a, 2);
        },
        "double free");
}

TEST(PageAllocDeathTest, OverlappingFree) {
    expect_allocator_panic(
        [](PageAllocator& pa) {
            const std::uint64_t a = pa.alloc(4).value();
            pa.free(a + P, 1);
            pa.free(a, 2);  // covers the page freed above
        },
        "double free");
}

TEST(PageAllocDeathTest, ForeignOrMisalignedFree) {
    expect_allocator_panic([](PageAllocator& pa) { pa.free(100 * P, 1); }, "does not manage");
    expect_allocator_panic([](PageAllocator& pa) { pa.free(P + 8, 1); }, "not a page allocation");
}

}  // namespace
}  // namespace keel
