// Private detail of the net API headers: how a pending operation waits for lwIP.
#pragma once

#include <coroutine>
#include <cstdint>
#include <utility>

#include "keel/loop.h"
#include "keel/result.h"
#include "keel/timer.h"

namespace keel::net::detail {

/// One pending operation (read, write, accept, ...), embedded in its awaiter and so in the
/// waiting coroutine's frame. The connection or socket (`owner`) points back at it while it
/// waits; whichever goes first unhooks the other: a socket that dies nulls `owner` and wakes
/// the waiter, an awaiter that dies (its task destroyed) unregisters itself.
/// lwIP callbacks only schedule `wakeup`; the awaiter's step runs from the loop.
struct Waiter {
    Waiter(Wakeup::Fn fn, void* ctx, void* owner_) : owner(owner_), wakeup(fn, ctx) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    void* owner;                     // the TcpConn / TcpListenState / UdpState; nulled when it dies
    std::coroutine_handle<> handle;  // the suspended coroutine
    Wakeup wakeup;                   // scheduled when something changed: runs the awaiter's step
    Timer timer;                     // the deadline, if any
};

/// The one shape of every pending operation: the awaiter that read(), write(), accept(),
/// recv_from(), connect() and close() return. `Op` says what the operation waits for:
///   using Owner = ...;                      the TcpConn / TcpListenState / UdpState
///   using Value = ...;                      what it produces: Result<Value>
///   static Waiter*& slot(Owner&);           the owner's pointer to its waiter of this kind:
///                                           one at a time, a second gets Error::busy
///   bool step(Owner&, Result<Value>& out);  make progress; true once `out` is final
///   Error precheck() const;                 optional: an argument error, found first
///   static constexpr bool always_timed;     optional: a deadline of 0 is a deadline too
/// Without a live owner it completes with Error::closed (at once) or Error::cancelled (the
/// owner died while it waited); Error::timed_out at the deadline (0: none).
template <typename Op>
class [[nodiscard]] Pending {
public:
    using Owner = typename Op::Owner;
    using Value = typename Op::Value;

    Pending(Owner* owner, std::uint64_t deadline_ns, Op op)
        : op_(std::move(op)), deadline_(deadline_ns), w_(&on_wake, this, owner) {}
    ~Pending() { unhook(); }
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;

    bool await_ready() {
        Owner* o = owner();
        if (o == nullptr) {
            result_ = Error::closed;
            return true;
        }
        if constexpr (requires(const Op& op) { op.precheck(); }) {
            if (const Error e = op_.precheck(); e != Error::ok) {
                result_ = e;
                return true;
            }
        }
        if (Op::slot(*o) != nullptr) {
            w_.owner = nullptr;  // not ours to unregister
            result_ = Error::busy;
            return true;
        }
        return step();
    }
    void await_suspend(std::coroutine_handle<> h) {
        w_.handle = h;
        Op::slot(*owner()) = &w_;
        if (deadline_ != 0 || always_timed()) {
            w_.timer.start_at(deadline_, [this] {
                unhook();
                w_.wakeup.cancel();
                result_ = Error::timed_out;
                w_.handle.resume();
            });
        }
    }
    Result<Value> await_resume() { return std::move(result_); }

private:
    static constexpr bool always_timed() {
        if constexpr (requires { Op::always_timed; }) {
            return Op::always_timed;
        } else {
            return false;
        }
    }
    Owner* owner() const { return static_cast<Owner*>(w_.owner); }
    bool step() {
        Owner* o = owner();
        if (o == nullptr) {
            result_ = Error::cancelled;
            return true;
        }
        return op_.step(*o, result_);
    }
    void unhook() {
        if (Owner* o = owner(); o != nullptr && Op::slot(*o) == &w_) Op::slot(*o) = nullptr;
    }
    static void on_wake(void* self) {
        auto* a = static_cast<Pending*>(self);
        if (!a->step()) return;
        a->unhook();
        a->w_.timer.cancel();
        a->w_.handle.resume();  // may destroy *a
    }

    Op op_;
    std::uint64_t deadline_;
    Result<Value> result_{Error::again};
    Waiter w_;
};

}  // namespace keel::net::detail
