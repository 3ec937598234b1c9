// One HTTP connection over TCP: the glue between a net::TcpStream and a Session (read, feed,
// write, the deadlines, the graceful close). Kept out of httpd.cc so host tests run it over
// lwIP with virtual time.
//
//   spawn(net::serve(listener, max_conns, conns, "httpd",
//                    [&](net::TcpStream s) { return http::serve_connection(std::move(s), router, opts, limits); }));
//
// Context: loop only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "http.h"
#include "keel/net/tcp.h"
#include "keel/task.h"

namespace keel::http {

/// How long a connection may take, each counted from a fixed point (never restarted by a byte).
struct ConnLimits {
    std::uint64_t request_ns = 10'000'000'000ull;  ///< first byte of a request to its last (head + body)
    std::uint64_t idle_ns = 15'000'000'000ull;     ///< keep-alive: end of a response to the next request's first byte
    std::uint64_t write_ns = 30'000'000'000ull;    ///< a whole response queued to TCP
};

/// Largest dynamic body (a metrics page) a connection serves: beyond the session's 4 KiB scratch
/// it gets one buffer of this size, on the first request that needs it; larger is a 500.
inline constexpr std::size_t max_dynamic_body = 64 * 1024;

/// Serve one connection until it closes. `router`, `options` (and its stats) and `limits` must
/// outlive it. A request past its deadline gets a 408 and the connection closes; an idle
/// connection past its deadline is closed; a response not taken in time is reset. Each is
/// counted in options.stats.
Task<void> serve_connection(net::TcpStream s, Router& router, const SessionOptions& options, const ConnLimits& limits);

}  // namespace keel::http
