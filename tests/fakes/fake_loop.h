// Test support for the kernel runtime: a LoopPlatform with a virtual clock, a fixture that
// installs an EventLoop over it (and one that runs coroutine tasks on it), and a log sink that
// keeps lines.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "keel/log.h"
#include "keel/loop.h"
#include "keel/panic.h"
#include "keel/task.h"

namespace keel::test {

/// Virtual time: idle() jumps the clock to the armed deadline, like a halted vCPU woken by its
/// one-shot timer.
struct FakePlatform : LoopPlatform {
    std::uint64_t now = 1'000'000;  // not 0, so "deadline 0" bugs show
    std::uint64_t armed = 0;
    std::vector<std::uint64_t> arms;  // every arm_timer() argument
    int idles = 0;
    int polls = 0;
    std::function<bool()> events;  // poll_events() body; may dispatch "event handlers"

    std::uint64_t now_ns() override { return now; }
    void arm_timer(std::uint64_t deadline_ns) override {
        armed = deadline_ns;
        arms.push_back(deadline_ns);
    }
    bool poll_events() override {
        ++polls;
        return events ? events() : false;
    }
    void idle() override {
        ++idles;
        if (armed > now) now = armed;
    }
};

class LoopTest : public ::testing::Test {
protected:
    LoopTest() { set_loop(&loop); }
    ~LoopTest() override { set_loop(nullptr); }

    /// Spin the loop (idling allowed) until `done` or `max` iterations.
    bool run_until(const std::function<bool()>& done, int max = 100000) {
        for (int i = 0; i < max; ++i) {
            if (done()) return true;
            loop.run_once(true);
        }
        return done();
    }

    FakePlatform platform;
    EventLoop loop{platform};
};

/// A LoopTest for coroutine tasks: runs one to completion on the loop, and fails the test if a
/// task frame outlives the fixture.
class TaskLoopTest : public LoopTest {
protected:
    TaskLoopTest() : frames_before_(live_task_frames()) {}
    ~TaskLoopTest() override { EXPECT_EQ(live_task_frames(), frames_before_) << "a task frame leaked"; }

    /// Stores the result of `t` in `out` when it completes: spawn() this to run a task with a
    /// value.
    template <typename T>
    static Task<void> capture(Task<T> t, std::optional<T>& out) {
        out.emplace(co_await std::move(t));
    }

    /// Run a task to completion on the loop; its result.
    template <typename T>
    T run(Task<T> t) {
        std::optional<T> out;
        spawn(capture(std::move(t), out));
        EXPECT_TRUE(run_until([&] { return out.has_value(); }));
        return std::move(*out);
    }
    void run_void(Task<void> t) {
        bool done = false;
        spawn(set_when_done(std::move(t), done));
        EXPECT_TRUE(run_until([&] { return done; }));
    }

private:
    static Task<void> set_when_done(Task<void> t, bool& done) {
        co_await std::move(t);
        done = true;
    }

    std::size_t frames_before_;
};

struct CaptureSink : LogSink {
    std::vector<std::string> lines;
    void write(std::string_view line) override { lines.emplace_back(line); }
};

/// For death tests: print the panic message where EXPECT_DEATH looks, then die.
[[noreturn]] inline void die_on_panic(const char* message) {
    std::fprintf(stderr, "PANIC: %s\n", message);
    std::fflush(stderr);
    std::abort();
}

}  // namespace keel::test
