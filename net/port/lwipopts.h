/* lwIP 2.1.3 options for keel (see lwip/opt.h for every option and its default).
 *
 * keel runs lwIP with NO_SYS=1 on its raw API, from the event loop of one vCPU: no threads, no
 * locks, no sockets or netconn. Only files in net/ include lwIP headers. The same options build
 * the guest library and the host library the unit tests use.
 *
 * Memory: fixed-size objects (PCBs, segments, pbuf headers, timeouts) come from the keel heap,
 * each kind capped by a count (net/src/pools.cc): the MEMP_NUM_* below are a 32 MiB guest's,
 * and the TCP PCBs, segments and pbufs scale with the guest's memory; variable-size
 * buffers (PBUF_RAM: TCP send data, UDP datagrams) come from the keel heap through
 * keel_lwip_malloc (MEM_LIBC_MALLOC), which also counts them for net::stats(). Received frames
 * are not copied: they stay in netfront's page, wrapped in a custom pbuf (net/src/interface.cc).
 */
#ifndef KEEL_LWIPOPTS_H
#define KEEL_LWIPOPTS_H

/* ---- System -------------------------------------------------------------------------------- */
#define NO_SYS 1                   /* raw API from one event loop */
#define LWIP_TIMERS 1              /* sys_check_timeouts(), driven by a keel::Timer */
#define SYS_LIGHTWEIGHT_PROT 0     /* nothing runs concurrently with lwIP (upcalls never call it) */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_SINGLE_NETIF 0        /* the unit tests wire two netifs back to back */

/* ---- Memory -------------------------------------------------------------------------------- */
#define MEM_LIBC_MALLOC 1
#define mem_clib_malloc keel_lwip_malloc
#define mem_clib_free keel_lwip_free
#define mem_clib_calloc keel_lwip_calloc
#define MEM_ALIGNMENT 8
#define MEMP_MEM_MALLOC 1          /* no static pools: objects from the heap, counted per kind */
#if !defined(KEEL_LWIP_MEMP_C)     /* every caller but lwIP's memp.c: capped per kind, at run time */
#define memp_malloc keel_memp_malloc
#define memp_free keel_memp_free
#endif
#define MEMP_NUM_TCP_PCB 256       /* concurrent connections (ab -c 50, wrk -c 100, TIME_WAIT) */
#define MEMP_NUM_TCP_PCB_LISTEN 8
#define MEMP_NUM_UDP_PCB 8         /* DHCP, DNS and the application's sockets */
#define MEMP_NUM_TCP_SEG 1024      /* queued segments of all connections; >= TCP_SND_QUEUELEN */
#define MEMP_NUM_PBUF 64           /* PBUF_REF/ROM headers (custom rx pbufs live in net/) */
#define MEMP_NUM_REASSDATA 8
#define MEMP_NUM_FRAG_PBUF 16
#define MEMP_NUM_ARP_QUEUE 32
#define MEMP_NUM_ND6_QUEUE 32
#define PBUF_POOL_SIZE 64          /* rx copies when the link is short of buffers (see README) */
#define PBUF_LINK_HLEN 14          /* Ethernet, no VLAN tag */
#define ETH_PAD_SIZE 0             /* frames sit at netfront's offset; no room to pad in front */

/* ---- Hooks into keel (net/src/port.cc) ------------------------------------------------------ */
#define LWIP_HOOK_FILENAME "keel_lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    keel_lwip_tcp_isn(local_ip, local_port, remote_ip, remote_port)
/* Strong host model: a packet with one of our addresses as its source leaves through the
 * interface that owns that address. */
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest) keel_lwip_route4(src, dest)
#define LWIP_HOOK_IP6_ROUTE(src, dest) keel_lwip_route6(src, dest)
/* A SYN to a listener is refused (RST) before lwIP would run out of PCBs: lwIP's tcp_alloc()
 * makes room by killing connections in LAST_ACK or CLOSING (answers still on their way) and of
 * lower priority; keel never drops a connection it serves to make room for a newcomer. A SYN
 * for a connection in TIME_WAIT opens a new one (net/src/tcp.cc). */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
    keel_lwip_tcp_inpacket(pcb, hdr, optlen, opt1len, opt2, p)

/* ---- Link layer ---------------------------------------------------------------------------- */
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define ARP_TABLE_SIZE 32
#define ARP_QUEUEING 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_EXT_STATUS_CALLBACK 1  /* one log line per address change */
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_HOSTNAME 1             /* DHCP option 12 */
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_HAVE_LOOPIF 0

/* ---- IPv4 ---------------------------------------------------------------------------------- */
#define LWIP_IPV4 1
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_DEFAULT_TTL 64
#define LWIP_ICMP 1
#define LWIP_BROADCAST_PING 0
#define LWIP_MULTICAST_PING 0
#define LWIP_RAW 0
#define LWIP_IGMP 0
#define LWIP_DHCP 1
#define DHCP_DOES_ARP_CHECK 1
#define LWIP_DHCP_GET_NTP_SRV 0
#define LWIP_AUTOIP 0

/* ---- IPv6: link-local + SLAAC, MLD so that snooping bridges forward solicited-node multicast */
#define LWIP_IPV6 1
#define LWIP_IPV6_AUTOCONFIG 1
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 1
#define LWIP_IPV6_MLD 1
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_REASS 1
#define LWIP_IPV6_FRAG 1
#define IPV6_FRAG_COPYHEADER 1            /* required with 64-bit pointers */
#define LWIP_IPV6_NUM_ADDRESSES 3         /* link-local + up to two SLAAC prefixes */
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 1
#define LWIP_ND6_NUM_NEIGHBORS 16
#define LWIP_ND6_NUM_DESTINATIONS 16
#define LWIP_ND6_RDNSS_MAX_DNS_SERVERS 0  /* DNS comes from dns= or DHCP */

/* ---- UDP, DNS ------------------------------------------------------------------------------ */
#define LWIP_UDP 1
#define LWIP_DNS 1
#define DNS_TABLE_SIZE 8
#define DNS_MAX_NAME_LENGTH 256
#define DNS_MAX_SERVERS 2
#define DNS_MAX_RETRIES 4
#define LWIP_DNS_SECURE 7                 /* random XID, random source port, no duplicate queries */
#define LWIP_DNS_SUPPORT_MDNS_QUERIES 0

/* ---- TCP ----------------------------------------------------------------------------------- */
#define LWIP_TCP 1
#define TCP_MSS 1460
#define TCP_WND (44 * TCP_MSS)            /* 64240: the largest multiple of the MSS below 64 KiB */
/* Twice the window: a 64 KiB reply (kvstore's GET, with its header) is queued whole, and goes
 * out as the peer's window opens, without waiting for the application (docs/net.md). */
#define TCP_SND_BUF (2 * TCP_WND)
#define TCP_SND_QUEUELEN ((2 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define TCP_SNDLOWAT (TCP_WND / 2)        /* only lwIP's socket API reads it; lwIP wants it 4 MSS below 64 KiB */
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 36            /* per connection: out-of-order data pins rx pages (a GSO frame is up to 17) */
#define LWIP_TCP_SACK_OUT 1
#define TCP_LISTEN_BACKLOG 1              /* accepted-but-unclaimed connections count (net/tcp) */
#define TCP_DEFAULT_LISTEN_BACKLOG 128
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_CALCULATE_EFF_SEND_MSS 1
#define LWIP_CALLBACK_API 1
/* Window scaling, for the peer's window only: a peer may offer more than 64 KiB (Linux offers
 * hundreds), so a 64 KiB reply leaves in one burst instead of waiting for a window update in
 * the middle. Our own window stays TCP_WND, unscaled (shift 0): what a peer can make us hold is
 * unchanged. */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 0
#define SO_REUSE 1                        /* listeners rebind over their own TIME_WAIT connections */

/* ---- Checksums: the device may validate received checksums (netfront's data_validated /
 * csum_blank); lwIP then skips its own check of that frame (see Interface::input). Outgoing
 * checksums are always computed in software. ---------------------------------------------- */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_GEN_ICMP6 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define CHECKSUM_CHECK_ICMP6 1
#define LWIP_CHECKSUM_ON_COPY 1

/* ---- Statistics and debugging: keel keeps its own counters (net::stats()) ------------------ */
#define LWIP_STATS 0
#define LWIP_DEBUG 0
#define LWIP_DBG_TYPES_ON 0

#endif /* KEEL_LWIPOPTS_H */
