// The PV console against the fake xenconsoled: output, wrap, the backlog behind a full ring,
// input, and backends that stall or break the ring.
#include "keel/console/console.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "fakes/fake_xenconsoled.h"
#include "keel/log.h"

namespace keel::console {
namespace {

using test::FakeXenconsoled;

// The fallback writer is a plain function pointer: it writes here.
std::string g_fallback;
void fallback(std::string_view text) { g_fallback.append(text); }

std::string crlf(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\n') out.push_back('\r');
        out.push_back(c);
    }
    return out;
}

struct Rig {
    explicit Rig(std::uint32_t start_index = 0) : d(start_index), console(d.ring(), d.port()) {
        g_fallback.clear();
        console.set_fallback(fallback);
    }
    FakeXenconsoled d;
    Console console;
};

std::unique_ptr<Rig> rig(std::uint32_t start_index = 0) { return std::make_unique<Rig>(start_index); }

// The backend drains (as much as it does per wake-up) and signals; the guest's event handler
// runs: until the backlog is gone.
void drain_all(Rig& r) {
    for (int i = 0; i < 100000 && (r.console.backlog() != 0 || r.d.undrained() != 0); ++i) {
        r.d.port().wait();
        r.console.on_event();
    }
    r.d.drain();
}

// Text with newlines, `n` bytes long, different at every position.
std::string sample(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; s.size() < n; ++i) {
        s += "line " + std::to_string(i) + ": the quick brown fox\n";
    }
    s.resize(n);
    return s;
}

TEST(Console, NewlinesBecomeCrLf) {
    auto r = rig();
    r->console.write("hello\nworld\n");
    r->console.write("no newline");
    EXPECT_EQ(r->d.output(), "hello\r\nworld\r\nno newline");
    EXPECT_EQ(r->console.stats().bytes_out, 24u);
    EXPECT_EQ(r->console.stats().waits, 0u);
    EXPECT_EQ(r->console.stats().errors, 0u);
    EXPECT_GE(r->d.port().notifies, 2);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(Console, WrapsAcrossTheRingBoundaryAndThe32BitIndex) {
    for (std::uint32_t start : {2040u, 2047u, 0xfffffff8u, 0xfffff800u + 5u}) {
        SCOPED_TRACE(start);
        auto r = rig(start);
        const std::string text = sample(300);
        r->console.write(text);
        r->console.write(text);
        EXPECT_EQ(r->d.output(), crlf(text) + crlf(text));
        EXPECT_EQ(r->d.violations(), 0);
    }
}

TEST(Console, LargeWriteWithASlowBackendArrivesWholeAndInOrder) {
    auto r = rig(100);
    r->d.set_drain_on_notify(false);
    r->d.set_drain_per_wake(7);  // a few bytes per wake-up: the ring fills again and again
    const std::string text = sample(7 * 2048);
    r->console.write(text);
    EXPECT_EQ(r->console.stats().waits, 0u);  // write() leaves the rest in the backlog
    drain_all(*r);
    EXPECT_EQ(r->d.output(), crlf(text));
    EXPECT_EQ(r->console.stats().bytes_out, crlf(text).size());
    EXPECT_EQ(r->console.stats().errors, 0u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(Console, ManyWritesKeepTheirOrder) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_drain_per_wake(100);
    std::string expected;
    for (int i = 0; i < 500; ++i) {
        const std::string line = "message " + std::to_string(i) + "\n";
        r->console.write(line);
        expected += crlf(line);
    }
    drain_all(*r);
    EXPECT_EQ(r->d.output(), expected);
}

TEST(Console, CrLfSplitByAFullRing) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_drain_per_wake(1);
    std::string text(2047, 'x');
    text += "\n\n\ny";  // the '\r' of a "\r\n" lands in the last free byte
    r->console.write(text);
    drain_all(*r);
    EXPECT_EQ(r->d.output(), crlf(text));
}

TEST(Console, IsTheKernelLogSink) {
    auto r = rig();
    set_log_sink(&r->console);
    KLOG_INFO("console up, %d bytes", 42);
    set_log_sink(nullptr);
    const std::string& out = r->d.output();
    EXPECT_NE(out.find("info: console up, 42 bytes\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.substr(out.size() - 2), "\r\n");
}

TEST(Console, InputReachesTheHandlerAndIsAcknowledged) {
    auto r = rig();
    std::string got;
    r->console.set_input_handler([&](std::string_view s) { got.append(s); });
    r->d.type("ls -l\n");
    ASSERT_TRUE(r->d.guest_pending());
    r->d.clear_guest_pending();
    const int notifies = r->d.port().notifies;
    r->console.on_event();
    EXPECT_EQ(got, "ls -l\n");
    EXPECT_EQ(r->console.stats().bytes_in, 6u);
    EXPECT_EQ(r->d.ring()->in_cons, r->d.ring()->in_prod);
    EXPECT_GT(r->d.port().notifies, notifies);  // the backend hears that in[] has room
    r->console.on_event();                      // spurious: nothing more
    EXPECT_EQ(got, "ls -l\n");
}

TEST(Console, InputWrapsAndLongInputArrivesInOrder) {
    auto r = rig(1000);
    std::string got;
    r->console.set_input_handler([&](std::string_view s) { got.append(s); });
    const std::string typed = sample(5000);  // more than in[] holds: fed as the guest consumes
    r->d.type(typed);
    for (int i = 0; i < 100 && r->d.guest_pending(); ++i) {
        r->d.clear_guest_pending();
        r->console.on_event();
    }
    EXPECT_EQ(got, typed);
    EXPECT_EQ(r->d.input_backlog(), 0u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(Console, InputWaitsForAHandler) {
    auto r = rig();
    r->d.type("abc");
    r->console.on_event();
    EXPECT_EQ(r->console.stats().bytes_in, 0u);
    std::string got;
    r->console.set_input_handler([&](std::string_view s) { got.append(s); });
    r->console.on_event();
    EXPECT_EQ(got, "abc");
}

TEST(Console, InputHandlerMayReplaceOrClearItself) {
    auto r = rig();
    std::string first, second;
    r->console.set_input_handler([&](std::string_view s) {
        first.append(s);
        r->console.set_input_handler([&](std::string_view t) {
            second.append(t);
            r->console.set_input_handler(nullptr);
        });
    });
    r->d.type("1");
    r->console.on_event();
    r->d.type("2");
    r->console.on_event();
    r->d.type("3");
    r->console.on_event();  // no handler any more: stays in in[]
    EXPECT_EQ(first, "1");
    EXPECT_EQ(second, "2");
    EXPECT_EQ(r->console.stats().bytes_in, 2u);
}

// ---- a backend that breaks the ring -------------------------------------------------------

TEST(ConsoleReconnect, ContinuesOnTheClearedRingOfANewDomain) {
    auto r = rig(100);  // indices far from 0, as after a while
    r->console.write("before\n");
    r->d.drain();
    EXPECT_TRUE(r->console.drained());
    r->d.restart();  // xl restore: the page is cleared
    r->console.reconnect();
    r->console.write("after\n");
    r->d.drain();
    EXPECT_EQ(r->d.output(), crlf("before\nafter\n"));
    EXPECT_TRUE(g_fallback.empty());
    EXPECT_FALSE(r->console.broken());
    EXPECT_EQ(r->console.stats().reconnects, 1u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(ConsoleReconnect, DrainedOnlyOnceTheDaemonReadEverything) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->console.write("x\n");
    EXPECT_FALSE(r->console.drained());  // in out[], unread
    r->d.drain();
    EXPECT_TRUE(r->console.drained());
}

TEST(ConsoleHostile, OutConsAheadOfOutProdGoesToFallback) {
    auto r = rig();
    r->console.write("before\n");
    r->d.set_out_cons(r->d.ring()->out_prod + 5);  // claims to have read what was never written
    r->console.write("during\n");
    r->console.write("after\n");
    EXPECT_TRUE(r->console.broken());
    EXPECT_EQ(r->console.stats().errors, 1u);
    EXPECT_NE(g_fallback.find("out_cons"), std::string::npos) << g_fallback;
    EXPECT_EQ(g_fallback.substr(g_fallback.size() - 13), "during\nafter\n");
    EXPECT_EQ(r->d.output(), "before\r\n");
}

TEST(ConsoleHostile, OutConsFarBehindGoesToFallback) {
    auto r = rig(5000);
    r->d.set_out_cons(5000 - 3000);  // more than a ring's worth "unread"
    r->console.write("x");
    EXPECT_TRUE(r->console.broken());
    EXPECT_EQ(r->console.stats().errors, 1u);
    EXPECT_EQ(g_fallback.back(), 'x');
}

TEST(ConsoleHostile, BreakWithABacklogLosesNothing) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_drain_per_wake(512);
    const std::string text = sample(6000);
    r->console.write(text);
    for (int i = 0; i < 3; ++i) {
        r->d.port().wait();
        r->console.on_event();
    }
    // The backend turns hostile: the next event abandons the ring.
    const std::uint32_t prod = r->d.ring()->out_prod;
    std::string in_ring;
    for (std::uint32_t i = static_cast<std::uint32_t>(r->d.output().size()); i != prod; ++i)
        in_ring.push_back(r->d.ring()->out[i % 2048]);
    r->d.set_out_cons(prod + 1);
    r->console.on_event();
    r->console.write("after\n");
    EXPECT_TRUE(r->console.broken());
    EXPECT_EQ(r->console.stats().errors, 1u);
    EXPECT_EQ(r->console.backlog(), 0u);
    const std::string header_end = "output continues here\n";
    const std::size_t cut = g_fallback.find(header_end);
    ASSERT_NE(cut, std::string::npos);
    // Drained + still in the ring + the backlog handed to the fallback == everything, in order.
    EXPECT_EQ(r->d.output() + in_ring + g_fallback.substr(cut + header_end.size()), crlf(text) + "after\n");
}

TEST(ConsoleHostile, InProdBeyondTheRingIsCountedAndInputStops) {
    auto r = rig();
    int calls = 0;
    r->console.set_input_handler([&](std::string_view) { ++calls; });
    r->d.set_in_prod(r->d.ring()->in_cons + 5000);
    r->console.on_event();
    r->console.on_event();
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(r->console.stats().errors, 1u);
    EXPECT_TRUE(r->console.broken());
    EXPECT_NE(g_fallback.find("in_prod"), std::string::npos);
    r->console.write("still heard\n");
    EXPECT_EQ(g_fallback.substr(g_fallback.size() - 12), "still heard\n");
}

TEST(ConsoleHostile, NoFallbackStillNeverHangs) {
    FakeXenconsoled d;
    Console c(d.ring(), d.port());
    d.set_out_cons(12345);
    c.write("lost, but counted\n");
    c.on_event();
    EXPECT_TRUE(c.broken());
    EXPECT_EQ(c.stats().errors, 1u);
    EXPECT_EQ(c.stats().dropped_bytes, 18u);
}

// ---- a backend on another thread, touching the page concurrently ---------------------------

TEST(ConsoleConcurrent, DaemonThreadDrainsWhileTheGuestWrites) {
    struct alignas(4096) Page {
        xencons_interface ring;
    };
    auto page = std::make_unique<Page>();
    volatile xencons_interface* ring = &page->ring;
    struct YieldPort : xen::EventChannel {
        std::atomic<int> kicks{0};
        void notify() override { kicks.fetch_add(1, std::memory_order_relaxed); }
        void wait() override { std::this_thread::yield(); }
        void set_handler(Function<void()>) override {}
    } port;
    std::atomic<bool> done{false};
    std::string got;
    std::thread daemon([&] {
        std::uint32_t cons = 0;
        for (;;) {
            const bool last = done.load(std::memory_order_acquire);
            const std::uint32_t prod = __atomic_load_n(&ring->out_prod, __ATOMIC_ACQUIRE);
            while (cons != prod) got.push_back(ring->out[MASK_XENCONS_IDX(cons++, ring->out)]);
            __atomic_store_n(&ring->out_cons, cons, __ATOMIC_RELEASE);
            if (last && cons == __atomic_load_n(&ring->out_prod, __ATOMIC_ACQUIRE)) break;
            std::this_thread::yield();
        }
    });
    Console c(ring, port);
    std::string expected;
    for (int i = 0; i < 2000; ++i) {
        const std::string line = "concurrent line " + std::to_string(i) + "\n";
        c.write(line);
        expected += crlf(line);
        while (c.backlog() > Console::backlog_bytes / 2) c.on_event();  // as the event handler would
    }
    while (c.backlog() != 0) c.on_event();
    done.store(true, std::memory_order_release);
    daemon.join();
    EXPECT_EQ(got, expected);
    EXPECT_EQ(c.stats().errors, 0u);
    EXPECT_EQ(c.stats().dropped_bytes, 0u);
}

}  // namespace
}  // namespace keel::console

namespace keel::console {
namespace {

// ---- the fake itself: a guest that breaks the ring fails the test --------------------------

TEST(FakeXenconsoledEnforces, OutProdBeyondTheFreeSpace) {
    FakeXenconsoled d;
    d.ring()->out_prod = 2049;
    EXPECT_NONFATAL_FAILURE(d.drain(), "beyond the free space");
}

TEST(FakeXenconsoledEnforces, OutProdBackwards) {
    FakeXenconsoled d(100);
    d.ring()->out_prod = 99;
    EXPECT_NONFATAL_FAILURE(d.drain(), "backwards");
}

TEST(FakeXenconsoledEnforces, GuestWritingBackendIndices) {
    FakeXenconsoled d;
    d.ring()->out_cons = 1;
    EXPECT_NONFATAL_FAILURE(d.drain(), "out_cons");
    FakeXenconsoled d2;
    d2.type("x");
    d2.ring()->in_cons = 7;
    EXPECT_NONFATAL_FAILURE(d2.type("y"), "in_cons");
}

}  // namespace
}  // namespace keel::console

namespace keel::console {
namespace {

// A stalled xenconsoled must never hold the guest: write() returns without a single wait,
// what does not fit the ring waits in a bounded backlog, what does not fit that is dropped
// and counted, and once the backend drains again the gap is reported in the output itself.
TEST(ConsoleStalled, WriteNeverWaitsAndTheDroppedBytesAreReported) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_stalled(true);
    std::string expected;
    std::size_t offered = 0;
    for (int i = 0; i < 2000; ++i) {
        const std::string line = "stalled line " + std::to_string(i) + "\n";
        r->console.write(line);
        offered += crlf(line).size();
    }
    EXPECT_EQ(r->d.port().waits, 0);
    EXPECT_FALSE(r->console.broken());
    const std::uint64_t dropped = r->console.stats().dropped_bytes;
    EXPECT_GT(dropped, 0u);
    EXPECT_LT(dropped, offered);

    r->d.set_stalled(false);  // the backend comes back and signals each time it drained
    for (int i = 0; i < 100 && r->console.backlog() != 0; ++i) {
        r->d.drain();
        r->console.on_event();
    }
    r->console.write("after\n");
    r->d.drain();
    const std::string& out = r->d.output();
    EXPECT_EQ(out.substr(0, 18), "stalled line 0\r\nst");
    const std::string gap = "[console: " + std::to_string(dropped) + " bytes dropped]\r\n";
    const std::size_t at = out.find(gap);
    ASSERT_NE(at, std::string::npos) << out.substr(out.size() > 200 ? out.size() - 200 : 0);
    EXPECT_EQ(out.substr(at + gap.size()), "after\r\n");
    EXPECT_EQ(out.size() - gap.size() - 7, offered - dropped);  // everything else arrived
    EXPECT_EQ(r->console.stats().gaps, 1u);
    EXPECT_EQ(r->d.violations(), 0);
}

}  // namespace
}  // namespace keel::console

namespace keel::console {
namespace {

// The crash path waits for xenconsoled, but a stalled one costs a fixed number of waits, once.
TEST(ConsoleStalled, FlushSyncWaitsABoundedNumberOfTimesInAll) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_stalled(true);
    r->console.write(sample(3000));
    r->console.flush_sync();
    EXPECT_EQ(r->console.stats().waits, Console::sync_waits_without_progress);
    r->console.flush_sync();
    EXPECT_EQ(r->console.stats().waits, Console::sync_waits_without_progress);
}

TEST(ConsoleStalled, FlushSyncDeliversEverythingToASlowBackend) {
    auto r = rig();
    r->d.set_drain_on_notify(false);
    r->d.set_drain_per_wake(300);
    const std::string text = sample(9000);
    r->console.write(text);
    r->console.flush_sync();
    r->d.drain();
    EXPECT_EQ(r->d.output(), crlf(text));
}

}  // namespace
}  // namespace keel::console
