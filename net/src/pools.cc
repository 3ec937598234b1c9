// lwIP's fixed-size objects (its "memp" pools: PCBs, segments, pbuf headers, timeouts) on the
// keel heap, each kind capped by a count set at run time instead of a static array sized at
// build time. lwIP's calls to memp_malloc/memp_free come here (net/port/lwipopts.h renames
// them outside lwIP's memp.c). A kind at its cap answers "empty pool", exactly as a static
// pool did, and lwIP's own recovery runs (tcp_alloc recycles TIME_WAIT, tcp_write reports
// ERR_MEM). Kinds that scale with memory take their objects from the heap when needed and give
// them back; the others keep their build-time count, reserved at init, so that an object lwIP
// cannot do without (a timeout) never depends on what the heap has left. Context: loop only.
#include <algorithm>
#include <array>
#include <cstdlib>

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

// The build-time counts are what a guest of this much memory gets.
constexpr std::uint64_t reference_ram = 32ull << 20;
constexpr std::uint32_t shrink = 4;   // at least a quarter of them
constexpr std::uint32_t grow = 16;    // at most 16 times

// lwIP's own sanity check (init.c) that static pools have room for one connection's whole send
// queue, and tcp.cc's reserve of PCBs beyond the listeners' share, hold at the smallest counts.
static_assert(MEMP_NUM_TCP_SEG / shrink >= TCP_SND_QUEUELEN);
static_assert(MEMP_NUM_TCP_PCB / shrink >= 2 * detail::pcbs_for_connecting);

struct FreeObject {
    FreeObject* next;
};

struct Pool {
    std::uint32_t limit = 0;
    std::uint32_t live = 0;
    FreeObject* reserve = nullptr;  // kinds that do not scale: objects kept for reuse
};

constexpr std::array<Pool, MEMP_MAX> initial_pools() {
    std::array<Pool, MEMP_MAX> pools{};
    for (std::size_t t = 0; t < MEMP_MAX; ++t) pools[t].limit = build_count[t];
    return pools;
}

std::array<Pool, MEMP_MAX> g_pools = initial_pools();
bool g_reserved = false;

std::uint32_t scaled(memp_t t, std::uint64_t ram_bytes) {
    const std::uint64_t n = build_count[t] * (ram_bytes / (1u << 20)) / (reference_ram >> 20);
    return static_cast<std::uint32_t>(
        std::clamp<std::uint64_t>(n, build_count[t] / shrink, std::uint64_t{build_count[t]} * grow));
}

std::size_t object_size(memp_t t) { return std::max<std::size_t>(memp_pools[t]->size, sizeof(FreeObject)); }

}  // namespace

PoolLimits pool_limits_for_memory(std::uint64_t ram_bytes) {
    PoolLimits l;
    l.tcp_pcbs = scaled(MEMP_TCP_PCB, ram_bytes);
    l.tcp_segments = scaled(MEMP_TCP_SEG, ram_bytes);
    l.pbufs = scaled(MEMP_PBUF, ram_bytes);
    l.pool_pbufs = scaled(MEMP_PBUF_POOL, ram_bytes);
    return l;
}

void set_pool_limits(const PoolLimits& l) {
    g_pools[MEMP_TCP_PCB].limit = l.tcp_pcbs;
    g_pools[MEMP_TCP_SEG].limit = l.tcp_segments;
    g_pools[MEMP_PBUF].limit = l.pbufs;
    g_pools[MEMP_PBUF_POOL].limit = l.pool_pbufs;
}

PoolLimits pool_limits() {
    return {g_pools[MEMP_TCP_PCB].limit, g_pools[MEMP_TCP_SEG].limit, g_pools[MEMP_PBUF].limit,
            g_pools[MEMP_PBUF_POOL].limit};
}

namespace detail {

std::size_t tcp_pcb_limit() { return g_pools[MEMP_TCP_PCB].limit; }

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
        o = std::malloc(keel::net::object_size(type));
        if (o == nullptr) {
            ++counters().pool_exhausted;
            return nullptr;
        }
    }
    ++p.live;
    ++counters().pool_live;
    return o;
}

void keel_memp_free(memp_t type, void* mem) {
    if (mem == nullptr || type >= MEMP_MAX) return;
    auto& p = g_pools[type];
    --p.live;
    --counters().pool_live;
    if (keel::net::scales(type)) {
        std::free(mem);
        return;
    }
    auto* o = static_cast<keel::net::FreeObject*>(mem);
    o->next = p.reserve;
    p.reserve = o;
}

}  // extern "C"
