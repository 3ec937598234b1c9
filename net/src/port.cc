// The lwIP port: what lwIP calls (sys_now, hooks, memory, random numbers, diagnostics), and
// the keel Timer that runs lwIP's timeouts from the event loop.
#include <bit>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "keel/log.h"
#include "keel/loop.h"
#include "keel/net/net.h"
#include "keel/panic.h"
#include "keel/siphash.h"
#include "keel/timer.h"
#include "lwip_glue.h"

extern "C" {
#include "keel_lwip_hooks.h"
#include "lwip/init.h"
}

namespace keel::net {
namespace {

// Context: everything here runs on the loop of the one vCPU (lwIP has NO_SYS=1).
Stats g_stats;
bool g_initialised = false;
Timer g_lwip_timer;  // fires at lwIP's earliest timeout
std::uint32_t g_last_now_ms = 0;

SipKey g_key;  // keys random32() and the TCP sequence numbers
bool g_keyed = false;
std::uint64_t g_counter = 0;


void ensure_keyed() {
    if (g_keyed) return;
    // No seed_random() yet: key from the clock, which is guessable. start() seeds properly.
    const std::uint64_t t = current_loop() != nullptr ? current_loop()->now() : 0;
    g_key = {t ^ 0x9e3779b97f4a7c15ull, std::rotl(t, 29) ^ 0xc2b2ae3d27d4eb4full};
    g_keyed = true;
}

std::uint32_t now_ms() {
    if (EventLoop* l = current_loop()) g_last_now_ms = static_cast<std::uint32_t>(l->now() / 1'000'000ull);
    return g_last_now_ms;
}

void on_lwip_timer() {
    detail::tame_persist_timers();
    sys_check_timeouts();
    detail::flush_output();
    detail::rearm_timers();
}

}  // namespace

const Stats& stats() {
    g_stats.tx_heap_bytes = detail::send_queues_heap();
    return g_stats;
}

void seed_random(std::uint64_t entropy) {
    ensure_keyed();
    // Mix into the existing key, so seeding twice never weakens it.
    const std::uint8_t* e = reinterpret_cast<const std::uint8_t*>(&entropy);
    g_key.k0 ^= siphash24(g_key, e, sizeof(entropy));
    g_key.k1 ^= std::rotl(siphash24(g_key, e, sizeof(entropy)), 17) + 0x94d049bb133111ebull;
}

std::uint32_t random32() {
    ensure_keyed();
    const std::uint64_t c = g_counter++;
    return static_cast<std::uint32_t>(siphash24(g_key, &c, sizeof(c)));
}

namespace detail {

Stats& counters() { return g_stats; }

void ensure_init() {
    if (g_initialised) return;
    g_initialised = true;
    reserve_fixed_pools();
    lwip_init();
    rearm_timers();
}

void rearm_timers() {
    if (!g_initialised || current_loop() == nullptr) return;
    const u32_t sleep_ms = sys_timeouts_sleeptime();
    if (sleep_ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
        g_lwip_timer.cancel();
        return;
    }
    // lwIP counts in whole milliseconds from sys_now() (the loop clock rounded down), so a
    // deadline of now + sleep is never early.
    const std::uint64_t deadline = loop().now() + ms(sleep_ms);
    if (g_lwip_timer.active() && g_lwip_timer.deadline() <= deadline) return;
    g_lwip_timer.start_at(deadline, [] { on_lwip_timer(); });
}

Error to_error(err_t e) {
    struct Mapping {
        err_t lwip;
        Error keel;
    };
    static constexpr Mapping mappings[] = {
        {ERR_OK, Error::ok},
        {ERR_MEM, Error::no_memory},
        {ERR_BUF, Error::no_memory},
        {ERR_TIMEOUT, Error::timed_out},
        {ERR_RTE, Error::not_found},
        {ERR_INPROGRESS, Error::again},
        {ERR_WOULDBLOCK, Error::again},
        {ERR_VAL, Error::invalid_argument},
        {ERR_ARG, Error::invalid_argument},
        {ERR_USE, Error::exists},
        {ERR_ISCONN, Error::exists},
        {ERR_ALREADY, Error::busy},
        {ERR_IF, Error::io},
        {ERR_CONN, Error::closed},
        {ERR_ABRT, Error::closed},
        {ERR_RST, Error::closed},
        {ERR_CLSD, Error::closed},
    };
    for (const Mapping& m : mappings) {
        if (m.lwip == e) return m.keel;
    }
    return Error::io;
}

BindAddr bind_addr(const std::optional<IpAddr>& local) {
    BindAddr b;
    if (local) {
        b.type = local->is_v6() ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4;
        b.addr = to_lwip(*local);
    } else {
        b.type = IPADDR_TYPE_ANY;
        ip_addr_copy(b.addr, *IP_ANY_TYPE);
    }
    return b;
}

ip_addr_t to_lwip(const IpAddr& a) {
    ip_addr_t r;
    if (a.is_v6()) {
        const auto b = a.bytes();
        u32_t w[4];
        std::memcpy(w, b.data(), 16);  // ip6_addr_t keeps its words in network order
        IP_ADDR6(&r, w[0], w[1], w[2], w[3]);
        if (a.zone() != 0) ip6_addr_set_zone(ip_2_ip6(&r), a.zone());
        return r;
    }
    if (a.is_v4()) {
        const auto b = a.bytes();
        IP_ADDR4(&r, b[0], b[1], b[2], b[3]);
        return r;
    }
    ip_addr_set_zero_ip4(&r);
    return r;
}

IpAddr from_lwip(const ip_addr_t& a) {
    if (IP_IS_V4_VAL(a)) {
        const u32_t n = ip4_addr_get_u32(ip_2_ip4(&a));
        std::uint8_t b[4];
        std::memcpy(b, &n, 4);
        return IpAddr::v4(b[0], b[1], b[2], b[3]);
    }
    if (IP_IS_ANY_TYPE_VAL(a)) return IpAddr::any_v6();
    std::array<std::uint8_t, 16> b;
    std::memcpy(b.data(), ip_2_ip6(&a)->addr, 16);
    return IpAddr::v6(b, static_cast<std::uint8_t>(ip6_addr_zone(ip_2_ip6(&a))));
}

}  // namespace detail
}  // namespace keel::net

using keel::current_loop;
using keel::LogLevel;
using keel::net::g_key;

extern "C" {

u32_t sys_now(void) { return keel::net::now_ms(); }

void keel_lwip_diag(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    keel::vlog(LogLevel::debug, fmt, ap);
    va_end(ap);
}

void keel_lwip_assert(const char* message, const char* file, int line) {
    keel::panic("lwIP assertion \"%s\" failed at %s:%d", message, file, line);
}

uint32_t keel_lwip_rand(void) { return keel::net::random32(); }

u32_t keel_lwip_tcp_isn(const ip_addr_t* local_ip, u16_t local_port, const ip_addr_t* remote_ip,
                        u16_t remote_port) {
    // RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a timer
    // ticking every 4 microseconds.
    keel::net::ensure_keyed();
    std::uint8_t buf[2 * 17 + 4] = {};
    std::size_t n = 0;
    for (const ip_addr_t* a : {local_ip, remote_ip}) {
        const keel::net::IpAddr x = keel::net::detail::from_lwip(*a);
        for (std::uint8_t b : x.bytes()) buf[n++] = b;
        buf[n++] = static_cast<std::uint8_t>(x.family());
    }
    std::memcpy(buf + n, &local_port, 2);
    std::memcpy(buf + n + 2, &remote_port, 2);
    n += 4;
    const std::uint64_t m = current_loop() != nullptr ? current_loop()->now() / 4000 : 0;
    return keel::net::detail::reopened_isn(local_port, remote_port, static_cast<u32_t>(siphash24(g_key, buf, n) + m));
}

struct netif* keel_lwip_route4(const ip4_addr_t* src, const ip4_addr_t* dest) {
    if (src == nullptr) return nullptr;
    struct netif* n;
    if (!ip4_addr_isany(src)) {
        NETIF_FOREACH(n) {
            if (netif_is_up(n) && netif_is_link_up(n) && ip4_addr_cmp(src, netif_ip4_addr(n))) return n;
        }
        return nullptr;
    }
    // No source yet. A destination that is one of our own addresses cannot be reached through
    // the interface that owns it (lwIP has no loopback): if another interface shares its
    // subnet, use that one (two interfaces wired together, as in the unit tests).
    struct netif* owner = nullptr;
    NETIF_FOREACH(n) {
        if (netif_is_up(n) && ip4_addr_cmp(dest, netif_ip4_addr(n))) owner = n;
    }
    if (owner == nullptr) return nullptr;
    NETIF_FOREACH(n) {
        if (n != owner && netif_is_up(n) && netif_is_link_up(n) && !ip4_addr_isany_val(*netif_ip4_addr(n)) &&
            ip4_addr_netcmp(dest, netif_ip4_addr(n), netif_ip4_netmask(n))) {
            return n;
        }
    }
    return nullptr;
}

struct netif* keel_lwip_route6(const ip6_addr_t* src, const ip6_addr_t* dest) {
    (void)dest;
    if (src == nullptr || ip6_addr_isany(src)) return nullptr;
    struct netif* n;
    NETIF_FOREACH(n) {
        if (!netif_is_up(n) || !netif_is_link_up(n)) continue;
        for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; ++i) {
            if (ip6_addr_isvalid(netif_ip6_addr_state(n, i)) &&
                ip6_addr_cmp_zoneless(src, netif_ip6_addr(n, i))) {
                return n;
            }
        }
    }
    return nullptr;
}

// Counts an allocation for lwIP (in heap_allocations, and heap_failures or heap_live).
static void* counted(void* p) {
    ++keel::net::g_stats.heap_allocations;
    if (p == nullptr) {
        ++keel::net::g_stats.heap_failures;
    } else {
        ++keel::net::g_stats.heap_live;
    }
    return p;
}

void* keel_lwip_malloc(size_t size) { return counted(std::malloc(size)); }

void* keel_lwip_calloc(size_t n, size_t size) { return counted(std::calloc(n, size)); }

void keel_lwip_free(void* p) {
    if (p == nullptr) return;
    --keel::net::g_stats.heap_live;
    std::free(p);
}

}  // extern "C"
