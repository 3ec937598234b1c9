// The network stack's metric families (metrics.h). Names keep what httpd's /metrics always
// called them (keel_netfront_*, keel_tcp_open_connections, keel_tcp_refused_total, ...).
#include "keel/net/metrics.h"

#include <cstdint>

namespace keel::net {

// A new counter in Stats must be exported here too (and named in README.md "Metrics").
static_assert(sizeof(Stats) == 38 * sizeof(std::uint64_t), "net::Stats changed: export the new counter here");
static_assert(sizeof(LinkStats) == 13 * sizeof(std::uint64_t),
              "net::LinkStats changed: export the new counter here");

void write_metrics(MetricsWriter& w, const Stats& s) {
    // Links (all interfaces), as the stack sees them.
    w.counter("keel_net_rx_frames_total", "Frames handed to the stack.", s.rx_frames);
    w.counter("keel_net_rx_bytes_total", "Bytes of the frames handed to the stack.", s.rx_bytes);
    w.counter("keel_net_rx_copied_total", "Frames copied because the link was short of rx buffers.",
              s.rx_copied);
    w.counter("keel_net_rx_dropped_total", "Frames dropped on receive (no rx slot, no pbuf, unfit for lwIP: cut short, Packet Too Big out of range).", s.rx_dropped);
    w.counter("keel_net_tx_frames_total", "Frames the link accepted.", s.tx_frames);
    w.counter("keel_net_tx_bytes_total", "Bytes of the frames the link accepted.", s.tx_bytes);
    w.counter("keel_net_tx_gso_total", "Frames sent as TCP super-segments (link GSO).", s.tx_gso);
    w.counter("keel_net_tx_gso_segments_total", "TCP segments merged into the super-segments sent.",
              s.tx_gso_segments);
    w.counter("keel_net_tx_deferred_total", "Frames queued while the link was full.", s.tx_deferred);
    w.counter("keel_net_tx_dropped_total", "Frames refused on transmit (queue full, link error).",
              s.tx_dropped);
    w.gauge("keel_net_rx_heap_bytes", "Unread received data held in heap copies.", s.rx_heap_bytes);
    w.gauge("keel_net_tx_heap_bytes", "Heap held by TCP send queues (data not yet acknowledged), 2112 bytes per pbuf.",
            s.tx_heap_bytes);
    w.counter("keel_net_heap_allocations_total", "lwIP buffers allocated on the heap.", s.heap_allocations);
    w.counter("keel_net_heap_failures_total", "lwIP buffer allocations the heap refused.", s.heap_failures);
    w.gauge("keel_net_heap_live_blocks", "lwIP buffers on the heap not yet freed.", s.heap_live);
    w.gauge("keel_net_pool_live_objects", "lwIP's fixed-size objects in use (PCBs, segments, pbufs).",
            s.pool_live);
    w.counter("keel_net_pool_exhausted_total", "lwIP object requests refused: a kind at its cap, or no heap.",
              s.pool_exhausted);

    // TCP.
    w.gauge("keel_tcp_open_connections", "TCP connections open.", s.tcp_open);
    w.counter("keel_tcp_accepted_total", "TCP connections accepted.", s.tcp_accepted);
    w.counter("keel_tcp_connected_total", "Outgoing TCP connections established.", s.tcp_connected);
    w.counter("keel_tcp_connect_failed_total", "Outgoing TCP connections refused, unreachable or timed out.",
              s.tcp_connect_failed);
    w.counter("keel_tcp_closed_total", "TCP connections closed gracefully by us.", s.tcp_closed);
    w.counter("keel_tcp_aborted_total", "TCP connections reset by us (error, timeout, handle dropped).",
              s.tcp_aborted);
    w.counter("keel_tcp_reset_total", "TCP connections reset or aborted by the peer or the stack.",
              s.tcp_reset);
    w.counter("keel_tcp_backlog_full_total", "TCP connections refused because the backlog was full.",
              s.tcp_backlog_full);
    w.counter("keel_tcp_refused_total", "SYNs answered with RST: connections in use neared the PCBs.",
              s.tcp_refused);
    w.counter("keel_tcp_orphans_reclaimed_total",
              "Connections closed by us, held by the peer, reset for a newcomer.", s.tcp_orphans_reclaimed);
    w.counter("keel_tcp_time_wait_reopened_total",
              "SYNs for a connection in TIME_WAIT taken as a new connection.", s.tcp_time_wait_reopened);
    w.counter("keel_tcp_rx_bytes_total", "TCP bytes read by the application.", s.tcp_rx_bytes);
    w.counter("keel_tcp_rx_copied_total", "Segments copied out of the link's buffers.", s.tcp_rx_copied);
    w.counter("keel_tcp_rx_refused_total", "Segments left to lwIP: no heap share for their copy.",
              s.tcp_rx_refused);
    w.counter("keel_tcp_tx_bytes_total", "TCP bytes queued by the application.", s.tcp_tx_bytes);
    w.counter("keel_tcp_tx_held_back_total", "TCP write attempts held back: no share of heap or segments for the send queue.",
              s.tcp_tx_held_back);

    // UDP and DNS.
    w.counter("keel_udp_rx_datagrams_total", "UDP datagrams received.", s.udp_rx);
    w.counter("keel_udp_rx_dropped_total",
              "UDP datagrams dropped: a socket's queue was full or had no memory.", s.udp_rx_dropped);
    w.counter("keel_udp_tx_datagrams_total", "UDP datagrams sent.", s.udp_tx);
    w.counter("keel_dns_lookups_total", "DNS lookups.", s.dns_lookups);
    w.counter("keel_dns_failures_total", "DNS lookups that failed.", s.dns_failures);
}

void write_link_metrics(MetricsWriter& w, const LinkStats& ls) {
    w.counter("keel_netfront_rx_packets_total", "Frames received.", ls.rx_packets);
    w.counter("keel_netfront_rx_bytes_total", "Bytes received.", ls.rx_bytes);
    w.counter("keel_netfront_tx_packets_total", "Frames sent.", ls.tx_packets);
    w.counter("keel_netfront_tx_bytes_total", "Bytes sent.", ls.tx_bytes);
    w.counter("keel_netfront_rx_gso_total", "Frames received as TCP super-segments (GSO).", ls.rx_gso);
    w.counter("keel_netfront_tx_gso_total", "Frames sent as TCP super-segments (GSO).", ls.tx_gso);
    w.counter("keel_netfront_drops_total", "Frames dropped (both directions).", ls.drops);
    w.counter("keel_netfront_errors_total", "Backend errors and protocol violations.", ls.errors);
    w.counter("keel_netfront_rx_missed_events_total", "Rx responses the watchdog found without an event.",
              ls.rx_missed_events);
    w.counter("keel_netfront_rx_ring_empty_total", "Watchdog ticks that found no rx buffer posted.",
              ls.rx_ring_empty);
    w.counter("keel_netfront_resets_total", "Device resets for a misbehaving backend.", ls.resets);
    w.gauge("keel_netfront_given_up", "Devices given up on after a reset storm or failed handshakes.",
            ls.given_up);
    w.gauge("keel_netfront_held_pages", "Pages the backend still maps, out of use until it lets go.",
            ls.held_pages);
}

}  // namespace keel::net
