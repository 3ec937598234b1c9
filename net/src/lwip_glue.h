// Private to net/: lwIP headers, conversions between keel and lwIP types, and the one rule for
// entering lwIP from keel code. Not installed; nothing outside net/src and net/guest includes it.
#pragma once

extern "C" {
#include "lwip/dns.h"
#include "lwip/err.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
}

#include <optional>

#include "keel/net/addr.h"
#include "keel/net/interface.h"
#include "keel/net/stats.h"
#include "keel/result.h"

namespace keel::net::detail {

/// lwIP error -> keel error.
Error to_error(err_t e);

ip_addr_t to_lwip(const IpAddr& a);
IpAddr from_lwip(const ip_addr_t& a);

/// Where a listening or bound pcb takes packets: only `local`, or every address of both
/// families. `type` is for tcp_new_ip_type / udp_new_ip_type. `local` must be v4 or v6.
struct BindAddr {
    u8_t type;
    ip_addr_t addr;
};
BindAddr bind_addr(const std::optional<IpAddr>& local);

/// The counters behind net::stats().
Stats& counters();

/// lwip_init() on first use (and the keel hooks it needs). Context: loop.
void ensure_init();

/// lwIP's pools (pools.cc): the TCP PCBs the stack may hold now, of which new connections
/// from peers leave pcbs_for_connecting to the service's own (tcp.cc); and the build-time
/// counts of the kinds that do not scale, taken from the heap once, before lwip_init().
inline constexpr std::size_t pcbs_for_connecting = 16;
std::size_t tcp_pcb_limit();
/// TCP segments lwIP may still take before its pool is at its cap.
std::size_t tcp_segments_free();
void reserve_fixed_pools();
/// Whether a TCP PCB is at hand for a new connection (one kept for reuse, or one taken from the
/// heap now while it keeps its floor): without one lwIP would kill a connection to make room.
bool stock_tcp_pcb();

/// Close the three gaps of lwIP 2.1.3's persist timer a peer can reach (tcp.cc): stop timers
/// that run with nothing unsent, and keep the window they split at within 16 bits and within
/// the MSS of a longer segment; before every sys_check_timeouts(). Context: loop.
void tame_persist_timers();
/// What every TCP connection's send queue holds of the heap, at most (tcp.cc;
/// Stats::tx_heap_bytes).
std::size_t send_queues_heap();
/// The ISN for a new connection, given RFC 6528's `isn`: past the sequence numbers of the
/// TIME_WAIT connection it replaces, if it does (tcp.cc).
u32_t reopened_isn(u16_t local_port, u16_t remote_port, u32_t isn);

/// Re-arm the keel Timer that drives sys_check_timeouts() for lwIP's earliest timeout. Every
/// entry into lwIP from keel code may have added a timeout (TCP's timer starts with the first
/// active connection), so it ends with this; LwipCall does it on scope exit.
void rearm_timers();

/// Scope guard around calls into lwIP from keel code (not needed inside lwIP callbacks: the
/// entry that led to them re-arms): on scope exit the frames lwIP queued go to the links
/// (flush_output) and the timer is re-armed.
class LwipCall {
public:
    LwipCall() = default;
    ~LwipCall() {
        flush_output();
        rearm_timers();
    }
    LwipCall(const LwipCall&) = delete;
    LwipCall& operator=(const LwipCall&) = delete;
};

}  // namespace keel::net::detail
