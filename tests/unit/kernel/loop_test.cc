// EventLoop and Timer against a fake platform with a virtual clock.
#include "keel/loop.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "keel/timer.h"
#include "fakes/fake_loop.h"

namespace keel {
namespace {

using test::LoopTest;

TEST_F(LoopTest, CurrentLoop) {
    EXPECT_EQ(&keel::loop(), &loop);
    EXPECT_EQ(current_loop(), &loop);
    EXPECT_EQ(loop.now(), platform.now);
}

TEST_F(LoopTest, PostRunsFifoFromTheLoop) {
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(loop.post([&order, i] { order.push_back(i); }).ok());
    EXPECT_TRUE(order.empty());  // never inline
    EXPECT_EQ(loop.queued(), 5u);
    EXPECT_TRUE(loop.run_once(false));
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(loop.run_once(false));
}

TEST_F(LoopTest, WorkPostedByWorkWaitsForTheNextIteration) {
    std::vector<int> order;
    ASSERT_TRUE(loop.post([&] {
                        order.push_back(1);
                        (void)loop.post([&] { order.push_back(3); });
                    })
                    .ok());
    ASSERT_TRUE(loop.post([&] { order.push_back(2); }).ok());
    loop.run_once(true);
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
    EXPECT_EQ(platform.idles, 0);  // something is still queued: no idling
    loop.run_once(true);
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(LoopTest, PostCapacity) {
    int ran = 0;
    std::size_t accepted = 0;
    while (loop.post([&ran] { ++ran; }).ok()) ++accepted;
    EXPECT_GE(accepted, 256u);
    EXPECT_EQ(accepted, EventLoop::post_capacity);
    EXPECT_EQ(loop.post([] {}).error(), Error::no_space);
    loop.run_once(false);
    EXPECT_EQ(ran, static_cast<int>(accepted));
    // Room again, and the ring wraps correctly.
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < EventLoop::post_capacity - 7; ++i)
            ASSERT_TRUE(loop.post([&ran] { ++ran; }).ok());
        loop.run_once(false);
    }
    EXPECT_EQ(ran, static_cast<int>(accepted + 3 * (EventLoop::post_capacity - 7)));
}

TEST_F(LoopTest, PostRejectsEmptyFunction) { EXPECT_EQ(loop.post(nullptr).error(), Error::invalid_argument); }

TEST_F(LoopTest, IdlesOnlyWhenNothingIsReadyAndArmsNothingWithoutTimers) {
    EXPECT_FALSE(loop.run_once(true));
    EXPECT_EQ(platform.idles, 1);
    ASSERT_EQ(platform.arms.size(), 1u);
    EXPECT_EQ(platform.arms[0], 0u);

    (void)loop.post([] {});
    (void)loop.post([&] { (void)loop.post([] {}); });
    EXPECT_TRUE(loop.run_once(true));
    EXPECT_EQ(platform.idles, 1);  // work is queued
    EXPECT_TRUE(loop.run_once(true));
    EXPECT_EQ(platform.idles, 2);  // ran the last item, then nothing left: idle

    EXPECT_FALSE(loop.run_once(false));
    EXPECT_EQ(platform.idles, 2);  // may_idle = false never idles
}

TEST_F(LoopTest, EventsArePolledEveryIteration) {
    int handled = 0;
    platform.events = [&] {
        if (platform.polls > 2) return false;
        ++handled;
        return true;
    };
    EXPECT_TRUE(loop.run_once(false));
    EXPECT_TRUE(loop.run_once(false));
    EXPECT_FALSE(loop.run_once(false));
    EXPECT_EQ(handled, 2);
    EXPECT_EQ(platform.polls, 3);
}

TEST_F(LoopTest, EventHandlerWorkRunsInTheSameIteration) {
    std::vector<std::string> order;
    platform.events = [&] {
        if (platform.polls == 1) {
            order.push_back("event");
            (void)loop.post([&] { order.push_back("posted"); });
            return true;
        }
        return false;
    };
    loop.run_once(true);
    EXPECT_EQ(order, (std::vector<std::string>{"event", "posted"}));
    EXPECT_EQ(platform.idles, 1);
}

TEST_F(LoopTest, TimersFireInDeadlineOrderThenStartOrder) {
    std::vector<int> order;
    Timer a, b, c, d;
    const std::uint64_t t0 = platform.now;
    c.start_at(t0 + 300, [&] { order.push_back(3); });
    a.start_at(t0 + 100, [&] { order.push_back(1); });
    d.start_at(t0 + 300, [&] { order.push_back(4); });  // same deadline as c: after c
    b.start_in(200, [&] { order.push_back(2); });
    EXPECT_TRUE(a.active() && b.active() && c.active() && d.active());
    EXPECT_EQ(b.deadline(), t0 + 200);
    EXPECT_EQ(loop.next_deadline(), t0 + 100);

    ASSERT_TRUE(run_until([&] { return order.size() == 4; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_FALSE(a.active() || b.active() || c.active() || d.active());
    EXPECT_EQ(loop.next_deadline(), 0u);
}

TEST_F(LoopTest, IdleArmsTheEarliestDeadlineFirst) {
    Timer late, early;
    late.start_in(ms(50), [] {});
    early.start_in(ms(5), [] {});
    platform.arms.clear();

    loop.run_once(true);  // nothing due: arm the earliest, idle (virtual time jumps there)
    ASSERT_EQ(platform.arms.size(), 1u);
    EXPECT_EQ(platform.arms[0], early.deadline());
    EXPECT_EQ(platform.idles, 1);
    EXPECT_TRUE(early.active());  // fires on the next iteration, after the wakeup

    loop.run_once(true);
    EXPECT_FALSE(early.active());
    ASSERT_EQ(platform.arms.size(), 2u);
    EXPECT_EQ(platform.arms[1], late.deadline());
}

TEST_F(LoopTest, DueTimerFiresBeforeIdling) {
    Timer t;
    int fired = 0;
    t.start_in(10, [&] { ++fired; });
    platform.now += 10;
    platform.events = [&] { return false; };
    EXPECT_TRUE(loop.run_once(true));
    EXPECT_EQ(fired, 1);
    EXPECT_EQ(platform.idles, 1);  // fired, then nothing left: idled with nothing armed
    EXPECT_EQ(platform.arms.back(), 0u);
}

TEST_F(LoopTest, CancelAndRestart) {
    int fired = 0;
    Timer t;
    t.start_in(100, [&] { fired += 1; });
    t.cancel();
    EXPECT_FALSE(t.active());
    t.cancel();  // idempotent
    t.start_in(100, [&] { fired += 10; });
    t.start_in(200, [&] { fired += 100; });  // restart replaces
    ASSERT_TRUE(run_until([&] { return fired != 0; }));
    EXPECT_EQ(fired, 100);
    EXPECT_EQ(platform.now, 1'000'000u + 200u);
}

TEST_F(LoopTest, CancelDestroysTheCallback) {
    auto token = std::make_shared<int>(1);
    Timer t;
    t.start_in(100, [token] {});
    EXPECT_EQ(token.use_count(), 2);
    t.cancel();
    EXPECT_EQ(token.use_count(), 1);
}

TEST_F(LoopTest, DestroyingATimerCancelsIt) {
    int fired = 0;
    {
        Timer t;
        t.start_in(100, [&] { ++fired; });
    }
    platform.now += 1000;
    loop.run_once(false);
    EXPECT_EQ(fired, 0);
}

TEST_F(LoopTest, CallbackMayRestartItsOwnTimerWithoutLivelock) {
    Timer t;
    int fired = 0;
    std::function<void()> again = [&] {
        ++fired;
        t.start_in(0, [&] { again(); });  // due immediately: must wait for the next iteration
    };
    t.start_in(0, [&] { again(); });
    loop.run_once(false);
    EXPECT_EQ(fired, 1);
    loop.run_once(false);
    EXPECT_EQ(fired, 2);
    t.cancel();
}

TEST_F(LoopTest, CallbackMayCancelAnotherDueTimer) {
    Timer a, b;
    int fired = 0;
    a.start_in(10, [&] {
        ++fired;
        b.cancel();
    });
    b.start_in(10, [&] { fired += 100; });
    platform.now += 10;
    loop.run_once(false);
    EXPECT_EQ(fired, 1);
}

TEST_F(LoopTest, CallbackMayDestroyItsTimer) {
    auto t = std::make_unique<Timer>();
    bool fired = false;
    t->start_in(1, [&] {
        fired = true;
        t.reset();
    });
    platform.now += 1;
    loop.run_once(false);
    EXPECT_TRUE(fired);
    EXPECT_EQ(t, nullptr);
}

TEST_F(LoopTest, PastDeadlineFiresNextIteration) {
    Timer t;
    bool fired = false;
    t.start_at(5, [&] { fired = true; });
    EXPECT_FALSE(fired);
    loop.run_once(false);
    EXPECT_TRUE(fired);
}

TEST_F(LoopTest, StartInSaturates) {
    Timer t;
    t.start_in(~0ull, [] {});
    EXPECT_EQ(t.deadline(), ~0ull);
}

TEST_F(LoopTest, RunUntilStop) {
    Timer t;
    int ticks = 0;
    std::function<void()> tick = [&] {
        if (++ticks == 5)
            loop.stop();
        else
            t.start_in(ms(10), [&] { tick(); });
    };
    t.start_in(ms(10), [&] { tick(); });
    const std::uint64_t t0 = platform.now;
    loop.run();
    EXPECT_EQ(ticks, 5);
    EXPECT_EQ(platform.now - t0, ms(50));
    EXPECT_FALSE(loop.stopping());  // cleared on return: run() can be used again
    (void)loop.post([&] { loop.stop(); });
    loop.run();
}

TEST_F(LoopTest, StopPreventsIdle) {
    (void)loop.post([&] { loop.stop(); });
    loop.run_once(true);
    EXPECT_EQ(platform.idles, 0);
    EXPECT_TRUE(loop.stopping());
}

TEST_F(LoopTest, WakeupsRunOnceFromTheLoopAndCanBeCancelled) {
    int a = 0, b = 0;
    Wakeup wa([](void* p) { ++*static_cast<int*>(p); }, &a);
    Wakeup wb([](void* p) { ++*static_cast<int*>(p); }, &b);
    loop.schedule(wa);
    loop.schedule(wa);  // already pending: no-op
    loop.schedule(wb);
    EXPECT_TRUE(wa.pending());
    wb.cancel();
    EXPECT_FALSE(wb.pending());
    loop.run_once(true);
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 0);
    EXPECT_FALSE(wa.pending());
    EXPECT_EQ(platform.idles, 1);
    {
        Wakeup gone([](void* p) { ++*static_cast<int*>(p); }, &b);
        loop.schedule(gone);
    }
    loop.run_once(false);
    EXPECT_EQ(b, 0);
}

TEST_F(LoopTest, WakeupScheduledByPostedWorkRunsInTheSameIteration) {
    int n = 0;
    Wakeup w([](void* p) { ++*static_cast<int*>(p); }, &n);
    (void)loop.post([&] { loop.schedule(w); });
    loop.run_once(true);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(platform.idles, 1);
}

TEST_F(LoopTest, PendingWakeupPreventsIdle) {
    struct Rearm {
        EventLoop* l;
        int n = 0;
        Wakeup w{&fire, this};
        static void fire(void* p) {
            auto* r = static_cast<Rearm*>(p);
            if (++r->n == 1) r->l->schedule(r->w);  // again: for the next iteration
        }
    } r{&loop};
    loop.schedule(r.w);
    loop.run_once(true);
    EXPECT_EQ(r.n, 1);
    EXPECT_EQ(platform.idles, 0);
    loop.run_once(true);
    EXPECT_EQ(r.n, 2);
    EXPECT_EQ(platform.idles, 1);
}

TEST_F(LoopTest, DestroyingTheLoopDeactivatesTimers) {
    test::FakePlatform p2;
    Timer t;
    {
        EventLoop other(p2);
        set_loop(&other);
        t.start_in(10, [] {});
        EXPECT_TRUE(t.active());
    }
    EXPECT_EQ(current_loop(), nullptr);
    EXPECT_FALSE(t.active());
    set_loop(&loop);
}

TEST(TimeUnits, Helpers) {
    EXPECT_EQ(ns(5), 5u);
    EXPECT_EQ(us(5), 5'000u);
    EXPECT_EQ(ms(5), 5'000'000u);
    EXPECT_EQ(s(5), 5'000'000'000u);
    using namespace keel::literals;
    EXPECT_EQ(250_ms, ms(250));
    EXPECT_EQ(2_s, s(2));
    EXPECT_EQ(7_us, us(7));
    EXPECT_EQ(9_ns, 9u);
}

TEST(LoopDeathTest, LoopBeforeSetLoopPanics) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            set_loop(nullptr);
            Timer t;
            t.start_in(1, [] {});
        },
        "assertion failed: g_loop != nullptr");
}

}  // namespace
}  // namespace keel
