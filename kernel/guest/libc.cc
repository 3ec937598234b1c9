// The C library subset the kernel, lwIP and the compiler need (GCC emits calls to memcpy,
// memset, memmove and memcmp on its own). Guest only: on the host the real libc is used.
//
// memcpy/memmove/memset are `rep movsb` / `rep stosb`: fast on every CPU with ERMSB, and free of
// loops GCC could turn back into calls to the very function being defined. The remaining
// functions are plain loops built with -fno-tree-loop-distribute-patterns for the same reason.
#include <cstdarg>
#include <cstddef>
#include <cstdint>

#include "keel/format.h"
#include "keel/panic.h"

#define KEEL_LIBC extern "C" __attribute__((optimize("no-tree-loop-distribute-patterns")))

namespace {

constexpr unsigned long ulong_max = ~0ul;
constexpr long long_max = static_cast<long>(ulong_max >> 1);
constexpr long long_min = -long_max - 1;

}  // namespace

KEEL_LIBC void* memcpy(void* dst, const void* src, std::size_t n) {
    void* ret = dst;
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
}

KEEL_LIBC void* memmove(void* dst, const void* src, std::size_t n) {
    void* ret = dst;
    const auto d = reinterpret_cast<std::uintptr_t>(dst);
    const auto s = reinterpret_cast<std::uintptr_t>(src);
    if (d - s >= n) {
        // dst is below src, or past the end of src: a forward copy never reads what it wrote.
        asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    } else if (n > 0) {
        // dst overlaps the tail of src: copy backwards from the last byte.
        void* dlast = static_cast<char*>(dst) + n - 1;
        const void* slast = static_cast<const char*>(src) + n - 1;
        asm volatile("std\n\trep movsb\n\tcld" : "+D"(dlast), "+S"(slast), "+c"(n) : : "memory");
    }
    return ret;
}

KEEL_LIBC void* memset(void* dst, int c, std::size_t n) {
    void* ret = dst;
    asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
    return ret;
}

KEEL_LIBC int memcmp(const void* a, const void* b, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(a);
    const auto* q = static_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] != q[i]) return p[i] < q[i] ? -1 : 1;
    }
    return 0;
}

KEEL_LIBC void* memchr(const void* s, int c, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(s);
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] == static_cast<unsigned char>(c)) return const_cast<unsigned char*>(p + i);
    }
    return nullptr;
}

KEEL_LIBC std::size_t strlen(const char* s) {
    std::size_t n = 0;
    while (s[n] != '\0') ++n;
    return n;
}

KEEL_LIBC std::size_t strnlen(const char* s, std::size_t max) {
    std::size_t n = 0;
    while (n < max && s[n] != '\0') ++n;
    return n;
}

KEEL_LIBC int strcmp(const char* a, const char* b) {
    for (;; ++a, ++b) {
        const auto x = static_cast<unsigned char>(*a);
        const auto y = static_cast<unsigned char>(*b);
        if (x != y) return x < y ? -1 : 1;
        if (x == 0) return 0;
    }
}

KEEL_LIBC int strncmp(const char* a, const char* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const auto x = static_cast<unsigned char>(a[i]);
        const auto y = static_cast<unsigned char>(b[i]);
        if (x != y) return x < y ? -1 : 1;
        if (x == 0) return 0;
    }
    return 0;
}

KEEL_LIBC char* strchr(const char* s, int c) {
    for (;; ++s) {
        if (*s == static_cast<char>(c)) return const_cast<char*>(s);
        if (*s == '\0') return nullptr;
    }
}

KEEL_LIBC char* strrchr(const char* s, int c) {
    const char* last = nullptr;
    for (;; ++s) {
        if (*s == static_cast<char>(c)) last = s;
        if (*s == '\0') return const_cast<char*>(last);
    }
}

KEEL_LIBC char* strstr(const char* haystack, const char* needle) {
    const std::size_t n = strlen(needle);
    if (n == 0) return const_cast<char*>(haystack);
    for (; *haystack != '\0'; ++haystack) {
        if (*haystack == *needle && strncmp(haystack, needle, n) == 0) return const_cast<char*>(haystack);
    }
    return nullptr;
}

KEEL_LIBC char* strcpy(char* dst, const char* src) {
    char* d = dst;
    while ((*d++ = *src++) != '\0') {
    }
    return dst;
}

KEEL_LIBC char* strncpy(char* dst, const char* src, std::size_t n) {
    std::size_t i = 0;
    for (; i < n && src[i] != '\0'; ++i) dst[i] = src[i];
    for (; i < n; ++i) dst[i] = '\0';
    return dst;
}

KEEL_LIBC int isdigit(int c) { return c >= '0' && c <= '9'; }
KEEL_LIBC int isxdigit(int c) { return isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
KEEL_LIBC int isupper(int c) { return c >= 'A' && c <= 'Z'; }
KEEL_LIBC int islower(int c) { return c >= 'a' && c <= 'z'; }
KEEL_LIBC int isalpha(int c) { return isupper(c) || islower(c); }
KEEL_LIBC int isalnum(int c) { return isalpha(c) || isdigit(c); }
KEEL_LIBC int isspace(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
KEEL_LIBC int isprint(int c) { return c >= 0x20 && c < 0x7f; }
KEEL_LIBC int toupper(int c) { return islower(c) ? c - 'a' + 'A' : c; }
KEEL_LIBC int tolower(int c) { return isupper(c) ? c - 'A' + 'a' : c; }

namespace {

/// strtoull's engine: parses an optional sign, a base prefix and digits. Saturates at `limit`
/// (magnitude) and reports the sign. There is no errno in keel: overflow shows as the limit.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) unsigned long long parse_unsigned(
    const char* s, char** end, int base, unsigned long long limit, bool* negative) {
    const char* p = s;
    while (isspace(static_cast<unsigned char>(*p))) ++p;
    *negative = false;
    if (*p == '+' || *p == '-') {
        *negative = *p == '-';
        ++p;
    }
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        isxdigit(static_cast<unsigned char>(p[2]))) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    if (base < 2 || base > 36) {
        if (end != nullptr) *end = const_cast<char*>(s);
        return 0;
    }

    unsigned long long v = 0;
    bool any = false;
    bool overflow = false;
    for (;; ++p) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'z')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'Z')
            d = *p - 'A' + 10;
        else
            break;
        if (d >= base) break;
        any = true;
        const auto ub = static_cast<unsigned long long>(base);
        if (v > (limit - static_cast<unsigned long long>(d)) / ub)
            overflow = true;
        else
            v = v * ub + static_cast<unsigned long long>(d);
    }
    if (end != nullptr) *end = const_cast<char*>(any ? p : s);
    if (!any) {
        *negative = false;
        return 0;
    }
    return overflow ? limit : v;
}

}  // namespace

KEEL_LIBC unsigned long long strtoull(const char* s, char** end, int base) {
    bool neg;
    const unsigned long long v = parse_unsigned(s, end, base, ~0ull, &neg);
    // C: a minus sign negates the result in the unsigned type (unless it overflowed).
    return neg && v != ~0ull ? 0ull - v : v;
}

KEEL_LIBC unsigned long strtoul(const char* s, char** end, int base) {
    bool neg;
    const unsigned long v = parse_unsigned(s, end, base, ulong_max, &neg);
    return neg && v != ulong_max ? 0ul - v : v;
}

KEEL_LIBC long long strtoll(const char* s, char** end, int base) {
    bool neg;
    // The magnitude may reach |LLONG_MIN| when negative.
    const unsigned long long limit = 1ull << 63;
    unsigned long long v = parse_unsigned(s, end, base, limit, &neg);
    if (!neg && v == limit) return static_cast<long long>(limit - 1);  // saturate positive
    return neg ? static_cast<long long>(0ull - v) : static_cast<long long>(v);
}

KEEL_LIBC long strtol(const char* s, char** end, int base) {
    bool neg;
    const unsigned long limit = static_cast<unsigned long>(long_max) + 1;
    unsigned long v = parse_unsigned(s, end, base, limit, &neg);
    if (!neg && v == limit) return long_max;
    if (neg) return v == limit ? long_min : -static_cast<long>(v);
    return static_cast<long>(v);
}

KEEL_LIBC int atoi(const char* s) { return static_cast<int>(strtol(s, nullptr, 10)); }
KEEL_LIBC long atol(const char* s) { return strtol(s, nullptr, 10); }

KEEL_LIBC int vsnprintf(char* buf, std::size_t size, const char* fmt, va_list ap) {
    return keel::vformat(buf, size, fmt, ap);
}

KEEL_LIBC int snprintf(char* buf, std::size_t size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = keel::vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

extern "C" [[noreturn]] void abort() { keel::panic("abort() called"); }
