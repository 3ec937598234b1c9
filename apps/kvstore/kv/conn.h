// One kvstore connection over TCP: the glue between a net::TcpStream and a Session (read, feed,
// commit, write, the deadlines). Kept out of kvstore.cc so host tests run it over lwIP with
// virtual time.
//
//   spawn(net::serve(listener, max_conns, conns, "kvstore",
//                    [&](net::TcpStream s) { return kv::serve_connection(std::move(s), server, limits); }));
//
// Feeding everything that has arrived before committing is what makes pipelined commands (and
// all connections waiting at the same time) share one write + flush.
// Context: loop only.
#pragma once

#include <cstdint>

#include "keel/net/tcp.h"
#include "keel/task.h"
#include "kv/server.h"

namespace keel::kv {

/// How long a connection may take, each counted from a fixed point (never restarted by a byte),
/// so a trickling or stalled client holds its slot for a bounded time. Big commands and replies
/// get 1 s more per `min_rate` bytes, so a slow link is not mistaken for a stalled client.
struct ConnLimits {
    std::uint64_t command_ns = 10'000'000'000ull;  ///< a command's first byte fed to its last; also accept to the first byte
    std::uint64_t idle_ns = 0;                     ///< between commands (Redis's `timeout`; 0: none)
    std::uint64_t write_ns = 30'000'000'000ull;    ///< replies ready to their last byte queued to TCP
    std::uint64_t min_rate = 16 * 1024;            ///< bytes per second a big command or reply is granted
};

/// Serve one connection until it closes. `server` and `limits` must outlive it. Past a deadline
/// the connection is reset and counted (Stats::timed_out_connections); a connection the heap
/// has no buffers for is refused (Stats::rejected_connections).
Task<void> serve_connection(net::TcpStream s, Server& server, const ConnLimits& limits);

}  // namespace keel::kv
