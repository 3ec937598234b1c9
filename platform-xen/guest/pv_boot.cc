// keel_pv_boot: the classic 64-bit PV start of day (docs/pv.md). From pv_entry.S (ring 3, upcalls
// masked, our boot stack): validate start_info (pv_start_info.h), take the console ring for
// early_write, the trap table and callbacks, shared_info, the boot facts, then the rest of boot
// as in PVH (boot.cc, finish_boot) up to keel_main.
//
// Ring 3: no cli/sti/hlt, no control registers or MSRs, no port I/O (PVH's port 0xE9 does not
// exist here). Everything goes through the hypercall page, which the domain builder had Xen
// fill before the first instruction (XEN_ELFNOTE_HYPERCALL_PAGE).
//
// Not built yet (docs/pv.md, order of work): keel's own W^X page tables (Xen's bootstrap tables
// map the bootstrap region, everything in it writable and executable, and nothing above it, so
// only the region's free tail is RAM for the heap); grants; suspend and resume.
#include <cstdarg>

#include "cpu.h"
#include "internal.h"
#include "keel/format.h"
#include "keel/xen/console_ring.h"
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

// Page-table entries hold machine addresses; Xen's m2p (read-only at MACH2PHYS_VIRT_START in
// every PV guest) turns them into pfns, checked against our p2m before the page is read at its
// bootstrap-region address.
struct M2pTables final : PageTableMemory {
    std::uint64_t alloc_table() override { return 0; }
    std::uint64_t* table(std::uint64_t maddr) override {
        const std::uint64_t mfn = (maddr & ((std::uint64_t{1} << 52) - 1)) >> 12;
        if (mfn >= MACH2PHYS_NR_ENTRIES) return nullptr;
        const std::uint64_t pfn = reinterpret_cast<const volatile std::uint64_t*>(MACH2PHYS_VIRT_START)[mfn];
        if (pfn >= g_info.nr_pages || (pfn + 1) * page_size > g_region_end) return nullptr;
        if (reinterpret_cast<const volatile std::uint64_t*>(g_info.mfn_list)[pfn] != mfn) return nullptr;
        return reinterpret_cast<std::uint64_t*>(pfn * page_size);
    }
};
constinit M2pTables g_m2p_tables;

std::uint64_t root_maddr() {
    return reinterpret_cast<const volatile std::uint64_t*>(g_info.mfn_list)[g_info.pt_base / page_size] * page_size;
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

BootInfo boot_facts(const PvBootInfo& info) {
    BootInfo b{};
    b.regions[0] = MemRegion{0, info.ram_bytes(), XEN_HVM_MEMMAP_TYPE_RAM};  // no memory map in PV
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

GuardRange pv_page_table_pages() { return GuardRange{g_info.pt_base, g_info.pt_base + g_info.nr_pt_frames * page_size}; }

std::size_t pv_free_ram(MemRegion* out, std::size_t max) {
    const std::uint64_t end = g_region_end < g_info.ram_bytes() ? g_region_end : g_info.ram_bytes();
    if (max == 0 || g_free_start >= end) return 0;
    out[0] = MemRegion{g_free_start, end - g_free_start, XEN_HVM_MEMMAP_TYPE_RAM};
    return 1;
}

}  // namespace keel::xen

using namespace keel::xen;

extern "C" [[noreturn]] __attribute__((no_stack_protector)) void keel_pv_boot(std::uint64_t start_info,
                                                                              std::uint64_t xen_stack) {
    keel_pv_mode = true;  // before anything that asks
    begin_boot();
    const std::uint64_t tsc0 = cpu::rdtsc();
    hypercall<__HYPERVISOR_fpu_taskswitch>(0);  // clear CR0.TS: SSE without a #NM first

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
    pv_early_console(reinterpret_cast<volatile xencons_interface*>(g_info.console.ring), g_info.console.evtchn);
    install_traps();    // from here on a fault is a report, not a dead domain
    map_shared_info();  // the clock, for early_write's drain waits

    const long version = xen_version_op(XENVER_version, nullptr);
    line("keel: booting (PV) on Xen %ld.%ld\n", version >> 16, version & 0xffff);
    line("keel: start_info at %#lx: %lu pages (%lu MiB), flags %#x; console pfn %#lx port %u, xenstore pfn %#lx "
         "port %u, %lu page-table frames at %#lx, p2m at %#lx; bootstrap region ends at %#lx\n",
         g_info.start_info, g_info.nr_pages, g_info.ram_bytes() >> 20, g_info.flags, g_info.console_pfn,
         g_info.console.evtchn, g_info.store_pfn, g_info.store_evtchn, g_info.nr_pt_frames, g_info.pt_base,
         g_info.mfn_list, g_region_end);

    // Xen's bootstrap tables stay for now: count what they map, and say that W^X is not there.
    const LiveTables t = pv_live_tables();
    const AuditResult a = audit(t.mem, t.root);
    ProtectionReport p{};
    p.mapped_pages = a.mapped_pages_4k_equiv;
    p.writable_pages = a.writable_pages;
    p.executable_pages = a.executable_pages;
    p.wx_pages = a.wx_pages;
    p.page0_mapped = a.page0_mapped;
    p.table_pages = a.table_pages;
    p.image_bytes = layout.image_end - layout.image_start;
    early_write("keel: classic PV runs on Xen's bootstrap page tables: no W^X, no guard pages, and only the "
                "bootstrap region's free tail as RAM (docs/pv.md, step 3)\n");
    finish_boot(tsc0, start_info, boot_facts(g_info), p);
}
