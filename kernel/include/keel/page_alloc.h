// Physical page allocator. Pages are handed out by address; the bookkeeping (a sorted table of
// free extents, coalesced on free) lives in the allocator object, never in the managed memory,
// so host tests can manage fake addresses.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/result.h"

namespace keel {

/// First-fit allocator over a fixed table of free extents. Context: loop only (not re-entrant).
class PageAllocator {
public:
    static constexpr std::size_t page_size = 4096;
    /// Free extents the table can describe; fragmentation beyond this fails add_range (and
    /// panics in free, which cannot fail: that means the table is sized wrong).
    static constexpr std::size_t max_extents = 256;
    /// Separate (non-adjacent) ranges that may be added.
    static constexpr std::size_t max_ranges = 64;

    /// Hand [base, base+length) to the allocator, rounded inward to whole pages (less than a
    /// page after rounding adds nothing). The memory map is input from outside, so bad ranges
    /// are errors: Error::invalid_argument if base+length wraps, Error::exists if it overlaps
    /// a range added before, Error::no_space if the range or extent table is full.
    Result<void> add_range(std::uint64_t base, std::uint64_t length);

    /// `pages` contiguous pages starting at a multiple of `align_pages` pages (a power of two).
    /// Error::no_memory if no free extent fits; Error::invalid_argument for 0 pages or a bad
    /// alignment.
    Result<std::uint64_t> alloc(std::size_t pages, std::size_t align_pages = 1);

    /// Return pages from alloc(). Freeing pages that are already free (in whole or part) or
    /// that were never added is a bug: panics.
    void free(std::uint64_t addr, std::size_t pages);

    std::size_t free_pages() const { return free_pages_; }
    std::size_t total_pages() const { return total_pages_; }
    /// Entries in the free extent table (a fragmentation measure).
    std::size_t free_extents() const { return nfree_; }
    /// True if [addr, addr + pages pages) lies inside memory given to add_range.
    bool manages(std::uint64_t addr, std::size_t pages) const;

private:
    struct Extent {
        std::uint64_t first;  // page number (address / page_size)
        std::uint64_t count;  // pages
    };
    /// Index of the first extent in `t` starting after page `pfn`.
    static std::size_t upper_bound(const Extent* t, std::size_t n, std::uint64_t pfn);
    /// Whether insert() would find room for [first, first+count) (merging or a free slot).
    static bool can_insert(const Extent* t, std::size_t n, std::size_t cap, std::uint64_t first,
                           std::uint64_t count);
    /// Insert a non-overlapping extent, merging with neighbours. Caller checked can_insert.
    static void insert(Extent* t, std::size_t& n, std::uint64_t first, std::uint64_t count);

    Extent free_[max_extents];
    std::size_t nfree_ = 0;
    Extent ranges_[max_ranges];
    std::size_t nranges_ = 0;
    std::size_t free_pages_ = 0;
    std::size_t total_pages_ = 0;
};

}  // namespace keel
