// keel_boot: from the PVH entry stub (long mode, bootstrap identity map) to keel_main().
// Order matters: canary first (before any protected frame returns), then traps so every later
// failure gets a report, then Xen detection and the hypercall page, start_info, the W^X page
// tables and their audit, shared_info, event channels, and finally the kernel.
#include <cstring>

#include "cpu.h"
#include "internal.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/page_table.h"
#include "keel/xen/platform.h"

extern "C" {
extern char __image_start[], __image_end[], __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[], __data_start[], __data_end[];
extern char __stack_guard[], __stack_bottom[], __ist_guard[], __ist_bottom[];
extern char __ksyms_start[], __ksyms_end[];
extern std::uintptr_t __stack_chk_guard;
}

namespace keel::xen {
namespace {

BootInfo g_boot;
ProtectionReport g_protection;

// Pages handed out while building the page tables: taken from the RAM right after the image.
struct BootPages {
    std::uint64_t next = 0, limit = 0, first = 0;
} g_boot_pages;

std::uint64_t addr(const char* p) { return reinterpret_cast<std::uint64_t>(p); }
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

// Until the real tables are live, physical == virtual for the first 4 GiB.
struct IdentityReader final : PhysReader {
    const void* map(std::uint64_t paddr, std::uint64_t len) const override {
        if (paddr == 0 || paddr + len < paddr || paddr + len > (std::uint64_t{4} << 30)) return nullptr;
        return reinterpret_cast<const void*>(paddr);
    }
};

struct TableMemory final : PageTableMemory {
    std::uint64_t alloc_table() override {
        if (g_boot_pages.next + 4096 > g_boot_pages.limit) return 0;
        std::uint64_t p = g_boot_pages.next;
        g_boot_pages.next += 4096;
        std::memset(reinterpret_cast<void*>(p), 0, 4096);
        return p;
    }
    std::uint64_t* table(std::uint64_t paddr) override { return reinterpret_cast<std::uint64_t*>(paddr); }
};
TableMemory g_table_memory;

void choose_boot_pages() {
    std::uint64_t start = page_up(addr(__image_end));
    for (std::size_t i = 0; i < g_boot.region_count; ++i) {
        const MemRegion& r = g_boot.regions[i];
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM) continue;
        if (start >= r.base && start < r.base + r.length) {
            g_boot_pages.first = g_boot_pages.next = start;
            // Page tables for a few GiB need well under 64 pages; take at most 256 (1 MiB).
            std::uint64_t end = r.base + r.length;
            g_boot_pages.limit = end - start > 256 * 4096 ? start + 256 * 4096 : end;
            return;
        }
    }
    die("no RAM after the image for page tables", nullptr);
}

void check(Result<void> r, const char* what) {
    if (!r.ok()) die(what, to_string(r.error()));
}

void build_page_tables() {
    choose_boot_pages();
    PageTableBuilder b(g_table_memory);
    check(b.init(), "page tables: init");
    constexpr std::uint64_t four_gib = std::uint64_t{4} << 30;
    const std::uint64_t img = addr(__image_start);
    // Everything below the image except page 0: RW, never executable (low RAM, nothing else).
    check(b.map(4096, 4096, img - 4096, perm_w), "page tables: low memory");
    // The image's sections map to themselves, each from its start symbol to its end symbol.
    auto map_section = [&b](const char* start, const char* end, Perm perm, const char* what) {
        check(b.map(addr(start), addr(start), addr(end) - addr(start), perm), what);
    };
    map_section(__text_start, __text_end, perm_x, "page tables: text");
    map_section(__rodata_start, __rodata_end, perm_r, "page tables: rodata");
    // data + bss + stacks, minus the guard pages under each stack.
    map_section(__data_start, __stack_guard, perm_w, "page tables: data");
    map_section(__stack_bottom, __ist_guard, perm_w, "page tables: stack");
    map_section(__ist_bottom, __data_end, perm_w, "page tables: fault stack");
    map_section(__ksyms_start, __ksyms_end, perm_r, "page tables: symbols");
    // The rest of the low 4 GiB: RAM, special pages (console, xenstore), grant frames. RW+NX.
    const std::uint64_t after = page_up(addr(__image_end));
    check(b.map(after, after, four_gib - after, perm_w), "page tables: high memory");
    // RAM above 4 GiB, if the guest has any.
    for (std::size_t i = 0; i < g_boot.region_count; ++i) {
        const MemRegion& r = g_boot.regions[i];
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM || r.base + r.length <= four_gib) continue;
        std::uint64_t base = r.base < four_gib ? four_gib : r.base;
        check(b.map(base, base, r.base + r.length - base, perm_w), "page tables: RAM above 4 GiB");
    }
    cpu::write_cr3(b.root());

    AuditResult a = audit(g_table_memory, cpu::read_cr3());
    g_protection.mapped_pages = a.mapped_pages_4k_equiv;
    g_protection.writable_pages = a.writable_pages;
    g_protection.executable_pages = a.executable_pages;
    g_protection.wx_pages = a.wx_pages;
    g_protection.page0_mapped = a.page0_mapped;
    g_protection.image_bytes = addr(__image_end) - img;
    if (a.wx_pages != 0) die("W^X audit failed: a page is writable and executable", nullptr);
    if (a.page0_mapped) die("W^X audit failed: page 0 is mapped", nullptr);
    if ((cpu::read_cr0() & (1u << 16)) == 0) die("CR0.WP is off", nullptr);
    if ((cpu::rdmsr(cpu::msr_efer) & (1u << 11)) == 0) die("EFER.NXE is off", nullptr);
}

__attribute__((no_stack_protector)) void seed_canary() {
    std::uint64_t v = random_seed();
    v &= ~std::uint64_t{0xff};   // a NUL low byte stops string overflows from copying it
    __stack_chk_guard = v | 0x100;
}

}  // namespace

__attribute__((no_stack_protector)) std::uint64_t random_seed() {
    std::uint64_t v = 0;
    const bool have_rdrand = (cpu::cpuid(1).c & (1u << 30)) != 0;
    for (int tries = 0; have_rdrand && tries < 10; ++tries) {  // RDRAND may fail transiently
        if (cpu::rdrand(v)) return v ^ cpu::rdtsc();
    }
    return cpu::rdtsc() * 0x9e3779b97f4a7c15ull;
}

const BootInfo& boot_info() { return g_boot; }
const ProtectionReport& protection_report() { return g_protection; }

std::size_t free_ram(MemRegion* out, std::size_t max) {
    std::size_t n = 0;
    const std::uint64_t used_end = g_boot_pages.next;   // image, then the boot page tables
    const std::uint64_t used_start = addr(__image_start);
    auto emit = [&](std::uint64_t b, std::uint64_t e) {
        if (e > b && n < max) out[n++] = MemRegion{b, e - b, XEN_HVM_MEMMAP_TYPE_RAM};
    };
    for (std::size_t i = 0; i < g_boot.region_count; ++i) {
        const MemRegion& r = g_boot.regions[i];
        if (r.type != XEN_HVM_MEMMAP_TYPE_RAM) continue;
        std::uint64_t b = r.base < 4096 ? 4096 : r.base, e = r.base + r.length;
        // Cut out [used_start, used_end): the image (shared_info lives in its bss) and tables.
        if (e <= used_start || b >= used_end) {
            emit(b, e);
        } else {
            emit(b, used_start);
            emit(used_end, e);
        }
    }
    return n;
}

}  // namespace keel::xen

using namespace keel::xen;

extern "C" [[noreturn]] __attribute__((no_stack_protector)) void keel_boot(std::uint32_t start_info_paddr) {
    seed_canary();
    std::uint64_t tsc0 = cpu::rdtsc();
    enable_sse();
    install_traps();
    install_hypercall_page();
    early_write("eel: booting\n");   // the entry stub already printed the 'k'

    const char* why = nullptr;
    IdentityReader reader;
    auto parsed = parse_start_info(reader, start_info_paddr, &why);
    if (!parsed.ok()) die("bad start_info", why ? why : to_string(parsed.error()));
    g_boot = parsed.value();

    build_page_tables();
    init_events();
    g_protection.boot_ns = now_ns() - tsc_to_ns_estimate(cpu::rdtsc() - tsc0);
    keel_main();
}
