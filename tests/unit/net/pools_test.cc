// lwIP's pools sized from the guest's memory (net/src/pools.cc): the limits per memory size,
// and a stack whose limits were lowered refusing newcomers and outgoing connections beyond
// them as errors, then taking them again once objects are freed.
#include <gtest/gtest.h>

#include <list>
#include <vector>

#include "fakes/fake_link.h"
#include "fakes/scarce_heap.h"

namespace keel::net::test {
namespace {

constexpr std::uint64_t mib = 1u << 20;

TEST(PoolLimits, TheBuildCountsAreA32MiBGuests) {
    const PoolLimits l = pool_limits_for_memory(32 * mib);
    EXPECT_EQ(l.tcp_pcbs, 256u);
    EXPECT_EQ(l.tcp_segments, 1024u);
    EXPECT_EQ(l.pbufs, 64u);
    EXPECT_EQ(l.pool_pbufs, 64u);
    // Until start() applies a guest's memory (and in these tests), the build counts hold.
    const PoolLimits now = pool_limits();
    EXPECT_EQ(now.tcp_pcbs, l.tcp_pcbs);
    EXPECT_EQ(now.tcp_segments, l.tcp_segments);
    EXPECT_EQ(now.pbufs, l.pbufs);
    EXPECT_EQ(now.pool_pbufs, l.pool_pbufs);
}

TEST(PoolLimits, ScaleWithMemoryFromAQuarterTo16Times) {
    const PoolLimits small = pool_limits_for_memory(4 * mib);
    EXPECT_EQ(small.tcp_pcbs, 64u);
    EXPECT_EQ(small.tcp_segments, 256u);
    EXPECT_EQ(small.pbufs, 16u);
    EXPECT_EQ(small.pool_pbufs, 43u) << "a whole receive window (a GSO frame) copied into pool pbufs";
    EXPECT_EQ(pool_limits_for_memory(0).tcp_pcbs, 64u);
    const PoolLimits kv = pool_limits_for_memory(64 * mib);
    EXPECT_EQ(kv.tcp_pcbs, 512u);
    EXPECT_EQ(kv.tcp_segments, 2048u);
    const PoolLimits huge = pool_limits_for_memory(1ull << 40);
    EXPECT_EQ(huge.tcp_pcbs, 4096u);
    EXPECT_EQ(huge.tcp_segments, 16384u);
    EXPECT_EQ(huge.pbufs, 1024u);
    EXPECT_EQ(huge.pool_pbufs, 1024u);
    // A PVH guest's RAM lacks the 384 KiB below 1 MiB: memory = 32 is still a 32 MiB guest.
    EXPECT_EQ(pool_limits_for_memory(0xa0000 + 0x1f00000).tcp_pcbs, 256u);
    EXPECT_EQ(pool_limits_for_memory(0xa0000 + 0x3f00000).tcp_pcbs, 512u);
    PoolLimits prev = pool_limits_for_memory(0);
    for (std::uint64_t m = 1; m <= 4096; m += 7) {
        const PoolLimits l = pool_limits_for_memory(m * mib);
        EXPECT_GE(l.tcp_pcbs, prev.tcp_pcbs) << m;
        EXPECT_GE(l.tcp_segments, prev.tcp_segments) << m;
        EXPECT_GE(l.pbufs, prev.pbufs) << m;
        EXPECT_GE(l.pool_pbufs, prev.pool_pbufs) << m;
        prev = l;
    }
}

TEST(PoolLimits, SetLimitsKeepTheSmallestWorkingCounts) {
    const PoolLimits saved = pool_limits();
    set_pool_limits(PoolLimits{});
    const PoolLimits l = pool_limits();
    EXPECT_EQ(l.tcp_pcbs, 32u) << "16 for the service's own connections, and as many for peers";
    EXPECT_EQ(l.tcp_segments, 176u) << "one connection's whole send queue (TCP_SND_QUEUELEN)";
    EXPECT_EQ(l.pbufs, 1u);
    EXPECT_EQ(l.pool_pbufs, 43u);
    set_pool_limits(saved);
}

/// TwoHosts with lowered pool limits, restored afterwards (lwIP is one stack per process).
class SmallPools : public TwoHosts<> {
protected:
    SmallPools() : saved_(pool_limits()) {}
    ~SmallPools() override { set_pool_limits(saved_); }
    PoolLimits saved_;
};

// With 40 PCBs, peers get 24 (16 stay for the service's own connections): both ends of each
// connection are in this one stack, so 12 connections are accepted and the 13th is refused
// with a reset, while the ones accepted keep working. A closed one makes room again.
TEST_F(SmallPools, NewcomersAreRefusedAtTheScaledPcbLimit) {
    PoolLimits l = pool_limits();
    l.tcp_pcbs = 40;
    set_pool_limits(l);
    constexpr std::uint16_t port = 7400;
    auto listener = TcpListener::listen(port);
    ASSERT_TRUE(listener.ok());
    std::vector<TcpStream> clients, servers;
    const auto refused = stats().tcp_refused;
    for (int i = 0; i < 12; ++i) {
        ASSERT_NO_FATAL_FAILURE(connect_through(listener.value(), port, clients.emplace_back(), servers.emplace_back()))
            << "connection " << i;
    }
    auto newcomer = run(TcpStream::connect(addr_b, port, s(5)));
    ASSERT_TRUE(newcomer);
    EXPECT_EQ(newcomer->error(), Error::closed) << "a 13th connection must be refused (RST)";
    EXPECT_EQ(stats().tcp_refused, refused + 1);

    // The connections accepted still carry data.
    auto echoed = run(ping_pong(clients[5], servers[5]));
    ASSERT_TRUE(echoed && *echoed);

    // A connection reset by its client frees both ends' PCBs: the next newcomer is accepted.
    clients[0] = TcpStream();  // a dropped handle resets
    servers[0] = TcpStream();
    run_until([] { return false; }, ms(100));
    std::optional<Result<TcpStream>> accepted;
    start([](TcpListener& li, std::optional<Result<TcpStream>>& out) -> Task<void> {
        out.emplace(co_await li.accept());
    }(listener.value(), accepted));
    auto again = run(TcpStream::connect(addr_b, port, s(5)));
    ASSERT_TRUE(again && again->ok()) << "room made by a closed connection was not taken";
    ASSERT_TRUE(run_until([&] { return accepted.has_value(); }));
    EXPECT_TRUE(accepted->ok());
}

// The pool itself at its cap: an outgoing connection beyond it fails at once as an error
// (counted), never a crash; one freed PCB lets the next connect through.
TEST_F(SmallPools, AnOutgoingConnectionBeyondThePoolFailsAsAnError) {
    PoolLimits l = pool_limits();
    l.tcp_pcbs = 32;
    set_pool_limits(l);
    // B never answers: every SYN stays in SYN_SENT and holds a PCB until connect() times out.
    dev_a.on_wire = [](std::vector<std::byte>&) { return true; };
    std::vector<std::optional<Result<TcpStream>>> pending(32);
    for (auto& p : pending) {
        start([](std::optional<Result<TcpStream>>& out) -> Task<void> {
            out.emplace(co_await TcpStream::connect(addr_b, 7500, s(60)));
        }(p));
    }
    run_until([] { return false; }, ms(10));
    for (const auto& p : pending) EXPECT_FALSE(p.has_value()) << "a connect within the cap ended early";
    const auto exhausted = stats().pool_exhausted;
    auto beyond = run(TcpStream::connect(addr_b, 7500, s(60)), ms(10));
    ASSERT_TRUE(beyond) << "a connect beyond the cap must fail at once";
    EXPECT_EQ(beyond->error(), Error::no_memory);
    EXPECT_GT(stats().pool_exhausted, exhausted);

    dev_a.on_wire = nullptr;
    ASSERT_TRUE(run_until([&] {
        for (const auto& p : pending) {
            if (!p.has_value()) return false;
        }
        return true;
    }, s(120)));
    auto after = run(TcpStream::connect(addr_b, 7500, s(5)));
    ASSERT_TRUE(after);
    EXPECT_EQ(after->error(), Error::closed) << "no listener: a reset, not an allocation failure";
}

// Kinds that keep their build count (listeners: 8) are reserved once and reused: closing and
// opening them again never fails, and every object comes back (pool_live returns to where it
// was once the connections of a test are gone).
TEST_F(SmallPools, ReservedKindsAreReusedAndEveryObjectComesBack) {
    run_until([] { return false; }, s(10));  // the interfaces settle (IPv6 DAD, MLD groups)
    const auto live = stats().pool_live;
    for (int round = 0; round < 3; ++round) {
        std::vector<TcpListener> ls;
        for (std::uint16_t i = 0; i < 8; ++i) {
            auto li = TcpListener::listen(static_cast<std::uint16_t>(7600 + i));
            ASSERT_TRUE(li.ok()) << "round " << round << " listener " << i;
            ls.push_back(std::move(li.value()));
        }
        auto ninth = TcpListener::listen(7608);
        EXPECT_FALSE(ninth.ok()) << "a ninth listener beyond the build count";
    }
    EXPECT_EQ(stats().pool_live, live);
    Connected c;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7610, c));
    EXPECT_GT(stats().pool_live, live);
    c = Connected{};
    run_until([] { return false; }, s(130));  // TIME_WAIT ends
    EXPECT_EQ(stats().pool_live, live) << "an object of a closed connection never came back";
}

// The heap short of its floor, with the PCB cap far away: newcomers are refused (a reset; an
// outgoing connect fails as an error) instead of lwIP killing a connection to make room, and
// the connections already open keep working.
TEST_F(SmallPools, AShortHeapRefusesNewcomersAndKillsNothing) {
    PoolLimits l = pool_limits();
    l.tcp_pcbs = 4096;
    set_pool_limits(l);
    Connected first;
    ASSERT_NO_FATAL_FAILURE(connect_pair(7700, first));
    ScarceHeap heap;
    heap.left = 8;  // 32 KiB of headroom: under the pools' 64 KiB floor
    const auto resets = stats().tcp_reset;
    const auto aborted = stats().tcp_aborted;
    std::vector<TcpStream> clients, servers;
    std::list<std::optional<Result<TcpStream>>> accepts;  // outlive the accept tasks
    bool refused = false;
    // PCBs kept from earlier tests serve first; then the heap is asked, and says no.
    for (int i = 0; i < 400 && !refused; ++i) {
        std::optional<Result<TcpStream>>& accepted = accepts.emplace_back();
        start([](TcpListener& li, std::optional<Result<TcpStream>>& out) -> Task<void> {
            out.emplace(co_await li.accept_for(s(2)));
        }(first.listener, accepted));
        auto c = run(TcpStream::connect(addr_b, 7700, s(5)));
        ASSERT_TRUE(c);
        if (!c->ok()) {
            EXPECT_TRUE(c->error() == Error::closed || c->error() == Error::no_memory) << to_string(c->error());
            refused = true;
            break;
        }
        ASSERT_TRUE(run_until([&] { return accepted.has_value(); }));
        ASSERT_TRUE(accepted->ok());
        clients.push_back(std::move(c->value()));
        servers.push_back(std::move(accepted->value()));
    }
    EXPECT_TRUE(refused) << "the short heap never refused a newcomer";
    EXPECT_EQ(stats().tcp_reset, resets) << "a connection was killed to make room";
    EXPECT_EQ(stats().tcp_aborted, aborted);
    auto echoed = run(ping_pong(first.client, first.server));
    ASSERT_TRUE(echoed && *echoed) << "the first connection stopped answering";
}

}  // namespace
}  // namespace keel::net::test
