// Command-line parsing: the grammar, and an error for every kind of bad input.
#include "keel/cmdline.h"

#include <gtest/gtest.h>

#include <string>

namespace keel {
namespace {

TEST(CommandLine, Empty) {
    for (const char* text : {"", "   ", " \t\r\n "}) {
        auto r = CommandLine::parse(text);
        ASSERT_TRUE(r.ok()) << text;
        EXPECT_EQ(r->size(), 0u);
        EXPECT_TRUE(r->empty());
    }
    CommandLine none;
    EXPECT_EQ(none.size(), 0u);
    EXPECT_EQ(none.text(), "");
    EXPECT_STREQ(none.c_str(), "");
}

TEST(CommandLine, KeysAndValues) {
    auto r = CommandLine::parse("  verbose port=8080 name=\"hello world\" empty= quoted=\"\" a.b-c_D=x=y  ");
    ASSERT_TRUE(r.ok());
    const CommandLine& cl = *r;
    ASSERT_EQ(cl.size(), 6u);
    EXPECT_EQ(cl[0].key, "verbose");
    EXPECT_FALSE(cl[0].has_value);
    EXPECT_EQ(cl[1].key, "port");
    EXPECT_EQ(cl[1].value, "8080");
    EXPECT_TRUE(cl[1].has_value);
    EXPECT_EQ(cl[2].value, "hello world");
    EXPECT_TRUE(cl[3].has_value);
    EXPECT_EQ(cl[3].value, "");
    EXPECT_TRUE(cl[4].has_value);
    EXPECT_EQ(cl[4].value, "");
    EXPECT_EQ(cl[5].key, "a.b-c_D");
    EXPECT_EQ(cl[5].value, "x=y");

    EXPECT_TRUE(cl.has("verbose"));
    EXPECT_TRUE(cl.has("port"));
    EXPECT_FALSE(cl.has("missing"));
    EXPECT_FALSE(cl.has("Port"));  // case-sensitive
    EXPECT_EQ(cl.get("port"), std::optional<std::string_view>("8080"));
    EXPECT_EQ(cl.get("verbose"), std::nullopt);  // bare key: no value
    EXPECT_EQ(cl.get("missing"), std::nullopt);
    EXPECT_EQ(cl.get("empty"), std::optional<std::string_view>(""));

    std::size_t n = 0;
    for (const auto& arg : cl) {
        EXPECT_FALSE(arg.key.empty());
        ++n;
    }
    EXPECT_EQ(n, 6u);
}

TEST(CommandLine, ValuesMayHoldAnyPrintableBytes) {
    auto r = CommandLine::parse("url=http://x/y?a=b&c=d greeting=\"h\xc3\xa9llo = 'x'\" tab\tsep");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->get("url"), std::optional<std::string_view>("http://x/y?a=b&c=d"));
    EXPECT_EQ(r->get("greeting"), std::optional<std::string_view>("h\xc3\xa9llo = 'x'"));
    EXPECT_TRUE(r->has("tab"));
    EXPECT_TRUE(r->has("sep"));
}

TEST(CommandLine, KeepsItsOwnCopy) {
    std::string text = "ip=10.0.0.2 mode=\"fast path\"";
    auto r = CommandLine::parse(text);
    ASSERT_TRUE(r.ok());
    CommandLine cl = *r;
    text.assign(text.size(), 'X');  // the source memory changes (start_info reused)
    EXPECT_EQ(cl.get("ip"), std::optional<std::string_view>("10.0.0.2"));
    EXPECT_EQ(cl.text(), "ip=10.0.0.2 mode=\"fast path\"");
    EXPECT_STREQ(cl.c_str(), "ip=10.0.0.2 mode=\"fast path\"");

    // Copies point into their own buffer, not the original's.
    CommandLine copy = cl;
    CommandLine assigned;
    assigned = cl;
    cl = CommandLine();
    EXPECT_EQ(copy.get("mode"), std::optional<std::string_view>("fast path"));
    EXPECT_EQ(assigned.get("mode"), std::optional<std::string_view>("fast path"));
    EXPECT_GE(copy[0].key.data(), copy.text().data());
    EXPECT_LT(copy[0].key.data(), copy.text().data() + copy.text().size());
    EXPECT_EQ(cl.size(), 0u);
}

TEST(CommandLine, Limits) {
    std::string longest(CommandLine::max_length, 'a');
    EXPECT_TRUE(CommandLine::parse(longest).ok());

    std::string words;
    for (std::size_t i = 0; i < CommandLine::max_words; ++i) words += "k" + std::to_string(i) + " ";
    auto r = CommandLine::parse(words);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), CommandLine::max_words);
}

struct BadCase {
    std::string text;
    const char* why_contains;
    std::size_t where;
};

class CommandLineErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(CommandLineErrors, RejectedWithReason) {
    const BadCase& c = GetParam();
    const char* why = nullptr;
    std::size_t where = 12345;
    auto r = CommandLine::parse(c.text, &why, &where);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), Error::invalid_argument);
    ASSERT_NE(why, nullptr);
    EXPECT_NE(std::string(why).find(c.why_contains), std::string::npos) << why;
    EXPECT_EQ(where, c.where);
    // And without the out parameters.
    EXPECT_FALSE(CommandLine::parse(c.text).ok());
}

std::string many_words() {
    std::string s;
    for (std::size_t i = 0; i <= CommandLine::max_words; ++i) s += "k" + std::to_string(i) + " ";
    return s;
}

std::size_t offset_of_last_word() {
    const std::string s = many_words();
    return s.rfind('k');
}

INSTANTIATE_TEST_SUITE_P(
    All, CommandLineErrors,
    ::testing::Values(
        BadCase{std::string(CommandLine::max_length + 1, 'a'), "longer than 2047", 2047},
        BadCase{many_words(), "more than 64 words", offset_of_last_word()},
        BadCase{"a=\"open", "unterminated quote", 2}, BadCase{"x a=\"", "unterminated quote", 4},
        BadCase{"=v", "empty key", 0}, BadCase{"ok =", "empty key", 3},
        BadCase{"ke!y=1", "bad character in key", 2}, BadCase{"\"quoted\"=1", "bad character in key", 0},
        BadCase{"k\xc3\xa9y", "bad character in key", 1}, BadCase{"a=b\x01", "control character", 3},
        BadCase{std::string("a\0b", 3), "control character", 1},
        BadCase{"a=\"x\x7fy\"", "control character", 4}, BadCase{"a=\"x\ty\"", "control character", 4},
        BadCase{"k\x1b", "control character", 1}, BadCase{"a=b\"c", "quote inside an unquoted value", 3},
        BadCase{"a=\"b\"c", "text right after a closing quote", 5}, BadCase{"a=1 b a=2", "duplicate key", 6},
        BadCase{"a b=1 a", "duplicate key", 6}));

}  // namespace
}  // namespace keel

namespace keel {
namespace {

TEST(CommandLine, GetUintValidates) {
    auto c = CommandLine::parse("port=8080 zero=0 big=99999999999999999999 neg=-1 hex=0x10 bare empty= max=65535");
    ASSERT_TRUE(c.ok());
    const CommandLine& cl = c.value();
    EXPECT_EQ(*cl.get_uint("port", 80, 1, 65535), 8080u);
    EXPECT_EQ(*cl.get_uint("missing", 80, 1, 65535), 80u);  // absent: the fallback
    EXPECT_EQ(*cl.get_uint("max", 1, 1, 65535), 65535u);
    EXPECT_EQ(cl.get_uint("zero", 80, 1, 65535).error(), Error::invalid_argument);  // below lo
    EXPECT_EQ(*cl.get_uint("zero", 80, 0, 65535), 0u);
    EXPECT_EQ(cl.get_uint("max", 1, 1, 65534).error(), Error::invalid_argument);  // above hi
    EXPECT_EQ(cl.get_uint("big", 1, 0, ~0ull).error(), Error::invalid_argument);  // 20 digits
    EXPECT_EQ(cl.get_uint("neg", 1, 0, 100).error(), Error::invalid_argument);
    EXPECT_EQ(cl.get_uint("hex", 1, 0, 100).error(), Error::invalid_argument);
    EXPECT_EQ(cl.get_uint("bare", 1, 0, 100).error(), Error::invalid_argument);
    EXPECT_EQ(cl.get_uint("empty", 1, 0, 100).error(), Error::invalid_argument);
}

}  // namespace
}  // namespace keel
