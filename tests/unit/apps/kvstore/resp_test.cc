// CommandParser: multibulk and inline commands, pipelining, limits, malformed input, and that
// the outcome is the same however the bytes are split (byte by byte, every two-piece split).
// ReplyWriter and the integer helpers.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "kv/resp.h"

namespace keel::kv {
namespace {

using namespace std::literals;

// Feeds `text` in pieces of the given sizes (the last repeats) and writes down every command
// ("[a|b]") and the error ("error: ..."), as a string to compare.
std::string trace(std::string_view text, std::vector<std::size_t> pieces, const Limits& limits = {}) {
    CommandParser p(limits);
    std::string out;
    std::size_t pos = 0, i = 0;
    while (pos < text.size()) {
        const std::size_t n = std::min(pieces[std::min(i, pieces.size() - 1)], text.size() - pos);
        ++i;
        std::string_view piece = text.substr(pos, n);
        pos += n;
        while (!piece.empty()) {
            const ParseResult r = p.feed(piece);
            EXPECT_LE(r.consumed, piece.size());
            if (r.state == ParseState::error) {
                out += "error: " + std::string(p.error()) + "\n";
                return out;
            }
            piece.remove_prefix(r.consumed);
            if (r.state == ParseState::incomplete) {
                EXPECT_TRUE(piece.empty());
                break;
            }
            out += "[";
            for (std::size_t k = 0; k < p.args().size(); ++k) {
                if (k != 0) out += "|";
                out += std::string(p.args()[k]);
            }
            out += "]\n";
            p.reset();
        }
    }
    if (!p.idle()) out += "(incomplete)\n";
    return out;
}

std::string whole(std::string_view text, const Limits& limits = {}) {
    return trace(text, {text.size() + 1}, limits);
}

// The same trace for every way of cutting the text into two pieces, and byte by byte.
void expect_split_invariant(std::string_view text, const Limits& limits = {}) {
    const std::string expected = whole(text, limits);
    EXPECT_EQ(trace(text, {1}, limits), expected) << "byte by byte";
    for (std::size_t cut = 1; cut < text.size(); ++cut) {
        ASSERT_EQ(trace(text, {cut, text.size()}, limits), expected) << "split at " << cut;
    }
}

TEST(RespParser, Multibulk) {
    EXPECT_EQ(whole("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"), "[SET|k|hello]\n");
    EXPECT_EQ(whole("*1\r\n$4\r\nPING\r\n"), "[PING]\n");
}

TEST(RespParser, BulkIsBinarySafe) {
    CommandParser p;
    const std::string_view cmd = "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\0b\n\r\n"sv;
    const ParseResult r = p.feed(std::string_view(cmd));
    ASSERT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, cmd.size());
    ASSERT_EQ(p.args().size(), 2u);
    EXPECT_EQ(p.args()[1], "a\r\n\0b\n"sv);
}

TEST(RespParser, EmptyBulk) { EXPECT_EQ(whole("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), "[ECHO|]\n"); }

TEST(RespParser, PipelinedCommandsStopAtTheEndOfEach) {
    CommandParser p;
    const std::string_view two = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    ParseResult r = p.feed(two);
    ASSERT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, 14u);
    EXPECT_EQ(p.args()[0], "PING");
    p.reset();
    r = p.feed(two.substr(14));
    ASSERT_EQ(r.state, ParseState::complete);
    EXPECT_EQ(r.consumed, two.size() - 14);
    EXPECT_EQ(p.args()[1], "k");
}

TEST(RespParser, EmptyMultibulksAreSkipped) {
    EXPECT_EQ(whole("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"), "[PING]\n");
    CommandParser p;
    const ParseResult r = p.feed("*0\r\n"sv);
    EXPECT_EQ(r.state, ParseState::incomplete);
    EXPECT_EQ(r.consumed, 4u);
    EXPECT_TRUE(p.idle());
}

TEST(RespParser, Inline) {
    EXPECT_EQ(whole("PING\r\n"), "[PING]\n");
    EXPECT_EQ(whole("set  k\tv\n"), "[set|k|v]\n");
    EXPECT_EQ(whole("\r\n\n  \r\nPING\n"), "[PING]\n");  // empty lines are skipped
    EXPECT_EQ(whole("set k \"a b\\x41\\n\\t\\\\\\\"\"\n"), "[set|k|a bA\n\t\\\"]\n");
    EXPECT_EQ(whole("set k 'it\\'s \"x\"'\n"), "[set|k|it's \"x\"]\n");
    EXPECT_EQ(whole("set k \"\"\n"), "[set|k|]\n");
    EXPECT_EQ(whole("set k ab\"c d\"\n"), "[set|k|abc d]\n");  // a quote inside a word opens a part
    EXPECT_EQ(whole("echo \"\\xZZ\"\n"), "[echo|xZZ]\n");      // not a hex escape: the letter
}

/// Each of `inputs`, parsed whole, ends in the error `error`.
void expect_error(std::string_view error, std::initializer_list<std::string_view> inputs) {
    for (const std::string_view input : inputs) {
        EXPECT_EQ(whole(input), "error: " + std::string(error) + "\n") << "input: " << input;
    }
}

TEST(RespParser, InlineQuoteErrors) {
    expect_error("ERR Protocol error: unbalanced quotes in request",
                 {"set k \"abc\n"sv, "set k 'abc\n"sv, "set k \"a\"b\n"sv, "set k \"a\\\n"sv});
}

TEST(RespParser, Malformed) {
    expect_error("ERR Protocol error: invalid multibulk length",
                 {"*abc\r\n"sv, "*3\n"sv, "*01\r\n"sv, "*\r\n"sv, "*1234567890123456789012345\r\n"sv,
                  "*99999999999999999999\r\n"sv});
    expect_error("ERR Protocol error: expected '$', got ':'", {"*1\r\n:3\r\n"sv});
    expect_error("ERR Protocol error: expected '$', got byte 0x01", {"*1\r\n\x01"sv});
    expect_error("ERR Protocol error: invalid bulk length",
                 {"*1\r\n$-1\r\n"sv, "*1\r\n$x\r\n"sv, "*1\r\n$\r\n"sv, "*1\r\n$3\n"sv});
    expect_error("ERR Protocol error: expected CRLF after a bulk string",
                 {"*1\r\n$3\r\nabcX\r\n"sv, "*1\r\n$3\r\nabc\rX"sv});
}

TEST(RespParser, ErrorsNeverHoldLineBreaks) {
    for (std::string_view bad : {"*1\r\n\r"sv, "*1\r\n\n"sv, "*1\r\n$3\r\nabc\n\n"sv}) {
        CommandParser p;
        ASSERT_EQ(p.feed(bad).state, ParseState::error) << bad;
        EXPECT_EQ(p.error().find_first_of("\r\n"), std::string_view::npos) << p.error();
    }
}

TEST(RespParser, Limits) {
    const Limits l{.max_args = 3, .max_bulk_bytes = 8, .max_command_bytes = 12, .max_inline_bytes = 16};
    EXPECT_EQ(whole("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", l), "[a|b|c]\n");
    EXPECT_EQ(whole("*4\r\n", l), "error: ERR Protocol error: 4 arguments are over the limit of 3\n");
    EXPECT_EQ(whole("*1\r\n$8\r\n12345678\r\n", l), "[12345678]\n");
    EXPECT_EQ(whole("*1\r\n$9\r\n", l),
              "error: ERR Protocol error: a bulk string of 9 bytes is over the limit of 8\n");
    EXPECT_EQ(whole("*2\r\n$8\r\n12345678\r\n$5\r\n", l),
              "error: ERR Protocol error: the command is over the limit of 12 bytes\n");
    EXPECT_EQ(whole("a b c\n", l), "[a|b|c]\n");
    EXPECT_EQ(whole("a b c d\n", l), "error: ERR Protocol error: more than 3 arguments\n");
    EXPECT_EQ(whole("0123456789abcdef\n", l), "[0123456789abcdef]\n");
    EXPECT_EQ(whole("0123456789abcdef\r\n", l), "error: ERR Protocol error: too big inline request\n");
    // The inline limit is broken as soon as the line is too long, before its end arrives.
    CommandParser p(l);
    EXPECT_EQ(p.feed("0123456789abcdef"sv).state, ParseState::incomplete);
    EXPECT_EQ(p.feed("g"sv).state, ParseState::error);
}

TEST(RespParser, SplitAnywhereGivesTheSameCommands) {
    const std::string_view stream =
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\nva\r\nlue\0\r\n\r\n"
        "PING\r\n"
        "*0\r\n"
        "\n"
        "set k \"q\\x41 \\\"x\"  'y\\'z'\r\n"
        "*2\r\n$3\r\nGET\r\n$0\r\n\r\n"
        "*1\r\n$4\r\nPING\r\n"sv;
    expect_split_invariant(stream);
    // ... and with every kind of error at the end.
    for (std::string_view bad : {"*1\r\n$4\r\nPINGx"sv, "*x\r\n"sv, "*2\r\n$1\r\na\r\n%"sv, "set \"a\r\n"sv,
                                 "*1\r\n$600000\r\n"sv, "*100000\r\n"sv}) {
        const std::string text = std::string(stream) + std::string(bad);
        expect_split_invariant(text);
        EXPECT_NE(whole(text).find("error: "), std::string::npos) << bad;
    }
    Limits l;
    l.max_inline_bytes = 10;
    expect_split_invariant("PING\r\nabcdefghijk\r\n", l);
    EXPECT_EQ(whole("PING\r\nabcdefghijk\r\n", l),
              "[PING]\nerror: ERR Protocol error: too big inline request\n");
}

TEST(RespParser, IncompleteCommandsWait) {
    EXPECT_EQ(whole("*2\r\n$3\r\nGET\r\n$1\r\n"), "(incomplete)\n");
    EXPECT_EQ(whole("PING"), "(incomplete)\n");
}

TEST(RespParser, ResetReleasesLargeBuffers) {
    CommandParser p;
    const std::string big(300000, 'x');
    const std::string cmd = "*2\r\n$4\r\nECHO\r\n$300000\r\n" + big + "\r\n";
    ASSERT_EQ(p.feed(std::string_view(cmd)).state, ParseState::complete);
    EXPECT_EQ(p.args()[1].size(), big.size());
    p.reset();
    ASSERT_EQ(p.feed("*1\r\n$4\r\nPING\r\n"sv).state, ParseState::complete);
    EXPECT_EQ(p.args()[0], "PING");
}

TEST(RespParser, ManyArguments) {
    std::string cmd = "*1001\r\n$4\r\nMGET\r\n";
    for (int i = 0; i < 1000; ++i)
        cmd += "$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) + "\r\n";
    CommandParser p;
    ASSERT_EQ(p.feed(std::string_view(cmd)).state, ParseState::complete);
    ASSERT_EQ(p.args().size(), 1001u);
    EXPECT_EQ(p.args()[1000], "999");
}

// ---------------------------------------------------------------------------------------------

std::string reply(void (*f)(ReplyWriter&)) {
    Bytes b;
    ReplyWriter w(b);
    f(w);
    EXPECT_TRUE(w.ok());
    return std::string(b.data(), b.size());
}

TEST(ReplyWriter, Encodings) {
    EXPECT_EQ(reply([](ReplyWriter& w) { w.simple("OK"); }), "+OK\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.simple("a\r\nb"); }), "+a  b\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.error("ERR x\ny"); }), "-ERR x y\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.errorf("ERR %d %s", 5, "z"); }), "-ERR 5 z\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.integer(0); }), ":0\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.integer(-42); }), ":-42\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.integer(INT64_MIN); }), ":-9223372036854775808\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.integer(INT64_MAX); }), ":9223372036854775807\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.bulk("a\r\nb"); }), "$4\r\na\r\nb\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.bulk(""); }), "$0\r\n\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.null(); }), "$-1\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) {
                  w.array(2);
                  w.bulk("a");
                  w.null();
              }),
              "*2\r\n$1\r\na\r\n$-1\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.array(0); }), "*0\r\n");
    EXPECT_EQ(reply([](ReplyWriter& w) { w.null_array(); }), "*-1\r\n");
}

TEST(ReplyWriter, OverTheLimitTurnsNotOk) {
    Bytes b(10);
    ReplyWriter w(b);
    w.simple("OK");
    EXPECT_TRUE(w.ok());
    w.bulk("0123456789");
    EXPECT_FALSE(w.ok());
    w.simple("x");  // stays failed
    EXPECT_FALSE(w.ok());
    EXPECT_LE(b.size(), 10u);
}

TEST(Integers, ParseLikeRedis) {
    std::int64_t v = 7;
    EXPECT_TRUE(parse_int("0", v) && v == 0);
    EXPECT_TRUE(parse_int("-5", v) && v == -5);
    EXPECT_TRUE(parse_int("9223372036854775807", v) && v == INT64_MAX);
    EXPECT_TRUE(parse_int("-9223372036854775808", v) && v == INT64_MIN);
    for (std::string_view bad :
         {""sv, "-"sv, "+1"sv, "01"sv, "-0"sv, " 1"sv, "1 "sv, "1a"sv, "9223372036854775808"sv,
          "-9223372036854775809"sv, "99999999999999999999"sv, "123456789012345678901"sv}) {
        EXPECT_FALSE(parse_int(bad, v)) << bad;
    }
}

TEST(Integers, Format) {
    char buf[24];
    EXPECT_EQ(std::string_view(buf, format_int(0, buf)), "0");
    EXPECT_EQ(std::string_view(buf, format_int(-1, buf)), "-1");
    EXPECT_EQ(std::string_view(buf, format_int(INT64_MIN, buf)), "-9223372036854775808");
    EXPECT_EQ(std::string_view(buf, format_int(1234567890, buf)), "1234567890");
}

}  // namespace
}  // namespace keel::kv
