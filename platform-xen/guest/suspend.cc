// Suspend for xl save / migration and the way back (SCHEDOP_shutdown, SHUTDOWN_suspend).
//
// The hypercall returns when the toolstack is done with the domain:
// - 1: the same domain runs on (`xl save -c`, a failed save): libxc's cooperative resume writes
//   1 into the return register for a guest with PV drivers (HVM_PARAM_CALLBACK_IRQ set), see
//   tools/libs/guest/xg_resume.c, modify_returncode().
// - 0: whatever the saved vCPU state held, which is the hypercall's own 0: resumed in a new
//   domain (`xl restore`, the receiving end of a migration).
// The return value is checked against the facts: 0 with our VIRQ_TIMER port still bound is the
// same domain (a toolstack that resumed without setting the return value).
#include "cpu.h"
#include "internal.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/platform.h"

namespace keel::xen {
namespace {

SuspendHook g_hooks[max_suspend_hooks];
std::size_t g_hook_count = 0;

}  // namespace

const char* to_string(SuspendOutcome outcome) {
    return outcome == SuspendOutcome::cancelled ? "cancelled" : "new domain";
}

Result<void> add_suspend_hook(SuspendHook hook) {
    if (g_hook_count == max_suspend_hooks) return Error::no_space;
    g_hooks[g_hook_count++] = hook;
    return {};
}

SuspendReport suspend() {
    for (std::size_t i = g_hook_count; i-- > 0;) {  // the console's last: it flushes what the others logged
        if (g_hooks[i].before) g_hooks[i].before();
    }
    SuspendReport r{};
    interrupts_off();  // no upcall may run while shared_info and the ports change under it
    r.before_ns = now_ns();
    // sched.h: SCHEDOP_shutdown with SHUTDOWN_suspend. The third argument is a PV guest's
    // start_info frame (libxc reads it from rdx); a PVH guest passes 0.
    const std::uint64_t start_info_mfn = pv_mode() ? pv_before_suspend() : 0;
    sched_shutdown s{SHUTDOWN_suspend};
    r.rc = hypercall<__HYPERVISOR_sched_op>(SCHEDOP_shutdown, arg(&s), start_info_mfn);
    if (r.rc != 0) {
        r.outcome = SuspendOutcome::cancelled;
    } else if (timer_port_bound_here()) {
        r.outcome = SuspendOutcome::cancelled;
        r.rc_disagreed = true;
    } else {
        r.outcome = SuspendOutcome::new_domain;
    }
    if (pv_mode()) {
        if (const char* bad = pv_after_suspend(r.outcome == SuspendOutcome::new_domain)) crash(bad);
        if (r.outcome == SuspendOutcome::cancelled) {
            map_shared_info(/*mask_all=*/false);  // the same domain: our ports stay as they are
            resume_grant_table();
        }
    }
    if (r.outcome == SuspendOutcome::new_domain) {
        resume_events();
        resume_grant_table();
    }
    interrupts_on();
    r.after_ns = now_ns();
    r.clock_offset_ns = clock_offset();
    for (std::size_t i = 0; i < g_hook_count; ++i) {
        if (g_hooks[i].after) g_hooks[i].after(r.outcome);
    }
    return r;
}

}  // namespace keel::xen
