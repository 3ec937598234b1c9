// keel::format against the host C library's snprintf, conversion by conversion.
#include "keel/format.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

// Formats with both and compares text and return value.
#define EXPECT_SAME(...)                                                 \
    do {                                                                 \
        char ours[256];                                                  \
        char theirs[256];                                                \
        const int a = keel::format(ours, sizeof ours, __VA_ARGS__);      \
        const int b = std::snprintf(theirs, sizeof theirs, __VA_ARGS__); \
        EXPECT_EQ(a, b) << #__VA_ARGS__;                                 \
        EXPECT_STREQ(ours, theirs) << #__VA_ARGS__;                      \
    } while (0)

std::string vfmt(const char* f, va_list ap) {
    char buf[256];
    keel::vformat(buf, sizeof buf, f, ap);
    return buf;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    va_list ap;
    va_start(ap, f);
    std::string s = vfmt(f, ap);
    va_end(ap);
    return s;
}

// No format attribute: for deliberately malformed formats the compiler would reject.
std::string raw(const char* f, ...) {
    va_list ap;
    va_start(ap, f);
    std::string s = vfmt(f, ap);
    va_end(ap);
    return s;
}

TEST(Format, PlainText) {
    EXPECT_SAME("hello");
    EXPECT_SAME("%s", "");
    EXPECT_SAME("100%%");
    EXPECT_SAME("%%%d%%", 5);
}

TEST(Format, SignedDecimal) {
    EXPECT_SAME("%d", 0);
    EXPECT_SAME("%d", 42);
    EXPECT_SAME("%d", -42);
    EXPECT_SAME("%i", INT_MAX);
    EXPECT_SAME("%i", INT_MIN);
    EXPECT_SAME("%5d|%-5d|%05d", 42, 42, 42);
    EXPECT_SAME("%5d|%-5d|%05d", -42, -42, -42);
    EXPECT_SAME("%+d % d %+d % d", 7, 7, -7, -7);
    EXPECT_SAME("%.3d|%.0d|%.0d|%5.3d|%-5.3d", 7, 0, 1, -7, 7);
    EXPECT_EQ(raw("%05.3d", 7), "  007");  // C: '0' is ignored when a precision is given
    EXPECT_SAME("%*d|%-*d|%*d", 6, 1, 6, 2, -6, 3);
    EXPECT_SAME("%.*d|%.*d", 4, 5, -1, 5);
}

TEST(Format, LengthModifiers) {
    EXPECT_SAME("%hhd %hhu %hhx", 300, 300, 0x1ff);
    EXPECT_SAME("%hd %hu %hx", 70000, 70000, 0x1ffff);
    EXPECT_SAME("%ld %lu %lx", LONG_MIN, ULONG_MAX, ULONG_MAX);
    EXPECT_SAME("%lld %llu %llx %llX", LLONG_MIN, ULLONG_MAX, 0x123456789abcdefull, 0xfedcba987654321ull);
    EXPECT_SAME("%zu %zx %zd", SIZE_MAX, static_cast<std::size_t>(4096), static_cast<ssize_t>(-5));
    EXPECT_SAME("%jd %ju", INTMAX_MIN, UINTMAX_MAX);
    EXPECT_SAME("%td", static_cast<std::ptrdiff_t>(-123456789));
}

TEST(Format, UnsignedHexOctal) {
    EXPECT_SAME("%u %u", 0u, UINT_MAX);
    EXPECT_SAME("%x %X %x", 0xdeadbeefu, 0xdeadbeefu, 0u);
    EXPECT_SAME("%#x %#X %#x %#o %#o %o", 255u, 255u, 0u, 8u, 0u, 8u);
    EXPECT_SAME("%08x|%-8x|%8x|%#010x|%#.3o", 0xabcu, 0xabcu, 0xabcu, 0xabcu, 8u);
    EXPECT_SAME("%.8x|%.0x|%#.0x", 0x1fu, 0u, 0u);
}

TEST(Format, Pointer) {
    int x;
    EXPECT_SAME("%p", static_cast<void*>(&x));
    EXPECT_SAME("%20p|%-20p|", static_cast<void*>(&x), static_cast<void*>(&x));
    EXPECT_EQ(fmt("%p", static_cast<void*>(nullptr)), "0x0");
    EXPECT_EQ(fmt("%p", reinterpret_cast<void*>(0xffff800000001000ull)), "0xffff800000001000");
}

TEST(Format, StringsAndChars) {
    EXPECT_SAME("%s|%10s|%-10s|", "abc", "abc", "abc");
    EXPECT_SAME("%.2s|%.0s|%.10s|%5.1s|", "abc", "abc", "abc", "abc");
    EXPECT_SAME("%.*s|%-*.*s|", 2, "hello", 7, 3, "hello");
    EXPECT_SAME("%c%c%c|%3c|%-3c|", 'a', 'b', 'c', 'x', 'y');
    EXPECT_EQ(raw("%s", static_cast<const char*>(nullptr)), "(null)");
    // Precision bounds the read: the string need not be terminated.
    const char unterminated[3] = {'x', 'y', 'z'};
    EXPECT_EQ(fmt("%.3s", unterminated), "xyz");
}

TEST(Format, Truncation) {
    char buf[8];
    std::memset(buf, '#', sizeof buf);
    EXPECT_EQ(keel::format(buf, sizeof buf, "%s", "hello world"), 11);
    EXPECT_STREQ(buf, "hello w");

    std::memset(buf, '#', sizeof buf);
    EXPECT_EQ(keel::format(buf, 1, "abc"), 3);
    EXPECT_EQ(buf[0], '\0');
    EXPECT_EQ(buf[1], '#');

    EXPECT_EQ(keel::format(nullptr, 0, "%d-%s", 12345, "xyz"), 9);

    std::memset(buf, '#', sizeof buf);
    EXPECT_EQ(keel::format(buf, sizeof buf, "%08d", -1), 8);
    EXPECT_STREQ(buf, "-000000");

    std::memset(buf, '#', sizeof buf);
    EXPECT_EQ(keel::format(buf, 4, "%-6s|", "ab"), 7);
    EXPECT_STREQ(buf, "ab ");
}

TEST(Format, UnknownAndIncompleteConversions) {
    EXPECT_EQ(raw("a%qb"), "a%qb");
    EXPECT_EQ(raw("%-5q|%d", 3), "%-5q|3");
    EXPECT_EQ(raw("end%"), "end%");
    EXPECT_EQ(raw("end%-08l"), "end%-08l");
}

}  // namespace
