// Starts the PV console on the ring the toolstack set up (HVM_PARAM_CONSOLE_PFN/EVTCHN) and
// makes it the log sink; until then logs go to the Xen debug port.
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

// Fault reports and crash messages: the domain stops right after, so wait (boundedly) until
// xenconsoled has taken them.
void report_line(const char* line) {
    if (!g_console) return;
    g_console->write(line);
    g_console->flush_sync();
}

void start() {
    auto pfn = xen::hvm_param(HVM_PARAM_CONSOLE_PFN);
    auto evtchn = xen::hvm_param(HVM_PARAM_CONSOLE_EVTCHN);
    if (!pfn.ok() || !evtchn.ok() || pfn.value() == 0) {
        KLOG_WARN("no PV console offered (HVM_PARAM_CONSOLE_PFN); logging to the debug port only");
        return;
    }
    auto port = xen::Port::adopt(evtchn.value());
    if (!port.ok()) {
        KLOG_ERROR("PV console: bad event channel %lu", static_cast<unsigned long>(evtchn.value()));
        return;
    }
    static xen::Port console_port = std::move(port.value());
    // The ring page is identity-mapped (platform-xen maps the low 4 GiB RW+NX).
    auto* ring = reinterpret_cast<volatile xencons_interface*>(pfn.value() << 12);
    static Console console(ring, console_port);
    console.set_fallback(+[](std::string_view s) { xen::early_write(s); });
    console_port.set_handler([] { console.on_event(); });
    g_console = &console;
    set_log_sink(&console);
    xen::set_report_writer(report_line);
    static metrics::Source source("console", [](MetricsWriter& w) { write_metrics(w, console); });
    metrics::add(source);
}

}  // namespace

Console* active() { return g_console; }

}  // namespace keel::console

KEEL_INIT(10, console, keel::console::start);
