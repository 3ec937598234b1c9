// The skeleton of a TCP service: bring the network up and listen, then the accept loop (take
// connections, hand each to its own task, keep at most a fixed number open, never spin on a
// failing accept).
//
//   auto listener = co_await net::start_listening(cfg, 80, "httpd");   // logs what failed
//   if (!listener) co_return 1;
//   listener_ = std::move(*listener);
//   spawn(net::serve(listener_, 256, conns_, "httpd",
//                    [this](net::TcpStream s) { return serve_conn(std::move(s)); }));
//
// Context: loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "keel/heap.h"
#include "keel/log.h"
#include "keel/net/config.h"
#include "keel/net/tcp.h"
#include "keel/task.h"
#include "keel/timer.h"

namespace keel::net {

/// Guest only (net/guest/listen.cc): net::start(cfg), wait up to 60 s for an IPv4 address,
/// then listen on `port` (backlog 128). What failed is logged, as "`who`: no network: ...",
/// "`who`: no IPv4 address after 60 s" (Error::timed_out) or "`who`: cannot listen on port ...".
Task<Result<TcpListener>> start_listening(Config cfg, std::uint16_t port, const char* who);

/// The connections of one serve() loop, for status reports and /metrics.
struct ServeCounters {
    unsigned open = 0;          ///< connections whose handler is running (gauge)
    std::uint64_t refused = 0;  ///< connections reset at once because max_conns were open
    std::uint64_t refused_memory = 0;  ///< connections reset at once: heap under serve_heap_reserve
};

/// Heap a serve() loop keeps for the connections it serves (their frames, buffers, the tasks
/// they start): while less is left (keel::heap_headroom()), a new connection is reset before
/// anything is allocated for it. A client can then make the guest refuse, not run out inside
/// an operator new (which panics).
inline constexpr std::size_t serve_heap_reserve = 256 * 1024;

namespace detail {
/// Runs one connection's handler, counting it open meanwhile.
inline Task<void> serve_counted(Task<void> handler, ServeCounters& counters) {
    ++counters.open;
    co_await std::move(handler);
    --counters.open;
}
}  // namespace detail

/// Accept connections on `listener` and spawn `handler(TcpStream)` (returning a Task<void>) for
/// each. With `max_conns` handlers running, a new connection is reset at once: refused rather
/// than let it starve the others. (Below that, the stack itself refuses new connections once
/// its PCBs run short, counted in stats().tcp_refused: a connection being served is never
/// dropped for a newcomer.) While the heap's headroom is under serve_heap_reserve, a new
/// connection is reset at once too, before its handler exists (counted in refused_memory,
/// logged at most every 10 s as "`who`: refusing new connections: ..."). A failed accept is
/// logged (as "`who`: accept failed") and retried after 10 ms. Returns when the listener is
/// closed (Error::closed or Error::cancelled); `listener` and `counters` must outlive the loop
/// and its handlers.
template <typename Handler>
Task<void> serve(TcpListener& listener, unsigned max_conns, ServeCounters& counters, const char* who,
                 Handler handler) {
    std::uint64_t next_report = 0;  // of refusals for want of memory
    for (;;) {
        auto conn = co_await listener.accept();
        if (!conn.ok()) {
            if (conn.error() == Error::closed || conn.error() == Error::cancelled) co_return;
            KLOG_WARN("%s: accept failed: %s", who, to_string(conn.error()));
            co_await sleep_for(ms(10));
            continue;
        }
        if (counters.open >= max_conns) {
            ++counters.refused;
            conn.value().abort();
            continue;
        }
        if (const std::size_t left = heap_headroom(); left < serve_heap_reserve) {
            ++counters.refused_memory;
            conn.value().abort();
            if (loop().now() >= next_report) {  // one line per 10 s at most: the flood is the client's
                KLOG_WARN("%s: refusing new connections: %zu KiB of heap left, %zu KiB kept for those served "
                          "(%llu refused so far)",
                          who, left / 1024, serve_heap_reserve / 1024,
                          static_cast<unsigned long long>(counters.refused_memory));
                next_report = loop().now() + s(10);
            }
            continue;
        }
        spawn(detail::serve_counted(handler(std::move(conn.value())), counters));
    }
}

}  // namespace keel::net
