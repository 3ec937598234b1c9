// Shared between the files of platform-xen/guest (not a public header).
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/xen/address_space.h"
#include "keel/xen/fault_report.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/page_table.h"
#include "keel/xen/platform.h"
#include "keel/xen/pv_start_info.h"

struct xencons_interface;
struct shared_info;

namespace keel::xen {

/// Classic PV (pv_boot.cc set it before anything else ran) or PVH. entry.S's trap return reads
/// it too: PV returns through HYPERVISOR_iret instead of iretq; and hypercall.h (declared there).
inline bool pv_mode() { return keel_pv_mode; }
/// PV only: start_info as pv_boot.cc validated it, and the end of the bootstrap region (Xen's
/// tables map [0, end) there, pfn p at p * 4096).
const PvBootInfo& pv_boot_info();
std::uint64_t pv_region_end();
/// PV's parts of the mode-neutral calls below (pv_boot.cc): the tables through the m2p, the
/// page-table frames (keel's pool), the RAM the plan left free.
struct LiveTables;
LiveTables pv_live_tables();
GuardRange pv_page_table_pages();
std::size_t pv_free_ram(MemRegion* out, std::size_t max);
/// PV: where the live root table is read (keel's, once loaded).
std::uint64_t pv_root_table();
/// PV: the machine frame of `pfn` (the p2m); a pfn beyond RAM crashes (only keel's own pages
/// are granted or remapped). The grant window's and shared_info's pages give their own, unused
/// frames, not what is mapped there.
std::uint64_t pv_mfn(std::uint64_t pfn);
/// PV: map the page at `va` (one of keel's, 4 KiB in its tables) to machine frame `mfn`, RW+NX
/// (update_va_mapping); `mfn` = pv_mfn(va >> 12) gives the page its own frame back. Xen's error.
long pv_map_page(std::uint64_t va, std::uint64_t mfn);
/// PV: the pages set aside for the grant frames (grant_frames_wanted of them, RW+NX).
std::uint64_t pv_grant_window();
/// PV: tell the toolstack where the p2m is (shared_info's arch part), after each mapping.
void pv_publish_p2m(volatile shared_info* si);
/// PV, events masked: start_info's ring frames as pfns, shared_info and the grant frames
/// unmapped (the toolstack's save refuses mappings of frames outside the p2m). Returns
/// start_info's machine frame, SCHEDOP_shutdown's third argument.
std::uint64_t pv_before_suspend();
/// PV, after the suspend hypercall: cancelled, start_info as it was; a new domain, start_info's
/// new shared_info frame and ports read and checked, the root's new machine frame, the trap
/// table again. nullptr, or what was wrong with the new start_info.
const char* pv_after_suspend(bool new_domain);
/// PV: the grant frames' pages back to plain RAM (mapped to their own frames).
void pv_unmap_grant_frames();
/// PV: shared_info's page back to plain RAM (zeroed, its vcpu_info saying "masked").
void unmap_shared_info();

/// Events on/off for this vCPU: PVH cli/sti; PV evtchn_upcall_mask in vcpu_info (ring 3 has no
/// IF), with the pending upcall taken after unmasking. Before shared_info is mapped in PV,
/// upcalls are masked (Xen enters the guest so) and stay so.
void interrupts_off();
void interrupts_on();

/// The live page tables, for translate()/audit(): PVH reads them at their physical addresses
/// (identity map); PV's entries hold machine addresses, turned back into pseudo-physical ones
/// (= virtual in the bootstrap region) through Xen's read-only m2p, each checked against the
/// p2m. mem.alloc_table() fails: nothing may be built through this.
struct LiveTables {
    PageTableMemory& mem;
    std::uint64_t root;
};
LiveTables live_tables();

/// PV: the page-fault address Xen put in vcpu_info (ring 3 cannot read CR2); 0 before
/// shared_info is mapped.
std::uint64_t pv_fault_address();

/// PV: early_write() goes to this console ring (early_console.cc) until the hand-over.
void pv_early_console(volatile xencons_interface* ring, std::uint32_t port);
/// The console driver owns the ring from now on (set_report_writer calls it).
void early_console_handover();
/// PV, before the hand-over: wait (at most 5 s) until xenconsoled has read the ring, so the
/// last lines before a shutdown are seen. Otherwise nothing.
void early_console_flush();

/// Map shared_info (PVH: XENMEM_add_to_physmap; PV: update_va_mapping of the machine frame
/// start_info names) over the page events.cc keeps for it; every port masked when `mask_all`
/// (a new domain), not when the same domain maps it again after a cancelled suspend (PV).
void map_shared_info(bool mask_all = true);
/// Clear `port`'s pending bit in shared_info.
void clear_pending(std::uint32_t port);

/// The image's part of the address-space plan, the same in both modes: its sections and the
/// guard pages under the two stacks (plan.guards; the audit checks them too).
AddressSpacePlan image_plan();
/// What the boot log says about the live tables, from their audit.
ProtectionReport protection_report_from(const AuditResult& a);

/// First thing at boot in either mode (after PVH's SSE set-up): paint the boot stack, seed the
/// canary from what the CPU offers. Callers and their frames must not use the canary.
void begin_boot();
/// Start of day after the mode's own steps (PVH: keel_boot; PV: keel_pv_boot): the boot facts,
/// events, the seed inputs, the canary again, keel_main. `tsc0` is the TSC at entry.
[[noreturn]] void finish_boot(std::uint64_t tsc0, std::uint64_t start_info_addr, const BootInfo& boot,
                              const ProtectionReport& protection);

/// GDT TSS + IDT (vectors 0-31 report and crash; the upcall vector wakes the loop). In PV the
/// trap table (HYPERVISOR_set_trap_table) and the event and failsafe callbacks instead.
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
// Let VIRQ_TIMER raise upcalls (ports are otherwise polled, masked: events.cc): the profiler
// samples in the upcall its periodic ticks raise. Again after a resume in a new domain.
void deliver_timer_upcalls();
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

/// The event-channel upcall vector (entry.S has its stub as trap_243). In PV the event callback
/// enters the same way, with this vector.
constexpr unsigned upcall_vector = 243;
/// PV: Xen's failsafe callback (a trap return whose segments would not load) arrives as this.
constexpr unsigned pv_failsafe_vector = 254;

}  // namespace keel::xen
