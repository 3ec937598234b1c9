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

#include <cstdint>
#include <utility>

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
};

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
/// dropped for a newcomer.) A failed accept is logged (as "`who`: accept failed") and
/// retried after 10 ms. Returns when the listener is closed (Error::closed or
/// Error::cancelled); `listener` and `counters` must outlive the loop and its handlers.
template <typename Handler>
Task<void> serve(TcpListener& listener, unsigned max_conns, ServeCounters& counters, const char* who,
                 Handler handler) {
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
        spawn(detail::serve_counted(handler(std::move(conn.value())), counters));
    }
}

}  // namespace keel::net
