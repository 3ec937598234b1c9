/* Hooks lwIP calls into keel (LWIP_HOOK_FILENAME in lwipopts.h), implemented in
 * net/src/port.cc. Included by lwIP's own sources after their lwIP headers. */
#ifndef KEEL_LWIP_HOOKS_H
#define KEEL_LWIP_HOOKS_H

#include "lwip/err.h"
#include "lwip/ip_addr.h"

#ifdef __cplusplus
extern "C" {
#endif

struct netif;
struct tcp_pcb;
struct tcp_hdr;
struct pbuf;

/* RFC 6528 initial sequence number: a keyed hash of the connection's four-tuple plus a clock
 * ticking every 4 microseconds. */
u32_t keel_lwip_tcp_isn(const ip_addr_t* local_ip, u16_t local_port, const ip_addr_t* remote_ip,
                        u16_t remote_port);

/* Source-based routing (strong host model): the interface owning `src`, or NULL to let lwIP
 * route by destination. IPv4 without a source also steers traffic for one of our own addresses
 * to another interface on that subnet, if there is one (see port.cc). */
struct netif* keel_lwip_route4(const ip4_addr_t* src, const ip4_addr_t* dest);
struct netif* keel_lwip_route6(const ip6_addr_t* src, const ip6_addr_t* dest);

/* Every TCP segment lwIP matched to `pcb` (a listening one, or one in TIME_WAIT, too), before
 * lwIP acts on it: ERR_OK lets it in; anything else drops it. Refuses new connections near the
 * PCB limit; turns a SYN for a connection in TIME_WAIT into a new connection (net/src/tcp.cc).
 * `hdr` is in host order already; its options are `opt1len` bytes after it and the rest of
 * `optlen` at `opt2`; `p` holds the segment's data. */
err_t keel_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, u16_t optlen, u16_t opt1len, u8_t* opt2,
                             struct pbuf* p);

#ifdef __cplusplus
}
#endif

#endif /* KEEL_LWIP_HOOKS_H */
