// Log line format, levels, cutting of long lines.
#include "keel/log.h"

#include <gtest/gtest.h>

#include <string>

#include "fakes/fake_loop.h"

namespace keel {
namespace {

std::uint64_t g_fake_ns = 0;
std::uint64_t fake_clock() { return g_fake_ns; }

class LogTest : public ::testing::Test {
protected:
    LogTest() {
        set_log_sink(&sink);
        set_log_clock(fake_clock);
        set_log_level(LogLevel::debug);
    }
    ~LogTest() override {
        set_log_sink(nullptr);
        set_log_clock(nullptr);
        EXPECT_TRUE(set_log_levels("info").ok());  // the boot default, no subsystem levels
    }
    test::CaptureSink sink;
};

TEST_F(LogTest, LineFormat) {
    g_fake_ns = 1'234'567'891;
    KLOG_INFO("hello %d", 42);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(sink.lines[0], "[     1.234567] info: hello 42\n");

    g_fake_ns = 0;
    KLOG_DEBUG("d");
    KLOG_WARN("w");
    KLOG_ERROR("e");
    EXPECT_EQ(sink.lines[1], "[     0.000000] debug: d\n");
    EXPECT_EQ(sink.lines[2], "[     0.000000] warn: w\n");
    EXPECT_EQ(sink.lines[3], "[     0.000000] error: e\n");

    g_fake_ns = 1'234'567'000'000'000ull;  // wider than 6 digits: grows, never truncates
    KLOG_INFO("late");
    EXPECT_EQ(sink.lines[4], "[1234567.000000] info: late\n");
}

TEST_F(LogTest, NoClockMeansZero) {
    set_log_clock(nullptr);
    KLOG_INFO("x");
    EXPECT_EQ(sink.lines.at(0), "[     0.000000] info: x\n");
}

TEST_F(LogTest, TrailingNewlineNotDoubled) {
    g_fake_ns = 0;
    KLOG_INFO("one\n");
    KLOG_INFO("two\n\n");  // only one is ours to drop
    KLOG_INFO("%s", "");
    EXPECT_EQ(sink.lines.at(0), "[     0.000000] info: one\n");
    EXPECT_EQ(sink.lines.at(1), "[     0.000000] info: two\n\n");
    EXPECT_EQ(sink.lines.at(2), "[     0.000000] info: \n");
}

TEST_F(LogTest, LongLinesAreCut) {
    g_fake_ns = 0;
    const std::string prefix = "[     0.000000] info: ";
    // Exactly max_log_line with our newline: kept whole.
    std::string fits(max_log_line - prefix.size() - 1, 'a');
    KLOG_INFO("%s", fits.c_str());
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(sink.lines[0], prefix + fits + "\n");
    EXPECT_EQ(sink.lines[0].size(), max_log_line);

    // Same, with the text's own trailing newline: still whole.
    KLOG_INFO("%s\n", fits.c_str());
    EXPECT_EQ(sink.lines[1], prefix + fits + "\n");

    // One more character: cut to max_log_line, ending in "...\n".
    std::string over = fits + "b";
    KLOG_INFO("%s", over.c_str());
    EXPECT_EQ(sink.lines[2].size(), max_log_line);
    EXPECT_EQ(sink.lines[2], prefix + fits.substr(0, fits.size() - 3) + "...\n");

    std::string huge(5000, 'z');
    KLOG_WARN("%s", huge.c_str());
    EXPECT_EQ(sink.lines[3].size(), max_log_line);
    EXPECT_EQ(sink.lines[3].substr(max_log_line - 4), "...\n");
}

TEST_F(LogTest, LevelFilter) {
    set_log_level(LogLevel::warn);
    EXPECT_EQ(log_level(), LogLevel::warn);
    KLOG_DEBUG("no");
    KLOG_INFO("no");
    KLOG_WARN("yes");
    KLOG_ERROR("yes");
    EXPECT_EQ(sink.lines.size(), 2u);
}

TEST_F(LogTest, NoSinkIsFine) {
    set_log_sink(nullptr);
    EXPECT_EQ(log_sink(), nullptr);
    KLOG_ERROR("nowhere %d", 1);
    set_log_sink(&sink);
    EXPECT_EQ(log_sink(), &sink);
    EXPECT_TRUE(sink.lines.empty());
}

TEST(LogLevelNames, ToString) {
    EXPECT_STREQ(to_string(LogLevel::debug), "debug");
    EXPECT_STREQ(to_string(LogLevel::info), "info");
    EXPECT_STREQ(to_string(LogLevel::warn), "warn");
    EXPECT_STREQ(to_string(LogLevel::error), "error");
}

// loglevel=warn,netfront=debug: warnings and errors everywhere, netfront's debug lines too.
TEST_F(LogTest, CommandLineLevelsPerSubsystem) {
    ASSERT_TRUE(set_log_levels("warn,netfront=debug,xenbus=error").ok());
    EXPECT_EQ(log_level(), LogLevel::warn);
    KLOG_INFO("kvstore: serving");
    KLOG_WARN("kvstore: slow disk");
    KLOG_DEBUG("netfront: rx %d", 1);
    KLOG_DEBUG("netfronts: not netfront");
    KLOG_WARN("xenbus: retrying");
    KLOG_ERROR("xenbus: gave up");
    KLOG_INFO("no subsystem here");
    ASSERT_EQ(sink.lines.size(), 3u);
    EXPECT_NE(sink.lines[0].find("warn: kvstore: slow disk"), std::string::npos);
    EXPECT_NE(sink.lines[1].find("debug: netfront: rx 1"), std::string::npos);
    EXPECT_NE(sink.lines[2].find("error: xenbus: gave up"), std::string::npos);
}

// A bad value changes nothing and says so.
TEST_F(LogTest, BadLevelSpecsAreRefusedWhole) {
    ASSERT_TRUE(set_log_levels("error").ok());
    for (const char* bad : {"", "loud", "warn,", "warn,netfront", "warn,=debug", "warn,netfront=loud",
                            "netfront=debug", "warn,Net=debug", "warn,a=info,b=info,c=info,d=info,e=info,f=info,g=info,h=info,i=info",
                            "warn,averyveryverylongname=info"}) {
        EXPECT_FALSE(set_log_levels(bad).ok()) << bad;
        EXPECT_EQ(log_level(), LogLevel::error) << bad;
    }
    KLOG_WARN("netfront: dropped");
    EXPECT_TRUE(sink.lines.empty());
}

}  // namespace
}  // namespace keel
