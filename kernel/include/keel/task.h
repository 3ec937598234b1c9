// C++20 coroutine tasks for service code: straight-line code over the loop's callbacks.
//
//   Task<int> read_config();                 // lazily started: runs when awaited or spawned
//   Task<void> serve() {
//       int n = co_await read_config();      // symmetric transfer into the child and back
//       co_await sleep_for(ms(100));         // resumes from a loop timer
//       co_await ready.wait();               // an Event
//   }
//   spawn(serve());                          // detached; its frame is freed when it completes
//
// Frames are allocated with operator new (the kernel heap in the guest). No exceptions: an
// exception escaping a task (host builds only) panics. Context: loop only.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "keel/function.h"
#include "keel/intrusive_list.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/panic.h"
#include "keel/timer.h"

namespace keel {

template <typename T = void>
class Task;

/// Start `t` now (it runs until its first suspension) and detach it: its frame is freed when it
/// completes. Its result, if any, is discarded.
void spawn(Task<void> t);

/// Coroutine frames of Tasks currently allocated (for leak checks and status reports).
std::size_t live_task_frames();

namespace detail {

void* alloc_task_frame(std::size_t n);
void free_task_frame(void* p, std::size_t n);

struct PromiseBase {
    std::coroutine_handle<> continuation;  // who co_awaits this task, if anyone
    bool started = false;                  // the body has begun (start(), co_await or spawn)
    bool detached = false;                 // spawn()ed: free the frame at the end

    static void* operator new(std::size_t n) { return alloc_task_frame(n); }
    static void operator delete(void* p, std::size_t n) { free_task_frame(p, n); }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <typename P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            PromiseBase& p = h.promise();
            if (p.continuation) return p.continuation;  // symmetric transfer back to the awaiter
            if (p.detached) h.destroy();                // nothing reads the result: free now
            return std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }

    void unhandled_exception() noexcept { panic("exception escaped a keel::Task"); }
};

template <typename T>
struct Promise : PromiseBase {
    std::optional<T> value;
    Task<T> get_return_object() noexcept;
    template <typename U = T>
    void return_value(U&& v) {
        value.emplace(std::forward<U>(v));
    }
};

template <>
struct Promise<void> : PromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
};

}  // namespace detail

/// A lazily started coroutine producing a T. Move-only. Destroying a Task destroys its frame,
/// wherever it is suspended (pending timers and waits it owns are cancelled with it).
/// co_await it once, from another Task; or hand a Task<void> to spawn().
template <typename T>
class [[nodiscard]] Task {
public:
    using promise_type = detail::Promise<T>;
    using Handle = std::coroutine_handle<promise_type>;

    Task() = default;
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { destroy(); }

    /// False for a default-constructed or moved-from Task.
    bool valid() const { return static_cast<bool>(h_); }
    /// True once the body has finished (co_return or the end).
    bool done() const { return h_ && h_.done(); }

    /// Start the body now, without waiting for it: it runs until its first suspension. A later
    /// co_await joins it (at once if it has finished by then). For running children
    /// concurrently: start several, then await each. No-op if already started.
    void start() {
        KASSERT(h_);
        if (h_.promise().started) return;
        h_.promise().started = true;
        h_.resume();
    }

    class Awaiter {
    public:
        explicit Awaiter(Handle h) : h_(h) {}
        bool await_ready() const noexcept { return h_.done(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
            promise_type& p = h_.promise();
            p.continuation = caller;
            if (p.started) return std::noop_coroutine();  // start()ed and suspended: it comes back to us
            p.started = true;
            return h_;  // symmetric transfer: run the child right here, no recursion on the stack
        }
        T await_resume() {
            if constexpr (!std::is_void_v<T>) return std::move(*h_.promise().value);
        }

    private:
        Handle h_;
    };

    Awaiter operator co_await() & noexcept {
        KASSERT(h_);
        return Awaiter(h_);
    }
    Awaiter operator co_await() && noexcept {
        KASSERT(h_);
        return Awaiter(h_);
    }

private:
    friend promise_type;
    friend void spawn(Task<void> t);

    explicit Task(Handle h) : h_(h) {}
    Handle release() { return std::exchange(h_, {}); }
    void destroy() {
        if (h_) h_.destroy();
        h_ = {};
    }

    Handle h_;
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
    return Task<T>(Task<T>::Handle::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
    return Task<void>(Task<void>::Handle::from_promise(*this));
}
}  // namespace detail

/// Awaitable returned by sleep_for / sleep_until. Owns its Timer: destroying the sleeping task
/// cancels the wakeup.
class [[nodiscard]] SleepAwaiter {
public:
    explicit SleepAwaiter(std::uint64_t deadline_ns) : deadline_(deadline_ns) {}
    SleepAwaiter(const SleepAwaiter&) = delete;
    SleepAwaiter& operator=(const SleepAwaiter&) = delete;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        timer_.start_at(deadline_, [h] { h.resume(); });
    }
    void await_resume() const noexcept {}

private:
    std::uint64_t deadline_;
    Timer timer_;
};

/// Resume from the loop once the clock reaches `deadline_ns`. Always goes through the loop,
/// even for a deadline in the past (so it also serves as a yield).
inline SleepAwaiter sleep_until(std::uint64_t deadline_ns) { return SleepAwaiter(deadline_ns); }

/// Resume from the loop after `delay_ns` (measured from the call).
inline SleepAwaiter sleep_for(std::uint64_t delay_ns) {
    const std::uint64_t now = loop().now();
    return SleepAwaiter(delay_ns > ~0ull - now ? ~0ull : now + delay_ns);
}

namespace detail {
struct EventWaiter : ListNode<> {
    using WakeFn = void (*)(EventWaiter*);
    explicit EventWaiter(WakeFn f) : wake(f) {}
    WakeFn wake;
};
}  // namespace detail

/// A level-triggered flag tasks can wait for. set() wakes every waiter; they resume from the
/// loop on its next iteration (never inline from set()), in the order they started waiting.
/// Destroying an Event while a task waits on it is a bug (panics). Context: loop only.
class Event {
public:
    class WaitAwaiter;
    class TimedWaitAwaiter;

    Event() = default;
    ~Event() { KASSERT(waiters_.empty()); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// Set the flag and wake all current waiters. Later waits complete at once until reset().
    void set();
    void reset() { set_ = false; }
    bool is_set() const { return set_; }

    /// Awaitable: completes when the flag is set (at once if it already is).
    WaitAwaiter wait();
    /// Awaitable returning bool: true if the flag was set, false if `timeout_ns` passed first.
    TimedWaitAwaiter wait_for(std::uint64_t timeout_ns);

private:
    bool set_ = false;
    IntrusiveList<detail::EventWaiter> waiters_;
};

class [[nodiscard]] Event::WaitAwaiter : detail::EventWaiter {
public:
    explicit WaitAwaiter(Event& e) : EventWaiter(&on_set), event_(e), wakeup_(&resume, this) {}
    WaitAwaiter(const WaitAwaiter&) = delete;
    WaitAwaiter& operator=(const WaitAwaiter&) = delete;

    bool await_ready() const noexcept { return event_.set_; }
    void await_suspend(std::coroutine_handle<> h) {
        h_ = h;
        event_.waiters_.push_back(*this);
    }
    void await_resume() const noexcept {}

private:
    static void on_set(detail::EventWaiter* w) {
        auto* self = static_cast<WaitAwaiter*>(w);
        loop().schedule(self->wakeup_);
    }
    static void resume(void* p) { static_cast<WaitAwaiter*>(p)->h_.resume(); }

    Event& event_;
    std::coroutine_handle<> h_;
    Wakeup wakeup_;
};

class [[nodiscard]] Event::TimedWaitAwaiter : detail::EventWaiter {
public:
    TimedWaitAwaiter(Event& e, std::uint64_t deadline_ns)
        : EventWaiter(&on_set), event_(e), deadline_(deadline_ns), wakeup_(&resume, this) {}
    TimedWaitAwaiter(const TimedWaitAwaiter&) = delete;
    TimedWaitAwaiter& operator=(const TimedWaitAwaiter&) = delete;

    bool await_ready() noexcept {
        result_ = event_.set_;
        return result_;
    }
    void await_suspend(std::coroutine_handle<> h) {
        h_ = h;
        event_.waiters_.push_back(*this);
        timer_.start_at(deadline_, [this] { on_timeout(); });
    }
    bool await_resume() const noexcept { return result_; }

private:
    static void on_set(detail::EventWaiter* w) {
        auto* self = static_cast<TimedWaitAwaiter*>(w);
        self->timer_.cancel();
        self->result_ = true;
        loop().schedule(self->wakeup_);
    }
    static void resume(void* p) { static_cast<TimedWaitAwaiter*>(p)->h_.resume(); }
    void on_timeout() {
        unlink();  // leave the Event's waiter list
        result_ = false;
        h_.resume();  // already on the loop (a timer callback): resume directly
    }

    Event& event_;
    std::uint64_t deadline_;
    bool result_ = false;
    std::coroutine_handle<> h_;
    Timer timer_;
    Wakeup wakeup_;
};

inline void Event::set() {
    set_ = true;
    while (detail::EventWaiter* w = waiters_.pop_front()) w->wake(w);
}

inline Event::WaitAwaiter Event::wait() { return WaitAwaiter(*this); }

inline Event::TimedWaitAwaiter Event::wait_for(std::uint64_t timeout_ns) {
    const std::uint64_t now = loop().now();
    return TimedWaitAwaiter(*this, timeout_ns > ~0ull - now ? ~0ull : now + timeout_ns);
}

namespace detail {

template <typename T>
struct CompletionFor {
    using type = Function<void(T)>;
};
template <>
struct CompletionFor<void> {
    using type = Function<void()>;
};

/// Shared by the awaiter (in the coroutine frame) and the completion handed to the operation,
/// so that either may go away first: a late completion after the task was destroyed is harmless.
template <typename T>
struct CallbackState {
    using Slot = std::conditional_t<std::is_void_v<T>, bool, T>;

    int refs = 2;                    // the awaiter and the completion
    std::coroutine_handle<> waiter;  // cleared when the awaiting task goes away
    bool starting = true;            // inside start(): completion must not resume yet
    bool completed = false;
    std::optional<Slot> value;
    Wakeup wakeup{&resume, this};

    static void resume(void* p) { static_cast<CallbackState*>(p)->waiter.resume(); }
    void release() {
        if (--refs == 0) delete this;
    }
};

template <typename T>
class CallbackCompletion {
public:
    explicit CallbackCompletion(CallbackState<T>* s) : s_(s) {}
    CallbackCompletion(CallbackCompletion&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    CallbackCompletion(const CallbackCompletion&) = delete;
    CallbackCompletion& operator=(const CallbackCompletion&) = delete;
    CallbackCompletion& operator=(CallbackCompletion&&) = delete;
    ~CallbackCompletion() {
        if (s_ == nullptr) return;
        if (!s_->completed && s_->waiter) {
            // The task can never resume now. Say so rather than leave a silent hang.
            KLOG_ERROR("await_callback: completion dropped without being called; the task waits forever");
        }
        s_->release();
    }

    template <typename... A>
    void operator()(A&&... a) {
        KASSERT(!s_->completed);  // an operation must complete exactly once
        if constexpr (std::is_void_v<T>) {
            static_assert(sizeof...(A) == 0);
            s_->value.emplace(true);
        } else {
            s_->value.emplace(std::forward<A>(a)...);
        }
        s_->completed = true;
        if (s_->waiter && !s_->starting) loop().schedule(s_->wakeup);
    }

private:
    CallbackState<T>* s_;
};

}  // namespace detail

/// The completion callback an operation receives from await_callback<T>: Function<void(T)>, or
/// Function<void()> for T = void.
template <typename T>
using Completion = typename detail::CompletionFor<T>::type;

/// Awaitable returned by await_callback.
template <typename T, typename Start>
class [[nodiscard]] CallbackAwaiter {
public:
    explicit CallbackAwaiter(Start start) : start_(std::move(start)) {}
    CallbackAwaiter(const CallbackAwaiter&) = delete;
    CallbackAwaiter& operator=(const CallbackAwaiter&) = delete;
    ~CallbackAwaiter() {
        if (state_ == nullptr) return;
        state_->waiter = {};
        state_->wakeup.cancel();
        state_->release();
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        state_ = new detail::CallbackState<T>();
        state_->waiter = h;
        start_(Completion<T>(detail::CallbackCompletion<T>(state_)));
        state_->starting = false;
        return !state_->completed;  // completed inside start: carry on without suspending
    }
    T await_resume() {
        if constexpr (!std::is_void_v<T>) return std::move(*state_->value);
    }

private:
    Start start_;
    detail::CallbackState<T>* state_ = nullptr;
};

/// Turn a callback-style operation into an awaitable:
///   T v = co_await await_callback<T>([&](Completion<T> done) { start_op(..., std::move(done)); });
/// `start` runs when the task suspends; the operation calls `done` exactly once, from the loop
/// (later) or inside start (then the task continues without suspending). A later completion
/// resumes the task from the loop, not inline. If the task is destroyed first, the completion
/// still may be called (it is then ignored). The completion state is one small heap allocation.
template <typename T, typename Start>
CallbackAwaiter<T, Start> await_callback(Start start) {
    return CallbackAwaiter<T, Start>(std::move(start));
}

}  // namespace keel
