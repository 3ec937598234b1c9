// The address-space plan (address_space.h): holes first, then each kind of memory with its
// rights, the page-table pool last so that the tables it ends up holding are all read-only.
#include "keel/xen/address_space.h"

#include <xen/arch-x86/hvm/start_info.h>

#include <initializer_list>

namespace keel::xen {
namespace {

constexpr std::uint64_t page = 4096;

// Tables that mapping the pool itself may still need: the pool spans at most two PTs, two PDs
// and two PDPTs, and these come from the pool before its read-only part is mapped.
constexpr std::uint64_t pool_self_tables = 6;

bool aligned(const Range& r) { return ((r.start | r.end) & (page - 1)) == 0 && r.start <= r.end; }
bool overlaps(const Range& a, const Range& b) { return a.start < b.end && b.start < a.end; }
bool in_null(const Range& r) { return r.start < r.end && r.start < null_region_end; }

Error fail(const char** why, const char* text) {
    if (why) *why = text;
    return Error::invalid_argument;
}

Result<void> map(PageTableBuilder& b, const Range& r, std::uint32_t perm) {
    if (r.start >= r.end) return {};
    return b.map(r.start, r.start, r.end - r.start, perm);
}

// At most this many shared and reserved ranges together (the holes of free_ram()).
constexpr std::size_t max_extra_ranges = 9;
constexpr std::size_t max_holes = 3 + max_extra_ranges;

/// `fixed`, then `more`, sorted by start (insertion sort: a dozen at most). Returns the count.
std::size_t sorted_holes(std::initializer_list<Range> fixed, std::span<const Range> a, std::span<const Range> b,
                         Range* out) {
    std::size_t n = 0;
    for (const Range& r : fixed) out[n++] = r;
    for (std::span<const Range> more : {a, b}) {
        for (const Range& r : more) {
            if (n < max_holes) out[n++] = r;
        }
    }
    for (std::size_t i = 1; i < n; ++i) {
        for (std::size_t j = i; j > 0 && out[j - 1].start > out[j].start; --j) {
            const Range t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

/// Map `r` minus the sorted `holes` (they may touch or overlap each other).
Result<void> map_around(PageTableBuilder& b, Range r, std::span<const Range> holes, std::uint32_t perm) {
    for (const Range& h : holes) {
        if (h.end <= r.start || h.start >= r.end) continue;
        TRY_VOID(map(b, Range{r.start, h.start > r.start ? h.start : r.start}, perm));
        r.start = h.end < r.end ? h.end : r.end;
    }
    return map(b, r, perm);
}

}  // namespace

std::uint64_t TablePool::alloc_table() {
    if (next_ + page > limit_) return 0;
    const std::uint64_t pa = next_;
    std::uint64_t* t = table(pa);
    if (!t) return 0;
    for (unsigned i = 0; i < 512; ++i) t[i] = 0;
    next_ += page;
    return pa;
}

Result<std::uint64_t> build_address_space(TablePool& pool, const AddressSpacePlan& plan, const char** why) {
    const Range image{plan.text.start, plan.ksyms.end};
    const Range window{pool.first(), pool.limit()};
    for (const Range* r : {&plan.text, &plan.rodata, &plan.data, &plan.ksyms, &window}) {
        if (!aligned(*r)) return fail(why, "an image section or the page-table pool is not page aligned");
        if (in_null(*r)) return fail(why, "the image or the page-table pool lies below 64 KiB");
    }
    if (overlaps(image, window)) return fail(why, "the page-table pool overlaps the image");
    bool pool_in_ram = false;
    for (const MemRegion& r : plan.memmap) {
        pool_in_ram |= r.type == XEN_HVM_MEMMAP_TYPE_RAM && r.base <= window.start && window.end <= r.base + r.length;
    }
    if (!pool_in_ram) return fail(why, "the page-table pool is not inside one RAM region");
    for (const Range& g : plan.guards) {
        if (!aligned(g) || g.start < plan.data.start || g.end > plan.data.end)
            return fail(why, "a guard page is not a whole page inside .data");
    }
    for (const Range& s : plan.shared) {
        if (!aligned(s)) return fail(why, "a shared frame is not page aligned");
        if (in_null(s)) return fail(why, "a shared frame lies below 64 KiB");
        if (overlaps(s, image) || overlaps(s, window)) return fail(why, "a shared frame overlaps the image or the page tables");
    }
    for (const Range& r : plan.reserved) {
        if (!aligned(r)) return fail(why, "a reserved range is not page aligned");
        if (overlaps(r, image) || overlaps(r, window)) return fail(why, "a reserved range overlaps the image or the page tables");
    }
    if (plan.shared.size() + plan.reserved.size() > max_extra_ranges)
        return fail(why, "more than 9 shared and reserved ranges");

    PageTableBuilder b(pool);
    if (plan.small_pages) b.set_small_pages_only();
    auto check = [why](Result<void> r, const char* what) -> Result<void> {
        if (!r.ok() && why) *why = what;
        return r;
    };
    TRY_VOID(check(b.init(), "page tables: no memory for the root"));

    // The image: each section with its own rights, the guard pages left out of .data.
    TRY_VOID(check(map(b, plan.text, perm_x), "page tables: .text"));
    TRY_VOID(check(map(b, plan.rodata, perm_r), "page tables: .rodata"));
    TRY_VOID(check(map_around(b, plan.data, plan.guards, perm_w), "page tables: .data"));
    TRY_VOID(check(map(b, plan.ksyms, perm_r), "page tables: .ksyms"));

    // RAM, around the null region, the image, the pool and the reserved ranges.
    Range holes[max_holes];
    const std::size_t nh = sorted_holes({{0, null_region_end}, image, window}, plan.reserved, {}, holes);
    for (const MemRegion& r : plan.memmap) {
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM) continue;
        TRY_VOID(check(map_around(b, Range{r.base, r.base + r.length}, std::span<const Range>(holes, nh), perm_w),
                       "page tables: RAM"));
    }
    for (const Range& s : plan.shared) TRY_VOID(check(map(b, s, perm_w), "page tables: shared frames"));

    // The pool: what is used so far, plus what mapping the pool takes, read-only; the rest RW.
    std::uint64_t ro_end = pool.next() + pool_self_tables * page;
    if (ro_end > window.end) ro_end = window.end;
    TRY_VOID(check(map(b, Range{window.start, ro_end}, perm_r), "page tables: the tables themselves"));
    TRY_VOID(check(map(b, Range{ro_end, window.end}, perm_w), "page tables: the pool's free pages"));
    if (pool.next() > ro_end) return fail(why, "page tables outgrew their read-only reserve");
    pool.take_until(ro_end);  // read-only: not for the page allocator
    return b.root();
}

std::size_t free_ram(const AddressSpacePlan& plan, const TablePool& pool, MemRegion* out, std::size_t max) {
    // What is not free: the null region, the image, the tables, frames shared with Xen, the
    // reserved ranges. Sorted.
    Range holes[max_holes];
    const std::size_t nh = sorted_holes({{0, null_region_end}, {plan.text.start, plan.ksyms.end}, {pool.first(), pool.next()}},
                                        plan.shared, plan.reserved, holes);
    std::size_t n = 0;
    auto emit = [&](std::uint64_t b, std::uint64_t e) {
        if (e > b && n < max) out[n++] = MemRegion{b, e - b, XEN_HVM_MEMMAP_TYPE_RAM};
    };
    for (const MemRegion& r : plan.memmap) {
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM) continue;
        std::uint64_t b = r.base;
        const std::uint64_t e = r.base + r.length;
        for (std::size_t i = 0; i < nh; ++i) {
            if (holes[i].end <= b || holes[i].start >= e) continue;
            emit(b, holes[i].start);
            if (holes[i].end > b) b = holes[i].end;
        }
        emit(b, e);
    }
    return n;
}

const char* check_address_space(PageTableMemory& mem, std::uint64_t root, std::span<const Range> guards,
                                AuditResult& out) {
    out = audit(mem, root);
    if (out.wx_pages != 0) return "a page is writable and executable";
    if (out.lowest_va < null_region_end) return "a page below 64 KiB is mapped (null pointers would not fault)";
    if (out.writable_table_pages != 0) return "a page-table page is writable";
    for (const Range& g : guards) {
        for (std::uint64_t va = g.start; va < g.end; va += page) {
            if (translate(mem, root, va)) return "a stack guard page is mapped";
        }
    }
    return nullptr;
}

}  // namespace keel::xen
