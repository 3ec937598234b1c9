// pvclock scaling against an exact 128-bit reference, and the version loops.
#include "keel/xen/pvclock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>

namespace keel::xen {
namespace {

std::uint64_t reference(std::uint64_t delta, std::uint32_t mul, int shift) {
    std::uint64_t d = shift >= 0 ? delta << shift : delta >> -shift;  // 64-bit, as Xen does
    unsigned __int128 p = static_cast<unsigned __int128>(d) * mul;
    return static_cast<std::uint64_t>(p >> 32);
}

TEST(PvclockScale, KnownValues) {
    // mul_frac 2^31 with shift +1: one tick is one nanosecond.
    EXPECT_EQ(pvclock_scale(12345, 0x80000000u, 1), 12345u);
    // 3 GHz TSC: ns = ticks / 3, shift -1 and mul = 2^33/3 (rounded down to 32 bits).
    EXPECT_EQ(pvclock_scale(3000000000ull, 0xaaaaaaaau, -1), reference(3000000000ull, 0xaaaaaaaau, -1));
    EXPECT_NEAR(static_cast<double>(pvclock_scale(3000000000ull, 0xaaaaaaaau, -1)), 1e9, 1.0);
    EXPECT_EQ(pvclock_scale(0, 0xffffffffu, 5), 0u);
    EXPECT_EQ(pvclock_scale(1ull << 40, 0, 0), 0u);
}

TEST(PvclockScale, NeedsMoreThan64BitsInTheMiddle) {
    // delta * mul overflows 64 bits; only a 128-bit product gets this right.
    const std::uint64_t delta = 0x0000'1234'5678'9abcull;
    EXPECT_EQ(pvclock_scale(delta, 0xfedcba98u, 0), reference(delta, 0xfedcba98u, 0));
    EXPECT_GT(reference(delta, 0xfedcba98u, 0), 0xffffffffull);
}

TEST(PvclockScale, NegativeAndExtremeShifts) {
    EXPECT_EQ(pvclock_scale(0x1000, 0x80000000u, -4), 0x80u);
    EXPECT_EQ(pvclock_scale(~0ull, 0xffffffffu, -63), reference(~0ull, 0xffffffffu, -63));
    EXPECT_EQ(pvclock_scale(1, 0xffffffffu, 63), reference(1, 0xffffffffu, 63));
    EXPECT_EQ(pvclock_scale(~0ull, 0xffffffffu, -64), 0u);
    EXPECT_EQ(pvclock_scale(~0ull, 0xffffffffu, -128), 0u);
    EXPECT_EQ(pvclock_scale(~0ull, 0xffffffffu, 64), 0u);
    EXPECT_EQ(pvclock_scale(~0ull, 0xffffffffu, 127), 0u);
}

TEST(PvclockScale, MatchesReferenceOnRandomInputs) {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t delta = rng() >> (rng() % 64);
        const auto mul = static_cast<std::uint32_t>(rng());
        const int shift = static_cast<int>(rng() % 64) - 32;
        ASSERT_EQ(pvclock_scale(delta, mul, static_cast<std::int8_t>(shift)), reference(delta, mul, shift))
            << delta << " " << mul << " " << shift;
    }
}

// The fake clock state the rdtsc callbacks see (function pointers cannot capture).
volatile vcpu_time_info g_time;
std::uint64_t g_tsc;
int g_rdtsc_calls;

void set_time(std::uint32_t version, std::uint64_t stamp, std::uint64_t system_time, std::uint32_t mul,
              std::int8_t shift) {
    g_time.version = version;
    g_time.tsc_timestamp = stamp;
    g_time.system_time = system_time;
    g_time.tsc_to_system_mul = mul;
    g_time.tsc_shift = shift;
    g_rdtsc_calls = 0;
}

// One tick per nanosecond, stamped at TSC 1000 and 5 s, with the TSC now at 3000: 5 s + 2 us.
constexpr std::uint64_t two_us_after_5s = 5'000'002'000ull;
void set_one_ns_per_tick(std::uint32_t version) {
    set_time(version, 1000, 5'000'000'000ull, 0x80000000u, 1);
    g_tsc = 3000;
}

std::uint64_t fake_rdtsc() {
    ++g_rdtsc_calls;
    return g_tsc;
}

TEST(PvclockRead, SystemTimePlusScaledDelta) {
    set_one_ns_per_tick(2);
    EXPECT_EQ(pvclock_read(g_time, fake_rdtsc), two_us_after_5s);
    EXPECT_EQ(g_rdtsc_calls, 1);

    set_time(4, 1ull << 40, 7, 0xaaaaaaaau, -1);
    g_tsc = (1ull << 40) + 3'000'000'000ull;
    EXPECT_EQ(pvclock_read(g_time, fake_rdtsc), 7 + reference(3'000'000'000ull, 0xaaaaaaaau, -1));
}

TEST(PvclockRead, TscBeforeTimestampCountsAsNoTime) {
    set_time(2, 5000, 123456, 0x80000000u, 1);
    g_tsc = 4000;
    EXPECT_EQ(pvclock_read(g_time, fake_rdtsc), 123456u);
}

// Xen updates the record while we read it: the first attempt must be thrown away.
std::uint64_t rdtsc_racing_an_update() {
    if (g_rdtsc_calls++ == 0) {
        g_time.version = g_time.version + 1;  // update starts...
        g_time.system_time = 9'000'000'000ull;
        g_time.tsc_timestamp = 2000;
        g_time.version = g_time.version + 1;  // ...and ends
    }
    return g_tsc;
}

TEST(PvclockRead, VersionChangeDuringReadRetries) {
    set_one_ns_per_tick(2);
    EXPECT_EQ(pvclock_read(g_time, rdtsc_racing_an_update), 9'000'001'000ull);
    EXPECT_EQ(g_rdtsc_calls, 2);
}

TEST(PvclockRead, OddVersionWaitsForTheUpdateToFinish) {
    set_one_ns_per_tick(3);  // update in progress
    std::atomic<bool> started{false};
    std::thread xen([&] {
        while (!started.load()) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        g_time.system_time = 6'000'000'000ull;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        g_time.version = 4;
    });
    started.store(true);
    EXPECT_EQ(pvclock_read(g_time, fake_rdtsc), 6'000'002'000ull);
    xen.join();
}

TEST(Wallclock, CombinesLowAndHighSeconds) {
    auto s = std::make_unique<shared_info>();
    *s = shared_info{};
    s->wc_version = 6;
    s->wc_sec = 0x65000000u;
    s->wc_sec_hi = 1;
    s->wc_nsec = 999'999'999u;
    const volatile shared_info& vs = *s;
    WallClock w = wallclock_read(vs);
    EXPECT_EQ(w.sec, 0x1'6500'0000ull);
    EXPECT_EQ(w.nsec, 999'999'999u);
}

TEST(Wallclock, OddVersionWaitsForTheUpdateToFinish) {
    auto s = std::make_unique<shared_info>();
    *s = shared_info{};
    volatile shared_info& vs = *s;
    vs.wc_version = 1;
    vs.wc_sec = 1;
    std::thread xen([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        vs.wc_sec = 1700000000u;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        vs.wc_version = 2;
    });
    WallClock w = wallclock_read(vs);
    xen.join();
    EXPECT_EQ(w.sec, 1700000000u);
    EXPECT_EQ(w.nsec, 0u);
}

TEST(ResumeClockOffset, TheClockNeverGoesBackAcrossAResume) {
    // Same host: pvclock went on while the domain was away; that time counts, no offset.
    EXPECT_EQ(resume_clock_offset(0, 5'000, 9'000), 0u);
    // A host whose clock is behind ours: continue from where we were.
    EXPECT_EQ(resume_clock_offset(0, 5'000'000, 1'000), 4'999'000u);
    const std::uint64_t off = resume_clock_offset(0, 5'000'000, 1'000);
    EXPECT_EQ(1'000 + off, 5'000'000u);
    // A second move keeps the first offset when that suffices, and grows it when not.
    EXPECT_EQ(resume_clock_offset(off, 6'000'000, 2'000'000), off);
    EXPECT_EQ(resume_clock_offset(off, 9'000'000, 10), 9'000'000u - 10);
    for (std::uint64_t before : {0ull, 1ull, 123'456'789ull, 1ull << 62}) {
        for (std::uint64_t raw : {0ull, 7ull, 123'456'788ull, 1ull << 61}) {
            EXPECT_GE(raw + resume_clock_offset(0, before, raw), before) << before << " " << raw;
        }
    }
}

TEST(MonotonicClock, ReadsNeverGoBackEvenWhenPvclockDoes) {
    MonotonicClock c;
    EXPECT_EQ(c.read(24'100'254'000), 24'100'254'000u);
    EXPECT_EQ(c.read(24'100'253'000), 24'100'254'000u);  // pvclock stepped back by 1 us
    EXPECT_EQ(c.read(24'100'255'000), 24'100'255'000u);
    EXPECT_EQ(c.offset(), 0u);
}

TEST(MonotonicClock, ContinuesAfterAResumeOnAHostWhoseClockIsBehind) {
    MonotonicClock c;
    EXPECT_EQ(c.read(9'000'000), 9'000'000u);
    c.resume(1'000);  // the new host's pvclock
    EXPECT_EQ(c.offset(), 9'000'000u - 1'000);
    EXPECT_EQ(c.read(1'000), 9'000'000u);
    EXPECT_EQ(c.read(2'000), 9'001'000u);
    EXPECT_EQ(c.to_raw(9'002'000), 3'000u);  // Xen's timers count in the new host's time
    EXPECT_EQ(c.to_raw(5), 1u);              // in the past, and never 0 ("no timer")
    c.resume(50'000'000);  // a host far ahead: the offset stays, the time away counts
    EXPECT_EQ(c.offset(), 9'000'000u - 1'000);
}

}  // namespace
}  // namespace keel::xen
