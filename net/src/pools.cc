// lwIP's fixed-size objects (its "memp" pools: PCBs, segments, pbuf headers, timeouts) on the
// keel heap, each kind capped by a count set at run time instead of a static array sized at
// build time. lwIP's calls to memp_malloc/memp_free come here (net/port/lwipopts.h renames
// them outside lwIP's memp.c). A kind at its cap answers "empty pool", exactly as a static
// pool did, and lwIP's own recovery runs (tcp_alloc recycles TIME_WAIT, tcp_write reports
// ERR_MEM). Kinds that scale with memory take their objects from the heap when needed and give
// them back, except TCP PCBs, which are kept for reuse (at most the cap): a new connection is let
// in only when a PCB is at hand (stock_tcp_pcb), taken from the heap only while it keeps
// pool_heap_floor for the connections already open; lwIP's answer to a failed PCB allocation is
// to kill a connection (TIME_WAIT, then LAST_ACK, CLOSING, lower priorities), which keel never
// lets a newcomer cause. Segments and pbufs serve the connections already open, so they take
// what the heap has, like lwIP's data buffers (keel_lwip_malloc), and fail as ERR_MEM. The other
// kinds keep their build-time count, reserved at init, so that an object lwIP cannot do
// without (a timeout) never depends on what the heap has left. Context: loop only.
#include <algorithm>
#include <array>
#include <cstdlib>

#include "keel/heap.h"
#include "keel/net/net.h"
#include "lwip_glue.h"

extern "C" {
#include "lwip/memp.h"
#include "netif/ppp/ppp_opts.h"  // PPP_NUM_TIMEOUTS, in MEMP_NUM_SYS_TIMEOUT's default
}

namespace keel::net {
namespace {

// The build-time count of every kind, in memp_t's order (lwIP builds memp_t from the same list).
constexpr std::uint32_t build_count[MEMP_MAX] = {
#define LWIP_MEMPOOL(name, num, size, desc) (num),
#include "lwip/priv/memp_std.h"
};

constexpr bool scales(memp_t t) {
    return t == MEMP_TCP_PCB || t == MEMP_TCP_SEG || t == MEMP_PBUF || t == MEMP_PBUF_POOL;
}
// Scaled kinds whose freed objects go back to the heap (PCBs are kept: see above).
constexpr bool returns_to_heap(memp_t t) { return scales(t) && t != MEMP_TCP_PCB; }

// A new connection's PCB comes from the heap only while this much is left after it.
constexpr std::size_t pool_heap_floor = 64 * 1024;

// The build-time counts are what a guest of this much memory gets.
constexpr std::uint64_t reference_ram = 32ull << 20;
constexpr std::uint32_t shrink = 4;   // at least a quarter of them
constexpr std::uint32_t grow = 16;    // at most 16 times

// The smallest counts any guest gets (set_pool_limits holds to them too): room for one
// connection's whole send queue (lwIP's init.c checks this of static pools), tcp.cc's PCBs for
// the service's own connections twice over, and one whole receive window, or one GSO frame,
// copied into pool pbufs (init.c's check of PBUF_POOL, which MEMP_MEM_MALLOC compiles out).
constexpr std::uint32_t min_tcp_pcbs = 2 * detail::pcbs_for_connecting;
constexpr std::uint32_t min_tcp_segments = TCP_SND_QUEUELEN;
constexpr std::uint32_t min_pool_pbufs = (0xffff + PBUF_POOL_BUFSIZE - 1) / PBUF_POOL_BUFSIZE;
static_assert(MEMP_NUM_TCP_PCB / shrink >= min_tcp_pcbs);
static_assert(MEMP_NUM_TCP_SEG / shrink >= min_tcp_segments);
static_assert(std::uint64_t{min_pool_pbufs} * PBUF_POOL_BUFSIZE >= TCP_WND);
static_assert(MEMP_NUM_PBUF / shrink >= 1 && PBUF_POOL_SIZE * grow >= min_pool_pbufs);

struct FreeObject {
    FreeObject* next;
};

struct Pool {
    std::uint32_t limit = 0;
    std::uint32_t live = 0;
    FreeObject* reserve = nullptr;  // objects kept for reuse: kinds that do not scale, and TCP PCBs
};

constexpr std::array<Pool, MEMP_MAX> initial_pools() {
    std::array<Pool, MEMP_MAX> pools{};
    for (std::size_t t = 0; t < MEMP_MAX; ++t) pools[t].limit = build_count[t];
    return pools;
}

std::array<Pool, MEMP_MAX> g_pools = initial_pools();
bool g_reserved = false;

std::size_t object_size(memp_t t) { return std::max<std::size_t>(memp_pools[t]->size, sizeof(FreeObject)); }

// build_count * memory / reference_ram, within [a quarter, 16 times] and at least `floor`. The
// memory in whole MiB rounded up: a PVH guest's RAM lacks the 384 KiB below 1 MiB.
std::uint32_t scaled(memp_t t, std::uint64_t ram_bytes, std::uint32_t floor) {
    const std::uint64_t mib = std::min<std::uint64_t>((ram_bytes >> 20) + ((ram_bytes & 0xfffff) != 0), 1u << 30);
    const std::uint64_t n = build_count[t] * mib / (reference_ram >> 20);
    const std::uint64_t lo = std::max<std::uint64_t>(build_count[t] / shrink, floor);
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(n, lo, std::uint64_t{build_count[t]} * grow));
}

// A new object for kind `t` from the heap; for a PCB, only if the heap keeps its floor after it.
void* from_heap(memp_t t) {
    const std::size_t size = object_size(t);
    if (t == MEMP_TCP_PCB && heap_headroom() < pool_heap_floor + size) return nullptr;
    return std::malloc(size);
}

}  // namespace

PoolLimits pool_limits_for_memory(std::uint64_t ram_bytes) {
    PoolLimits l;
    l.tcp_pcbs = scaled(MEMP_TCP_PCB, ram_bytes, min_tcp_pcbs);
    l.tcp_segments = scaled(MEMP_TCP_SEG, ram_bytes, min_tcp_segments);
    l.pbufs = scaled(MEMP_PBUF, ram_bytes, 1);
    l.pool_pbufs = scaled(MEMP_PBUF_POOL, ram_bytes, min_pool_pbufs);
    return l;
}

void set_pool_limits(const PoolLimits& l) {
    g_pools[MEMP_TCP_PCB].limit = std::max(l.tcp_pcbs, min_tcp_pcbs);
    g_pools[MEMP_TCP_SEG].limit = std::max(l.tcp_segments, min_tcp_segments);
    g_pools[MEMP_PBUF].limit = std::max<std::uint32_t>(l.pbufs, 1);
    g_pools[MEMP_PBUF_POOL].limit = std::max(l.pool_pbufs, min_pool_pbufs);
}

PoolLimits pool_limits() {
    return {g_pools[MEMP_TCP_PCB].limit, g_pools[MEMP_TCP_SEG].limit, g_pools[MEMP_PBUF].limit,
            g_pools[MEMP_PBUF_POOL].limit};
}

namespace detail {

std::size_t tcp_pcb_limit() { return g_pools[MEMP_TCP_PCB].limit; }

std::size_t tcp_segments_free() {
    const Pool& p = g_pools[MEMP_TCP_SEG];
    return p.live < p.limit ? p.limit - p.live : 0;
}

bool stock_tcp_pcb() {
    Pool& p = g_pools[MEMP_TCP_PCB];
    if (p.live < p.limit && p.reserve != nullptr) return true;
    auto* o = p.live < p.limit ? static_cast<FreeObject*>(from_heap(MEMP_TCP_PCB)) : nullptr;
    if (o == nullptr) {
        ++counters().pool_exhausted;
        return false;
    }
    o->next = nullptr;
    p.reserve = o;
    return true;
}

void reserve_fixed_pools() {
    if (g_reserved) return;
    g_reserved = true;
    for (std::size_t i = 0; i < MEMP_MAX; ++i) {
        const auto t = static_cast<memp_t>(i);
        if (scales(t)) continue;
        for (std::uint32_t n = 0; n < build_count[t]; ++n) {
            // Short of heap at boot, the rest come from the heap when used.
            auto* o = static_cast<FreeObject*>(std::malloc(object_size(t)));
            if (o == nullptr) break;
            o->next = g_pools[t].reserve;
            g_pools[t].reserve = o;
        }
    }
}

}  // namespace detail
}  // namespace keel::net

using keel::net::detail::counters;
using keel::net::g_pools;

extern "C" {

void* keel_memp_malloc(memp_t type) {
    if (type >= MEMP_MAX) return nullptr;
    auto& p = g_pools[type];
    if (p.live >= p.limit) {
        ++counters().pool_exhausted;
        return nullptr;
    }
    void* o = p.reserve;
    if (o != nullptr) {
        p.reserve = p.reserve->next;
    } else {
        o = keel::net::from_heap(type);
        if (o == nullptr) {
            ++counters().pool_exhausted;
            return nullptr;
        }
    }
    ++p.live;
    if (type != MEMP_SYS_TIMEOUT) ++counters().pool_live;  // lwIP's own timers come and go
    return o;
}

void keel_memp_free(memp_t type, void* mem) {
    if (mem == nullptr || type >= MEMP_MAX) return;
    auto& p = g_pools[type];
    --p.live;
    if (type != MEMP_SYS_TIMEOUT) --counters().pool_live;
    if (keel::net::returns_to_heap(type)) {
        std::free(mem);
        return;
    }
    auto* o = static_cast<keel::net::FreeObject*>(mem);
    o->next = p.reserve;
    p.reserve = o;
}

}  // extern "C"
