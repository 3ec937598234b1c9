// One-shot timers on the current vCPU's loop. Intrusive: the Timer object is the registration,
// so starting one never allocates, and destroying one cancels it.
#pragma once

#include <cstdint>

#include "keel/function.h"
#include "keel/intrusive_list.h"
#include "keel/loop.h"

namespace keel {

/// Durations in nanoseconds, the loop's unit: `timer.start_in(ms(250), ...)`.
constexpr std::uint64_t ns(std::uint64_t n) { return n; }
constexpr std::uint64_t us(std::uint64_t n) { return n * 1'000ull; }
constexpr std::uint64_t ms(std::uint64_t n) { return n * 1'000'000ull; }
constexpr std::uint64_t s(std::uint64_t n) { return n * 1'000'000'000ull; }

namespace literals {
constexpr std::uint64_t operator""_ns(unsigned long long n) { return n; }
constexpr std::uint64_t operator""_us(unsigned long long n) { return us(n); }
constexpr std::uint64_t operator""_ms(unsigned long long n) { return ms(n); }
constexpr std::uint64_t operator""_s(unsigned long long n) { return s(n); }
}  // namespace literals

/// A one-shot timer owned by the caller. The callback runs from the loop (never inline from
/// start_*), after the timer has become inactive, so it may restart or destroy the Timer.
/// Timers with the same deadline fire in the order they were started.
/// Context: loop only.
class Timer : private ListNode<detail::TimerTag> {
public:
    Timer() = default;
    ~Timer() { cancel(); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    /// (Re)start on keel::loop(): run `cb` once the clock reaches `deadline_ns`. A running
    /// timer is cancelled first. A deadline in the past fires on the next loop iteration.
    void start_at(std::uint64_t deadline_ns, Function<void()> cb);
    /// start_at(now + delay_ns); saturates instead of wrapping.
    void start_in(std::uint64_t delay_ns, Function<void()> cb);
    /// Stop the timer and destroy its callback; no-op if it is not active.
    void cancel();
    /// True from start_* until the callback is about to run or cancel().
    bool active() const { return loop_ != nullptr; }
    /// The deadline of the last start_* (meaningful while active()).
    std::uint64_t deadline() const { return deadline_; }

private:
    friend class EventLoop;
    friend class IntrusiveList<Timer, detail::TimerTag>;

    EventLoop* loop_ = nullptr;  // the loop whose list holds this timer, while active
    std::uint64_t deadline_ = 0;
    Function<void()> cb_;
};

}  // namespace keel
