// The guest platform as the kernel sees it: boot facts, time, events, shutdown. Implemented in
// platform-xen/guest/ (hypercalls); the kernel's host tests do not link it.
#pragma once

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

/// Earliest output: the Xen debug port 0xE9 (seen as "(dN) ..." in `xl dmesg`) and
/// CONSOLEIO_write (refused by release builds of Xen, kept for debug builds).
void early_write(std::string_view text);

/// Monotonic time from pvclock (ns since Xen booted) and the wall clock.
std::uint64_t now_ns();
WallClock wallclock();

/// One-shot Xen timer (set_timer_op): the timer VIRQ fires at `deadline_ns` (0 cancels).
void set_timer(std::uint64_t deadline_ns);

/// Run the handlers of every pending event channel; true if any ran. Event-loop context only.
bool dispatch_events();
/// Halt the vCPU with interrupts enabled until an event channel fires. Returns at once if one
/// is already pending. Event-loop context only.
void idle();

/// HVMOP_get_param.
Result<std::uint64_t> hvm_param(unsigned index);

/// The xenstore ring page and event channel the toolstack set up for us (PVH:
/// HVM_PARAM_STORE_PFN / _EVTCHN). Error::not_found when none was offered.
struct StoreRing {
    void* page;  ///< a struct xenstore_domain_interface (io/xs_wire.h), mapped read/write
    std::uint64_t port;
};
Result<StoreRing> store_ring();

/// A local event-channel port. Handlers run from dispatch_events(); `wait()` blocks with
/// SCHEDOP_poll. Ports bound here are closed when the Port is destroyed; adopted ports (the
/// console's and xenstore's, set up by the toolstack) are left open.
class Port final : public EventChannel {
public:
    static constexpr std::uint32_t max_ports = 1024;
    /// Use a port the toolstack already bound for us (HVM_PARAM_*_EVTCHN).
    static Result<Port> adopt(std::uint64_t port);
    /// EVTCHNOP_bind_virq on vCPU 0.
    static Result<Port> bind_virq(std::uint32_t virq);
    /// EVTCHNOP_alloc_unbound for `remote_domid` (frontends offer this port to backends).
    static Result<Port> alloc_unbound(std::uint16_t remote_domid);

    Port(Port&& o) noexcept : port_(o.port_), owned_(o.owned_) { o.port_ = 0; o.owned_ = false; }
    Port& operator=(Port&& o) noexcept;
    Port(const Port&) = delete;
    Port& operator=(const Port&) = delete;
    ~Port() override;

    std::uint32_t number() const { return port_; }
    void notify() override;
    void wait() override;
    void set_handler(Function<void()> handler) override;

private:
    Port(std::uint32_t port, bool owned) : port_(port), owned_(owned) {}
    void close();
    std::uint32_t port_;
    bool owned_;
};

/// Why the domain stops (sched.h SHUTDOWN_*: the values are Xen's, checked in events.cc).
enum class ShutdownReason : unsigned { poweroff = 0, reboot = 1, crash = 3 };
/// SCHEDOP_shutdown: the toolstack then applies on_poweroff, on_reboot or on_crash.
[[noreturn]] void shutdown(ShutdownReason reason);

/// Print `message`, a symbolized backtrace of the caller, and crash the domain so the xl
/// config's on_crash applies. Used by panic().
[[noreturn]] void crash(const char* message);

/// Extra line writer for fault reports and crash messages (the kernel points it at the PV
/// console once that is up). Must work with interrupts disabled.
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

}  // namespace keel::xen

/// The kernel's entry point, called by platform-xen once the platform is up (interrupts on,
/// W^X page tables live). Defined in kernel/guest/.
extern "C" [[noreturn]] void keel_main();
