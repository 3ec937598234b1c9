// Guest wiring of the two xenstore users every image has: the xenstore connection itself (the
// ring and event channel platform-xen found) and the toolstack's control/shutdown requests
// (xl shutdown, reboot, ...), handed to the kernel's request_stop().
#include "keel/init.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/service.h"
#include "keel/xen/platform.h"
#include "keel/xen/profile.h"
#include "keel/xenbus/shutdown_watch.h"
#include "keel/xenbus/store.h"

namespace keel {
namespace {

xen::XenStore* g_store = nullptr;
xen::Port* g_store_port = nullptr;
ShutdownWatch* g_watch = nullptr;
bool g_suspending = false;

// Before a suspend: let the requests in flight finish (a watch that fired on our own
// acknowledgement of "suspend" typically has one), so the new domain does not have to fail them.
// Bounded: callbacks may issue more requests.
constexpr std::uint64_t drain_limit_ns = 2'000'000'000ull;

void store_before_suspend() {
    const std::uint64_t deadline = xen::now_ns() + drain_limit_ns;
    g_store->on_event();
    while (g_store->busy() && xen::now_ns() < deadline) {
        g_store_port->wait();
        g_store->on_event();
    }
    if (g_store->busy()) KLOG_WARN("xenstore: requests still in flight at suspend; a new domain fails them");
}

// A new domain: the xenstore ring page stays at HVM_PARAM_STORE_PFN (cleared by the toolstack),
// its event channel is new.
void store_after_suspend(xen::SuspendOutcome outcome) {
    if (outcome != xen::SuspendOutcome::new_domain) return;
    auto ring = xen::store_ring();
    auto port = ring.ok() ? xen::Port::adopt(ring->port) : Result<xen::Port>(ring.error());
    if (!port.ok()) {
        KLOG_ERROR("xenstore: no usable event channel after resume (%s); xenstore is gone",
                   to_string(port.error()));
        return;
    }
    *g_store_port = std::move(port.value());
    g_store_port->set_handler([] { g_store->on_event(); });
    g_store->reconnect();
    if (g_watch != nullptr) g_watch->resumed();
    KLOG_INFO("xenstore: reconnected on port %u", g_store_port->number());
}

void start_xenstore() {
    Result<xen::StoreRing> ring = xen::store_ring();
    if (!ring.ok()) {
        KLOG_WARN("no xenstore offered (%s)", to_string(ring.error()));
        return;
    }
    auto port = xen::Port::adopt(ring->port);
    if (!port.ok()) {
        KLOG_ERROR("xenstore: bad event channel %lu", static_cast<unsigned long>(ring->port));
        return;
    }
    static xen::Port store_port = std::move(port.value());
    static xen::XenStore store(static_cast<volatile xenstore_domain_interface*>(ring->page), store_port);
    store_port.set_handler([] { store.on_event(); });
    // Completions of requests refused at submission run from on_event(), never from inside the
    // call; this makes sure they run even if xenstored never signals again.
    store.set_wakeup([] { (void)loop().post([] { store.on_event(); }); });
    g_store = &store;
    g_store_port = &store_port;
    if (!xen::add_suspend_hook({store_before_suspend, store_after_suspend}).ok())
        KLOG_WARN("xenstore: no suspend hook slot left; it will not work after xl restore");
}

// From the loop, never from inside the xenstore callback that delivered the request: the
// xenstore Port is replaced while suspend() runs.
void do_suspend() {
    KLOG_INFO("suspending (xl save or migrate)");
    const xen::SuspendReport r = xen::suspend();
    g_suspending = false;
    KLOG_INFO("resumed: %s (hypercall returned %ld%s); monotonic clock %lu.%06lu s before, %lu.%06lu s after, "
              "offset %lu ns",
              to_string(r.outcome), r.rc, r.rc_disagreed ? ", but VIRQ_TIMER was still bound: same domain" : "",
              static_cast<unsigned long>(r.before_ns / 1'000'000'000ull),
              static_cast<unsigned long>(r.before_ns % 1'000'000'000ull / 1000),
              static_cast<unsigned long>(r.after_ns / 1'000'000'000ull),
              static_cast<unsigned long>(r.after_ns % 1'000'000'000ull / 1000),
              static_cast<unsigned long>(r.clock_offset_ns));
}

void suspend_requested() {
    if (g_suspending) {
        KLOG_WARN("suspend requested while a suspend is in progress; ignoring the second");
        return;
    }
    g_suspending = true;
    if (auto r = loop().post(do_suspend); !r.ok()) {
        g_suspending = false;
        KLOG_ERROR("suspend requested, but cannot queue it (%s); the toolstack will time out", to_string(r.error()));
    }
}

void on_request(ShutdownRequest req) {
    switch (req) {
    case ShutdownRequest::suspend: suspend_requested(); return;
    case ShutdownRequest::crash: KLOG_WARN("toolstack asked for a crash"); xen::shutdown(xen::ShutdownReason::crash);
    case ShutdownRequest::reboot: request_stop(StopReason::reboot); return;
    case ShutdownRequest::poweroff:
    case ShutdownRequest::halt: request_stop(StopReason::poweroff); return;
    }
}

// xl sysrq DOMAIN KEY writes the key to control/sysrq: 'p' prints the sampling profiler's
// report on the console (docs/profiling.md). The node is cleared first, as Linux does, so the
// same key can be sent again.
constexpr const char* sysrq_node = "control/sysrq";

void sysrq_changed() {
    g_store->read(sysrq_node, [](Result<std::string_view> v) {
        if (!v || v->empty()) return;
        const char key = (*v)[0];
        g_store->write(sysrq_node, "", [](Result<void>) {});
        if (key == 'p') {
            xen::write_profile([](const char* line) { KLOG_INFO("%s", line); });
        } else {
            KLOG_WARN("sysrq %#x: not supported (p prints the profile)", static_cast<unsigned char>(key));
        }
    });
}

void start_control() {
    if (g_store == nullptr) return;
    if (auto r = g_store->watch(
            sysrq_node, [](std::string_view) { sysrq_changed(); },
            [](Result<void> done) {
                if (!done) KLOG_WARN("xenstore: cannot watch control/sysrq (%s)", to_string(done.error()));
            });
        !r.ok()) {
        KLOG_WARN("xenstore: cannot watch control/sysrq (%s); xl sysrq does nothing", to_string(r.error()));
    }
    static ShutdownWatch watch(*g_store, on_request, /*suspend=*/true);
    g_watch = &watch;
    if (auto r = watch.start(); !r.ok())
        KLOG_WARN("xenstore: cannot watch control/shutdown (%s); xl shutdown will not work", to_string(r.error()));
}

}  // namespace

xen::XenStore* xenstore() { return g_store; }

}  // namespace keel

// After the console (10), which takes over logging; before the frontends (20+), which use it.
KEEL_INIT(15, xenstore, keel::start_xenstore);
KEEL_INIT(16, control, keel::start_control);
