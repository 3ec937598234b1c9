// The sampling profiler in the guest (keel/xen/profile.h, docs/profiling.md): Xen's periodic
// timer raises VIRQ_TIMER every period; the upcall that follows samples the interrupted PC and
// its frame-pointer chain (the timer's port is the one port that raises upcalls while
// profiling; the others are polled, events.cc). Samples are taken at most once a period.
#include <new>

#include "internal.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/ksyms.h"
#include "keel/xen/platform.h"
#include "keel/xen/profile.h"

extern char __ksyms_start[], __ksyms_end[], __text_start[], __text_end[];

namespace keel::xen {
namespace {

StackProfile* g_profile = nullptr;
std::uint64_t g_period_ns = 0;
std::uint64_t g_next_ns = 0;

Result<void> set_periodic_timer() {
    vcpu_set_periodic_timer t{};
    t.period_ns = g_period_ns;
    if (long rc = vcpu_op(VCPUOP_set_periodic_timer, 0, &t); rc != 0) return Error::io;
    return {};
}

void after_suspend(SuspendOutcome outcome) {
    if (outcome != SuspendOutcome::new_domain) return;
    // pvclock is the new host's: its time may be far below the old host's, and the next
    // sample must not wait for it to catch up.
    g_next_ns = 0;
    if (!g_profile) return;
    deliver_timer_upcalls();  // the new timer port is masked, like every port
    if (!set_periodic_timer()) early_write("profile: cannot set the periodic timer again after the resume\n");
}

bool symbolize_pc(std::uint64_t pc, char* name, std::size_t n, std::uint64_t* start, std::uint64_t* end) {
    const auto s = symbolize(reinterpret_cast<const std::uint8_t*>(__ksyms_start),
                             static_cast<std::size_t>(__ksyms_end - __ksyms_start), pc, {name, n});
    if (!s) return false;
    *start = pc - s->offset;
    *end = s->end;
    return true;
}

}  // namespace

Result<void> start_profiling(unsigned hz, StackProfile::Entry* table, std::size_t slots) {
    if (hz == 0 || hz > 1000 || table == nullptr || slots == 0) return Error::invalid_argument;
    if (g_profile) return Error::busy;
    g_period_ns = 1'000'000'000ull / hz;
    // Without the hook a resume in a new domain would leave the new timer port masked and no
    // periodic timer: the profile would stop without a word.
    TRY_VOID(add_suspend_hook({nullptr, after_suspend}));
    TRY_VOID(set_periodic_timer());
    deliver_timer_upcalls();  // ticks must interrupt running code, not just end an idle
    alignas(StackProfile) static unsigned char storage[sizeof(StackProfile)];
    auto* profile = new (storage) StackProfile(table, slots);
    __atomic_store_n(&g_profile, profile, __ATOMIC_RELEASE);
    return {};
}

void profile_tick(std::uint64_t rip, std::uint64_t rbp, bool (*readable)(std::uint64_t)) {
    StackProfile* p = __atomic_load_n(&g_profile, __ATOMIC_ACQUIRE);
    if (!p) return;
    const std::uint64_t now = pvclock_now_ns();
    if (now < g_next_ns) return;
    g_next_ns = now + g_period_ns - g_period_ns / 8;  // a tick a little early still counts
    std::uint64_t pcs[StackProfile::max_depth];
    unsigned depth = 0;
    pcs[depth++] = rip;
    for (std::uint64_t fp = rbp; depth < StackProfile::max_depth;) {
        if (fp == 0 || (fp & 7) != 0 || !readable(fp) || !readable(fp + 8)) break;
        const std::uint64_t next = *reinterpret_cast<const std::uint64_t*>(fp);
        const std::uint64_t ret = *reinterpret_cast<const std::uint64_t*>(fp + 8);
        // Code without frame pointers (memcpy) may hold anything in rbp: what is read through
        // it counts as a return address only if it points into the image's code (seen: the
        // bytes of an HTML page, symbolized as the last symbol plus 0xa3e6c6d7462e064).
        if (ret < reinterpret_cast<std::uint64_t>(__text_start) ||
            ret >= reinterpret_cast<std::uint64_t>(__text_end))
            break;
        pcs[depth++] = ret;
        if (next <= fp) break;  // stacks grow down: a caller's frame lies above
        fp = next;
    }
    p->add(pcs, depth);
}

void write_profile(void (*out)(const char* line)) {
    StackProfile* p = __atomic_load_n(&g_profile, __ATOMIC_ACQUIRE);
    if (!p) {
        out("profile: off (start the domain with profile=HZ on its command line, e.g. profile=100)");
        return;
    }
    p->report(out, symbolize_pc, 10);
}

}  // namespace keel::xen
