// Shared between the files of platform-xen/guest (not a public header).
#pragma once

#include <cstdint>

namespace keel::xen {

/// GDT TSS + IDT (vectors 0-31 report and crash; the upcall vector wakes the loop).
void install_traps();
/// shared_info, the upcall vector, VIRQ_TIMER. Needs the hypercall page.
void init_events();
/// Convert a TSC delta to ns with the current pvclock scale (valid after init_events).
std::uint64_t tsc_to_ns_estimate(std::uint64_t tsc_delta);
/// Called from keel_trap for the upcall vector.
void on_upcall();

/// The event-channel upcall vector (entry.S has its stub as trap_243).
constexpr unsigned upcall_vector = 243;

}  // namespace keel::xen
