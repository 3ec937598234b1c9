// Hypercalls through the page Xen writes at keel_hypercall_page (one 32-byte stub per call): in
// PVH installed through the MSR that CPUID leaf base+2 names; in classic PV filled by Xen when the
// domain is built (XEN_ELFNOTE_HYPERCALL_PAGE), before the first instruction. Guest-only: nothing
// above platform-xen includes this file.
#pragma once

#include "keel/xen/public.h"

extern "C" char keel_hypercall_page[];
extern "C" bool keel_pv_mode;  // boot.cc: classic PV (pv_boot.cc sets it first thing)
// Hypercalls made, by number (events.cc; exported as keel_xen_hypercalls_total): each one is a
// VM exit, the costliest thing a PVH guest does in nested Xen. Counted here only: PV's iret
// (entry.S calls the page's stub itself) is not.
extern "C" unsigned long keel_hypercall_counts[64];

namespace keel::xen {

// Arguments go in rdi, rsi, rdx, r10, r8; the result comes back in rax (xen.h, "x86_64").
// Xen may clobber the argument registers, so they are all in/out operands.
// Classic PV: a `syscall` from the guest kernel is the hypercall, which is all the page's stub
// does besides saving rcx and r11 (clobbered here anyway). Made inline, a vCPU blocked in a
// hypercall stops in the caller, whose unwind information debuggers have; in the page's stub
// (rcx and r11 pushed above the return address) gdb lost the caller.
template <unsigned Nr>
inline long hypercall(unsigned long a1 = 0, unsigned long a2 = 0, unsigned long a3 = 0,
                      unsigned long a4 = 0, unsigned long a5 = 0) {
    static_assert(Nr < 64);
    ++keel_hypercall_counts[Nr];
    long ret;
    register unsigned long r10 asm("r10") = a4;
    register unsigned long r8 asm("r8") = a5;
    if (keel_pv_mode) {
        ret = Nr;
        asm volatile("syscall"
                     : "+a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                     :
                     : "memory", "rcx", "r11");
        return ret;
    }
    asm volatile("call keel_hypercall_page + %c[off]"
                 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                 : [off] "i"(Nr * 32)
                 : "memory", "rcx", "r11");
    return ret;
}

template <typename T>
inline unsigned long arg(T* p) { return reinterpret_cast<unsigned long>(p); }

inline long memory_op(unsigned cmd, void* a) { return hypercall<__HYPERVISOR_memory_op>(cmd, arg(a)); }
inline long hvm_op(unsigned cmd, void* a) { return hypercall<__HYPERVISOR_hvm_op>(cmd, arg(a)); }
inline long evtchn_op(unsigned cmd, void* a) { return hypercall<__HYPERVISOR_event_channel_op>(cmd, arg(a)); }
inline long sched_op(unsigned cmd, void* a) { return hypercall<__HYPERVISOR_sched_op>(cmd, arg(a)); }
inline long xen_version_op(unsigned cmd, void* a) { return hypercall<__HYPERVISOR_xen_version>(cmd, arg(a)); }
inline long vcpu_op(unsigned cmd, unsigned vcpu, void* a) { return hypercall<__HYPERVISOR_vcpu_op>(cmd, vcpu, arg(a)); }
inline long set_timer_op(std::uint64_t deadline_ns) { return hypercall<__HYPERVISOR_set_timer_op>(deadline_ns); }
inline long console_io(unsigned cmd, unsigned len, const char* s) {
    return hypercall<__HYPERVISOR_console_io>(cmd, len, reinterpret_cast<unsigned long>(s));
}

}  // namespace keel::xen
