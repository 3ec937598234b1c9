// Starts the PV console on the ring the toolstack set up (xen::console_ring(): HVM params in PVH,
// start_info in classic PV) and makes it the log sink; until then logs go to early_write.
#include "keel/console/console.h"
#include "keel/init.h"
#include "keel/log.h"
#include "keel/metrics.h"
#include "keel/xen/platform.h"
#include "keel/xen/public.h"

#include <xen/io/console.h>

namespace keel::console {
namespace {

Console* g_console = nullptr;
xen::Port* g_port = nullptr;

// Before a suspend: let xenconsoled read everything, because the toolstack clears the ring
// page of the domain it restores (tools/libs/guest/xg_sr_restore_x86_hvm.c). Bounded: each
// wait is at most about 1 s.
constexpr int max_drain_waits = 3;

void before_suspend() {
    g_console->flush_sync();
    for (int i = 0; i < max_drain_waits && !g_console->drained(); ++i) {
        g_port->notify();
        g_port->wait();
    }
}

// A new domain: the new port (the ring page stays where it was), then the ring from its fresh
// indices. Runs first among the suspend hooks, so logging works for the rest.
void after_suspend(xen::SuspendOutcome outcome) {
    if (outcome != xen::SuspendOutcome::new_domain) return;
    auto ring = xen::console_ring();
    auto port = ring.ok() ? xen::Port::adopt(ring->port) : Result<xen::Port>(ring.error());
    if (!port.ok()) {
        // The stale indices make the next write abandon the ring: output goes to the debug port.
        xen::early_write("keel: console: no event channel after resume\n");
        return;
    }
    *g_port = std::move(port.value());
    g_port->set_handler([] { g_console->on_event(); });
    g_console->reconnect();
}

// Fault reports and crash messages: the domain stops right after, so wait (boundedly) until
// xenconsoled has taken them.
void report_line(const char* line) {
    if (!g_console) return;
    g_console->write(line);
    g_console->flush_sync();
}

void start() {
    auto offered = xen::console_ring();
    if (!offered.ok()) {
        KLOG_WARN("no PV console offered (%s); logging to the debug port only", to_string(offered.error()));
        return;
    }
    auto port = xen::Port::adopt(offered->port);
    if (!port.ok()) {
        KLOG_ERROR("PV console: bad event channel %lu", static_cast<unsigned long>(offered->port));
        return;
    }
    static xen::Port console_port = std::move(port.value());
    // The ring is ours from here (in PV early_write stops writing to it): before the Console
    // takes its copy of out_prod.
    xen::set_report_writer(report_line);
    auto* ring = static_cast<volatile xencons_interface*>(offered->page);
    static Console console(ring, console_port);
    console.set_fallback(+[](std::string_view s) { xen::early_write(s); });
    console_port.set_handler([] { console.on_event(); });
    g_console = &console;
    g_port = &console_port;
    set_log_sink(&console);
    if (!xen::add_suspend_hook({before_suspend, after_suspend}).ok())
        KLOG_WARN("console: no suspend hook slot left; it will not work after xl restore");
    static metrics::Source source("console", [](MetricsWriter& w) { write_metrics(w, console); });
    metrics::add(source);
}

}  // namespace

Console* active() { return g_console; }

}  // namespace keel::console

KEEL_INIT(10, console, keel::console::start);
