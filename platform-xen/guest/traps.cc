// GDT/TSS/IDT and the C++ side of every trap. Built with -mgeneral-regs-only (CMakeLists):
// nothing here may touch SSE state of the interrupted code.
#include <cstring>
#include <utility>

#include "cpu.h"
#include "internal.h"
#include "keel/xen/fault_report.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/page_table.h"
#include "keel/xen/platform.h"
#include "keel/xen/profile.h"

extern "C" {
extern std::uint64_t keel_gdt[];
extern const std::uint64_t keel_trap_stubs[32];
extern const std::uint64_t keel_upcall_stub;
extern const std::uint64_t keel_pv_trap_stubs[32];
extern char keel_pv_event_entry[], keel_pv_failsafe_entry[];
extern char __stack_guard[], __stack_bottom[], __ist_guard[], __ist_bottom[], __ist_top[];
extern char __ksyms_start[], __ksyms_end[];
}

namespace keel::xen {
namespace {

struct [[gnu::packed]] Tss {
    std::uint32_t reserved0;
    std::uint64_t rsp[3];
    std::uint64_t reserved1;
    std::uint64_t ist[7];
    std::uint64_t reserved2;
    std::uint16_t reserved3;
    std::uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct [[gnu::packed]] IdtEntry {
    std::uint16_t offset_lo, selector;
    std::uint8_t ist, type_attr;
    std::uint16_t offset_mid;
    std::uint32_t offset_hi, zero;
};
static_assert(sizeof(IdtEntry) == 16);

struct [[gnu::packed]] DescriptorPointer {
    std::uint16_t limit;
    std::uint64_t base;
};

Tss g_tss;
alignas(16) IdtEntry g_idt[256];
void (*g_report_writer)(const char*) = nullptr;
int g_in_fault = 0;   // faults while reporting crash at once (only touched with interrupts off)

std::size_t ksyms_size() { return static_cast<std::size_t>(__ksyms_end - __ksyms_start); }

void set_gate(unsigned vec, std::uint64_t handler, std::uint8_t ist) {
    g_idt[vec] = IdtEntry{static_cast<std::uint16_t>(handler), 0x08, ist, 0x8e,   // present, DPL0, interrupt gate
                          static_cast<std::uint16_t>(handler >> 16), static_cast<std::uint32_t>(handler >> 32), 0};
}

void report_line(const char* line) {
    early_write(line);
    early_write("\n");
    if (g_report_writer) {
        g_report_writer(line);
        g_report_writer("\n");
    }
}

// Backtraces may only follow frame pointers into memory that is mapped.
bool readable(std::uint64_t a) {
    // keel maps nothing in the upper half; in PV it is Xen's (supervisor-only, ring 3 cannot read
    // it, though a walk through Xen's slots would find pages there).
    if (a < 4096 || (a & 7) != 0 || a >= (std::uint64_t{1} << 47) - 8) return false;
    const LiveTables t = live_tables();
    return translate(t.mem, t.root, a).has_value() && translate(t.mem, t.root, a + 7).has_value();
}

// Classic PV: Xen delivers exceptions through the trap table, events and a failed segment load
// on return through callbacks (callback.h), all in ring 3 on the current stack.
void install_pv_traps() {
    // xen.h, trap_info: flags bits 0-1 = the privilege level that may raise it with INT n (0:
    // nobody; Xen does not check it for int3 and into), 4 = mask events on entry, like an
    // interrupt gate. NMI comes through a callback in PV, and Xen delivers no double fault to a
    // PV guest; a virtual machine check comes through entry 18.
    trap_info table[33]{};
    unsigned n = 0;
    for (unsigned v = 0; v < 32; ++v) {
        if (v == 2 || v == 8) continue;
        table[n++] = trap_info{static_cast<std::uint8_t>(v), 4, FLAT_KERNEL_CS, keel_pv_trap_stubs[v]};
    }
    table[n] = trap_info{};  // the terminator: address 0
    if (long rc = hypercall<__HYPERVISOR_set_trap_table>(arg(table)); rc != 0) {
        early_write("keel: HYPERVISOR_set_trap_table failed\n");
        shutdown(ShutdownReason::crash);
    }
    for (auto [type, entry] : {std::pair{CALLBACKTYPE_event, keel_pv_event_entry},
                               std::pair{CALLBACKTYPE_failsafe, keel_pv_failsafe_entry}}) {
        callback_register cb{};
        cb.type = static_cast<std::uint16_t>(type);
        cb.flags = CALLBACKF_mask_events;
        cb.address = reinterpret_cast<xen_callback_t>(entry);
        if (long rc = hypercall<__HYPERVISOR_callback_op>(CALLBACKOP_register, arg(&cb)); rc != 0) {
            early_write("keel: CALLBACKOP_register failed\n");
            shutdown(ShutdownReason::crash);
        }
    }
}

FaultContext make_context(const TrapFrame* frame, std::uint64_t cr2) {
    FaultContext ctx{};
    ctx.frame = frame;
    ctx.cr2 = cr2;
    ctx.ksyms = reinterpret_cast<const std::uint8_t*>(__ksyms_start);
    ctx.ksyms_size = ksyms_size();
    ctx.readable = readable;
    ctx.guards[0] = GuardRange{reinterpret_cast<std::uint64_t>(__stack_guard), reinterpret_cast<std::uint64_t>(__stack_bottom)};
    ctx.guards[1] = GuardRange{reinterpret_cast<std::uint64_t>(__ist_guard), reinterpret_cast<std::uint64_t>(__ist_bottom)};
    ctx.tables = page_table_pages();
    return ctx;
}

}  // namespace

void set_report_writer(void (*write)(const char* line)) {
    g_report_writer = write;
    if (write) early_console_handover();
}

void install_traps() {
    if (pv_mode()) {
        install_pv_traps();
        return;
    }
    g_tss.ist[0] = reinterpret_cast<std::uint64_t>(__ist_top);   // IST1: #PF, #DF, NMI, #MC
    g_tss.iomap_base = sizeof(Tss);
    const auto base = reinterpret_cast<std::uint64_t>(&g_tss);
    const std::uint64_t limit = sizeof(Tss) - 1;
    // 64-bit available TSS descriptor at GDT offset 0x18 (16 bytes).
    keel_gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (std::uint64_t{0x89} << 40) |
                  (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    keel_gdt[4] = base >> 32;
    asm volatile("ltr %w0" ::"r"(0x18));

    for (unsigned v = 0; v < 32; ++v) {
        bool own_stack = v == 2 || v == 8 || v == 14 || v == 18;   // a stack overflow still reports
        set_gate(v, keel_trap_stubs[v], own_stack ? 1 : 0);
    }
    set_gate(upcall_vector, keel_upcall_stub, 0);
    DescriptorPointer idtr{sizeof(g_idt) - 1, reinterpret_cast<std::uint64_t>(g_idt)};
    asm volatile("lidt %0" ::"m"(idtr));
}

[[noreturn]] void crash(const char* message) {
    interrupts_off();
    if (g_in_fault++ == 0) {
        report_line(message);
        write_backtrace(reinterpret_cast<std::uint64_t>(__builtin_frame_address(0)),
                        reinterpret_cast<std::uint64_t>(__builtin_return_address(0)),
                        reinterpret_cast<const std::uint8_t*>(__ksyms_start), ksyms_size(), readable,
                        report_line);
    }
    shutdown(ShutdownReason::crash);
}

}  // namespace keel::xen

using namespace keel::xen;

extern "C" void keel_trap(TrapFrame* frame) {
    if (frame->vector == upcall_vector) {
        profile_tick(frame->rip, frame->rbp, readable);
        on_upcall();
        return;
    }
    if (frame->vector == pv_failsafe_vector) {
        // Xen could not load a segment register for us (on a return to the guest or a context
        // switch): keel never changes them, so something overwrote them.
        if (g_in_fault++ == 0) report_line("FAULT: Xen's failsafe callback: a segment register would not load");
        shutdown(ShutdownReason::crash);
    }
    // Every exception is fatal: report it and let on_crash decide. A fault while reporting
    // crashes at once.
    std::uint64_t cr2 = pv_mode() ? pv_fault_address() : cpu::read_cr2();
    if (g_in_fault++ == 0) {
        FaultContext ctx = make_context(frame, cr2);
        write_fault_report(ctx, report_line);
    }
    shutdown(ShutdownReason::crash);
}
