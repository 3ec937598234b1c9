// Counters of the network stack, for /metrics and status reports. Context: loop only.
#pragma once

#include <cstdint>

namespace keel::net {

struct Stats {
    // Links (all interfaces).
    std::uint64_t rx_frames = 0;  ///< frames handed to lwIP
    std::uint64_t rx_bytes = 0;
    std::uint64_t rx_copied = 0;   ///< frames copied because the link was short of rx buffers
    std::uint64_t rx_dropped = 0;  ///< frames dropped (no rx slot, no pbuf, unfit for lwIP)
    std::uint64_t tx_frames = 0;   ///< frames the link accepted
    std::uint64_t tx_bytes = 0;
    std::uint64_t tx_gso = 0;          ///< of tx_frames: TCP super-segments (link GSO)
    std::uint64_t tx_gso_segments = 0;  ///< TCP segments merged into them
    std::uint64_t tx_deferred = 0;  ///< frames queued while the link was full
    std::uint64_t tx_dropped = 0;   ///< frames refused (queue full, link error)

    // TCP.
    std::uint64_t tcp_open = 0;            ///< connections with a live handle (gauge)
    std::uint64_t tcp_accepted = 0;        ///< handed out by TcpListener::accept
    std::uint64_t tcp_connected = 0;       ///< outgoing connections established
    std::uint64_t tcp_connect_failed = 0;  ///< refused, unreachable or timed out
    std::uint64_t tcp_closed = 0;          ///< closed gracefully by us
    std::uint64_t tcp_aborted = 0;         ///< reset by us (error, timeout, handle dropped)
    std::uint64_t tcp_reset = 0;           ///< reset or aborted by the peer or lwIP
    std::uint64_t tcp_backlog_full = 0;    ///< connections refused because the backlog was full
    std::uint64_t tcp_refused = 0;         ///< SYNs answered with RST: the connections in use neared lwIP's PCBs
    std::uint64_t tcp_orphans_reclaimed = 0;  ///< closed by us, held open by the peer (orphans): reset for a newcomer
    std::uint64_t tcp_time_wait_reopened = 0;  ///< SYNs for a connection in TIME_WAIT taken as a new connection
    std::uint64_t tcp_rx_bytes = 0;        ///< bytes read by the application
    std::uint64_t tcp_rx_copied = 0;       ///< segments copied out of the link's buffers (a connection over its share)
    std::uint64_t tcp_rx_refused = 0;      ///< segments left to lwIP: no heap share for their copy
    std::uint64_t tcp_tx_bytes = 0;        ///< bytes queued by the application
    std::uint64_t tcp_tx_held_back = 0;    ///< write attempts (a waiting write counts each time it tries) that queued less than the send buffer had room for: no share of the heap or the segment pool

    /// Unread received data (TCP and UDP queues) held in heap copies (gauge; bounded, see
    /// net/src/budget.h).
    std::uint64_t rx_heap_bytes = 0;
    /// Heap held by every TCP connection's send queue (data not yet acknowledged), counted as
    /// 2,112 bytes per pbuf (gauge; bounded like rx_heap_bytes, see net/src/tcp.cc).
    std::uint64_t tx_heap_bytes = 0;

    // UDP.
    std::uint64_t udp_rx = 0;
    std::uint64_t udp_rx_dropped = 0;  ///< a socket's queue was full, or no share of memory for it
    std::uint64_t udp_tx = 0;

    // DNS.
    std::uint64_t dns_lookups = 0;
    std::uint64_t dns_failures = 0;

    // lwIP's variable-size buffers (PBUF_RAM) on the keel heap.
    std::uint64_t heap_allocations = 0;  ///< calls, cumulative
    std::uint64_t heap_failures = 0;
    std::uint64_t heap_live = 0;  ///< blocks not yet freed (gauge)

    // lwIP's fixed-size objects (PCBs, segments, pbuf headers, timeouts), capped per kind
    // (net::pool_limits()).
    std::uint64_t pool_live = 0;       ///< objects in use, lwIP's timeouts aside (gauge)
    std::uint64_t pool_exhausted = 0;  ///< requests refused: a kind at its cap, or no heap
};

/// The stack's counters.
const Stats& stats();

/// Counters of the link devices under the stack (netfront's, in the guest), summed over every
/// device, for /metrics. A frame counts in exactly one of packets or drops.
struct LinkStats {
    std::uint64_t rx_packets = 0;  ///< frames delivered to the stack
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_packets = 0;  ///< frames the backend acknowledged
    std::uint64_t tx_bytes = 0;
    std::uint64_t rx_gso = 0;            ///< of rx_packets: TCP super-segments (GSO)
    std::uint64_t tx_gso = 0;            ///< of tx_packets: TCP super-segments (GSO)
    std::uint64_t drops = 0;             ///< frames lost, both directions
    std::uint64_t errors = 0;            ///< backend errors and protocol violations, both directions
    std::uint64_t rx_missed_events = 0;  ///< rx responses a watchdog found without an event
    std::uint64_t rx_ring_empty = 0;     ///< watchdog ticks that found no rx buffer posted
    std::uint64_t resets = 0;            ///< device resets for a misbehaving backend
    std::uint64_t given_up = 0;          ///< devices given up on (reset storm, failed handshakes)
    std::uint64_t held_pages = 0;        ///< pages the backend still maps, out of use
};

/// The sum over every link device. Guest only (net/guest/start.cc); all zero in an image
/// without netfront.
LinkStats link_stats();

}  // namespace keel::net
