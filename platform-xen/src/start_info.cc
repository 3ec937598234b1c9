// Validation of the PVH start_info (xen/arch-x86/hvm/start_info.h). Nothing here trusts a field:
// each rule that fails names itself through `why`.
#include "keel/xen/start_info.h"

#include <xen/arch-x86/hvm/start_info.h>
#include <xen/xen.h>

#include <cstddef>

namespace keel::xen {

// The layout documented in start_info.h; version 0 ends after rsdp_paddr.
static_assert(sizeof(hvm_start_info) == 56);
static_assert(offsetof(hvm_start_info, magic) == 0);
static_assert(offsetof(hvm_start_info, version) == 4);
static_assert(offsetof(hvm_start_info, flags) == 8);
static_assert(offsetof(hvm_start_info, cmdline_paddr) == 24);
static_assert(offsetof(hvm_start_info, rsdp_paddr) == 32);
static_assert(offsetof(hvm_start_info, memmap_paddr) == 40);
static_assert(offsetof(hvm_start_info, memmap_entries) == 48);
static_assert(sizeof(hvm_memmap_table_entry) == 24);
static_assert(offsetof(hvm_memmap_table_entry, addr) == 0);
static_assert(offsetof(hvm_memmap_table_entry, size) == 8);
static_assert(offsetof(hvm_memmap_table_entry, type) == 16);

namespace {

constexpr std::uint64_t page_size = 4096;
constexpr std::uint64_t phys_limit = std::uint64_t{1} << 52;  // architectural MAXPHYADDR bound
constexpr std::size_t v0_size = offsetof(hvm_start_info, memmap_paddr);
constexpr std::uint32_t max_memmap_entries = 128;

Error fail(const char** why, const char* text) {
    if (why) *why = text;
    return Error::bad_input;
}

const char* no_memmap_text(std::uint32_t version) {
    switch (version) {
        case 0:
            return "no memory map in start_info (version 0)";
        case 1:
            return "no memory map in start_info (version 1)";
        case 2:
            return "no memory map in start_info (version 2)";
        default:
            return "no memory map in start_info (version 3 or later)";
    }
}

std::uint64_t end_of(const MemRegion& r) { return r.base + r.length; }

// Insertion sort by base: at most 128 entries, and no library sort in a freestanding build
// is worth the dependency here.
void sort_by_base(MemRegion* r, std::size_t n) {
    for (std::size_t i = 1; i < n; ++i) {
        MemRegion key = r[i];
        std::size_t j = i;
        while (j > 0 && r[j - 1].base > key.base) {
            r[j] = r[j - 1];
            --j;
        }
        r[j] = key;
    }
}

// Copies the NUL-terminated string at `paddr` a page at a time, so a short command line near
// the end of readable memory is still accepted.
Result<std::size_t> copy_cmdline(const PhysReader& mem, std::uint64_t paddr,
                                 std::array<char, BootInfo::max_cmdline>& out, const char** why) {
    std::size_t len = 0;
    while (len < out.size()) {
        std::uint64_t at = paddr + len;
        if (at < paddr) return fail(why, "command line is not readable");  // wrapped
        std::uint64_t chunk = page_size - (at % page_size);
        if (chunk > out.size() - len) chunk = out.size() - len;
        auto* p = static_cast<const char*>(mem.map(at, chunk));
        if (!p) return fail(why, "command line is not readable");
        for (std::uint64_t i = 0; i < chunk; ++i) {
            out[len] = p[i];
            if (p[i] == '\0') return len;
            ++len;
        }
    }
    return fail(why, "command line longer than 2047 bytes or unterminated");
}

}  // namespace

std::uint64_t BootInfo::ram_bytes() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < region_count; ++i)
        if (regions[i].type == XEN_HVM_MEMMAP_TYPE_RAM) sum += regions[i].length;
    return sum;
}

Result<BootInfo> parse_start_info(const PhysReader& mem, std::uint64_t start_info_paddr, const char** why) {
    if (start_info_paddr == 0) return fail(why, "start_info address is 0");

    // Read the version-0 part first: it tells us whether the rest exists.
    hvm_start_info si{};
    const void* raw = mem.map(start_info_paddr, v0_size);
    if (!raw) return fail(why, "start_info is not readable");
    __builtin_memcpy(&si, raw, v0_size);
    if (si.magic != XEN_HVM_START_MAGIC_VALUE)
        return fail(why, "start_info magic is not XEN_HVM_START_MAGIC_VALUE (not a PVH boot?)");
    if (si.version < 1) return fail(why, no_memmap_text(si.version));
    raw = mem.map(start_info_paddr, sizeof(si));
    if (!raw) return fail(why, "start_info is not readable");
    __builtin_memcpy(&si, raw, sizeof(si));
    if (si.memmap_paddr == 0 || si.memmap_entries == 0) return fail(why, no_memmap_text(si.version));
    if (si.memmap_entries > max_memmap_entries) return fail(why, "memory map has more than 128 entries");

    const void* map_raw =
        mem.map(si.memmap_paddr, std::uint64_t{si.memmap_entries} * sizeof(hvm_memmap_table_entry));
    if (!map_raw) return fail(why, "memory map is not readable");

    // Copy and check each entry on its own.
    MemRegion all[max_memmap_entries];
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < si.memmap_entries; ++i) {
        hvm_memmap_table_entry e;
        __builtin_memcpy(&e, static_cast<const char*>(map_raw) + i * sizeof(e), sizeof(e));
        if (e.size == 0) return fail(why, "memory map entry has length 0");
        if (e.addr + e.size < e.addr)
            return fail(why, "memory map entry wraps past the end of the address space");
        if (e.addr + e.size > phys_limit)
            return fail(why, "memory map entry lies above the 52-bit physical address limit");
        all[n++] = MemRegion{e.addr, e.size, e.type};
    }
    sort_by_base(all, n);

    // RAM must not overlap anything (checked on the untrimmed ranges); other types may overlap
    // each other, as firmware tables sometimes do.
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = i + 1; j < n && all[j].base < end_of(all[i]); ++j) {
            if (all[i].type == XEN_HVM_MEMMAP_TYPE_RAM || all[j].type == XEN_HVM_MEMMAP_TYPE_RAM)
                return fail(why, "a RAM region overlaps another memory map entry");
        }
    }

    // Trim RAM to whole pages (the page allocator hands out nothing smaller); drop what vanishes.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
        MemRegion r = all[i];
        if (r.type == XEN_HVM_MEMMAP_TYPE_RAM) {
            std::uint64_t lo = (r.base + page_size - 1) & ~(page_size - 1);
            std::uint64_t hi = end_of(r) & ~(page_size - 1);
            if (lo >= hi) continue;
            r.base = lo;
            r.length = hi - lo;
        }
        all[kept++] = r;
    }

    BootInfo info{};
    info.version = si.version;
    info.flags = si.flags;
    info.rsdp_paddr = si.rsdp_paddr;

    // Merge touching (or, for non-RAM, overlapping) regions of the same type.
    bool any_ram = false;
    for (std::size_t i = 0; i < kept; ++i) {
        const MemRegion& r = all[i];
        any_ram |= r.type == XEN_HVM_MEMMAP_TYPE_RAM;
        if (info.region_count > 0) {
            MemRegion& last = info.regions[info.region_count - 1];
            if (last.type == r.type && r.base <= end_of(last)) {
                if (end_of(r) > end_of(last)) last.length = end_of(r) - last.base;
                continue;
            }
        }
        if (info.region_count == BootInfo::max_regions)
            return fail(why, "memory map has more than 64 distinct regions");
        info.regions[info.region_count++] = r;
    }
    if (!any_ram) return fail(why, "memory map has no RAM (at least one whole page)");

    if (si.cmdline_paddr == 0) {
        info.cmdline[0] = '\0';
        info.cmdline_len = 0;
    } else {
        info.cmdline_len = TRY(copy_cmdline(mem, si.cmdline_paddr, info.cmdline, why));
    }
    return info;
}

}  // namespace keel::xen
