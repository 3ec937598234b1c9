// PV console frontend over the shared console page (io/console.h, struct xencons_interface):
// out[] carries our output to xenconsoled, in[] brings back what is typed in `xl console`.
#pragma once

#include <cstdint>
#include <string_view>

#include "keel/function.h"
#include "keel/log.h"
#include "keel/xen/event_channel.h"

struct xencons_interface;  // <xen/io/console.h>

namespace keel::console {

/// The PV console. Also the kernel's LogSink once it is up.
///
/// Context: event loop (and whatever context logs: write() never allocates and never runs a
/// callback). Output is synchronous: write() returns when every byte is in out[]; when the ring
/// is full it notifies xenconsoled and blocks in evtchn.wait() until space frees. Nothing is
/// dropped: if the backend breaks the ring protocol (an index moved so that more than a ring's
/// worth is outstanding) or stops draining (max_waits_without_progress wake-ups without a byte of
/// space), the ring is abandoned for good, the error is counted and reported, and all further
/// output goes to the fallback writer.
class Console : public keel::LogSink {
public:
    /// Wake-ups in one write() that free no space before the backend is declared stalled.
    static constexpr unsigned max_waits_without_progress = 10000;

    /// `ring`: the console page (HVM_PARAM_CONSOLE_PFN); `evtchn`: HVM_PARAM_CONSOLE_EVTCHN.
    Console(volatile xencons_interface* ring, xen::EventChannel& evtchn);
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    /// Put `text` into out[], '\n' as "\r\n". Blocks while the ring is full (see above).
    void write(std::string_view text) override;

    /// Where output goes once the ring is unusable (e.g. xen::early_write). Must not call back
    /// into this console.
    void set_fallback(void (*emergency)(std::string_view)) { fallback_ = emergency; }

    /// Receives the bytes typed in `xl console`, valid during the call. Until a handler is set,
    /// input stays in in[] (xenconsoled keeps the rest).
    void set_input_handler(Function<void(std::string_view)> handler);

    /// Call when the event channel fires: consume in[] and hand it to the input handler.
    void on_event();

    struct Stats {
        std::uint64_t bytes_out;  ///< bytes put into out[] ("\r" of "\r\n" included)
        std::uint64_t bytes_in;   ///< bytes taken from in[]
        std::uint64_t waits;      ///< evtchn.wait() calls on a full ring
        std::uint64_t errors;     ///< protocol violations / stalls by the backend
    };
    Stats stats() const { return stats_; }
    /// True once the ring was abandoned.
    bool broken() const { return broken_; }

private:
    void abandon(std::string_view why, std::string_view rest);

    volatile xencons_interface* ring_;
    xen::EventChannel& evtchn_;
    // Private copies of the indices we own; the shared ones are written, never read back.
    std::uint32_t out_prod_;
    std::uint32_t in_cons_;
    void (*fallback_)(std::string_view) = nullptr;
    Function<void(std::string_view)> input_;
    std::uint32_t input_generation_ = 0;  // bumped by set_input_handler
    bool broken_ = false;
    char in_copy_[1024];  // sizeof(xencons_interface::in): input is copied out of shared memory
    Stats stats_{};
};

/// The guest's PV console once console/guest/init.cc has started it, else nullptr. Services use
/// it for input: `if (auto* c = keel::console::active()) c->set_input_handler(...)`.
Console* active();

}  // namespace keel::console
