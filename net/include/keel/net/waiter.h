// Private detail of the net API headers: how a pending operation waits for lwIP.
#pragma once

#include <coroutine>

#include "keel/loop.h"
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

}  // namespace keel::net::detail
