// x86-64 4-level page tables (PML4 -> PDPT -> PD -> PT), built at boot from the ELF layout with
// W^X enforced, and an audit that walks live tables and counts what is writable and executable.
// Pure code: page-table memory comes through PageTableMemory, so host tests use a buffer.
#pragma once

#include <cstdint>
#include <optional>

#include "keel/result.h"

namespace keel::xen {

/// Permission of a mapping. perm_r alone is read-only, non-executable. A page is never
/// perm_w | perm_x: map() refuses it.
enum Perm : std::uint32_t { perm_r = 0, perm_w = 1, perm_x = 2 };

/// Where page tables live.
struct PageTableMemory {
    virtual ~PageTableMemory() = default;
    /// A zeroed, 4 KiB-aligned page for a table; its physical address, or 0 when out of memory.
    virtual std::uint64_t alloc_table() = 0;
    /// Pointer to the table at physical address `paddr` (512 entries), or nullptr if there is
    /// none there (audit then skips that subtree).
    virtual std::uint64_t* table(std::uint64_t paddr) = 0;
    /// The virtual address the guest reads the table at `paddr` through (audit checks that it
    /// is not writable): the identity here; classic PV's entries hold machine addresses.
    virtual std::uint64_t table_va(std::uint64_t paddr) { return paddr; }
};

/// Builds one address space. Leaves are present, RW only if perm_w, NX unless perm_x, never
/// user-accessible; intermediate entries are present + RW without NX, so the leaf alone decides.
/// Context: boot, single-threaded. Changing tables that are already loaded in CR3 needs a TLB
/// flush by the caller (invlpg / CR3 reload): the builder only writes memory.
class PageTableBuilder {
public:
    explicit PageTableBuilder(PageTableMemory& mem) : mem_(mem) {}
    /// Edit tables that already exist (the entry stub's boot tables); init() is then a no-op.
    PageTableBuilder(PageTableMemory& mem, std::uint64_t root) : mem_(mem), root_(root) {}

    /// 4 KiB leaves only (classic PV: Xen takes no large pages from a PV guest). Before map().
    void set_small_pages_only() { small_pages_only_ = true; }

    /// Allocate the root (PML4). Error::no_memory if that fails.
    Result<void> init();

    /// Map [va, va+len) to [pa, pa+len). va, pa and len must be 4 KiB multiples, len > 0, the
    /// range canonical and within one half of the address space, pa+len <= 2^52. Uses 2 MiB pages
    /// wherever va, pa and the remaining length allow. Errors: invalid_argument (bad range,
    /// unknown perm bits, perm_w|perm_x, init() not called); exists (some page is already mapped
    /// to another target or with other permissions; nothing is changed then); no_memory.
    /// Mapping a range again identically is a no-op.
    Result<void> map(std::uint64_t va, std::uint64_t pa, std::uint64_t len, std::uint32_t perm);

    /// Unmap [va, va+len) (4 KiB multiples). Pages not mapped are skipped. A 2 MiB (or 1 GiB)
    /// page that is only partly covered is split first, keeping its permissions for the rest.
    /// Errors: invalid_argument, no_memory (split failed; pages before it are already unmapped).
    Result<void> unmap(std::uint64_t va, std::uint64_t len);

    /// The value for CR3 (physical address of the PML4), 0 before init().
    std::uint64_t root() const { return root_; }

private:
    Result<std::uint64_t*> slot_for(std::uint64_t va, int level);
    Result<void> split(std::uint64_t* entry, int level);

    PageTableMemory& mem_;
    std::uint64_t root_ = 0;
    bool small_pages_only_ = false;
};

/// What audit() found. Counts are in 4 KiB pages (a 2 MiB page counts 512).
struct AuditResult {
    std::uint64_t mapped_pages_4k_equiv, writable_pages, executable_pages, wx_pages;
    std::uint64_t first_wx_va;  ///< lowest (canonical) VA of a W+X page; 0 if none
    bool page0_mapped;          ///< VA 0 is mapped: null dereferences would not fault
    std::uint64_t user_pages;   ///< pages reachable with U/S set on every level (should be 0)
    std::uint64_t lowest_va;    ///< lowest mapped (canonical) VA; ~0 if nothing is mapped
    std::uint64_t table_pages;  ///< page-table pages reachable from the root
    /// Table pages whose mapping at PageTableMemory::table_va() is writable: a stray write
    /// could then rewrite the tables.
    std::uint64_t writable_table_pages;
};

/// Walk every present entry from `root`. Effective W = AND of RW on the path, effective X = no NX
/// anywhere on the path, effective U = AND of U/S; large pages (PS) at PDPT and PD level are
/// leaves. Tables that mem.table() cannot resolve are skipped (and not counted as table pages).
AuditResult audit(PageTableMemory& mem, std::uint64_t root);

/// The physical address `va` maps to, or nullopt if it is not mapped (or not canonical).
std::optional<std::uint64_t> translate(PageTableMemory& mem, std::uint64_t root, std::uint64_t va);

}  // namespace keel::xen
