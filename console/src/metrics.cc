// The console's metric families (console.h).
#include "keel/console/console.h"

namespace keel::console {

void write_metrics(MetricsWriter& w, const Console& console) {
    const Console::Stats s = console.stats();
    w.counter("keel_console_out_bytes_total", "Console output put into the ring.", s.bytes_out);
    w.counter("keel_console_in_bytes_total", "Console input taken from the ring.", s.bytes_in);
    w.counter("keel_console_dropped_bytes_total", "Console output dropped while xenconsoled lagged.",
              s.dropped_bytes);
    w.counter("keel_console_errors_total", "Console ring protocol violations by the backend.", s.errors);
    w.counter("keel_console_reconnects_total", "Console rings taken over after a resume in a new domain.",
              s.reconnects);
    w.gauge("keel_console_broken", "1 once the console ring was abandoned (output goes to the debug port).",
            console.broken() ? 1 : 0);
}

}  // namespace keel::console
