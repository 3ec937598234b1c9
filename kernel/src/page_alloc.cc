// Physical page allocator: sorted extent tables with coalescing.
#include "keel/page_alloc.h"

#include "keel/panic.h"

namespace keel {
namespace {

constexpr unsigned page_shift = 12;
static_assert(PageAllocator::page_size == 1u << page_shift);

}  // namespace

std::size_t PageAllocator::upper_bound(const Extent* t, std::size_t n, std::uint64_t pfn) {
    std::size_t lo = 0;
    std::size_t hi = n;
    while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        if (t[mid].first <= pfn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool PageAllocator::can_insert(const Extent* t, std::size_t n, std::size_t cap, std::uint64_t first,
                               std::uint64_t count) {
    if (n < cap) return true;
    const std::size_t i = upper_bound(t, n, first);
    const bool merge_prev = i > 0 && t[i - 1].first + t[i - 1].count == first;
    const bool merge_next = i < n && first + count == t[i].first;
    return merge_prev || merge_next;
}

void PageAllocator::insert(Extent* t, std::size_t& n, std::uint64_t first, std::uint64_t count) {
    const std::size_t i = upper_bound(t, n, first);
    const bool merge_prev = i > 0 && t[i - 1].first + t[i - 1].count == first;
    const bool merge_next = i < n && first + count == t[i].first;
    if (merge_prev && merge_next) {
        t[i - 1].count += count + t[i].count;
        for (std::size_t j = i; j + 1 < n; ++j) t[j] = t[j + 1];
        --n;
    } else if (merge_prev) {
        t[i - 1].count += count;
    } else if (merge_next) {
        t[i].first = first;
        t[i].count += count;
    } else {
        for (std::size_t j = n; j > i; --j) t[j] = t[j - 1];
        t[i] = Extent{first, count};
        ++n;
    }
}

Result<void> PageAllocator::add_range(std::uint64_t base, std::uint64_t length) {
    if (length == 0) return {};
    if (base + length < base) return Error::invalid_argument;
    // Round inward, without overflow near the top of the address space.
    const std::uint64_t first = (base >> page_shift) + ((base & (page_size - 1)) != 0 ? 1 : 0);
    const std::uint64_t end = (base + length) >> page_shift;
    if (end <= first) return {};
    const std::uint64_t count = end - first;

    // Overlap with a range already added: only the neighbours in sort order can overlap.
    const std::size_t i = upper_bound(ranges_, nranges_, first);
    if (i > 0 && ranges_[i - 1].first + ranges_[i - 1].count > first) return Error::exists;
    if (i < nranges_ && end > ranges_[i].first) return Error::exists;

    if (!can_insert(ranges_, nranges_, max_ranges, first, count) ||
        !can_insert(free_, nfree_, max_extents, first, count))
        return Error::no_space;
    insert(ranges_, nranges_, first, count);
    insert(free_, nfree_, first, count);
    free_pages_ += count;
    total_pages_ += count;
    return {};
}

Result<std::uint64_t> PageAllocator::alloc(std::size_t pages, std::size_t align_pages) {
    if (pages == 0 || align_pages == 0 || (align_pages & (align_pages - 1)) != 0)
        return Error::invalid_argument;
    if (pages > free_pages_) return Error::no_memory;

    for (std::size_t i = 0; i < nfree_; ++i) {
        Extent& e = free_[i];
        const std::uint64_t aligned =
            (e.first + align_pages - 1) & ~static_cast<std::uint64_t>(align_pages - 1);
        const std::uint64_t head = aligned - e.first;
        if (head >= e.count || e.count - head < pages) continue;
        const std::uint64_t tail = e.count - head - pages;

        if (head == 0 && tail == 0) {
            for (std::size_t j = i; j + 1 < nfree_; ++j) free_[j] = free_[j + 1];
            --nfree_;
        } else if (head == 0) {
            e.first += pages;
            e.count = tail;
        } else if (tail == 0) {
            e.count = head;
        } else {
            // Alignment splits the extent in two: needs a slot. Without one, look further.
            if (nfree_ == max_extents) continue;
            e.count = head;
            for (std::size_t j = nfree_; j > i + 1; --j) free_[j] = free_[j - 1];
            free_[i + 1] = Extent{aligned + pages, tail};
            ++nfree_;
        }
        free_pages_ -= pages;
        return aligned << page_shift;
    }
    return Error::no_memory;
}

bool PageAllocator::manages(std::uint64_t addr, std::size_t pages) const {
    const std::uint64_t first = addr >> page_shift;
    const std::size_t i = upper_bound(ranges_, nranges_, first);
    if (i == 0) return false;
    const Extent& r = ranges_[i - 1];
    return first - r.first <= r.count && pages <= r.count - (first - r.first);
}

void PageAllocator::free(std::uint64_t addr, std::size_t pages) {
    if ((addr & (page_size - 1)) != 0 || pages == 0)
        panic("page allocator: free(%#llx, %zu): not a page allocation",
              static_cast<unsigned long long>(addr), pages);
    if (!manages(addr, pages))
        panic("page allocator: free(%#llx, %zu) of memory it does not manage",
              static_cast<unsigned long long>(addr), pages);
    const std::uint64_t first = addr >> page_shift;
    const std::size_t i = upper_bound(free_, nfree_, first);
    const bool overlaps_prev = i > 0 && free_[i - 1].first + free_[i - 1].count > first;
    const bool overlaps_next = i < nfree_ && first + pages > free_[i].first;
    if (overlaps_prev || overlaps_next)
        panic("page allocator: double free of %#llx (%zu pages)", static_cast<unsigned long long>(addr),
              pages);
    if (!can_insert(free_, nfree_, max_extents, first, pages))
        panic("page allocator: free extent table full (%zu extents); raise max_extents", nfree_);
    insert(free_, nfree_, first, pages);
    free_pages_ += pages;
}

}  // namespace keel
