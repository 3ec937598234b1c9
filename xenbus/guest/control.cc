// Guest wiring of the two xenstore users every image has: the xenstore connection itself (the
// ring and event channel platform-xen found) and the toolstack's control/shutdown requests
// (xl shutdown, reboot, ...), handed to the kernel's request_stop().
#include "keel/init.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/service.h"
#include "keel/xen/platform.h"
#include "keel/xenbus/shutdown_watch.h"
#include "keel/xenbus/store.h"

namespace keel {
namespace {

xen::XenStore* g_store = nullptr;

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
}

void on_request(ShutdownRequest req) {
    switch (req) {
    case ShutdownRequest::suspend: KLOG_WARN("suspend requested: not supported by this guest; ignoring"); return;
    case ShutdownRequest::crash: KLOG_WARN("toolstack asked for a crash"); xen::shutdown(xen::ShutdownReason::crash);
    case ShutdownRequest::reboot: request_stop(StopReason::reboot); return;
    case ShutdownRequest::poweroff:
    case ShutdownRequest::halt: request_stop(StopReason::poweroff); return;
    }
}

void start_control() {
    if (g_store == nullptr) return;
    static ShutdownWatch watch(*g_store, on_request);
    if (auto r = watch.start(); !r.ok())
        KLOG_WARN("xenstore: cannot watch control/shutdown (%s); xl shutdown will not work", to_string(r.error()));
}

}  // namespace

xen::XenStore* xenstore() { return g_store; }

}  // namespace keel

// After the console (10), which takes over logging; before the frontends (20+), which use it.
KEEL_INIT(15, xenstore, keel::start_xenstore);
KEEL_INIT(16, control, keel::start_control);
