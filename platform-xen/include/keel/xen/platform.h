// The guest platform as the kernel sees it: boot facts, time, events, shutdown. Implemented in
// platform-xen/guest/ (hypercalls); the kernel's host tests do not link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/function.h"
#include "keel/result.h"
#include "keel/xen/event_channel.h"
#include "keel/xen/pvclock.h"
#include "keel/xen/start_info.h"

struct shared_info;

namespace keel::xen {

/// What boot found out; valid from keel_main() on.
const BootInfo& boot_info();

/// RAM the kernel may allocate from: every RAM region minus page 0, the image, the boot page
/// tables and pages Xen uses. Returns the count written to `out`.
std::size_t free_ram(MemRegion* out, std::size_t max);

struct Version {
    unsigned major, minor;
    char extra[16];   ///< XENVER_extraversion, e.g. ".11" (NUL-terminated)
};
Version xen_version();

/// 64 bits for keys and seeds: RDRAND and RDSEED where the CPU has them, always mixed (SipHash,
/// seed.h) with the TSC, pvclock, the wall clock, the domain's UUID and the boot facts, so that
/// boots without CPU randomness still differ; each call differs from the last.
std::uint64_t random_seed();

/// How Xen runs this guest: the same image boots either way, `type` in the xl config decides.
enum class GuestMode { pvh, pv };
GuestMode guest_mode();
const char* to_string(GuestMode mode);

/// Earliest output. PVH: the Xen debug port 0xE9 (seen as "(dN) ..." in `xl dmesg`) and
/// CONSOLEIO_write (refused by release builds of Xen, kept for debug builds). Classic PV: the
/// PV console ring, until the console driver takes it over (set_report_writer); nothing after.
void early_write(std::string_view text);

/// Monotonic time from pvclock (ns since Xen booted, plus the offset that keeps it going forward
/// across a resume in a new domain) and the wall clock (its base is corrected by that offset, so
/// wallclock() + now_ns() stays the time of day).
std::uint64_t now_ns();
WallClock wallclock();

/// One-shot Xen timer (set_timer_op): the timer VIRQ fires at `deadline_ns` (0 cancels).
void set_timer(std::uint64_t deadline_ns);

/// Run the handlers of every pending event channel; true if any ran. Event-loop context only.
bool dispatch_events();
/// Block the vCPU (SCHEDOP_poll, interrupts off) until a port with a handler is pending or the
/// one-shot timer fires. Returns at once if one is already pending. Ports are polled, not raised
/// as upcalls (events.cc). Event-loop context only.
void idle();

/// HVMOP_get_param.
Result<std::uint64_t> hvm_param(unsigned index);

/// The xenstore ring page and event channel the toolstack set up for us (PVH:
/// HVM_PARAM_STORE_PFN / _EVTCHN; PV: start_info). Error::not_found when none was offered.
struct StoreRing {
    void* page;  ///< a struct xenstore_domain_interface (io/xs_wire.h), mapped read/write
    std::uint64_t port;
};
Result<StoreRing> store_ring();

/// The PV console's ring page and event channel, likewise (PVH: HVM_PARAM_CONSOLE_PFN /
/// _EVTCHN; PV: start_info).
struct ConsoleRing {
    void* page;  ///< a struct xencons_interface (io/console.h), mapped read/write
    std::uint64_t port;
};
Result<ConsoleRing> console_ring();

/// A local event-channel port. Handlers run from dispatch_events(); `wait()` blocks with
/// SCHEDOP_poll. Ports bound here are closed when the Port is destroyed; adopted ports (the
/// console's and xenstore's, set up by the toolstack) are left open.
class Port final : public EventChannel {
public:
    /// Xen hands out the lowest free port; keel binds a few per device (at most 8 per class),
    /// the timer, console and xenstore. A port at or above this is refused (Error::no_space):
    /// idle() waits on every port with a handler in one SCHEDOP_poll, which takes at most 128.
    static constexpr std::uint32_t max_ports = 128;
    /// Use a port the toolstack already bound for us (HVM_PARAM_*_EVTCHN).
    static Result<Port> adopt(std::uint64_t port);
    /// EVTCHNOP_bind_virq on vCPU 0.
    static Result<Port> bind_virq(std::uint32_t virq);
    /// EVTCHNOP_alloc_unbound for `remote_domid` (frontends offer this port to backends).
    static Result<Port> alloc_unbound(std::uint16_t remote_domid);

    Port(Port&& o) noexcept : port_(o.port_), owned_(o.owned_), epoch_(o.epoch_) {
        o.port_ = 0;
        o.owned_ = false;
    }
    Port& operator=(Port&& o) noexcept;
    Port(const Port&) = delete;
    Port& operator=(const Port&) = delete;
    ~Port() override;

    std::uint32_t number() const { return port_; }
    /// The port belongs to the domain before a resume in a new domain (xl restore, migration):
    /// its number means nothing any more (or someone else's port), so notify(), wait() and
    /// set_handler() do nothing and destruction closes nothing. Replace it with a new Port.
    bool stale() const;
    void notify() override;
    void wait() override;
    void set_handler(Function<void()> handler) override;

private:
    Port(std::uint32_t port, bool owned);
    void close();
    std::uint32_t port_;
    bool owned_;
    std::uint32_t epoch_;  ///< which domain incarnation bound it (see stale())
};

/// Why the domain stops (sched.h SHUTDOWN_*: the values are Xen's, checked in events.cc).
enum class ShutdownReason : unsigned { poweroff = 0, reboot = 1, crash = 3 };
/// SCHEDOP_shutdown: the toolstack then applies on_poweroff, on_reboot or on_crash.
[[noreturn]] void shutdown(ShutdownReason reason);

/// How a suspend (SCHEDOP_shutdown with SHUTDOWN_suspend) ended.
enum class SuspendOutcome {
    /// The same domain runs on (`xl save -c`, a failed save or migration): nothing changed.
    cancelled,
    /// Resumed in a new domain (`xl restore`, migration): shared_info, the upcall vector,
    /// VIRQ_TIMER and the grant frames are set up again before the hooks run; every other Port
    /// is stale(), the console and xenstore rings were cleared by the toolstack (their new
    /// ports are in HVM_PARAM_CONSOLE_EVTCHN / HVM_PARAM_STORE_EVTCHN), backends are new.
    new_domain,
};
const char* to_string(SuspendOutcome outcome);

/// What a driver does around a suspend. `before` runs just before the hypercall (quiesce,
/// flush); `after` right after it returned, with interrupts on again but before anything else
/// runs: reconnect on new_domain. `after` hooks run in the order they were added (the console's
/// first: it makes logging work again), `before` hooks in the reverse order (the console's last:
/// it flushes what the others logged). From the event loop. Either may be nullptr.
struct SuspendHook {
    void (*before)();
    void (*after)(SuspendOutcome);
};
/// Error::no_space beyond max_suspend_hooks.
constexpr std::size_t max_suspend_hooks = 16;
Result<void> add_suspend_hook(SuspendHook hook);

/// What suspend() saw, for the log.
struct SuspendReport {
    SuspendOutcome outcome;
    long rc;                 ///< the hypercall's return: 0 new domain, 1 cancelled (libxc sets it)
    bool rc_disagreed;       ///< rc 0, but VIRQ_TIMER still bound to our port: the same domain
    std::uint64_t before_ns;  ///< now_ns() just before the hypercall
    std::uint64_t after_ns;   ///< now_ns() just after it (never below before_ns)
    std::uint64_t clock_offset_ns;  ///< what now_ns() adds to pvclock since (MonotonicClock)
};

/// Suspend the domain for `xl save` / migration and come back: the `before` hooks, the
/// hypercall with interrupts off, the platform's own resume on new_domain, then the `after`
/// hooks. Mode-neutral: the PVH specifics (shared_info by XENMEM_add_to_physmap, the upcall
/// vector by HVM param) and classic PV's (start_info, shared_info and the grant frames) are
/// behind it. Event-loop context only; never from a handler of the xenstore or console port
/// (their Ports are replaced meanwhile).
SuspendReport suspend();

/// Print `message`, a symbolized backtrace of the caller, and crash the domain so the xl
/// config's on_crash applies. Used by panic().
[[noreturn]] void crash(const char* message);

/// Extra line writer for fault reports and crash messages (the kernel points it at the PV
/// console once that is up). Must work with interrupts disabled. In classic PV the writer owns
/// the console ring from then on: early_write() stops writing to it.
void set_report_writer(void (*write)(const char* line));

/// What the boot-time W^X audit found (printed by the kernel at start).
struct ProtectionReport {
    std::uint64_t mapped_pages, writable_pages, executable_pages, wx_pages;
    bool page0_mapped;
    std::uint64_t table_pages;   ///< page-table pages (all read-only)
    std::uint64_t image_bytes;
    std::uint64_t boot_ns;   ///< pvclock at keel_boot entry
};
const ProtectionReport& protection_report();

/// Where the live root page table (PML4) can be read: PVH's tables are identity-mapped at their
/// physical address (CR3); PV's root is the bootstrap region's pt_base. Read-only in both: a
/// write faults (the faults app's write-page-table kind proves it).
const volatile std::uint64_t* page_table_root();

/// The boot stack (the event loop's: handlers, lwIP's input path, the callees of resumed
/// coroutines; the frames of coroutines themselves are on the heap). Boot fills it with a
/// pattern; the peak is the deepest byte since written, found by scanning up from the bottom.
struct StackUse {
    std::uint64_t size;   ///< bytes (the linker script's, per image)
    std::uint64_t peak;   ///< most bytes used at once so far
};
StackUse stack_use();

/// What the guest cost Xen so far: hypercalls by Xen's number (__HYPERVISOR_*; each is a VM
/// exit in PVH; PV's iret from entry.S is not counted) and event upcalls taken (each an
/// injected interrupt). In nested Xen under TCG an exit costs more than most of the guest's own
/// work, so these say where the time goes.
struct XenCalls {
    const unsigned long* hypercalls;  ///< 64 counters, indexed by hypercall number
    std::uint64_t upcalls;
};
XenCalls xen_calls();
/// The name of hypercall `nr` as Xen's headers spell it without __HYPERVISOR_, or nullptr.
const char* hypercall_name(unsigned nr);

}  // namespace keel::xen

/// The kernel's entry point, called by platform-xen once the platform is up (interrupts on,
/// W^X page tables live). Defined in kernel/guest/.
extern "C" [[noreturn]] void keel_main();
