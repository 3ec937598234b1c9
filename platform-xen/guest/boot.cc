// keel_boot: from the PVH entry stub (long mode, the image alone mapped W^X) to keel_main().
// Order matters: SSE, the canary (before any protected frame returns), then traps so every later
// failure gets a report, then Xen detection and the hypercall page, start_info (mapped read-only
// while it is read), the real W^X tables (address_space.h) and their audit, shared_info, event
// channels, the canary again from everything boot learnt, and finally the kernel.
#include <cstring>
#include <new>

#include "cpu.h"
#include "internal.h"
#include "keel/xen/address_space.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/page_table.h"
#include "keel/xen/platform.h"
#include "keel/xen/seed.h"

extern "C" {
extern char __image_start[], __image_end[], __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[], __data_start[], __data_end[];
extern char __stack_guard[], __stack_bottom[], __stack_top[], __ist_guard[], __ist_bottom[];
extern char __ksyms_start[], __ksyms_end[];
extern std::uintptr_t __stack_chk_guard;
extern std::uint64_t boot_pml4[];   // entry.S
}

namespace keel::xen {
namespace {

BootInfo g_boot;
ProtectionReport g_protection;

std::uint64_t addr(const char* p) { return reinterpret_cast<std::uint64_t>(p); }
std::uint64_t page_down(std::uint64_t v) { return v & ~std::uint64_t{4095}; }
std::uint64_t page_up(std::uint64_t v) { return (v + 4095) & ~std::uint64_t{4095}; }

[[noreturn]] void die(const char* what, const char* why) {
    early_write("keel: ");
    early_write(what);
    if (why) {
        early_write(": ");
        early_write(why);
    }
    early_write("\n");
    shutdown(ShutdownReason::crash);
}

[[noreturn]] void halt_forever(const char* msg) {
    // No hypercalls without Xen: say so on the debug port and stop (interrupts off would end
    // a PVH vCPU, so idle with them on and nothing armed).
    early_write(msg);
    for (;;) cpu::sti_hlt();
}

void enable_sse() {
    // CR0: clear EM, set MP; CR4: OSFXSR | OSXMMEXCPT, so compiler-generated SSE works.
    cpu::write_cr0((cpu::read_cr0() & ~std::uint64_t{1 << 2}) | (1 << 1));
    cpu::write_cr4(cpu::read_cr4() | (1 << 9) | (1 << 10));
    asm volatile("fninit");
}

void install_hypercall_page() {
    for (std::uint32_t base = 0x40000000; base < 0x40010000; base += 0x100) {
        auto r = cpu::cpuid(base);
        char sig[13];
        std::memcpy(sig + 0, &r.b, 4);
        std::memcpy(sig + 4, &r.c, 4);
        std::memcpy(sig + 8, &r.d, 4);
        sig[12] = 0;
        if (std::memcmp(sig, "XenVMMXenVMM", 12) != 0 || r.a < base + 2) continue;
        auto pages = cpu::cpuid(base + 2);   // eax: number of hypercall pages, ebx: MSR
        if (pages.a < 1) halt_forever("keel: Xen offers no hypercall page\n");
        cpu::wrmsr(pages.b, addr(keel_hypercall_page));
        return;
    }
    halt_forever("keel: not running on Xen (no XenVMMXenVMM CPUID leaf); halting\n");
}

void flush_tlb() { cpu::write_cr3(cpu::read_cr3()); }

// The entry stub's tables (the image, W^X) and a few pages in .bss for what boot adds to them:
// start_info while it is read, then the window the real tables are built in. Live in CR3, so
// physical == virtual for every page they map.
// Anything below 16 MiB has its entry in entry.S's boot_pt already; a page elsewhere below
// 512 GiB needs at most a PD and a PT, so 8 cover start_info, its memory map and its command
// line in three different places. More is a clear "bad start_info" (the mapping fails).
constexpr unsigned boot_extra_tables = 8;
alignas(4096) std::uint64_t g_boot_extra[boot_extra_tables][512];
struct BootTables final : PageTableMemory {
    unsigned used = 0;
    std::uint64_t alloc_table() override {
        if (used == boot_extra_tables) return 0;
        std::memset(g_boot_extra[used], 0, 4096);
        return addr(reinterpret_cast<const char*>(g_boot_extra[used++]));
    }
    std::uint64_t* table(std::uint64_t paddr) override { return reinterpret_cast<std::uint64_t*>(paddr); }
};
// constinit: used long before global constructors run, so its vtable pointer must be static.
constinit BootTables g_boot_tables;
std::uint64_t boot_root() { return addr(reinterpret_cast<const char*>(boot_pml4)); }

// start_info, its memory map and the command line are mapped read-only, a page at a time, as
// the parser asks for them, and unmapped once it has copied them. Nothing below 64 KiB.
struct BootReader final : PhysReader {
    mutable std::uint64_t mapped[8];
    mutable unsigned count = 0;
    const void* map(std::uint64_t paddr, std::uint64_t len) const override {
        if (len == 0 || paddr < null_region_end || paddr + len < paddr || paddr + len > (std::uint64_t{1} << 52))
            return nullptr;
        PageTableBuilder b(g_boot_tables, boot_root());
        for (std::uint64_t p = page_down(paddr); p < paddr + len; p += 4096) {
            if (translate(g_boot_tables, boot_root(), p) == p) continue;  // mapped already
            if (count == sizeof mapped / sizeof mapped[0] || !b.map(p, p, 4096, perm_r).ok()) return nullptr;
            mapped[count++] = p;
        }
        flush_tlb();
        return reinterpret_cast<const void*>(paddr);
    }
    void unmap_all() {
        PageTableBuilder b(g_boot_tables, boot_root());
        for (unsigned i = 0; i < count; ++i) (void)b.unmap(mapped[i], 4096);
        count = 0;
        flush_tlb();
    }
};

// The real tables, in RAM right after the image; mapped RW in the boot tables while built.
struct RealTables final : TablePool {
    using TablePool::TablePool;
    std::uint64_t* table(std::uint64_t paddr) override { return reinterpret_cast<std::uint64_t*>(paddr); }
};
alignas(RealTables) unsigned char g_real_storage[sizeof(RealTables)];
RealTables* g_real = nullptr;
AddressSpacePlan g_plan;   // what build_page_tables() mapped; free_ram() hands out the rest

RealTables& choose_table_pool() {
    std::uint64_t start = page_up(addr(__image_end));
    for (std::size_t i = 0; i < g_boot.region_count; ++i) {
        const MemRegion& r = g_boot.regions[i];
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM) continue;
        if (start >= r.base && start < r.base + r.length) {
            // Tables for a few GiB need well under 64 pages; take at most 256 (1 MiB).
            std::uint64_t end = r.base + r.length;
            std::uint64_t limit = end - start > 256 * 4096 ? start + 256 * 4096 : end;
            return *new (g_real_storage) RealTables(start, limit);
        }
    }
    die("no RAM after the image for page tables", nullptr);
}

void check(Result<void> r, const char* what) {
    if (!r.ok()) die(what, to_string(r.error()));
}

// Where the grant frames go: a hole in the memory map (see grant_table_xen.cc for why a hole).
constexpr std::uint64_t grant_preferred = 0xF000'0000;   // the classic PCI hole
constexpr std::uint64_t grant_hole_min = 1ull << 20;      // above BIOS-era low memory
constexpr std::uint64_t grant_hole_limit = 0xFEC0'0000;   // below the IOAPIC/LAPIC window
std::uint64_t g_grant_window = 0;

// The frames the toolstack shares with us outside RAM: the xenstore and console pages (their
// HVM params), and the hole the grant table will be mapped into.
std::size_t shared_frames(Range* out) {
    std::size_t n = 0;
    for (unsigned param : {HVM_PARAM_STORE_PFN, HVM_PARAM_CONSOLE_PFN}) {
        auto pfn = hvm_param(param);
        if (pfn.ok() && pfn.value() != 0 && pfn.value() < (std::uint64_t{1} << 40))
            out[n++] = Range{pfn.value() << 12, (pfn.value() + 1) << 12};
    }
    auto hole = find_physmap_hole(std::span<const MemRegion>(g_boot.regions.data(), g_boot.region_count),
                                  grant_frames_wanted * 4096, grant_preferred, grant_hole_min, grant_hole_limit);
    if (hole) {
        g_grant_window = *hole;
        out[n++] = Range{*hole, *hole + grant_frames_wanted * 4096};
    }
    return n;
}

void build_page_tables() {
    RealTables& pool = choose_table_pool();
    g_real = &pool;
    // Let the boot tables reach the pool (RW+NX) so the builder can write the real tables.
    check(PageTableBuilder(g_boot_tables, boot_root()).map(pool.first(), pool.first(), pool.limit() - pool.first(), perm_w),
          "boot page tables: mapping the page-table pool");
    flush_tlb();

    static Range shared[3];
    AddressSpacePlan& plan = g_plan;
    plan = image_plan();
    plan.memmap = std::span<const MemRegion>(g_boot.regions.data(), g_boot.region_count);
    plan.shared = std::span<const Range>(shared, shared_frames(shared));
    const char* why = nullptr;
    auto root = build_address_space(pool, plan, &why);
    if (!root.ok()) die("page tables", why ? why : to_string(root.error()));
    cpu::write_cr3(root.value());

    AuditResult a{};
    const char* failed = check_address_space(pool, cpu::read_cr3(), plan.guards, a);
    g_protection = protection_report_from(a);
    if (failed) die("W^X audit failed", failed);
    if ((cpu::read_cr0() & (1u << 16)) == 0) die("W^X audit failed", "CR0.WP is off");
    if ((cpu::rdmsr(cpu::msr_efer) & (1u << 11)) == 0) die("W^X audit failed", "EFER.NXE is off");
}

// ---- Seeds ----------------------------------------------------------------------------------

SeedInputs g_seed_inputs;   // the boot-time part, filled in as boot learns it
std::uint64_t g_seed_count = 0;

__attribute__((no_stack_protector)) std::uint64_t cpu_random(bool seed) {
    const bool have = seed ? cpu::cpuid(0).a >= 7 && (cpu::cpuid(7).b & (1u << 18)) != 0
                           : (cpu::cpuid(1).c & (1u << 30)) != 0;
    std::uint64_t v = 0;
    for (int tries = 0; have && tries < 10; ++tries) {  // both may fail transiently
        if (seed ? cpu::rdseed(v) : cpu::rdrand(v)) return v;
    }
    return 0;
}

__attribute__((no_stack_protector)) void seed_canary() {
    std::uint64_t v = random_seed();
    v &= ~std::uint64_t{0xff};   // a NUL low byte stops string overflows from copying it
    __stack_chk_guard = v | 0x100;
}

// The boot-time inputs that need Xen: the domain's UUID and the wall clock (after shared_info).
void gather_boot_seed_inputs(std::uint64_t start_info_paddr) {
    g_seed_inputs.start_info_paddr = start_info_paddr;
    g_seed_inputs.boot_hash = hash_boot_info(g_boot);
    xen_domain_handle_t handle{};
    if (xen_version_op(XENVER_guest_handle, &handle) == 0) std::memcpy(g_seed_inputs.guest_handle, handle, 16);
}

// The stack pattern: boot writes it below its own frame; stack_use() looks for the lowest
// quadword that differs.
constexpr std::uint64_t stack_paint = 0x6b65656c'5354414bull;   // "KATSleek"

__attribute__((no_stack_protector)) void paint_stack() {
    // Leave 1 KiB below our caller's frame alone: this function's own frame lies there.
    auto* end = reinterpret_cast<volatile std::uint64_t*>((reinterpret_cast<std::uint64_t>(__builtin_frame_address(0)) - 1024) & ~std::uint64_t{7});
    for (auto* p = reinterpret_cast<volatile std::uint64_t*>(__stack_bottom); p < end; ++p) *p = stack_paint;
}

}  // namespace

StackUse stack_use() {
    const auto* p = reinterpret_cast<const volatile std::uint64_t*>(__stack_bottom);
    const auto* top = reinterpret_cast<const volatile std::uint64_t*>(__stack_top);
    while (p < top && *p == stack_paint) ++p;
    return StackUse{.size = addr(__stack_top) - addr(__stack_bottom),
                    .peak = addr(__stack_top) - reinterpret_cast<std::uint64_t>(p)};
}

extern "C" {
bool keel_pv_mode = false;
}

AddressSpacePlan image_plan() {
    static const Range guards[] = {{addr(__stack_guard), addr(__stack_bottom)}, {addr(__ist_guard), addr(__ist_bottom)}};
    AddressSpacePlan plan{};
    plan.text = {addr(__text_start), addr(__text_end)};
    plan.rodata = {addr(__rodata_start), addr(__rodata_end)};
    plan.data = {addr(__data_start), addr(__data_end)};
    plan.ksyms = {addr(__ksyms_start), addr(__ksyms_end)};
    plan.guards = guards;
    return plan;
}

ProtectionReport protection_report_from(const AuditResult& a) {
    ProtectionReport p{};
    p.mapped_pages = a.mapped_pages_4k_equiv;
    p.writable_pages = a.writable_pages;
    p.executable_pages = a.executable_pages;
    p.wx_pages = a.wx_pages;
    p.page0_mapped = a.page0_mapped;
    p.table_pages = a.table_pages;
    p.image_bytes = addr(__image_end) - addr(__image_start);
    return p;
}

GuestMode guest_mode() { return pv_mode() ? GuestMode::pv : GuestMode::pvh; }
const char* to_string(GuestMode mode) { return mode == GuestMode::pv ? "PV" : "PVH"; }

std::uint64_t grant_window() { return pv_mode() ? pv_grant_window() : g_grant_window; }
GuardRange page_table_pages() {
    if (pv_mode()) return pv_page_table_pages();
    return g_real ? GuardRange{g_real->first(), g_real->next()} : GuardRange{};
}

namespace {
// PVH's tables are identity-mapped: a table's physical address is where it is read.
struct IdentityTables final : PageTableMemory {
    std::uint64_t alloc_table() override { return 0; }
    std::uint64_t* table(std::uint64_t pa) override { return reinterpret_cast<std::uint64_t*>(pa); }
};
constinit IdentityTables g_identity_tables;
}  // namespace

const volatile std::uint64_t* page_table_root() {
    const std::uint64_t root = pv_mode() ? pv_root_table() : cpu::read_cr3() & ~std::uint64_t{0xfff};
    return reinterpret_cast<const volatile std::uint64_t*>(root);
}

LiveTables live_tables() {
    if (pv_mode()) return pv_live_tables();
    return LiveTables{g_identity_tables, cpu::read_cr3()};
}

__attribute__((no_stack_protector)) std::uint64_t random_seed() {
    SeedInputs in = g_seed_inputs;
    in.rdrand = cpu_random(false);
    in.rdseed = cpu_random(true);
    in.tsc = cpu::rdtsc();
    if (events_ready()) {
        in.pvclock_ns = now_ns();
        const WallClock w = wallclock();
        in.wall_sec = w.sec;
        in.wall_nsec = w.nsec;
    }
    in.stack_addr = reinterpret_cast<std::uint64_t>(&in);
    in.counter = g_seed_count++;
    return mix_seed(in);
}

const BootInfo& boot_info() { return g_boot; }
const ProtectionReport& protection_report() { return g_protection; }

std::size_t free_ram(MemRegion* out, std::size_t max) {
    if (pv_mode()) return pv_free_ram(out, max);
    return free_ram(g_plan, *g_real, out, max);
}

}  // namespace keel::xen

using namespace keel::xen;

__attribute__((no_stack_protector)) void keel::xen::begin_boot() {
    paint_stack();
    seed_canary();  // CPU randomness and the TSC only: nothing else is known yet
}

[[noreturn]] __attribute__((no_stack_protector)) void keel::xen::finish_boot(std::uint64_t tsc0,
                                                                           std::uint64_t start_info_addr,
                                                                           const BootInfo& boot,
                                                                           const ProtectionReport& protection) {
    g_boot = boot;
    g_protection = protection;
    init_events();
    gather_boot_seed_inputs(start_info_addr);
    // Every protected frame so far has returned (the boot functions have no canary): replace
    // the canary with one that mixes everything boot learnt.
    seed_canary();
    g_protection.boot_ns = now_ns() - tsc_to_ns_estimate(cpu::rdtsc() - tsc0);
    keel_main();
}

extern "C" [[noreturn]] __attribute__((no_stack_protector)) void keel_boot(std::uint32_t start_info_paddr) {
    enable_sse();    // first: the compiler uses SSE for copies, seed_canary's included
    begin_boot();
    std::uint64_t tsc0 = cpu::rdtsc();
    install_traps();
    install_hypercall_page();
    early_write("eel: booting\n");   // the entry stub already printed the 'k'

    const char* why = nullptr;
    BootReader reader;
    auto parsed = parse_start_info(reader, start_info_paddr, &why);
    if (!parsed.ok()) die("bad start_info", why ? why : to_string(parsed.error()));
    g_boot = parsed.value();
    reader.unmap_all();

    build_page_tables();
    finish_boot(tsc0, start_info_paddr, g_boot, g_protection);
}
