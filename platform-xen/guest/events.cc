// shared_info, 2-level event channels, the upcall, pvclock time and the one-shot timer.
#include <cstring>

#include "cpu.h"
#include "internal.h"
#include "keel/xen/evtchn_scan.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/platform.h"

unsigned long keel_hypercall_counts[64];  // declared extern "C" in hypercall.h

namespace keel::xen {
namespace {

std::uint64_t g_upcalls = 0;

// Xen maps its shared_info frame over this page (XENMEM_add_to_physmap, XENMAPSPACE_shared_info).
alignas(4096) unsigned char g_shared_page[4096];
volatile shared_info* g_shared = nullptr;
volatile vcpu_info* g_vcpu = nullptr;

Function<void()> g_handlers[Port::max_ports];
// Ports whose pending bit wait() consumed: their handlers still run from dispatch_events().
volatile std::uint64_t g_soft_pending[Port::max_ports / 64];
Port* g_timer_port = nullptr;
// The one-shot timer armed last (raw pvclock ns, 0: none), while it has not fired: the loop
// arms its deadline before every idle, and the same deadline again would be a hypercall for
// nothing (3% of httpd's samples under wrk were set_timer_op). Cleared by VIRQ_TIMER (the
// profiler's periodic ticks too: harmless, the next arm is a hypercall again) and by a resume.
bool g_timer_armed = false;
std::uint64_t g_armed_raw = 0;
void on_timer() { g_timer_armed = false; }
alignas(Port) unsigned char g_timer_storage[sizeof(Port)];

// Bumped by each resume in a new domain: Ports bound before are stale (Port::stale()).
std::uint32_t g_port_epoch = 1;
// now_ns(): pvclock plus an offset (after a resume in a new domain), never going back. Its
// offset is subtracted again from every absolute deadline handed to Xen, which counts in its own
// system time.
MonotonicClock g_clock;

[[noreturn]] void fail(const char* what, long rc) {
    early_write("keel: ");
    early_write(what);
    (void)rc;
    early_write(" failed\n");
    shutdown(ShutdownReason::crash);
}

// The ports with a handler: what idle() waits on (Xen takes at most 128 in one SCHEDOP_poll),
// and the same as a bitmap for dispatch_events() and idle() to find them pending.
//
// Delivery is polled: a port with a handler stays masked, so Xen never raises an upcall for it.
// idle() blocks in SCHEDOP_poll, which wakes for a masked port's pending bit too, and the loop
// takes the bits itself (scan_watched). An upcall would cost a VM exit more per wakeup: the
// poll returns with interrupts off, Xen sees the upcall pending, and exits again at the sti to
// inject it; in nested Xen under TCG an exit costs about 90 us (docs/profiling.md). Upcalls
// remain only for what must interrupt running code: the profiler's ticks
// (deliver_timer_upcalls()). Every port fits the poll list: Port::max_ports is Xen's limit.
constexpr std::uint32_t max_poll_ports = 128;
static_assert(Port::max_ports <= max_poll_ports);
evtchn_port_t g_poll_ports[max_poll_ports];
unsigned g_poll_count = 0;
constexpr std::size_t watched_words = Port::max_ports / 64;
xen_ulong_t g_watched[watched_words];

void watch_port(std::uint32_t port) {
    const xen_ulong_t bit = xen_ulong_t{1} << (port % 64);
    if (g_watched[port / 64] & bit) return;  // the bitmap says who is in the list
    g_watched[port / 64] |= bit;
    g_poll_ports[g_poll_count++] = port;  // port < max_ports <= max_poll_ports: room for every one
}

void unwatch_port(std::uint32_t port) {
    g_watched[port / 64] &= ~(xen_ulong_t{1} << (port % 64));
    for (unsigned i = 0; i < g_poll_count; ++i) {
        if (g_poll_ports[i] == port) {
            g_poll_ports[i] = g_poll_ports[--g_poll_count];
            return;
        }
    }
}

bool test_and_clear(volatile xen_ulong_t* words, std::uint32_t bit) {
    xen_ulong_t m = xen_ulong_t{1} << (bit % 64);
    return (__atomic_fetch_and(&words[bit / 64], ~m, __ATOMIC_SEQ_CST) & m) != 0;
}

void unmask(std::uint32_t port) {
    evtchn_unmask u{port};
    evtchn_op(EVTCHNOP_unmask, &u);
}

std::uint64_t read_tsc() { return cpu::rdtsc(); }

void set_upcall_vector() {
    if (pv_mode()) return;  // PV: the event callback, registered with the trap table (traps.cc)
    // Deliver upcalls as a plain vector (hvm/params.h: HVM_PARAM_CALLBACK_TYPE_VECTOR). A
    // non-zero HVM_PARAM_CALLBACK_IRQ is also what tells libxl and libxc that this guest has PV
    // drivers: libxl then asks for a suspend through control/shutdown, and libxc's cancelled
    // resume sets the hypercall's return value to 1 (tools/libs/guest/xg_resume.c).
    xen_hvm_param p{};
    p.domid = DOMID_SELF;
    p.index = HVM_PARAM_CALLBACK_IRQ;
    p.value = (std::uint64_t{HVM_PARAM_CALLBACK_TYPE_VECTOR} << 56) | upcall_vector;
    if (long rc = hvm_op(HVMOP_set_param, &p); rc != 0) fail("setting the upcall vector", rc);
}

Port bind_timer() {
    auto timer = Port::bind_virq(VIRQ_TIMER);
    if (!timer.ok()) fail("binding VIRQ_TIMER", -1);
    return std::move(timer.value());
}

std::uint64_t raw_now_ns() { return pvclock_read(g_vcpu->time, read_tsc); }

}  // namespace

void map_shared_info(bool mask_all) {
    if (pv_mode()) {
        // Xen's own frame at the machine address start_info gave, over this page of .bss (mapped
        // 4 KiB in keel's tables, so its L1 table exists); its pfn's frame stays ours, unused.
        if (long rc = pv_map_page(reinterpret_cast<std::uint64_t>(g_shared_page), pv_boot_info().shared_info_maddr >> 12);
            rc != 0)
            fail("mapping shared_info (PV)", rc);
    } else {
        xen_add_to_physmap map{};
        map.domid = DOMID_SELF;
        map.space = XENMAPSPACE_shared_info;
        map.idx = 0;
        map.gpfn = reinterpret_cast<std::uint64_t>(g_shared_page) >> 12;
        if (long rc = memory_op(XENMEM_add_to_physmap, &map); rc != 0) fail("mapping shared_info", rc);
    }
    g_shared = reinterpret_cast<volatile shared_info*>(g_shared_page);
    g_vcpu = &g_shared->vcpu_info[0];
    if (pv_mode()) pv_publish_p2m(g_shared);

    // Mask every port until a driver asks for it (xen.h: evtchn_mask).
    if (mask_all) {
        for (auto& w : g_shared->evtchn_mask) w = ~xen_ulong_t{0};
    }
}

void unmap_shared_info() {
    // Xen keeps its page; ours is RAM again (zero it, and say "masked" in its vcpu_info: nothing
    // reads it before map_shared_info, but a stray unmask must not look like one).
    const std::uint64_t va = reinterpret_cast<std::uint64_t>(g_shared_page);
    if (long rc = pv_map_page(va, pv_mfn(va >> 12)); rc != 0) fail("unmapping shared_info before the suspend", rc);
    for (auto& b : g_shared_page) b = 0;
    g_vcpu->evtchn_upcall_mask = 1;
}

void clear_pending(std::uint32_t port) { (void)test_and_clear(g_shared->evtchn_pending, port); }

void interrupts_off() {
    if (!pv_mode()) {
        cpu::cli();
        return;
    }
    if (g_vcpu) __atomic_store_n(&g_vcpu->evtchn_upcall_mask, 1, __ATOMIC_SEQ_CST);
}

void interrupts_on() {
    if (!pv_mode()) {
        cpu::sti();
        return;
    }
    if (!g_vcpu) return;
    __atomic_store_n(&g_vcpu->evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
    // An upcall that became pending while masked is not raised by the unmask itself; Xen checks
    // on every return from a hypercall (Linux's xen_force_evtchn_callback does the same).
    if (__atomic_load_n(&g_vcpu->evtchn_upcall_pending, __ATOMIC_SEQ_CST)) xen_version_op(XENVER_version, nullptr);
}

std::uint64_t pv_fault_address() { return g_vcpu ? g_vcpu->arch.cr2 : 0; }

void init_events() {
    if (!g_shared) map_shared_info();
    set_upcall_vector();
    // Xen gives a PV vCPU a 100 Hz periodic timer on VIRQ_TIMER (PVH none): an idle guest would
    // wake every 10 ms. keel arms one-shot deadlines only; the profiler sets its own period.
    if (pv_mode()) (void)vcpu_op(VCPUOP_stop_periodic_timer, 0, nullptr);
    g_timer_port = new (g_timer_storage) Port(bind_timer());
    g_timer_port->set_handler(&on_timer);   // and the loop checks its timers after every wakeup
    interrupts_on();
}

bool timer_port_bound_here() {
    // EVTCHNOP_status answers for this domain's port table: after a resume in a new domain our
    // old timer port is closed there (or someone else's), never VIRQ_TIMER again by chance,
    // because nothing but this code binds VIRQs.
    evtchn_status st{};
    st.dom = DOMID_SELF;
    st.port = g_timer_port->number();
    if (evtchn_op(EVTCHNOP_status, &st) != 0) return false;
    return st.status == EVTCHNSTAT_virq && st.u.virq == VIRQ_TIMER;
}

void resume_events() {
    // Interrupts are off. The new domain has a fresh shared_info (not at our GFN yet), no upcall
    // vector and no event channels but the ones the toolstack bound for xenstore and console.
    map_shared_info();
    if (pv_mode()) (void)vcpu_op(VCPUOP_stop_periodic_timer, 0, nullptr);  // a new vCPU's 100 Hz tick
    ++g_port_epoch;
    for (auto& h : g_handlers) h.reset();
    for (auto& w : g_soft_pending) w = 0;
    g_poll_count = 0;
    for (auto& w : g_watched) w = 0;
    g_clock.resume(raw_now_ns());
    set_upcall_vector();
    *g_timer_port = bind_timer();  // the stale port's move-assignment closes nothing
    g_timer_port->set_handler(&on_timer);
    g_timer_armed = false;  // a new domain: nothing of ours is armed
}

void deliver_timer_upcalls() {
    if (g_timer_port != nullptr) unmask(g_timer_port->number());
}

XenCalls xen_calls() { return XenCalls{keel_hypercall_counts, g_upcalls}; }

const char* hypercall_name(unsigned nr) {
    switch (nr) {
    case __HYPERVISOR_set_trap_table: return "set_trap_table";
    case __HYPERVISOR_mmu_update: return "mmu_update";
    case __HYPERVISOR_set_timer_op: return "set_timer_op";
    case __HYPERVISOR_fpu_taskswitch: return "fpu_taskswitch";
    case __HYPERVISOR_memory_op: return "memory_op";
    case __HYPERVISOR_update_va_mapping: return "update_va_mapping";
    case __HYPERVISOR_xen_version: return "xen_version";
    case __HYPERVISOR_console_io: return "console_io";
    case __HYPERVISOR_grant_table_op: return "grant_table_op";
    case __HYPERVISOR_vcpu_op: return "vcpu_op";
    case __HYPERVISOR_mmuext_op: return "mmuext_op";
    case __HYPERVISOR_sched_op: return "sched_op";
    case __HYPERVISOR_callback_op: return "callback_op";
    case __HYPERVISOR_event_channel_op: return "event_channel_op";
    case __HYPERVISOR_hvm_op: return "hvm_op";
    default: return nullptr;
    }
}

std::uint64_t clock_offset() { return g_clock.offset(); }

bool events_ready() { return g_vcpu != nullptr; }

void on_upcall() {
    ++g_upcalls;
    // Level-triggered: Xen re-injects while evtchn_upcall_pending is set, so clear it here; the
    // pending selector keeps the facts for dispatch_events() (xen.h, "Event channel endpoints").
    g_vcpu->evtchn_upcall_pending = 0;
}

bool dispatch_events() {
    bool ran = false;
    for (std::uint32_t w = 0; w < Port::max_ports / 64; ++w) {
        std::uint64_t bits = __atomic_exchange_n(&g_soft_pending[w], 0, __ATOMIC_SEQ_CST);
        while (bits) {
            std::uint32_t port = w * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (g_handlers[port]) g_handlers[port]();
            ran = true;
        }
    }
    const auto run = [](std::uint32_t port) {
        if (port < Port::max_ports && g_handlers[port]) g_handlers[port]();
    };
    // The unmasked port (the profiler's timer, raised as upcalls), then the masked ones.
    std::size_t n = scan_pending(g_vcpu->evtchn_upcall_pending, g_vcpu->evtchn_pending_sel,
                                 g_shared->evtchn_pending, g_shared->evtchn_mask, run);
    n += scan_watched(g_shared->evtchn_pending, g_watched, watched_words, run);
    return ran || n > 0;
}

void idle() {
    // Not "sti; hlt": in nested Xen under QEMU TCG an upcall was seen landing between the two
    // (sti's interrupt shadow not honoured); its handler cleared upcall_pending, the hlt then
    // blocked, and with pending_sel still set Xen never raised the upcall again. SCHEDOP_poll
    // instead blocks with interrupts off, and Xen itself looks at the pending bits of the ports
    // we wait on (the timer's among them) before it blocks, so nothing set before the call is
    // missed.
    interrupts_off();
    bool work = g_vcpu->evtchn_pending_sel != 0 || g_vcpu->evtchn_upcall_pending != 0 ||
                any_watched_pending(g_shared->evtchn_pending, g_watched, watched_words);
    for (auto w : g_soft_pending) work = work || w != 0;
    if (!work) {
        sched_poll poll{};
        set_xen_guest_handle(poll.ports, g_poll_ports);
        poll.nr_ports = g_poll_count;
        // The loop's deadline is armed on the timer port; the limit only bounds the wait for a
        // port idle() could not watch.
        poll.timeout = raw_now_ns() + 1'000'000'000ull;
        sched_op(SCHEDOP_poll, &poll);
    }
    interrupts_on();  // a pending upcall (unmasked ports only) is taken here; dispatch_events() scans either way
}

std::uint64_t now_ns() { return g_clock.read(raw_now_ns()); }

std::uint64_t pvclock_now_ns() { return raw_now_ns(); }

std::uint64_t tsc_to_ns_estimate(std::uint64_t delta) {
    return pvclock_scale(delta, g_vcpu->time.tsc_to_system_mul, g_vcpu->time.tsc_shift);
}

WallClock wallclock() {
    // The base is "when pvclock was 0"; ours runs the clock's offset ahead, so its 0 was that much
    // earlier.
    WallClock w = wallclock_read(*g_shared);
    const std::uint64_t ns = w.sec * 1'000'000'000ull + w.nsec;
    const std::uint64_t base = ns > g_clock.offset() ? ns - g_clock.offset() : 0;
    return WallClock{base / 1'000'000'000ull, static_cast<std::uint32_t>(base % 1'000'000'000ull)};
}

void set_timer(std::uint64_t deadline_ns) {
    const std::uint64_t raw = deadline_ns == 0 ? 0 : g_clock.to_raw(deadline_ns);
    if (g_timer_armed && raw == g_armed_raw) return;
    set_timer_op(raw);
    g_armed_raw = raw;
    g_timer_armed = true;
}

Result<std::uint64_t> hvm_param(unsigned index) {
    xen_hvm_param p{};
    p.domid = DOMID_SELF;
    p.index = index;
    if (hvm_op(HVMOP_get_param, &p) != 0) return Error::not_found;
    return std::uint64_t{p.value};
}

Result<StoreRing> store_ring() {
    if (pv_mode()) {  // validated by parse_pv_start_info; the bootstrap region maps it
        const PvBootInfo& b = pv_boot_info();
        return StoreRing{reinterpret_cast<void*>(b.store_pfn << 12), b.store_evtchn};
    }
    Result<std::uint64_t> pfn = hvm_param(HVM_PARAM_STORE_PFN);
    Result<std::uint64_t> port = hvm_param(HVM_PARAM_STORE_EVTCHN);
    if (!pfn.ok() || !port.ok() || pfn.value() == 0) return Error::not_found;
    // Where the toolstack put it; a frame beyond what we map would fault on first touch, so
    // refuse it here (start_info's memory map says what RAM there is).
    if (pfn.value() >= (std::uint64_t{1} << (52 - 12))) return Error::bad_input;
    return StoreRing{reinterpret_cast<void*>(pfn.value() << 12), port.value()};
}

Result<ConsoleRing> console_ring() {
    if (pv_mode()) {
        const PvBootInfo& b = pv_boot_info();
        return ConsoleRing{reinterpret_cast<void*>(b.console.ring), b.console.evtchn};
    }
    Result<std::uint64_t> pfn = hvm_param(HVM_PARAM_CONSOLE_PFN);
    Result<std::uint64_t> port = hvm_param(HVM_PARAM_CONSOLE_EVTCHN);
    if (!pfn.ok() || !port.ok() || pfn.value() == 0) return Error::not_found;
    if (pfn.value() >= (std::uint64_t{1} << (52 - 12))) return Error::bad_input;
    return ConsoleRing{reinterpret_cast<void*>(pfn.value() << 12), port.value()};
}

// ---- Port ----------------------------------------------------------------------------------

Port::Port(std::uint32_t port, bool owned) : port_(port), owned_(owned), epoch_(g_port_epoch) {}

bool Port::stale() const { return epoch_ != g_port_epoch; }

Result<Port> Port::adopt(std::uint64_t port) {
    if (port == 0 || port >= max_ports) return Error::bad_input;
    return Port(static_cast<std::uint32_t>(port), false);
}

Result<Port> Port::bind_virq(std::uint32_t virq) {
    evtchn_bind_virq b{};
    b.virq = virq;
    b.vcpu = 0;
    if (evtchn_op(EVTCHNOP_bind_virq, &b) != 0) return Error::io;
    if (b.port >= max_ports) return Error::no_space;
    return Port(b.port, true);
}

Result<Port> Port::alloc_unbound(std::uint16_t remote_domid) {
    evtchn_alloc_unbound a{};
    a.dom = DOMID_SELF;
    a.remote_dom = remote_domid;
    if (evtchn_op(EVTCHNOP_alloc_unbound, &a) != 0) return Error::io;
    if (a.port >= max_ports) return Error::no_space;
    return Port(a.port, true);
}

Port& Port::operator=(Port&& o) noexcept {
    if (this != &o) {
        close();
        port_ = o.port_;
        owned_ = o.owned_;
        epoch_ = o.epoch_;
        o.port_ = 0;
        o.owned_ = false;
    }
    return *this;
}

Port::~Port() { close(); }

void Port::close() {
    if (port_ == 0) return;
    if (stale()) {  // the number is not ours any more: nothing to unbind, no handler to drop
        port_ = 0;
        return;
    }
    g_handlers[port_].reset();
    unwatch_port(port_);
    if (owned_) {
        evtchn_close c{port_};
        evtchn_op(EVTCHNOP_close, &c);
    }
    port_ = 0;
}

void Port::notify() {
    if (stale()) return;
    evtchn_send s{port_};
    evtchn_op(EVTCHNOP_send, &s);
}

void Port::wait() {
    // SCHEDOP_poll blocks until the port is pending, with interrupts on or off (fault reports
    // use it too). Its pending bit is consumed here, so remember it for the loop's handler.
    if (stale()) return;
    evtchn_port_t p = port_;
    sched_poll poll{};
    set_xen_guest_handle(poll.ports, &p);
    poll.nr_ports = 1;
    poll.timeout = raw_now_ns() + 1'000'000'000ull;   // bounded: callers re-check their ring
    sched_op(SCHEDOP_poll, &poll);
    if (test_and_clear(g_shared->evtchn_pending, port_)) {
        __atomic_fetch_or(&g_soft_pending[port_ / 64], std::uint64_t{1} << (port_ % 64), __ATOMIC_SEQ_CST);
    }
}

void Port::set_handler(Function<void()> handler) {
    if (stale()) return;
    g_handlers[port_] = std::move(handler);
    watch_port(port_);  // stays masked: polled delivery (see g_watched)
}

// ---- Misc ----------------------------------------------------------------------------------

static_assert(static_cast<unsigned>(ShutdownReason::poweroff) == SHUTDOWN_poweroff);
static_assert(static_cast<unsigned>(ShutdownReason::reboot) == SHUTDOWN_reboot);
static_assert(static_cast<unsigned>(ShutdownReason::crash) == SHUTDOWN_crash);

[[noreturn]] void shutdown(ShutdownReason reason) {
    early_console_flush();  // PV before the console driver: let xenconsoled read the last lines
    sched_shutdown s{static_cast<unsigned>(reason)};
    for (;;) {
        sched_op(SCHEDOP_shutdown, &s);
        if (pv_mode())
            sched_op(SCHEDOP_yield, nullptr);
        else
            cpu::sti_hlt();
    }
}

Version xen_version() {
    Version v{};
    long r = xen_version_op(XENVER_version, nullptr);
    v.major = static_cast<unsigned>(r >> 16);
    v.minor = static_cast<unsigned>(r & 0xffff);
    xen_extraversion_t extra{};
    if (xen_version_op(XENVER_extraversion, &extra) == 0) {
        std::memcpy(v.extra, extra, sizeof(v.extra) - 1);
        v.extra[sizeof(v.extra) - 1] = 0;
    }
    return v;
}

}  // namespace keel::xen
