// keel_pv_boot: the classic 64-bit PV start of day (docs/pv.md). From pv_entry.S (ring 3, upcalls
// masked, our boot stack): validate start_info (pv_start_info.h), take the console ring for
// early_write, the trap table and callbacks, shared_info, the boot facts, then the rest of boot
// as in PVH (boot.cc, finish_boot) up to keel_main.
//
// Ring 3: no cli/sti/hlt, no control registers or MSRs, no port I/O (PVH's port 0xE9 does not
// exist here). Everything goes through the hypercall page, which the domain builder had Xen
// fill before the first instruction (XEN_ELFNOTE_HYPERCALL_PAGE).
//
// Page tables: Xen's bootstrap tables map the bootstrap region, everything in it writable and
// executable. keel builds its own with the same W^X plan as PVH (address_space.h) in the
// region's free tail, with machine addresses in every entry; Xen validates them when they are
// pinned (MMUEXT_PIN_L4_TABLE) and from then on refuses any writable mapping of them.
//
// Grants name machine frames (gfn_of: the p2m); the grant table's frames come from
// GNTTABOP_setup_table and are mapped over pages set aside at the end of the free tail.
//
// Suspend and resume: pv_before_suspend / pv_after_suspend (suspend.cc calls them).
#include <cstdarg>
#include <new>

#include "cpu.h"
#include "internal.h"
#include "keel/format.h"
#include "keel/xen/address_space.h"
#include "keel/xen/console_ring.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/platform.h"

extern "C" char __image_start[], __image_end[];

namespace keel::xen {
namespace {

constexpr std::uint64_t page_size = 4096;
constexpr std::uint64_t low_limit = 0x10000;  // nothing of interest below 64 KiB (as in PVH)

std::uint64_t addr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }
std::uint64_t page_up(std::uint64_t v) { return (v + page_size - 1) & ~(page_size - 1); }

// The end of the bootstrap region: xen.h guarantees at least 512 KiB after the last bootstrap
// element (the stack whose top Xen put in %rsp) and a region that ends on a 4 MiB boundary.
// Everything below it is mapped (writable, the page tables read-only); reads stay below it.
std::uint64_t g_region_end = 0;
std::uint64_t g_free_start = 0;  // the first page after Xen's bootstrap stack
PvBootInfo g_info;

struct BootstrapReader final : PhysReader {
    const void* map(std::uint64_t p, std::uint64_t len) const override {
        if (len == 0 || p < low_limit || p + len < p || p + len > g_region_end) return nullptr;
        return reinterpret_cast<const void*>(p);
    }
};

const volatile std::uint64_t* p2m() { return reinterpret_cast<const volatile std::uint64_t*>(g_info.mfn_list); }

// keel's tables, once loaded: their pool in the bootstrap region's free tail, RW there while
// they are built, so a table's pseudo-physical address is where it is written.
struct PvPool final : TablePool {
    using TablePool::TablePool;
    std::uint64_t* table(std::uint64_t pa) override { return reinterpret_cast<std::uint64_t*>(pa); }
};
alignas(PvPool) unsigned char g_pool_storage[sizeof(PvPool)];
PvPool* g_pool = nullptr;
AddressSpacePlan g_plan;
MemRegion g_ram[1];
Range g_shared[5], g_reserved[1];
std::uint64_t g_grant_window = 0;
std::uint64_t g_root = 0;      // keel's root table: pseudo-physical = virtual; 0 on Xen's tables
// How far Xen maps the m2p (XENMEM_machphys_mapping: up to the host's highest frame); a read
// past it would fault.
std::uint64_t g_m2p_entries = 0;
std::uint64_t g_mapped_ram = 0;  // [0, this) is mapped and is the domain's RAM for keel

std::uint64_t m2p_entries() {
    xen_machphys_mapping m2p{};
    if (memory_op(XENMEM_machphys_mapping, &m2p) != 0 || m2p.v_start != MACH2PHYS_VIRT_START) return 0;
    return m2p.max_mfn + 1 < MACH2PHYS_NR_ENTRIES ? m2p.max_mfn + 1 : MACH2PHYS_NR_ENTRIES;
}
std::uint64_t g_root_mfn = 0;

// Page-table entries hold machine addresses; Xen's m2p (read-only at MACH2PHYS_VIRT_START in
// every PV guest) turns them into pfns, checked against our p2m and against where tables are
// (keel's pool once loaded, else the bootstrap region) before the page is read at its
// pseudo-physical address.
struct M2pTables : PageTableMemory {
    std::uint64_t alloc_table() override { return 0; }
    static std::uint64_t pfn_of(std::uint64_t maddr) {
        const std::uint64_t mfn = (maddr & ((std::uint64_t{1} << 52) - 1)) >> 12;
        if (mfn >= g_m2p_entries) return ~std::uint64_t{0};
        const std::uint64_t pfn = reinterpret_cast<const volatile std::uint64_t*>(MACH2PHYS_VIRT_START)[mfn];
        const std::uint64_t lo = g_root ? g_pool->first() : 0, hi = g_root ? g_pool->next() : g_region_end;
        if (pfn >= g_info.nr_pages || pfn * page_size < lo || (pfn + 1) * page_size > hi) return ~std::uint64_t{0};
        if (p2m()[pfn] != mfn) return ~std::uint64_t{0};
        return pfn;
    }
    std::uint64_t* table(std::uint64_t maddr) override {
        const std::uint64_t pfn = pfn_of(maddr);
        return pfn == ~std::uint64_t{0} ? nullptr : reinterpret_cast<std::uint64_t*>(pfn * page_size);
    }
    std::uint64_t table_va(std::uint64_t maddr) override {
        const std::uint64_t pfn = pfn_of(maddr);
        return pfn == ~std::uint64_t{0} ? maddr : pfn * page_size;
    }
};
constinit M2pTables g_m2p_tables;

// For the audit: the root as the guest sees it. Xen fills the upper half of every PV root with
// its own slots (supervisor-only: not reachable from the guest kernel's ring 3), among them a
// linear slot that points back at the root, which a walk would follow as if it were ours.
// The view is a page of .bss beside the object (which has a vtable and so sits in .data: a page
// in it would be a page of zeros in the image file).
alignas(4096) std::uint64_t g_root_view[512];
struct GuestHalfTables final : M2pTables {
    std::uint64_t* table(std::uint64_t maddr) override {
        std::uint64_t* t = M2pTables::table(maddr);
        if (!t || (maddr >> 12) != g_root_mfn) return t;
        for (unsigned i = 0; i < 512; ++i) g_root_view[i] = i < 256 ? t[i] : 0;
        return g_root_view;
    }
};
constinit GuestHalfTables g_audit_tables;  // used before global constructors run

std::uint64_t root_maddr() {
    return g_root ? g_root_mfn * page_size : p2m()[g_info.pt_base / page_size] * page_size;
}

long mmuext(unsigned cmd, std::uint64_t mfn) {
    mmuext_op op{};
    op.cmd = cmd;
    op.arg1.mfn = mfn;
    return hypercall<__HYPERVISOR_mmuext_op>(arg(&op), 1, 0, DOMID_SELF);
}

constexpr std::uint64_t pte_present = 1, pte_accessed = 0x20;
constexpr std::uint64_t pte_nx = std::uint64_t{1} << 63;
constexpr std::uint64_t pte_addr = 0x000f'ffff'ffff'f000ull;

// keel's tables for the plan of address_space.h, loaded in place of Xen's bootstrap tables.
// nullptr, or what went wrong (nothing has changed then, except the pool's pages).
const char* load_own_tables(std::uint64_t* mapped_ram) {
    // The pool: at most 1 MiB of the free tail (as in PVH). 4 KiB leaves: a table per 2 MiB of
    // RAM; RAM beyond what the pool can map stays unmapped (and unused).
    const std::uint64_t ram_end = g_info.ram_bytes();
    const std::uint64_t tail_end = g_region_end < ram_end ? g_region_end : ram_end;
    // The grant frames get the last pages of the tail (mapped over them when first used).
    const std::uint64_t grant_bytes = grant_frames_wanted * page_size;
    if (tail_end < g_free_start + grant_bytes + 16 * page_size) return "the bootstrap region leaves no room for page tables";
    g_grant_window = tail_end - grant_bytes;
    const std::uint64_t pool_end = g_grant_window - g_free_start > 256 * page_size ? g_free_start + 256 * page_size : g_grant_window;
    const std::uint64_t l1_room = (pool_end - g_free_start) / page_size - 12;  // upper levels, self-map reserve
    const std::uint64_t coverable = l1_room << 21;
    *mapped_ram = ram_end < coverable ? ram_end : coverable;
    g_mapped_ram = *mapped_ram;
    for (std::uint64_t pa = g_free_start; pa < pool_end; pa += 8) *reinterpret_cast<volatile std::uint64_t*>(pa) = 0;
    g_pool = new (g_pool_storage) PvPool(g_free_start, pool_end);

    // RAM is [0, nr_pages); the bootstrap elements between the image and the free tail are
    // left out (Xen's tables must not be mapped writable while they are tables; start_info and
    // Xen's stack are done with), except the rings and the p2m.
    g_ram[0] = MemRegion{0, *mapped_ram, XEN_HVM_MEMMAP_TYPE_RAM};
    g_reserved[0] = Range{page_up(addr(__image_end)), g_free_start};
    g_shared[0] = Range{g_info.console_pfn * page_size, (g_info.console_pfn + 1) * page_size};
    g_shared[1] = Range{g_info.store_pfn * page_size, (g_info.store_pfn + 1) * page_size};
    g_shared[2] = Range{g_info.mfn_list, page_up(g_info.mfn_list + g_info.nr_pages * 8)};
    g_shared[3] = Range{g_grant_window, g_grant_window + grant_bytes};
    g_shared[4] = Range{g_info.start_info, g_info.start_info + page_size};  // rewritten around a suspend
    AddressSpacePlan& plan = g_plan;
    plan = image_plan();
    plan.memmap = std::span<const MemRegion>(g_ram, 1);
    plan.shared = std::span<const Range>(g_shared, 5);
    plan.reserved = std::span<const Range>(g_reserved, 1);
    plan.small_pages = true;
    const char* why = nullptr;
    auto root = build_address_space(*g_pool, plan, &why);
    if (!root.ok()) return why ? why : to_string(root.error());

    // Machine addresses into every entry of every table (the pool's reserve pages are zero).
    for (std::uint64_t pa = g_pool->first(); pa < g_pool->next(); pa += page_size) {
        auto* t = reinterpret_cast<std::uint64_t*>(pa);
        for (unsigned i = 0; i < 512; ++i) {
            const std::uint64_t e = t[i];
            if (!(e & pte_present)) continue;
            const std::uint64_t pfn = (e & pte_addr) / page_size;
            if (pfn >= g_info.nr_pages) return "a page-table entry names a frame beyond RAM";
            t[i] = (e & ~pte_addr) | (p2m()[pfn] * page_size);
        }
    }
    // Xen pins only tables that no writable mapping reaches: the bootstrap tables' RW mapping
    // of the pool goes read-only first.
    for (std::uint64_t pa = g_pool->first(); pa < g_pool->next(); pa += page_size) {
        const std::uint64_t pte = p2m()[pa / page_size] * page_size | pte_present | pte_accessed | pte_nx;
        if (hypercall<__HYPERVISOR_update_va_mapping>(pa, pte, UVMF_INVLPG) != 0)
            return "making the new page tables read-only failed";
    }
    const std::uint64_t root_mfn = p2m()[root.value() / page_size];
    const std::uint64_t old_mfn = p2m()[g_info.pt_base / page_size];
    if (mmuext(MMUEXT_PIN_L4_TABLE, root_mfn) != 0) return "Xen refused to pin the new page tables";
    if (mmuext(MMUEXT_NEW_BASEPTR, root_mfn) != 0) return "Xen refused to load the new page tables";
    g_root = root.value();
    g_root_mfn = root_mfn;
    // Xen's tables are unmapped now; unpinned, their frames are plain pages again (unused).
    (void)mmuext(MMUEXT_UNPIN_TABLE, old_mfn);
    return nullptr;
}

[[noreturn]] void pv_shutdown(unsigned reason) {
    sched_shutdown s{reason};
    for (;;) {
        sched_op(SCHEDOP_shutdown, &s);
        sched_op(SCHEDOP_yield, nullptr);
    }
}

// What format wrote into a buffer of `size` bytes, given what it returned (the full length).
std::size_t formatted_length(int n, std::size_t size) {
    if (n < 0) return 0;
    return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

// A start_info we cannot trust: one line where it can still be seen, then SHUTDOWN_crash
// (on_crash in the xl config decides what happens next).
[[noreturn]] void bad_start_info(const char* why) {
    char buf[256];
    int n = format(buf, sizeof buf, "keel: bad start_info (PV): %s; crashing\n", why);
    const std::size_t len = formatted_length(n, sizeof buf);
    // The debug console works on debug builds of Xen only (a release Xen refuses a domU's
    // CONSOLEIO_write), the ring only when start_info located it.
    console_io(CONSOLEIO_write, static_cast<unsigned>(len), buf);
    early_write(std::string_view(buf, len));
    early_console_flush();
    pv_shutdown(SHUTDOWN_crash);
}

__attribute__((format(printf, 1, 2))) void line(const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    early_write(std::string_view(buf, formatted_length(n, sizeof buf)));
}

BootInfo boot_facts(const PvBootInfo& info, std::uint64_t mapped_ram) {
    BootInfo b{};
    // No memory map in PV: the RAM keel maps (what sizes itself from ram_bytes() must not count
    // pages the page tables could not reach).
    b.regions[0] = MemRegion{0, mapped_ram, XEN_HVM_MEMMAP_TYPE_RAM};
    b.region_count = 1;
    static_assert(PvBootInfo::max_cmdline <= BootInfo::max_cmdline);
    for (std::size_t i = 0; i < info.cmdline_len; ++i) b.cmdline[i] = info.cmdline[i];
    b.cmdline[info.cmdline_len] = 0;
    b.cmdline_len = info.cmdline_len;
    b.flags = info.flags;
    return b;
}

}  // namespace

const PvBootInfo& pv_boot_info() { return g_info; }
std::uint64_t pv_region_end() { return g_region_end; }

LiveTables pv_live_tables() { return LiveTables{g_m2p_tables, root_maddr()}; }

GuardRange pv_page_table_pages() {
    if (g_root) return GuardRange{g_pool->first(), g_pool->next()};
    return GuardRange{g_info.pt_base, g_info.pt_base + g_info.nr_pt_frames * page_size};
}

std::uint64_t pv_root_table() { return g_root ? g_root : g_info.pt_base; }

std::uint64_t pv_mfn(std::uint64_t pfn) {
    // Only keel's own pages are granted or remapped: a pfn beyond RAM is a bug, not input.
    if (pfn >= g_info.nr_pages) crash("pv_mfn: a frame beyond the domain's RAM");
    return p2m()[pfn];
}

void pv_publish_p2m(volatile shared_info* si) {
    // arch-x86/xen.h: the toolstack's save reads the p2m through the linear list in our own
    // tables (p2m_cr3 + p2m_vaddr, max_pfn entries); ~0 says there is no 3-level frame tree.
    si->arch.max_pfn = g_info.nr_pages;
    si->arch.p2m_vaddr = g_info.mfn_list;
    si->arch.p2m_generation = 0;
    si->arch.p2m_cr3 = g_root_mfn << 12;  // xen_pfn_to_cr3 on x86_64
    si->arch.pfn_to_mfn_frame_list_list = ~xen_pfn_t{0};
}

std::uint64_t pv_before_suspend() {
    // The toolstack expects pfns where start_info names the xenstore and console pages (it
    // writes the new machine frames there on restore), and no mapping of a frame outside the
    // p2m in our tables: shared_info and the grant frames go (events are masked).
    auto* si = reinterpret_cast<volatile start_info_t*>(g_info.start_info);
    si->store_mfn = g_info.store_pfn;
    si->console.domU.mfn = g_info.console_pfn;
    unmap_shared_info();
    pv_unmap_grant_frames();
    return p2m()[g_info.start_info / page_size];
}

const char* pv_after_suspend(bool new_domain) {
    auto* si = reinterpret_cast<volatile start_info_t*>(g_info.start_info);
    if (!new_domain) {
        si->store_mfn = p2m()[g_info.store_pfn];
        si->console.domU.mfn = p2m()[g_info.console_pfn];
        return nullptr;
    }
    // A new domain (the toolstack rewrote the p2m and start_info's first fields): new machine
    // frames everywhere, new ports; the pfns of the rings stay. Checked like at boot.
    g_m2p_entries = m2p_entries();  // the new host's (0 if it will not say: no table is read then)
    g_root_mfn = p2m()[g_root / page_size];
    const char* why = nullptr;
    auto resumed = parse_pv_resume_info(BootstrapReader{}, g_info, g_mapped_ram / page_size, &why);
    if (!resumed.ok()) return why ? why : to_string(resumed.error());
    g_info.shared_info_maddr = resumed->shared_info_maddr;
    g_info.store_evtchn = resumed->store_evtchn;
    g_info.console.evtchn = resumed->console_evtchn;
    install_traps();  // the toolstack restores them with the vCPU; again, to be sure
    return nullptr;
}

std::uint64_t pv_grant_window() { return g_grant_window; }

long pv_map_page(std::uint64_t va, std::uint64_t mfn) {
    constexpr std::uint64_t rw = 2, dirty = 0x40;
    return hypercall<__HYPERVISOR_update_va_mapping>(va, mfn * page_size | pte_present | rw | pte_accessed | dirty | pte_nx,
                                                     UVMF_INVLPG);
}

std::size_t pv_free_ram(MemRegion* out, std::size_t max) { return g_pool ? free_ram(g_plan, *g_pool, out, max) : 0; }

}  // namespace keel::xen

using namespace keel::xen;

extern "C" [[noreturn]] __attribute__((no_stack_protector)) void keel_pv_boot(std::uint64_t start_info,
                                                                              std::uint64_t xen_stack) {
    keel_pv_mode = true;  // before anything that asks
    hypercall<__HYPERVISOR_fpu_taskswitch>(0);  // clear CR0.TS before any SSE (seed_canary has some)
    begin_boot();
    const std::uint64_t tsc0 = cpu::rdtsc();

    const PvLayout layout{addr(__image_start), addr(__image_end)};
    if (xen_stack < layout.image_end || xen_stack > PvBootInfo::max_pages * page_size)
        bad_start_info("the bootstrap stack is not above the image");
    constexpr std::uint64_t four_mib = std::uint64_t{4} << 20;
    g_region_end = (xen_stack + (512 << 10) + four_mib - 1) & ~(four_mib - 1);
    g_free_start = page_up(xen_stack);

    BootstrapReader reader;
    const char* why = nullptr;
    auto parsed = parse_pv_start_info(reader, start_info, layout, &why);
    if (!parsed.ok()) {
        // Say it on the console if start_info got that far.
        auto console = find_pv_console(reader, start_info, layout, nullptr);
        if (console.ok())
            pv_early_console(reinterpret_cast<volatile xencons_interface*>(console.value().ring),
                             console.value().evtchn);
        bad_start_info(why ? why : to_string(parsed.error()));
    }
    g_info = parsed.value();
    g_m2p_entries = m2p_entries();
    pv_early_console(reinterpret_cast<volatile xencons_interface*>(g_info.console.ring), g_info.console.evtchn);
    install_traps();  // from here on a fault is a report, not a dead domain

    const long version = xen_version_op(XENVER_version, nullptr);
    line("keel: booting (PV) on Xen %ld.%ld\n", version >> 16, version & 0xffff);
    line("keel: start_info at %#lx: %lu pages (%lu MiB), flags %#x; console pfn %#lx port %u, xenstore pfn %#lx "
         "port %u, %lu page-table frames at %#lx, p2m at %#lx; bootstrap region ends at %#lx\n",
         g_info.start_info, g_info.nr_pages, g_info.ram_bytes() >> 20, g_info.flags, g_info.console_pfn,
         g_info.console.evtchn, g_info.store_pfn, g_info.store_evtchn, g_info.nr_pt_frames, g_info.pt_base,
         g_info.mfn_list, g_region_end);

    if (g_m2p_entries == 0) {  // the audit could read no table: it would pass for nothing
        line("keel: Xen does not say where its m2p is (XENMEM_machphys_mapping); crashing\n");
        early_console_flush();
        pv_shutdown(SHUTDOWN_crash);
    }
    std::uint64_t mapped_ram = 0;
    if (const char* failed = load_own_tables(&mapped_ram)) {
        line("keel: page tables (PV): %s; crashing\n", failed);
        early_console_flush();
        pv_shutdown(SHUTDOWN_crash);
    }
    if (mapped_ram < g_info.ram_bytes())
        line("keel: PV: page tables for %lu of %lu MiB of RAM (the bootstrap region's room for them); the rest "
             "stays unused\n",
             mapped_ram >> 20, g_info.ram_bytes() >> 20);
    map_shared_info();  // over its page of .bss, now in keel's tables

    AuditResult a{};
    const char* failed = check_address_space(g_audit_tables, g_root_mfn * page_size, g_plan.guards, a);
    if (!failed && a.table_pages < 4) failed = "the walk read fewer than 4 page tables (the m2p or p2m is wrong)";
    if (failed) {
        line("keel: W^X audit failed: %s; crashing\n", failed);
        early_console_flush();
        pv_shutdown(SHUTDOWN_crash);
    }
    finish_boot(tsc0, start_info, boot_facts(g_info, mapped_ram), protection_report_from(a));
}
