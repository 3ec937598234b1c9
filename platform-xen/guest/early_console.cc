// early_write: platform-xen's own output, before the console driver (console/, a layer above)
// is up and for what must be said without it (fault reports, failures of the platform itself).
//
// PVH: the Xen debug port 0xE9 ("(dN) ..." in `xl dmesg`) and CONSOLEIO_write (debug builds of
// Xen only). Classic PV: ring 3 has no port I/O and a release Xen refuses a domU's console_io,
// so the PV console ring itself, producer side (console_ring.h), until the console driver takes
// the ring over (set_report_writer): it keeps its own copy of out_prod, and two producers would
// overwrite each other.
#include "internal.h"
#include "keel/xen/console_ring.h"
#include "keel/xen/hypercall.h"
#include "keel/xen/platform.h"

#include "cpu.h"

namespace keel::xen {
namespace {

// PV: the ring and its port until the hand-over; null when there is none, after the hand-over,
// or once the backend broke the ring.
volatile xencons_interface* g_ring = nullptr;
std::uint32_t g_port = 0;

constexpr std::uint64_t ms = 1'000'000;  // ns

void notify() {
    evtchn_send send{g_port};
    evtchn_op(EVTCHNOP_send, &send);
}

// Waits, at most `limit_ns`, until xenconsoled has consumed everything written. Blocks in
// SCHEDOP_poll on the console port (xenconsoled notifies it after reading), its pending bit
// cleared first so a notification already seen does not end every poll at once. Notifies again
// every round: xenconsoled reads a ring only on an event, and one sent before it bound its end
// of the channel is lost. Before shared_info is mapped there is no clock: a bounded number of
// yields instead.
bool wait_drained(std::uint64_t limit_ns) {
    if (!g_ring) return false;
    if (!events_ready()) {
        for (int i = 0; i < 100000 && !console_ring_drained(*g_ring); ++i) {
            if (i % 1000 == 0) notify();
            sched_op(SCHEDOP_yield, nullptr);
        }
        return console_ring_drained(*g_ring);
    }
    const std::uint64_t deadline = pvclock_now_ns() + limit_ns;
    while (!console_ring_drained(*g_ring)) {
        const std::uint64_t t = pvclock_now_ns();
        if (t >= deadline) return false;
        clear_pending(g_port);
        if (console_ring_drained(*g_ring)) break;
        notify();
        evtchn_port_t port = g_port;
        sched_poll poll{};
        set_xen_guest_handle(poll.ports, &port);
        poll.nr_ports = 1;
        poll.timeout = t + 50 * ms < deadline ? t + 50 * ms : deadline;
        sched_op(SCHEDOP_poll, &poll);
    }
    return true;
}

void ring_write(std::string_view s) {
    while (g_ring && !s.empty()) {
        auto put = console_ring_put(*g_ring, s);
        if (!put.ok()) {  // out_cons is impossible: the ring is broken, write nothing more
            g_ring = nullptr;
            return;
        }
        s.remove_prefix(put.value());
        notify();
        // Full: let xenconsoled catch up (bounded; a console that never drains loses the rest).
        if (!s.empty() && !wait_drained(2000 * ms)) g_ring = nullptr;
    }
}

}  // namespace

void pv_early_console(volatile xencons_interface* ring, std::uint32_t port) {
    g_ring = ring;
    g_port = port;
}

void early_console_handover() {
    // What is still in the ring is the driver's to see out; it starts from out_prod as it is.
    g_ring = nullptr;
}

void early_console_flush() { (void)wait_drained(5000 * ms); }

void early_write(std::string_view text) {
    if (pv_mode()) {
        ring_write(text);
        return;
    }
    for (char c : text) cpu::outb(0xe9, static_cast<std::uint8_t>(c));
    if (keel_hypercall_page[0] != 0) console_io(CONSOLEIO_write, static_cast<unsigned>(text.size()), text.data());
}

}  // namespace keel::xen
