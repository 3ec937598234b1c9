// x86-64 4-level paging (Intel SDM vol. 3, 4.5): 9 index bits per level, PS marks a 2 MiB leaf
// in a PD entry or a 1 GiB leaf in a PDPT entry, NX is bit 63 and applies at every level.
#include "keel/xen/page_table.h"

namespace keel::xen {
namespace {

constexpr std::uint64_t pte_present = 1ull << 0;
constexpr std::uint64_t pte_rw = 1ull << 1;
constexpr std::uint64_t pte_user = 1ull << 2;
constexpr std::uint64_t pte_ps = 1ull << 7;      // large page (PD / PDPT entries)
constexpr std::uint64_t pte_pat_4k = 1ull << 7;  // PAT bit of a 4 KiB leaf
constexpr std::uint64_t pte_pat_large = 1ull << 12;
constexpr std::uint64_t pte_nx = 1ull << 63;
constexpr std::uint64_t addr_mask = 0x000f'ffff'ffff'f000ull;  // bits 12..51
constexpr std::uint64_t phys_limit = 1ull << 52;

constexpr std::uint64_t page_4k = 1ull << 12;
constexpr std::uint64_t page_2m = 1ull << 21;

constexpr int levels = 4;  // 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT

/// Bytes covered by one entry at `level`.
constexpr std::uint64_t span_of(int level) { return page_4k << (9 * (level - 1)); }
constexpr unsigned index_of(std::uint64_t va, int level) {
    return static_cast<unsigned>((va >> (12 + 9 * (level - 1))) & 511);
}
/// Address bits of a leaf at `level` (for large pages bit 12 is PAT, not address).
constexpr std::uint64_t leaf_addr(std::uint64_t e, int level) {
    return e & addr_mask & ~(span_of(level) - 1);
}
constexpr bool is_leaf(std::uint64_t e, int level) {
    return level == 1 || ((level == 2 || level == 3) && (e & pte_ps));
}
constexpr bool canonical(std::uint64_t va) {
    std::uint64_t top = va >> 47;
    return top == 0 || top == 0x1ffff;
}
constexpr std::uint64_t sign_extend(std::uint64_t va) {
    return (va & (1ull << 47)) ? (va | 0xffff'0000'0000'0000ull) : va;
}
constexpr std::uint64_t leaf_flags(std::uint32_t perm) {
    return pte_present | ((perm & perm_w) ? pte_rw : 0) | ((perm & perm_x) ? 0 : pte_nx);
}
constexpr std::uint64_t table_flags = pte_present | pte_rw;  // the leaf decides permissions

/// Where a walk for one VA stopped.
struct Lookup {
    std::uint64_t* entry;  // the leaf, or the first non-present entry (nullptr: bad table)
    int level;
    bool present;  // entry is a present leaf
};

Lookup lookup(PageTableMemory& mem, std::uint64_t root, std::uint64_t va) {
    std::uint64_t table_pa = root;
    for (int level = levels; level >= 1; --level) {
        std::uint64_t* t = mem.table(table_pa);
        if (!t) return {nullptr, level, false};
        std::uint64_t* e = &t[index_of(va, level)];
        if (!(*e & pte_present)) return {e, level, false};
        if (is_leaf(*e, level)) return {e, level, true};
        table_pa = *e & addr_mask;
    }
    return {nullptr, 1, false};  // not reached: level 1 entries are always leaves
}

/// Bytes from va to the end of the region covered by one entry at `level`.
constexpr std::uint64_t to_boundary(std::uint64_t va, int level) {
    return span_of(level) - (va & (span_of(level) - 1));
}

bool valid_range(std::uint64_t va, std::uint64_t len) {
    if (len == 0 || (va | len) & (page_4k - 1)) return false;
    std::uint64_t last = va + len - 1;
    if (last < va) return false;
    return canonical(va) && canonical(last) && (va >> 47) == (last >> 47);
}

}  // namespace

Result<void> PageTableBuilder::init() {
    if (root_) return {};
    std::uint64_t pa = mem_.alloc_table();
    if (!pa) return Error::no_memory;
    std::uint64_t* t = mem_.table(pa);
    if (!t) return Error::no_memory;
    for (unsigned i = 0; i < 512; ++i) t[i] = 0;
    root_ = pa;
    return {};
}

Result<std::uint64_t*> PageTableBuilder::slot_for(std::uint64_t va, int level) {
    std::uint64_t table_pa = root_;
    for (int l = levels;; --l) {
        std::uint64_t* t = mem_.table(table_pa);
        if (!t) return Error::no_memory;
        std::uint64_t* e = &t[index_of(va, l)];
        if (l == level) return e;
        if (!(*e & pte_present)) {
            std::uint64_t child = mem_.alloc_table();
            std::uint64_t* ct = child ? mem_.table(child) : nullptr;
            if (!ct) return Error::no_memory;
            for (unsigned i = 0; i < 512; ++i) ct[i] = 0;
            *e = child | table_flags;
        } else if (is_leaf(*e, l)) {
            return Error::exists;  // a large page is in the way; callers check before
        }
        table_pa = *e & addr_mask;
    }
}

Result<void> PageTableBuilder::map(std::uint64_t va, std::uint64_t pa, std::uint64_t len,
                                   std::uint32_t perm) {
    if (!root_) return Error::invalid_argument;
    if (perm & ~std::uint32_t{perm_w | perm_x}) return Error::invalid_argument;
    if ((perm & perm_w) && (perm & perm_x)) return Error::invalid_argument;  // W^X
    if (!valid_range(va, len) || (pa & (page_4k - 1))) return Error::invalid_argument;
    if (pa + len < pa || pa + len > phys_limit) return Error::invalid_argument;

    const std::uint64_t want = leaf_flags(perm);
    const std::uint64_t perm_bits = pte_rw | pte_nx | pte_user;

    // Pass 1: everything already mapped in the range must already be exactly this mapping;
    // otherwise refuse before changing anything.
    for (std::uint64_t off = 0; off < len;) {
        Lookup l = lookup(mem_, root_, va + off);
        std::uint64_t step = to_boundary(va + off, l.level);
        if (l.present) {
            std::uint64_t target = leaf_addr(*l.entry, l.level) + ((va + off) & (span_of(l.level) - 1));
            if (target != pa + off || (*l.entry & perm_bits) != (want & perm_bits)) return Error::exists;
        } else if (!l.entry) {
            return Error::no_memory;  // a table we cannot reach
        }
        off += step < len - off ? step : len - off;
    }

    // Pass 2: fill in what is missing, with 2 MiB leaves where the alignment allows.
    for (std::uint64_t off = 0; off < len;) {
        const std::uint64_t v = va + off, p = pa + off, left = len - off;
        Lookup l = lookup(mem_, root_, v);
        if (l.present) {  // identical (pass 1): skip the rest of this leaf
            std::uint64_t step = to_boundary(v, l.level);
            off += step < left ? step : left;
            continue;
        }
        if (!small_pages_only_ && ((v | p) & (page_2m - 1)) == 0 && left >= page_2m && l.level >= 2) {
            std::uint64_t* e = TRY(slot_for(v, 2));
            if (*e == 0) {
                *e = p | want | pte_ps;
                off += page_2m;
                continue;
            }
        }
        std::uint64_t* e = TRY(slot_for(v, 1));
        *e = p | want;
        off += page_4k;
    }
    return {};
}

Result<void> PageTableBuilder::split(std::uint64_t* entry, int level) {
    std::uint64_t child = mem_.alloc_table();
    std::uint64_t* ct = child ? mem_.table(child) : nullptr;
    if (!ct) return Error::no_memory;
    const std::uint64_t old = *entry;
    const std::uint64_t base = leaf_addr(old, level);
    // Keep every attribute bit (RW, U/S, PWT, PCD, A, D, G, NX); only PS and PAT move (a large
    // page's PAT bit is bit 12, inside addr_mask, so `attrs` does not carry it).
    const std::uint64_t attrs = old & ~addr_mask & ~pte_ps;
    const bool pat = old & pte_pat_large;
    const int child_level = level - 1;
    for (unsigned i = 0; i < 512; ++i) {
        std::uint64_t e = (base + i * span_of(child_level)) | attrs;
        if (child_level == 1)
            e |= pat ? pte_pat_4k : 0;
        else
            e |= pte_ps | (pat ? pte_pat_large : 0);
        ct[i] = e;
    }
    // The parent becomes a table; the effective permissions stay those of the old leaf.
    *entry = child | table_flags | (old & pte_user);
    return {};
}

Result<void> PageTableBuilder::unmap(std::uint64_t va, std::uint64_t len) {
    if (!root_) return Error::invalid_argument;
    if (!valid_range(va, len)) return Error::invalid_argument;
    for (std::uint64_t off = 0; off < len;) {
        const std::uint64_t v = va + off, left = len - off;
        Lookup l = lookup(mem_, root_, v);
        std::uint64_t step = to_boundary(v, l.level);
        if (!l.present) {  // nothing here (or a table we cannot reach: nothing to unmap)
            off += step < left ? step : left;
            continue;
        }
        if (step == span_of(l.level) && left >= step) {  // the whole leaf goes
            *l.entry = 0;
            off += step;
            continue;
        }
        TRY_VOID(split(l.entry, l.level));  // partly covered: split, then look again
    }
    return {};
}

namespace {

/// Effective write permission of `va`: RW on every level of its walk (false if unmapped).
bool writable(PageTableMemory& mem, std::uint64_t root, std::uint64_t va) {
    std::uint64_t table_pa = root;
    for (int level = levels; level >= 1; --level) {
        std::uint64_t* t = mem.table(table_pa);
        if (!t) return false;
        const std::uint64_t e = t[index_of(va, level)];
        if (!(e & pte_present) || !(e & pte_rw)) return false;
        if (is_leaf(e, level)) return true;
        table_pa = e & addr_mask;
    }
    return false;
}

struct AuditWalk {
    PageTableMemory& mem;
    std::uint64_t root;
    AuditResult& r;

    void table(std::uint64_t table_pa, int level, std::uint64_t va_base, bool w, bool x, bool u) {
        std::uint64_t* t = mem.table(table_pa);
        if (!t) return;
        ++r.table_pages;
        const std::uint64_t table_va = mem.table_va(table_pa);
        if (canonical(table_va) && writable(mem, root, table_va)) ++r.writable_table_pages;
        for (unsigned i = 0; i < 512; ++i) {
            const std::uint64_t e = t[i];
            if (!(e & pte_present)) continue;
            const std::uint64_t va = sign_extend(va_base | (std::uint64_t{i} << (12 + 9 * (level - 1))));
            const bool ew = w && (e & pte_rw);
            const bool ex = x && !(e & pte_nx);
            const bool eu = u && (e & pte_user);
            if (!is_leaf(e, level)) {
                table(e & addr_mask, level - 1, va, ew, ex, eu);
                continue;
            }
            const std::uint64_t pages = span_of(level) / page_4k;
            if (r.mapped_pages_4k_equiv == 0) r.lowest_va = va;  // walk order is ascending VA
            r.mapped_pages_4k_equiv += pages;
            if (ew) r.writable_pages += pages;
            if (ex) r.executable_pages += pages;
            if (eu) r.user_pages += pages;
            if (ew && ex) {
                if (r.wx_pages == 0) r.first_wx_va = va;
                r.wx_pages += pages;
            }
            if (va == 0) r.page0_mapped = true;
        }
    }
};

}  // namespace

AuditResult audit(PageTableMemory& mem, std::uint64_t root) {
    AuditResult r{};
    r.lowest_va = ~std::uint64_t{0};
    AuditWalk{mem, root, r}.table(root, levels, 0, true, true, true);
    return r;
}

std::optional<std::uint64_t> translate(PageTableMemory& mem, std::uint64_t root, std::uint64_t va) {
    if (!canonical(va)) return std::nullopt;
    Lookup l = lookup(mem, root, va);
    if (!l.present) return std::nullopt;
    return leaf_addr(*l.entry, l.level) + (va & (span_of(l.level) - 1));
}

}  // namespace keel::xen
