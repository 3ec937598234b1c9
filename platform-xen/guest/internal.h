// Shared between the files of platform-xen/guest (not a public header).
#pragma once

#include <cstdint>

#include "keel/xen/fault_report.h"

namespace keel::xen {

/// GDT TSS + IDT (vectors 0-31 report and crash; the upcall vector wakes the loop).
void install_traps();
/// shared_info, the upcall vector, VIRQ_TIMER. Needs the hypercall page.
void init_events();
/// Convert a TSC delta to ns with the current pvclock scale (valid after init_events).
std::uint64_t tsc_to_ns_estimate(std::uint64_t tsc_delta);
/// shared_info is mapped: now_ns() and wallclock() work.
bool events_ready();
/// Where boot mapped room for the grant frames (grant_frames_wanted pages, RW+NX); 0 if the
/// memory map left no hole for them.
std::uint64_t grant_window();
/// The live page tables' pages (read-only); empty before they are loaded.
GuardRange page_table_pages();
/// Whether our VIRQ_TIMER port is still bound in this domain (false after a resume in a new
/// domain, before resume_events()).
bool timer_port_bound_here();
/// After a resume in a new domain (interrupts off): shared_info mapped again, every port masked,
/// every Port stale, the clock offset so now_ns() continues from its last value at least, the
/// upcall vector, VIRQ_TIMER bound again.
void resume_events();
/// What now_ns() adds to pvclock.
std::uint64_t clock_offset();
/// After a resume in a new domain: the grant frames at the same GFNs again (the new domain's
/// table is fresh: entries granted before are gone, their owners reconnect).
void resume_grant_table();
/// Called from keel_trap for the upcall vector.
void on_upcall();
/// pvclock as it is (no monotonic clamp, no offset): for interrupt context, where now_ns()'s
/// clamp must not be updated.
std::uint64_t pvclock_now_ns();

/// The event-channel upcall vector (entry.S has its stub as trap_243).
constexpr unsigned upcall_vector = 243;

}  // namespace keel::xen
