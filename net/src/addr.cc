// IpAddr parsing and formatting. The text comes from outside (command line, DNS, peers), so the
// parser is strict and never asserts. No string_view::substr (it can throw): indices only.
#include "keel/net/addr.h"

#include <cstring>

#include "keel/ascii.h"
#include "keel/format.h"

namespace keel::net {
namespace {

/// Dotted quad in text[begin, end): exactly four decimal parts 0-255, no leading zeros.
bool parse_v4(std::string_view text, std::uint8_t out[4]) {
    std::size_t i = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (i >= text.size() || text[i] != '.') return false;
            ++i;
        }
        const std::size_t start = i;
        unsigned v = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3) {
            v = v * 10 + static_cast<unsigned>(text[i] - '0');
            ++i;
        }
        const std::size_t len = i - start;
        if (len == 0 || v > 255) return false;
        if (len > 1 && text[start] == '0') return false;  // "010" would be octal to inet_aton
        out[part] = static_cast<std::uint8_t>(v);
    }
    return i == text.size();
}

bool parse_v6(std::string_view text, std::uint8_t out[16]) {
    std::uint16_t groups[8] = {};
    int count = 0;  // groups written
    int gap = -1;   // index in groups where "::" stands
    std::size_t i = 0;
    const std::size_t n = text.size();
    if (n >= 2 && text[0] == ':' && text[1] == ':') {
        gap = 0;
        i = 2;
        if (i == n) {
            std::memset(out, 0, 16);
            return true;
        }
    } else if (n >= 1 && text[0] == ':') {
        return false;  // a single leading colon
    }
    while (i < n) {
        // An IPv4 tail: the rest has a '.', and two groups' worth of room is left.
        std::size_t j = i;
        while (j < n && text[j] != ':' && text[j] != '.') ++j;
        if (j < n && text[j] == '.') {
            if (count > 6) return false;
            std::uint8_t v4[4];
            if (!parse_v4(std::string_view(text.data() + i, n - i), v4)) return false;
            groups[count++] = static_cast<std::uint16_t>(v4[0] << 8 | v4[1]);
            groups[count++] = static_cast<std::uint16_t>(v4[2] << 8 | v4[3]);
            i = n;
            break;
        }
        if (count == 8) return false;
        unsigned v = 0;
        std::size_t digits = 0;
        while (i < n && hex_value(text[i]) >= 0) {
            if (++digits > 4) return false;
            v = v << 4 | static_cast<unsigned>(hex_value(text[i]));
            ++i;
        }
        if (digits == 0) return false;
        groups[count++] = static_cast<std::uint16_t>(v);
        if (i == n) break;
        if (text[i] != ':') return false;
        ++i;
        if (i < n && text[i] == ':') {
            if (gap >= 0) return false;  // a second "::"
            gap = count;
            ++i;
        } else if (i == n) {
            return false;  // a single trailing colon
        }
    }
    if (gap < 0 && count != 8) return false;
    if (gap >= 0 && count > 7) return false;  // "::" must stand for at least one group
    std::uint16_t full[8] = {};
    if (gap < 0) {
        std::memcpy(full, groups, sizeof(full));
    } else {
        const int tail = count - gap;
        for (int k = 0; k < gap; ++k) full[k] = groups[k];
        for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[gap + k];
    }
    for (int k = 0; k < 8; ++k) {
        out[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
        out[2 * k + 1] = static_cast<std::uint8_t>(full[k]);
    }
    return true;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    bool colon = false;
    for (char c : text) colon |= c == ':';
    if (!colon) {
        std::uint8_t b[4];
        if (!parse_v4(text, b)) return std::nullopt;
        return v4(b[0], b[1], b[2], b[3]);
    }
    std::size_t addr_len = text.size();
    unsigned zone = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') continue;
        addr_len = i;
        const std::size_t digits = text.size() - i - 1;
        if (digits == 0 || digits > 3) return std::nullopt;
        for (std::size_t k = i + 1; k < text.size(); ++k) {
            if (text[k] < '0' || text[k] > '9') return std::nullopt;
            zone = zone * 10 + static_cast<unsigned>(text[k] - '0');
        }
        if (zone > 255) return std::nullopt;
        break;
    }
    std::array<std::uint8_t, 16> b;
    if (!parse_v6(std::string_view(text.data(), addr_len), b.data())) return std::nullopt;
    return v6(b, static_cast<std::uint8_t>(zone));
}

bool IpAddr::is_unspecified() const {
    for (std::uint8_t b : bytes()) {
        if (b != 0) return false;
    }
    return true;
}

bool IpAddr::is_multicast() const {
    if (is_v4()) return (bytes_[0] & 0xf0) == 0xe0;
    if (is_v6()) return bytes_[0] == 0xff;
    return false;
}

bool IpAddr::is_loopback() const {
    if (is_v4()) return bytes_[0] == 127;
    if (is_v6()) {
        for (int i = 0; i < 15; ++i) {
            if (bytes_[i] != 0) return false;
        }
        return bytes_[15] == 1;
    }
    return false;
}

bool IpAddr::is_link_local() const { return is_v6() && bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80; }

std::uint32_t IpAddr::v4_host_order() const {
    if (!is_v4()) return 0;
    return static_cast<std::uint32_t>(bytes_[0]) << 24 | static_cast<std::uint32_t>(bytes_[1]) << 16 |
           static_cast<std::uint32_t>(bytes_[2]) << 8 | bytes_[3];
}

std::size_t IpAddr::format(std::span<char> out) const {
    char buf[max_text];
    int len = 0;
    if (family_ == Family::none) {
        len = keel::format(buf, sizeof(buf), "none");
    } else if (is_v4()) {
        len = keel::format(buf, sizeof(buf), "%u.%u.%u.%u", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
    } else {
        unsigned g[8];
        for (int i = 0; i < 8; ++i) g[i] = static_cast<unsigned>(bytes_[2 * i] << 8 | bytes_[2 * i + 1]);
        // RFC 5952 4.2: compress the longest run of two or more zero groups (the first if tied).
        int best = -1, best_len = 1;
        for (int i = 0; i < 8;) {
            if (g[i] != 0) {
                ++i;
                continue;
            }
            int j = i;
            while (j < 8 && g[j] == 0) ++j;
            if (j - i > best_len) {
                best = i;
                best_len = j - i;
            }
            i = j;
        }
        // An IPv4-mapped address (::ffff:a.b.c.d) keeps its dotted tail (RFC 5952 5).
        const bool mapped = best == 0 && best_len == 5 && g[5] == 0xffff;
        const int end = mapped ? 6 : 8;
        for (int i = 0; i < end;) {
            if (i == best) {
                len += keel::format(buf + len, sizeof(buf) - len, "::");
                i += best_len;
                continue;
            }
            if (i > 0 && i != best + best_len) len += keel::format(buf + len, sizeof(buf) - len, ":");
            len += keel::format(buf + len, sizeof(buf) - len, "%x", g[i]);
            ++i;
        }
        if (mapped) {
            len += keel::format(buf + len, sizeof(buf) - len, ":%u.%u.%u.%u", bytes_[12], bytes_[13],
                                bytes_[14], bytes_[15]);
        }
        if (zone_ != 0) len += keel::format(buf + len, sizeof(buf) - len, "%%%u", zone_);
    }
    const auto n = static_cast<std::size_t>(len);
    if (n + 1 > out.size()) {
        if (!out.empty()) out[0] = '\0';
        return 0;
    }
    std::memcpy(out.data(), buf, n + 1);
    return n;
}

AddrText::AddrText(const Endpoint& e) {
    char a[IpAddr::max_text];
    e.addr.format(a);
    keel::format(buf_, sizeof(buf_), e.addr.is_v6() ? "[%s]:%u" : "%s:%u", a, e.port);
}

}  // namespace keel::net
