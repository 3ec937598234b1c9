// vformat: a small printf. Pure: also linked into the host tests, which compare it with the C
// library's snprintf.
#include "keel/format.h"

#include <climits>
#include <cstdint>
#include <type_traits>

namespace keel {
namespace {

/// Writes into the caller's buffer, counting every character, stored or not.
class Out {
public:
    Out(char* buf, std::size_t size) : buf_(buf), size_(size) {}

    void put(char c) {
        if (pos_ + 1 < size_) buf_[pos_] = c;
        ++pos_;
    }
    void repeat(char c, std::size_t n) {
        for (; n > 0; --n) put(c);
    }
    void write(const char* s, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) put(s[i]);
    }
    int finish() {
        if (size_ > 0) buf_[pos_ < size_ ? pos_ : size_ - 1] = '\0';
        return pos_ > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(pos_);
    }

private:
    char* buf_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

enum class Length { none, hh, h, l, ll, z, j, t };

struct Spec {
    bool left = false;   // '-'
    bool zero = false;   // '0'
    bool plus = false;   // '+'
    bool space = false;  // ' '
    bool alt = false;    // '#'
    std::size_t width = 0;
    bool has_precision = false;
    std::size_t precision = 0;
    Length length = Length::none;
};

// The length modifier at `p` (hh, h, l, ll, z, j, t), if any; `p` moves past it.
Length parse_length(const char*& p) {
    switch (*p++) {
        case 'h':
            return *p == 'h' ? (++p, Length::hh) : Length::h;
        case 'l':
            return *p == 'l' ? (++p, Length::ll) : Length::l;
        case 'z':
            return Length::z;
        case 'j':
            return Length::j;
        case 't':
            return Length::t;
        default:
            --p;  // not a length modifier: the conversion letter
            return Length::none;
    }
}

/// Pads `body` characters of output to the field width; `emit` writes the body.
template <typename Emit>
void padded(Out& out, const Spec& spec, std::size_t body, Emit emit) {
    const std::size_t pad = spec.width > body ? spec.width - body : 0;
    if (!spec.left) out.repeat(' ', pad);
    emit();
    if (spec.left) out.repeat(' ', pad);
}

void emit_integer(Out& out, const Spec& spec, unsigned long long magnitude, bool negative, bool is_signed,
                  unsigned base, bool upper, bool pointer) {
    const char* digits_of = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char digits[24];  // 64 bits in octal is 22 digits
    std::size_t nd = 0;
    // C: a zero value with precision 0 prints no digits.
    if (!(magnitude == 0 && spec.has_precision && spec.precision == 0)) {
        do {
            digits[nd++] = digits_of[magnitude % base];
            magnitude /= base;
        } while (magnitude != 0);
    }
    const bool nonzero = nd > 0 && !(nd == 1 && digits[0] == '0');

    char prefix[2];
    std::size_t np = 0;
    if (is_signed) {
        if (negative)
            prefix[np++] = '-';
        else if (spec.plus)
            prefix[np++] = '+';
        else if (spec.space)
            prefix[np++] = ' ';
    }
    if (base == 16 && (pointer || (spec.alt && nonzero))) {
        prefix[np++] = '0';
        prefix[np++] = upper ? 'X' : 'x';
    }

    std::size_t precision_zeros = spec.has_precision && spec.precision > nd ? spec.precision - nd : 0;
    // '#' with octal: the first digit printed must be 0.
    if (base == 8 && spec.alt && precision_zeros == 0 && (nd == 0 || digits[nd - 1] != '0'))
        precision_zeros = 1;

    std::size_t body = np + precision_zeros + nd;
    std::size_t zero_pad = 0;
    if (spec.zero && !spec.left && !spec.has_precision && spec.width > body) {
        zero_pad = spec.width - body;
        body = spec.width;
    }
    padded(out, spec, body, [&] {
        out.write(prefix, np);
        out.repeat('0', zero_pad + precision_zeros);
        while (nd > 0) out.put(digits[--nd]);
    });
}

}  // namespace

int vformat(char* buf, std::size_t size, const char* fmt, va_list ap) {
    Out out(buf, size);
    const char* p = fmt;
    while (*p != '\0') {
        if (*p != '%') {
            out.put(*p++);
            continue;
        }
        const char* start = p++;
        Spec spec;

        for (;; ++p) {
            if (*p == '-')
                spec.left = true;
            else if (*p == '0')
                spec.zero = true;
            else if (*p == '+')
                spec.plus = true;
            else if (*p == ' ')
                spec.space = true;
            else if (*p == '#')
                spec.alt = true;
            else
                break;
        }

        if (*p == '*') {
            const int w = va_arg(ap, int);
            if (w < 0) {
                spec.left = true;
                spec.width = static_cast<std::size_t>(-static_cast<long long>(w));
            } else {
                spec.width = static_cast<std::size_t>(w);
            }
            ++p;
        } else {
            while (*p >= '0' && *p <= '9')
                spec.width = spec.width * 10 + static_cast<std::size_t>(*p++ - '0');
        }

        if (*p == '.') {
            ++p;
            spec.has_precision = true;
            if (*p == '*') {
                const int pr = va_arg(ap, int);
                // A negative precision is taken as if it were omitted.
                if (pr < 0)
                    spec.has_precision = false;
                else
                    spec.precision = static_cast<std::size_t>(pr);
                ++p;
            } else {
                while (*p >= '0' && *p <= '9')
                    spec.precision = spec.precision * 10 + static_cast<std::size_t>(*p++ - '0');
            }
        }

        spec.length = parse_length(p);

        const char conv = *p;
        if (conv == '\0') {
            // The format ends inside a conversion: copy what there is and stop.
            out.write(start, static_cast<std::size_t>(p - start));
            break;
        }
        ++p;

        switch (conv) {
            case 'd':
            case 'i': {
                long long v;
                // Several lengths name the same type on x86-64; the cases stay separate so the
                // code reads like the C rules.
                // NOLINTBEGIN(bugprone-branch-clone)
                switch (spec.length) {
                    case Length::hh:
                        // C: the argument is converted to signed char, sign included.
                        v = static_cast<signed char>(va_arg(ap, int));  // NOLINT(bugprone-signed-char-misuse)
                        break;
                    case Length::h:
                        v = static_cast<short>(va_arg(ap, int));
                        break;
                    case Length::l:
                        v = va_arg(ap, long);
                        break;
                    case Length::ll:
                        v = va_arg(ap, long long);
                        break;
                    case Length::z:
                        v = va_arg(ap, std::make_signed_t<std::size_t>);
                        break;
                    case Length::j:
                        v = va_arg(ap, std::intmax_t);
                        break;
                    case Length::t:
                        v = va_arg(ap, std::ptrdiff_t);
                        break;
                    default:
                        v = va_arg(ap, int);
                        break;
                }
                // Negate in unsigned arithmetic so LLONG_MIN works.
                const unsigned long long mag =
                    v < 0 ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
                emit_integer(out, spec, mag, v < 0, true, 10, false, false);
                break;
            }
            case 'u':
            case 'o':
            case 'x':
            case 'X': {
                unsigned long long v;
                switch (spec.length) {
                    case Length::hh:
                        v = static_cast<unsigned char>(va_arg(ap, unsigned));
                        break;
                    case Length::h:
                        v = static_cast<unsigned short>(va_arg(ap, unsigned));
                        break;
                    case Length::l:
                        v = va_arg(ap, unsigned long);
                        break;
                    case Length::ll:
                        v = va_arg(ap, unsigned long long);
                        break;
                    case Length::z:
                        v = va_arg(ap, std::size_t);
                        break;
                    case Length::j:
                        v = va_arg(ap, std::uintmax_t);
                        break;
                    case Length::t:
                        v = va_arg(ap, std::make_unsigned_t<std::ptrdiff_t>);
                        break;
                    default:
                        v = va_arg(ap, unsigned);
                        break;
                }
                // NOLINTEND(bugprone-branch-clone)
                const unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
                emit_integer(out, spec, v, false, false, base, conv == 'X', false);
                break;
            }
            case 'p': {
                const auto v = reinterpret_cast<std::uintptr_t>(va_arg(ap, void*));
                emit_integer(out, spec, v, false, false, 16, false, true);
                break;
            }
            case 'c': {
                const char c = static_cast<char>(va_arg(ap, int));
                padded(out, spec, 1, [&] { out.put(c); });
                break;
            }
            case 's': {
                const char* s = va_arg(ap, const char*);
                if (s == nullptr) s = "(null)";
                // Never read past the precision: the string need not be NUL-terminated then.
                std::size_t n = 0;
                while ((!spec.has_precision || n < spec.precision) && s[n] != '\0') ++n;
                padded(out, spec, n, [&] { out.write(s, n); });
                break;
            }
            case '%':
                out.put('%');
                break;
            default:
                // Unknown conversion: show it as written rather than guess at its argument.
                out.write(start, static_cast<std::size_t>(p - start));
                break;
        }
    }
    return out.finish();
}

int format(char* buf, std::size_t size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

}  // namespace keel
