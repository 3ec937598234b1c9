// Coroutine tasks on a loop with a virtual clock.
#include "keel/task.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_loop.h"

namespace keel {
namespace {

/// Counts live instances: put one in a coroutine body to see its frame torn down.
struct Alive {
    static inline int count = 0;
    Alive() { ++count; }
    Alive(const Alive&) = delete;
    ~Alive() { --count; }
};

// Tasks on a loop whose clock is virtual: test::TaskLoopTest runs them and checks for leaked frames.
using TaskTest = test::TaskLoopTest;

Task<int> constant(int v) { co_return v; }

Task<int> add_children(int a, int b) {
    const int x = co_await constant(a);
    const int y = co_await constant(b);
    co_return x + y;
}

Task<int> nested(int depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await nested(depth - 1);
}

TEST_F(TaskTest, LazyUntilAwaited) {
    bool started = false;
    auto body = [](bool& flag) -> Task<int> {
        flag = true;
        co_return 7;
    };
    Task<int> t = body(started);
    EXPECT_FALSE(started);
    EXPECT_TRUE(t.valid());
    EXPECT_FALSE(t.done());
    EXPECT_EQ(run(std::move(t)), 7);
    EXPECT_TRUE(started);
    EXPECT_FALSE(t.valid());  // NOLINT: moved-from on purpose
}

TEST_F(TaskTest, NestedAwaitReturnsValues) {
    EXPECT_EQ(run(add_children(2, 40)), 42);
    EXPECT_EQ(run(nested(500)), 500);
}

TEST_F(TaskTest, MoveOnlyResult) {
    auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(9); };
    std::unique_ptr<int> p = run(make());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 9);
}

TEST_F(TaskTest, ResultTypes) {
    auto ok = []() -> Task<Result<int>> { co_return 5; };
    auto bad = []() -> Task<Result<int>> { co_return Error::timed_out; };
    EXPECT_EQ(run(ok()).value(), 5);
    EXPECT_EQ(run(bad()).error(), Error::timed_out);
}

TEST_F(TaskTest, TaskMoveAssignmentDestroysTheOldFrame) {
    auto body = []() -> Task<int> {
        Alive a;
        co_return 1;
    };
    Task<int> t = body();
    Task<int> u = body();
    t = std::move(u);  // the first frame (never started) goes away
    EXPECT_EQ(run(std::move(t)), 1);
    EXPECT_EQ(Alive::count, 0);
}

TEST_F(TaskTest, SpawnRunsUntilFirstSuspensionAndFreesTheFrame) {
    std::vector<std::string> steps;
    const std::size_t frames = live_task_frames();
    auto body = [](std::vector<std::string>& s) -> Task<void> {
        Alive a;
        s.push_back("start");
        co_await sleep_for(ms(1));
        s.push_back("end");
    };
    spawn(body(steps));
    EXPECT_EQ(steps, (std::vector<std::string>{"start"}));
    EXPECT_EQ(Alive::count, 1);
    EXPECT_EQ(live_task_frames(), frames + 1);
    ASSERT_TRUE(run_until([&] { return steps.size() == 2; }));
    EXPECT_EQ(Alive::count, 0);
    EXPECT_EQ(live_task_frames(), frames);
}

TEST_F(TaskTest, SpawnThatNeverSuspendsIsFreedAtOnce) {
    const std::size_t frames = live_task_frames();
    int ran = 0;
    for (int i = 0; i < 1000; ++i) {
        spawn([](int& r) -> Task<void> {
            Alive a;
            co_await constant(1);
            ++r;
        }(ran));
    }
    EXPECT_EQ(ran, 1000);
    EXPECT_EQ(Alive::count, 0);
    EXPECT_EQ(live_task_frames(), frames);
}

TEST_F(TaskTest, SleepUsesTheLoopClock) {
    auto body = []() -> Task<std::uint64_t> {
        const std::uint64_t t0 = keel::loop().now();
        co_await sleep_for(ms(10));
        co_await sleep_for(ms(20));
        co_await sleep_until(t0 + ms(100));
        co_await sleep_until(t0);  // in the past: still a trip through the loop
        co_await sleep_for(0);
        co_return keel::loop().now() - t0;
    };
    const std::uint64_t t0 = platform.now;
    platform.arms.clear();
    EXPECT_EQ(run(body()), ms(100));
    // The loop slept exactly until each deadline (and, once the task was done, with nothing armed).
    ASSERT_GE(platform.arms.size(), 3u);
    for (std::size_t i = 3; i < platform.arms.size(); ++i) EXPECT_EQ(platform.arms[i], 0u);
    platform.arms.resize(3);
    EXPECT_EQ(platform.arms, (std::vector<std::uint64_t>{t0 + ms(10), t0 + ms(30), t0 + ms(100)}));
}

TEST_F(TaskTest, SleepersInterleaveByDeadline) {
    std::vector<int> order;
    auto sleeper = [](std::vector<int>& o, int id, std::uint64_t d) -> Task<void> {
        co_await sleep_for(d);
        o.push_back(id);
    };
    spawn(sleeper(order, 3, ms(30)));
    spawn(sleeper(order, 1, ms(10)));
    spawn(sleeper(order, 2, ms(20)));
    ASSERT_TRUE(run_until([&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(TaskTest, StartThenJoin) {
    auto child = [](std::uint64_t d, int v) -> Task<int> {
        co_await sleep_for(d);
        co_return v;
    };
    auto parent = [](decltype(child) make) -> Task<int> {
        Task<int> a = make(ms(30), 1);
        Task<int> b = make(ms(10), 2);
        a.start();
        b.start();
        const int x = co_await a;  // b finishes while we wait for a
        const int y = co_await b;  // already done: no suspension
        co_return x * 10 + y;
    };
    const std::uint64_t t0 = platform.now;
    EXPECT_EQ(run(parent(child)), 12);
    EXPECT_EQ(platform.now - t0, ms(30));  // concurrent, not 40
}

TEST_F(TaskTest, DestroyingASleepingTaskCancelsItsTimer) {
    auto body = []() -> Task<void> {
        Alive a;
        co_await sleep_for(s(1));
    };
    Task<void> t = body();
    t.start();
    EXPECT_EQ(Alive::count, 1);
    EXPECT_NE(loop.next_deadline(), 0u);
    t = Task<void>();
    EXPECT_EQ(Alive::count, 0);
    EXPECT_EQ(loop.next_deadline(), 0u);
}

Task<void> wait_then_record(Event& e, std::vector<int>& woke, int id) {
    co_await e.wait();
    woke.push_back(id);
}

TEST_F(TaskTest, EventWakesAllWaitersFromTheLoop) {
    Event ev;
    std::vector<int> woke;
    for (int i = 0; i < 3; ++i) spawn(wait_then_record(ev, woke, i));
    loop.run_once(false);
    EXPECT_TRUE(woke.empty());
    ev.set();
    EXPECT_TRUE(woke.empty());  // never inline from set()
    EXPECT_TRUE(ev.is_set());
    loop.run_once(false);
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2}));

    spawn(wait_then_record(ev, woke, 3));  // already set: completes without suspending
    EXPECT_EQ(woke.size(), 4u);

    ev.reset();
    EXPECT_FALSE(ev.is_set());
    spawn(wait_then_record(ev, woke, 4));
    loop.run_once(false);
    EXPECT_EQ(woke.size(), 4u);
    ev.set();
    ev.reset();  // the wake-up already happened: the waiter still resumes
    loop.run_once(false);
    EXPECT_EQ(woke.size(), 5u);
}

TEST_F(TaskTest, DestroyedWaiterLeavesTheEvent) {
    Event ev;
    std::vector<int> woke;
    Task<void> t = wait_then_record(ev, woke, 1);
    t.start();
    t = Task<void>();
    ev.set();
    loop.run_once(false);
    EXPECT_TRUE(woke.empty());
}

TEST_F(TaskTest, WaiterDestroyedAfterSetBeforeResumeIsNotResumed) {
    Event ev;
    std::vector<int> woke;
    Task<void> t = wait_then_record(ev, woke, 1);
    t.start();
    ev.set();          // schedules the wakeup
    t = Task<void>();  // ... which must be withdrawn with the frame
    loop.run_once(false);
    EXPECT_TRUE(woke.empty());
}

Task<bool> wait_for_event(Event& e, std::uint64_t timeout) { co_return co_await e.wait_for(timeout); }

TEST_F(TaskTest, WaitForTimesOut) {
    Event ev;
    const std::uint64_t t0 = platform.now;
    EXPECT_FALSE(run(wait_for_event(ev, ms(5))));
    EXPECT_EQ(platform.now - t0, ms(5));
    EXPECT_EQ(loop.next_deadline(), 0u);
    ev.set();  // nobody waits any more
    loop.run_once(false);
}

TEST_F(TaskTest, WaitForSetInTime) {
    Event ev;
    std::optional<bool> r;
    spawn(capture(wait_for_event(ev, ms(50)), r));
    Timer t;
    t.start_in(ms(2), [&] { ev.set(); });
    const std::uint64_t t0 = platform.now;
    ASSERT_TRUE(run_until([&] { return r.has_value(); }));
    EXPECT_TRUE(*r);
    EXPECT_EQ(platform.now - t0, ms(2));
    EXPECT_EQ(loop.next_deadline(), 0u);  // the timeout timer was cancelled
}

TEST_F(TaskTest, WaitForAlreadySet) {
    Event ev;
    ev.set();
    std::optional<bool> r;
    spawn(capture(wait_for_event(ev, ms(50)), r));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(*r);
}

/// A callback-style operation that completes from a timer.
struct DoubleLater {
    Timer timer;
    Completion<int> pending;
    void start(int v, Completion<int> done) {
        pending = std::move(done);
        timer.start_in(ms(1), [this, v] {
            Completion<int> d = std::move(pending);
            d(v * 2);
        });
    }
};

TEST_F(TaskTest, AwaitCallbackAsync) {
    DoubleLater op;
    auto body = [](DoubleLater& o) -> Task<int> {
        const int a =
            co_await await_callback<int>([&](Completion<int> done) { o.start(20, std::move(done)); });
        const int b =
            co_await await_callback<int>([&](Completion<int> done) { o.start(a, std::move(done)); });
        co_return b + 2;
    };
    EXPECT_EQ(run(body(op)), 82);
}

TEST_F(TaskTest, AwaitCallbackCompletedInsideStartDoesNotSuspend) {
    auto body = []() -> Task<int> {
        co_return co_await await_callback<int>([](Completion<int> done) { done(5); });
    };
    std::optional<int> r;
    spawn(capture(body(), r));
    ASSERT_TRUE(r.has_value());  // no loop iteration needed
    EXPECT_EQ(*r, 5);
}

TEST_F(TaskTest, AwaitCallbackResumesFromTheLoopNotInline) {
    Completion<std::string> saved;
    std::optional<std::string> r;
    auto body = [](Completion<std::string>& slot) -> Task<std::string> {
        co_return co_await await_callback<std::string>(
            [&](Completion<std::string> done) { slot = std::move(done); });
    };
    spawn(capture(body(saved), r));
    ASSERT_TRUE(static_cast<bool>(saved));
    saved(std::string("hi"));
    EXPECT_FALSE(r.has_value());
    loop.run_once(false);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, "hi");
    saved.reset();
}

TEST_F(TaskTest, AwaitCallbackVoidAndMoveOnly) {
    auto body = []() -> Task<int> {
        co_await await_callback<void>([](Completion<void> done) { done(); });
        std::unique_ptr<int> p = co_await await_callback<std::unique_ptr<int>>(
            [](Completion<std::unique_ptr<int>> done) { done(std::make_unique<int>(3)); });
        co_return *p;
    };
    EXPECT_EQ(run(body()), 3);
}

TEST_F(TaskTest, AwaitCallbackCompletionAfterTaskDestroyedIsIgnored) {
    Completion<int> saved;
    auto body = [](Completion<int>& slot) -> Task<int> {
        Alive a;
        co_return co_await await_callback<int>([&](Completion<int> done) { slot = std::move(done); });
    };
    Task<int> t = body(saved);
    t.start();
    EXPECT_EQ(Alive::count, 1);
    t = Task<int>();
    EXPECT_EQ(Alive::count, 0);
    saved(1);  // harmless; the shared state is freed with the completion (ASan checks)
    saved.reset();
    loop.run_once(false);
}

TEST_F(TaskTest, AwaitCallbackDroppedCompletionIsLogged) {
    test::CaptureSink sink;
    set_log_sink(&sink);
    auto body = []() -> Task<int> {
        co_return co_await await_callback<int>([](Completion<int> done) { done.reset(); });
    };
    Task<int> t = body();
    t.start();
    set_log_sink(nullptr);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_NE(sink.lines[0].find("completion dropped"), std::string::npos);
    // The task can never finish; destroying it frees the frame.
}

TEST_F(TaskTest, ManyTasksNoLeaks) {
    Event go;
    int finished = 0;
    auto worker = [](Event& e, int& n, int i) -> Task<void> {
        co_await sleep_for(us(static_cast<std::uint64_t>(i % 7)));
        co_await e.wait();
        co_await await_callback<int>([](Completion<int> done) { done(1); });
        ++n;
    };
    for (int i = 0; i < 2000; ++i) spawn(worker(go, finished, i));
    loop.run_once(true);
    Timer t;
    t.start_in(ms(1), [&] { go.set(); });
    ASSERT_TRUE(run_until([&] { return finished == 2000; }));
}

using TaskDeathTest = TaskTest;

TEST_F(TaskDeathTest, CompletingTwicePanics) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            auto body = []() -> Task<int> {
                co_return co_await await_callback<int>([](Completion<int> done) {
                    done(1);
                    done(2);
                });
            };
            Task<int> t = body();
            t.start();
        },
        "assertion failed: !s_->completed");
}

TEST_F(TaskDeathTest, DestroyingAnEventWithWaitersPanics) {
    EXPECT_DEATH(
        {
            set_panic_handler(test::die_on_panic);
            auto* ev = new Event;
            spawn([](Event& e) -> Task<void> { co_await e.wait(); }(*ev));
            delete ev;
        },
        "assertion failed: waiters_.empty");
}

}  // namespace
}  // namespace keel
