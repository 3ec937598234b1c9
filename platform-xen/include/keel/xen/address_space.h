// The guest's one address space: identity-mapped, planned from the image layout and the memory
// map. What is mapped and with which rights is decided here, once; boot.cc builds the live
// tables with it and refuses to start unless check_address_space() passes. Pure code: host tests
// build the same tables in a buffer.
#pragma once

#include <cstdint>
#include <span>

#include "keel/result.h"
#include "keel/xen/page_table.h"
#include "keel/xen/start_info.h"

namespace keel::xen {

/// A half-open, page-aligned physical range; the map is identity, so also the virtual range.
struct Range {
    std::uint64_t start, end;
};

/// Nothing is mapped below this: a null pointer plus any offset under 64 KiB faults.
inline constexpr std::uint64_t null_region_end = 64 * 1024;

/// What goes into the tables besides RAM.
struct AddressSpacePlan {
    Range text, rodata, data, ksyms;    ///< the image's sections (data: data, bss and stacks)
    std::span<const Range> guards;      ///< pages inside `data` left unmapped (under each stack)
    std::span<const MemRegion> memmap;  ///< start_info's memory map: its RAM is mapped RW+NX
    /// Frames outside the image that Xen or the toolstack share with us (grant frames, the
    /// xenstore and console pages): RW+NX, RAM or not.
    std::span<const Range> shared;
    /// RAM that is neither mapped nor free (classic PV: the bootstrap elements, Xen's own page
    /// tables among them, which no writable mapping may reach while they are tables). A shared
    /// range inside it is still mapped.
    std::span<const Range> reserved;
    /// 4 KiB pages only (classic PV).
    bool small_pages = false;
};

/// Page tables come from one window of RAM [first, limit) right after the image, handed out in
/// order; [first, next()) is taken (the tables, read-only once built), [next(), limit) is free
/// RAM. table() is left to the user of the memory.
class TablePool : public PageTableMemory {
public:
    TablePool(std::uint64_t first, std::uint64_t limit) : first_(first), next_(first), limit_(limit) {}
    std::uint64_t alloc_table() override;
    std::uint64_t first() const { return first_; }
    std::uint64_t next() const { return next_; }
    std::uint64_t limit() const { return limit_; }
    /// Count [next(), end) as taken too.
    void take_until(std::uint64_t end) { next_ = end > next_ && end <= limit_ ? end : next_; }

private:
    std::uint64_t first_, next_, limit_;
};

/// Build the tables for `plan` from `pool` and return the root (for CR3):
///  - .text R+X, .rodata and .ksyms R, .data RW (all NX but text), guard pages unmapped;
///  - RAM of the memory map RW+NX, except below null_region_end, the image, the pool and the
///    reserved ranges;
///  - the pool's used part (the tables themselves, plus a few pages kept for their own
///    mapping) read-only, its unused rest RW: afterwards [first, pool.next()) is the read-only
///    part and the page allocator may have [pool.next(), limit);
///  - `shared` RW+NX. Nothing else: no reserved or ACPI region, no hole, no MMIO.
/// Errors (with *why naming the rule): a section, guard or shared range that is not page
/// aligned or lies in the null region, a shared range overlapping the image or the pool, a
/// reserved range not page aligned or overlapping the image or the pool, more than 9 shared and
/// reserved ranges, and the builder's (no_memory: the pool is too small).
Result<std::uint64_t> build_address_space(TablePool& pool, const AddressSpacePlan& plan, const char** why);

/// The RAM the page allocator may have once the tables are built: the memory map's RAM minus
/// the null region, the image, the pool's taken part [first, next()), the shared frames and the
/// reserved ranges (at most 9 of the two together). Every page of it is mapped RW by build_address_space. Returns the count
/// written to `out` (at most `max`).
std::size_t free_ram(const AddressSpacePlan& plan, const TablePool& pool, MemRegion* out, std::size_t max);

/// Audit the tables at `root` (counts into `out`) and check what build_address_space promises:
/// no page writable and executable, nothing mapped below null_region_end, every guard page
/// unmapped, every page-table page reachable from `root` mapped (identity) read-only or not
/// at all. nullptr if all hold, else the rule that failed.
const char* check_address_space(PageTableMemory& mem, std::uint64_t root, std::span<const Range> guards,
                                AuditResult& out);

}  // namespace keel::xen
