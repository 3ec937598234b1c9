// keel::net: lwIP 2.1 (NO_SYS, raw API) fed from the event loop, behind a coroutine API.
//
//   const char* why = nullptr;
//   auto cfg = net::parse_config(args, &why);            // ip=ADDR/PREFIX gw= dns=, else DHCP
//   if (!cfg) { KLOG_ERROR("network: %s", why); co_return 1; }
//   auto iface = co_await net::start(*cfg);              // the first netfront device
//   if (!iface) { ...; co_return 1; }
//   co_await (*iface)->ready().wait_for(s(30));          // an IPv4 address (DHCP)
//   auto listener = net::TcpListener::listen(80);
//
// Only net/ includes lwIP headers; none of the headers here do.
#pragma once

#include <cstdint>

#include "keel/net/addr.h"
#include "keel/net/config.h"
#include "keel/net/dns.h"
#include "keel/net/interface.h"
#include "keel/net/stats.h"
#include "keel/net/tcp.h"
#include "keel/net/udp.h"
#include "keel/result.h"

namespace keel::net {

/// Guest only (net/guest/start.cc): wait for netfront's boot-time discovery, then bring up the
/// first network device as an Interface configured by `cfg` (it lives forever). Seeds the
/// stack's random numbers (RDRAND, else the TSC) first. Error::not_found when the guest has no
/// network device; a second call returns the same interface (its configuration unchanged).
/// From then on every other netfront device, at boot or hot-plugged (`xl network-attach`),
/// becomes one more interface (keel/net/interfaces.h).
Task<Result<Interface*>> start(Config cfg);

/// Key the stack's random numbers (DNS ids and ports, TCP sequence numbers, DHCP ids, IPv6
/// timers) with 64 bits of entropy. Unseeded, they are keyed from the clock.
void seed_random(std::uint64_t entropy);

/// 32 random bits from the stack's generator (SipHash-2-4 in counter mode).
std::uint32_t random32();

/// How many of lwIP's fixed-size objects the stack may hold at once, per kind. TCP PCBs
/// (connections, TIME_WAIT included), queued segments, and pbuf headers scale with the
/// guest's memory; the build-time counts (net/port/lwipopts.h) are a 32 MiB guest's, and a
/// guest gets from a quarter of them to 16 times them. The other kinds (listeners, UDP
/// sockets, timeouts, reassembly) keep their build-time counts. Objects come from the heap
/// when used. start() applies the limits for the guest's memory; until then (and in host
/// tests) they are the build-time counts.
struct PoolLimits {
    std::uint32_t tcp_pcbs = 0;
    std::uint32_t tcp_segments = 0;
    std::uint32_t pbufs = 0;       ///< PBUF_REF/ROM headers
    std::uint32_t pool_pbufs = 0;  ///< PBUF_POOL: received frames copied off the link
};
PoolLimits pool_limits_for_memory(std::uint64_t ram_bytes);
/// Objects already in use above a lowered limit stay; new ones wait until they are freed.
void set_pool_limits(const PoolLimits& limits);
PoolLimits pool_limits();

}  // namespace keel::net
