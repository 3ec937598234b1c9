// IP addresses and endpoints as plain values: parse, format, compare. No lwIP in here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace keel::net {

/// An IPv4 or IPv6 address, or none (default-constructed). IPv6 addresses with link scope
/// (fe80::/10) carry a zone: the index of the interface they belong to (Interface::index()).
class IpAddr {
public:
    enum class Family : std::uint8_t { none, v4, v6 };

    /// Longest text format() writes, NUL included ("ffff:...:ffff%255").
    static constexpr std::size_t max_text = 48;

    constexpr IpAddr() = default;
    static constexpr IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        IpAddr r;
        r.family_ = Family::v4;
        r.bytes_ = {a, b, c, d};
        return r;
    }
    /// From an address in host byte order (0x0a000001 is 10.0.0.1).
    static constexpr IpAddr v4(std::uint32_t host_order) {
        return v4(static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
                  static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order));
    }
    static constexpr IpAddr v6(const std::array<std::uint8_t, 16>& bytes, std::uint8_t zone = 0) {
        IpAddr r;
        r.family_ = Family::v6;
        r.bytes_ = bytes;
        r.zone_ = zone;
        return r;
    }
    /// 0.0.0.0 and :: (listen on every address of that family).
    static constexpr IpAddr any_v4() { return v4(0u); }
    static constexpr IpAddr any_v6() { return v6({}); }

    /// Parse dotted-quad IPv4 ("192.0.2.1": four decimal parts 0-255, no leading zeros, no
    /// other forms) or IPv6 text (RFC 4291 section 2.2: hex groups, one "::", an IPv4 tail),
    /// with an optional "%ZONE" (decimal 0-255) on an IPv6 address. nullopt when malformed.
    static std::optional<IpAddr> parse(std::string_view text);

    constexpr Family family() const { return family_; }
    constexpr bool is_v4() const { return family_ == Family::v4; }
    constexpr bool is_v6() const { return family_ == Family::v6; }
    /// Family none, 0.0.0.0 or ::.
    bool is_unspecified() const;
    /// 224.0.0.0/4 or ff00::/8.
    bool is_multicast() const;
    /// 127.0.0.0/8 or ::1.
    bool is_loopback() const;
    /// fe80::/10.
    bool is_link_local() const;

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6, none for Family::none.
    std::span<const std::uint8_t> bytes() const {
        return {bytes_.data(), family_ == Family::v4 ? 4u : family_ == Family::v6 ? 16u : 0u};
    }
    /// IPv4 in host byte order (0 for other families).
    std::uint32_t v4_host_order() const;
    constexpr std::uint8_t zone() const { return zone_; }
    IpAddr with_zone(std::uint8_t zone) const {
        IpAddr r = *this;
        r.zone_ = zone;
        return r;
    }

    /// Write the text form (IPv6 per RFC 5952: lower case, longest zero run compressed, "%zone"
    /// when the zone is non-zero) NUL-terminated into `out`; returns its length, or 0 if `out`
    /// is too small (max_text always fits). "none" for Family::none.
    std::size_t format(std::span<char> out) const;

    constexpr bool operator==(const IpAddr&) const = default;

private:
    Family family_ = Family::none;
    std::uint8_t zone_ = 0;
    std::array<std::uint8_t, 16> bytes_{};
};

/// An address and a port.
struct Endpoint {
    IpAddr addr;
    std::uint16_t port = 0;
    constexpr bool operator==(const Endpoint&) const = default;
};

/// An address in text, for log lines: `KLOG_INFO("peer %s", AddrText(a).c_str())`.
class AddrText {
public:
    explicit AddrText(const IpAddr& a) { a.format(buf_); }
    /// "ADDR:PORT", or "[ADDR]:PORT" for IPv6.
    explicit AddrText(const Endpoint& e);
    const char* c_str() const { return buf_; }

private:
    char buf_[IpAddr::max_text + 8] = {};
};

/// A MAC address.
using MacAddr = std::array<std::uint8_t, 6>;

}  // namespace keel::net
