// panic() and KASSERT: message formatting, logging, handler, nested panics.
#include "keel/panic.h"

#include <gtest/gtest.h>

#include "fakes/fake_loop.h"

namespace keel {
namespace {

using test::die_on_panic;

TEST(PanicDeathTest, CallsHandlerWithMessage) {
    EXPECT_DEATH(
        {
            set_panic_handler(die_on_panic);
            panic("broken %s %d", "thing", 7);
        },
        "PANIC: broken thing 7");
}

TEST(PanicDeathTest, DefaultHandlerTraps) {
    EXPECT_DEATH(
        {
            set_panic_handler(nullptr);
            panic("no handler");
        },
        "");
}

// A handler that returns (it must not) still does not return from panic().
void returning_handler(const char*) {}
TEST(PanicDeathTest, ReturningHandlerStillDies) {
    EXPECT_DEATH(
        {
            set_panic_handler(returning_handler);
            panic("x");
        },
        "");
}

struct StderrSink : LogSink {
    void write(std::string_view line) override {
        fprintf(stderr, "LOG %.*s", static_cast<int>(line.size()), line.data());
    }
};

TEST(PanicDeathTest, LogsBeforeHandler) {
    EXPECT_DEATH(
        {
            static StderrSink sink;
            set_log_sink(&sink);
            set_panic_handler(die_on_panic);
            panic("disk on fire");
        },
        "LOG \\[ +0\\.000000\\] error: panic: disk on fire\n.*PANIC: disk on fire");
}

// The log sink itself panics: the second panic goes straight to the handler.
struct PanickingSink : LogSink {
    void write(std::string_view) override { panic("sink broke"); }
};
TEST(PanicDeathTest, NestedPanicSkipsLog) {
    EXPECT_DEATH(
        {
            static PanickingSink sink;
            set_log_sink(&sink);
            set_panic_handler(die_on_panic);
            panic("first");
        },
        "PANIC: nested panic: sink broke");
}

TEST(PanicDeathTest, KassertNamesConditionAndPlace) {
    EXPECT_DEATH(
        {
            set_panic_handler(die_on_panic);
            int two = 2;
            KASSERT(two == 3);
        },
        "PANIC: assertion failed: two == 3 at panic_test.cc:[0-9]+");
}

TEST(Panic, KassertPassesQuietly) {
    int one = 1;
    KASSERT(one == 1);
    SUCCEED();
}

}  // namespace
}  // namespace keel
