// keel_pv_boot: the classic 64-bit PV start of day, step 1 of docs/pv.md. From pv_entry.S (ring 3,
// upcalls masked, our boot stack): validate start_info (pv_start_info.h), find the console ring
// in the bootstrap region, say what was found on the PV console, and power off. Nothing else of
// keel runs in PV yet, and the last line says so.
//
// Ring 3: no cli/sti/hlt, no control registers or MSRs, no port I/O (PVH's port 0xE9 does not
// exist here), no CPUID assumptions. Everything goes through the hypercall page, which the
// domain builder had Xen fill before the first instruction (XEN_ELFNOTE_HYPERCALL_PAGE).
#include <cstdarg>

#include "keel/format.h"
#include "keel/xen/console_ring.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/pv_start_info.h"
#include "keel/xen/pvclock.h"

extern "C" char __image_start[], __image_end[];

namespace keel::xen {
namespace {

constexpr std::uint64_t page_size = 4096;
constexpr std::uint64_t low_limit = 0x10000;  // nothing of interest below 64 KiB (as in PVH)
constexpr std::uint64_t ms = 1'000'000;       // ns

std::uint64_t addr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }

// The end of the bootstrap region: xen.h guarantees at least 512 KiB after the last bootstrap
// element (the stack whose top Xen put in %rsp) and a region that ends on a 4 MiB boundary.
// Everything below it is mapped (writable, the page tables read-only); reads stay below it.
std::uint64_t g_region_end = 0;

struct BootstrapReader final : PhysReader {
    const void* map(std::uint64_t p, std::uint64_t len) const override {
        if (len == 0 || p < low_limit || p + len < p || p + len > g_region_end) return nullptr;
        return reinterpret_cast<const void*>(p);
    }
};

// The console ring, once found; null when there is none or the backend broke it.
volatile xencons_interface* g_ring = nullptr;
std::uint32_t g_port = 0;

// shared_info (for the clock and the console port's pending bit): this page of .bss is
// re-pointed at Xen's frame with update_va_mapping (the bootstrap tables map .bss, so its L1
// table exists).
alignas(4096) unsigned char g_shared_page[4096];
volatile shared_info* g_shared = nullptr;

// x86 page-table entry bits for that one mapping.
constexpr std::uint64_t pte_present = 1, pte_rw = 2, pte_accessed = 0x20, pte_dirty = 0x40;
constexpr std::uint64_t pte_nx = std::uint64_t{1} << 63;

long map_shared_info(std::uint64_t maddr) {
    const std::uint64_t pte = maddr | pte_present | pte_rw | pte_accessed | pte_dirty | pte_nx;
    long rc = hypercall<__HYPERVISOR_update_va_mapping>(addr(g_shared_page), pte, UVMF_INVLPG);
    if (rc == 0) g_shared = reinterpret_cast<volatile shared_info*>(g_shared_page);
    return rc;
}

std::uint64_t read_tsc() {
    std::uint32_t lo, hi;
    asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

std::uint64_t now_ns() { return pvclock_read(g_shared->vcpu_info[0].time, read_tsc); }

void notify() {
    evtchn_send send{g_port};
    evtchn_op(EVTCHNOP_send, &send);
}

// Waits, at most `limit_ns`, until xenconsoled has consumed everything written. Blocks in
// SCHEDOP_poll on the console port (xenconsoled notifies it after reading), clearing the port's
// pending bit first so a notification already seen does not end every poll at once. Notifies
// again every round: xenconsoled reads a ring only on an event, and one sent before it bound
// its end of the channel is lost. Without shared_info there is no clock: a bounded number of
// yields instead.
bool wait_drained(std::uint64_t limit_ns) {
    if (!g_ring) return false;
    if (!g_shared) {
        for (int i = 0; i < 100000 && !console_ring_drained(*g_ring); ++i) {
            if (i % 1000 == 0) notify();
            sched_op(SCHEDOP_yield, nullptr);
        }
        return console_ring_drained(*g_ring);
    }
    const std::uint64_t deadline = now_ns() + limit_ns;
    constexpr unsigned bits = sizeof(xen_ulong_t) * 8;
    while (!console_ring_drained(*g_ring)) {
        const std::uint64_t t = now_ns();
        if (t >= deadline) return false;
        __atomic_fetch_and(&g_shared->evtchn_pending[g_port / bits], ~(xen_ulong_t{1} << (g_port % bits)),
                           __ATOMIC_SEQ_CST);
        if (console_ring_drained(*g_ring)) break;
        notify();
        evtchn_port_t port = g_port;
        sched_poll poll{};
        set_xen_guest_handle(poll.ports, &port);
        poll.nr_ports = 1;
        poll.timeout = t + 50 * ms < deadline ? t + 50 * ms : deadline;
        sched_op(SCHEDOP_poll, &poll);
    }
    return true;
}

void write(std::string_view s) {
    while (g_ring && !s.empty()) {
        auto put = console_ring_put(*g_ring, s);
        if (!put.ok()) {  // out_cons is impossible: the ring is broken, write nothing more
            g_ring = nullptr;
            return;
        }
        s.remove_prefix(put.value());
        notify();
        // Full: let xenconsoled catch up (bounded; a console that never drains loses the rest).
        if (!s.empty() && !wait_drained(2000 * ms)) g_ring = nullptr;
    }
}

// What vformat wrote into a buffer of `size` bytes, given what it returned (the full length).
std::size_t formatted_length(int n, std::size_t size) {
    if (n < 0) return 0;
    return static_cast<std::size_t>(n) < size ? static_cast<std::size_t>(n) : size - 1;
}

__attribute__((format(printf, 1, 2))) void line(const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const std::size_t len = formatted_length(n, sizeof buf);
    write(std::string_view(buf, len));
}

// The command line as the domain builder gave it, with anything not printable as \xNN; one
// write, so one notification.
void write_cmdline(std::string_view c) {
    char out[PvBootInfo::max_cmdline * 4 + 32];
    std::size_t n = 0;
    for (const char* p = "keel: command line: \""; *p; ++p) out[n++] = *p;
    for (char ch : c) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x20 && u < 0x7f) {
            out[n++] = ch;
        } else {
            format(out + n, 5, "\\x%02x", u);
            n += 4;
        }
    }
    out[n++] = '"';
    out[n++] = '\n';
    write(std::string_view(out, n));
}

[[noreturn]] void pv_shutdown(unsigned reason) {
    sched_shutdown s{reason};
    for (;;) {
        sched_op(SCHEDOP_shutdown, &s);
        sched_op(SCHEDOP_yield, nullptr);
    }
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
    write(std::string_view(buf, len));
    wait_drained(5000 * ms);
    pv_shutdown(SHUTDOWN_crash);
}

}  // namespace
}  // namespace keel::xen

using namespace keel::xen;

extern "C" [[noreturn]] __attribute__((no_stack_protector)) void keel_pv_boot(std::uint64_t start_info,
                                                                              std::uint64_t xen_stack) {
    const PvLayout layout{addr(__image_start), addr(__image_end)};
    if (xen_stack < layout.image_end || xen_stack > PvBootInfo::max_pages * page_size)
        bad_start_info("the bootstrap stack is not above the image");
    constexpr std::uint64_t four_mib = std::uint64_t{4} << 20;
    g_region_end = (xen_stack + (512 << 10) + four_mib - 1) & ~(four_mib - 1);

    BootstrapReader reader;
    const char* why = nullptr;
    auto parsed = parse_pv_start_info(reader, start_info, layout, &why);
    if (!parsed.ok()) {
        // Say it on the console if start_info got that far.
        auto console = find_pv_console(reader, start_info, layout, nullptr);
        if (console.ok()) {
            g_ring = reinterpret_cast<volatile xencons_interface*>(console.value().ring);
            g_port = console.value().evtchn;
        }
        bad_start_info(why ? why : to_string(parsed.error()));
    }
    const PvBootInfo& info = parsed.value();
    g_ring = reinterpret_cast<volatile xencons_interface*>(info.console.ring);
    g_port = info.console.evtchn;
    const long shared_rc = map_shared_info(info.shared_info_maddr);

    const long version = xen_version_op(XENVER_version, nullptr);
    line("keel: booting (PV) on Xen %ld.%ld\n", version >> 16, version & 0xffff);
    line(
        "keel: start_info at %#lx: xen-3.0-x86_64, %lu pages (%lu MiB), flags %#x, bootstrap region ends at "
        "%#lx\n",
        info.start_info, info.nr_pages, info.ram_bytes() >> 20, info.flags, g_region_end);
    line(
        "keel: console pfn %#lx port %u, xenstore pfn %#lx port %u, %lu page-table frames at %#lx, "
        "p2m at %#lx\n",
        info.console_pfn, info.console.evtchn, info.store_pfn, info.store_evtchn, info.nr_pt_frames,
        info.pt_base, info.mfn_list);
    if (shared_rc == 0)
        line("keel: shared_info (machine %#lx) mapped at %#lx\n", info.shared_info_maddr,
             addr(g_shared_page));
    else
        line("keel: mapping shared_info (machine %#lx) failed: error %ld\n", info.shared_info_maddr,
             shared_rc);
    write_cmdline(info.cmdline_view());
    write(
        "keel: classic PV: start_info valid; the rest of PV boot is not built yet (issue 13); "
        "powering off\n");
    wait_drained(5000 * ms);
    pv_shutdown(SHUTDOWN_poweroff);
}
