// The event loop: one per vCPU, no preemption. Event-channel upcalls only mark work pending;
// everything else (drivers, protocol state machines, timers, coroutine tasks) runs from here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/function.h"
#include "keel/intrusive_list.h"
#include "keel/result.h"

namespace keel {

class Timer;
class EventLoop;

namespace detail {
struct TimerTag;
struct WakeupTag;
}  // namespace detail

/// What the loop needs from the machine. The guest implements it over pvclock, the Xen
/// single-shot timer, event channels and HLT; tests implement it with a virtual clock.
class LoopPlatform {
public:
    virtual ~LoopPlatform() = default;
    /// Monotonic nanoseconds.
    virtual std::uint64_t now_ns() = 0;
    /// One-shot wakeup at `deadline_ns` (replacing any earlier one); 0 = none needed.
    virtual void arm_timer(std::uint64_t deadline_ns) = 0;
    /// Dispatch pending platform events (event channels); true if any handler ran.
    virtual bool poll_events() = 0;
    /// Halt until an interrupt or event (interrupts enabled). May return spuriously. Must not
    /// sleep when an event arrived after the last poll_events() (check-then-halt atomically).
    virtual void idle() = 0;
};

/// A wake-up queued on the loop by a node its owner provides: no allocation, no capacity limit,
/// so it cannot fail the way post() can. Destroying or cancel()ing a pending Wakeup withdraws
/// it. Event and await_callback use it to resume coroutines. Context: loop only.
class Wakeup : private ListNode<detail::WakeupTag> {
public:
    using Fn = void (*)(void* ctx);
    Wakeup(Fn fn, void* ctx) : fn_(fn), ctx_(ctx) {}
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    /// True from schedule() until it runs or is cancelled.
    bool pending() const { return linked(); }
    void cancel() { unlink(); }

private:
    friend class EventLoop;
    friend class IntrusiveList<Wakeup, detail::WakeupTag>;
    Fn fn_;
    void* ctx_;
};

/// Runs platform events, due timers and queued work, and halts the vCPU when there is none.
/// Context: every method runs on the loop's own vCPU, from the loop or before it starts; none
/// may be called from an upcall or trap handler.
class EventLoop {
public:
    /// How many post()ed functions may wait at once.
    static constexpr std::size_t post_capacity = 512;

    explicit EventLoop(LoopPlatform& p);
    /// Cancels every timer still registered and drops queued work; clears loop() if it is this.
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// The platform's monotonic clock, in ns.
    std::uint64_t now() const;

    /// Run `fn` soon from the loop, after what is already queued (FIFO). Error::no_space when
    /// post_capacity functions are waiting; Error::invalid_argument for an empty function.
    Result<void> post(Function<void()> fn);

    /// Queue `w` to run soon from the loop (FIFO among wakeups). No-op if already pending.
    void schedule(Wakeup& w);

    /// Iterate until stop(). The stop request is cleared when run() returns, so it can be
    /// called again.
    void run();

    /// One iteration: poll_events(); run the timers due now; run the work that was queued when
    /// this phase began (work queued by that work waits for the next iteration); run pending
    /// wakeups. Then, if `may_idle`, stop() was not requested and nothing is ready (no queued
    /// work, no due timer), arm the platform timer for the earliest deadline (0 if none) and
    /// idle. Returns true if any event handler, timer or queued work ran.
    bool run_once(bool may_idle);

    /// Ask run() to return after the current iteration.
    void stop() { stop_ = true; }
    bool stopping() const { return stop_; }

    /// Functions waiting in the post() queue.
    std::size_t queued() const { return count_; }
    /// Deadline of the earliest active timer; 0 if there is none.
    std::uint64_t next_deadline();

private:
    friend class Timer;
    void add_timer(Timer& t);
    bool run_timers();
    bool run_posted();
    bool run_wakeups();

    LoopPlatform& platform_;
    IntrusiveList<Timer, detail::TimerTag> timers_;  // sorted by deadline, FIFO among equals
    IntrusiveList<Wakeup, detail::WakeupTag> wakeups_;
    Function<void()> posts_[post_capacity];  // ring buffer
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    bool stop_ = false;
};

/// Make `l` the current vCPU's loop (nullptr to clear).
void set_loop(EventLoop* l);
/// The current vCPU's loop. Calling it before set_loop() is a bug (panics).
EventLoop& loop();
/// The current loop, or nullptr if none is set.
EventLoop* current_loop();

}  // namespace keel
