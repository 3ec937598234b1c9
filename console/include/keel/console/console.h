// PV console frontend over the shared console page (io/console.h, struct xencons_interface):
// out[] carries our output to xenconsoled, in[] brings back what is typed in `xl console`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/function.h"
#include "keel/log.h"
#include "keel/prometheus.h"
#include "keel/xen/event_channel.h"

struct xencons_interface;  // <xen/io/console.h>

namespace keel::console {

/// The PV console. Also the kernel's LogSink once it is up.
///
/// Context: event loop (and whatever context logs: write() never allocates, never waits and
/// never runs a callback). Output never blocks the guest on xenconsoled: write() puts what fits
/// into out[] and the rest into a bounded backlog, which on_event() (xenconsoled signals after
/// draining) moves on. When the backlog is full too, the newest text is dropped whole and
/// counted, and once there is room again the line "[console: N bytes dropped]" marks the gap.
/// Only the crash path waits (flush_sync(), bounded). A backend that breaks the ring protocol
/// (an index moved so that more than a ring's worth is outstanding) gets the ring abandoned for
/// good: the error is counted and reported, the backlog and all further output go to the
/// fallback writer.
class Console : public keel::LogSink {
public:
    static constexpr std::size_t backlog_bytes = 16384;
    /// Waits that free no space that flush_sync() may spend in the console's whole life.
    static constexpr unsigned sync_waits_without_progress = 3;

    /// `ring`: the console page (HVM_PARAM_CONSOLE_PFN); `evtchn`: HVM_PARAM_CONSOLE_EVTCHN.
    Console(volatile xencons_interface* ring, xen::EventChannel& evtchn);
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    /// Queue `text` ('\n' as "\r\n") for out[]; never waits (see above).
    void write(std::string_view text) override;

    /// Crash path (fault reports, panics): wait for xenconsoled to take the backlog. Bounded: a
    /// wait that frees nothing spends one of sync_waits_without_progress for good (each wait is
    /// bounded by the event channel, about 1 s), so a stalled backend costs seconds, once.
    void flush_sync();

    /// Where output goes once the ring is unusable (e.g. xen::early_write). Must not call back
    /// into this console.
    void set_fallback(void (*emergency)(std::string_view)) { fallback_ = emergency; }

    /// Receives the bytes typed in `xl console`, valid during the call. Until a handler is set,
    /// input stays in in[] (xenconsoled keeps the rest).
    void set_input_handler(Function<void(std::string_view)> handler);

    /// Call when the event channel fires: move the backlog on, consume in[] and hand it to the
    /// input handler.
    void on_event();

    /// The ring was replaced: after a resume in a new domain the toolstack hands us a cleared
    /// page (and a new event channel, which the caller has already put behind `evtchn`).
    /// Continue from the page's indices as they stand now, give a ring abandoned before a new
    /// chance, and move the backlog on. Bytes that sat in the old out[] unread are gone: flush
    /// before suspending. Counted in Stats::reconnects.
    void reconnect();

    struct Stats {
        std::uint64_t reconnects;     ///< reconnect() calls
        std::uint64_t bytes_out;      ///< bytes put into out[] ("\r" of "\r\n" included)
        std::uint64_t bytes_in;       ///< bytes taken from in[]
        std::uint64_t waits;          ///< evtchn.wait() calls (flush_sync only)
        std::uint64_t errors;         ///< protocol violations by the backend
        std::uint64_t dropped_bytes;  ///< output dropped because ring and backlog were full
        std::uint64_t gaps;           ///< "[console: N bytes dropped]" lines written
    };
    Stats stats() const { return stats_; }
    /// True once the ring was abandoned.
    bool broken() const { return broken_; }
    /// Bytes waiting for space in out[].
    std::size_t backlog() const { return backlog_used_; }
    /// Nothing waits in the backlog and xenconsoled has read all of out[].
    bool drained() const;

private:
    void abandon(std::string_view why);
    /// Append `text` to the backlog, CRLF-expanded, if all of it fits.
    bool queue(std::string_view text);
    /// Write the gap line into the backlog if drops are pending and it fits.
    bool queue_gap();
    /// Move what fits from the backlog into out[]; false if the backend broke the ring.
    bool pump();

    volatile xencons_interface* ring_;
    xen::EventChannel& evtchn_;
    // Private copies of the indices we own; the shared ones are written, never read back.
    std::uint32_t out_prod_;
    std::uint32_t in_cons_;
    void (*fallback_)(std::string_view) = nullptr;
    Function<void(std::string_view)> input_;
    std::uint32_t input_generation_ = 0;  // bumped by set_input_handler
    bool broken_ = false;
    unsigned sync_waits_left_ = sync_waits_without_progress;
    std::uint64_t unreported_drops_ = 0;  // bytes dropped since the last gap line
    char backlog_[backlog_bytes];         // CRLF-expanded output not yet in out[]
    std::size_t backlog_head_ = 0;
    std::size_t backlog_used_ = 0;
    char in_copy_[1024];  // sizeof(xencons_interface::in): input is copied out of shared memory
    Stats stats_{};
};

/// The guest's PV console once console/guest/init.cc has started it, else nullptr. Services use
/// it for input: `if (auto* c = keel::console::active()) c->set_input_handler(...)`.
Console* active();

/// The console's metric families (registered by console/guest/init.cc once the console is up):
/// keel_console_out_bytes_total, keel_console_in_bytes_total, keel_console_dropped_bytes_total,
/// keel_console_errors_total, keel_console_broken.
void write_metrics(MetricsWriter& w, const Console& console);

}  // namespace keel::console
