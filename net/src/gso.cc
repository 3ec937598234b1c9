// Merging consecutive TCP/IPv4 segments into a super-segment (see gso.h).
#include "gso.h"

#include <cstring>

namespace keel::net::detail {

namespace {

constexpr std::size_t eth_len = 14;
constexpr std::uint8_t tcp_fin = 0x01, tcp_psh = 0x08, tcp_ack = 0x10;

std::uint16_t be16(const std::byte* p) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
std::uint32_t be32(const std::byte* p) {
    return (static_cast<std::uint32_t>(be16(p)) << 16) | be16(p + 2);
}
void put16(std::byte* p, std::uint16_t v) {
    p[0] = static_cast<std::byte>(v >> 8);
    p[1] = static_cast<std::byte>(v);
}
/// One's complement sum of big-endian 16-bit words, not folded.
std::uint32_t sum16(const std::byte* p, std::size_t n, std::uint32_t acc = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) acc += be16(p + i);
    if (n % 2 != 0) acc += std::to_integer<std::uint32_t>(p[n - 1]) << 8;
    return acc;
}
std::uint16_t fold(std::uint32_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint16_t>(acc);
}
bool same(const std::byte* a, const std::byte* b, std::size_t n) { return std::memcmp(a, b, n) == 0; }

}  // namespace

std::optional<TcpSegment> parse_tcp_segment(std::span<const std::byte> head, std::size_t total) {
    const std::byte* f = head.data();
    if (head.size() < eth_len + 20 || be16(f + 12) != 0x0800) return std::nullopt;
    const std::byte* ip = f + eth_len;
    const unsigned ver_ihl = std::to_integer<unsigned>(ip[0]);
    const std::size_t ihl = (ver_ihl & 0xf) * 4u;
    if ((ver_ihl >> 4) != 4 || ihl < 20 || std::to_integer<unsigned>(ip[9]) != 6) return std::nullopt;
    if ((be16(ip + 6) & 0x3fff) != 0) return std::nullopt;  // a fragment (MF or an offset)
    if (be16(ip + 2) + eth_len != total) return std::nullopt;
    if (head.size() < eth_len + ihl + 20) return std::nullopt;
    const std::byte* tcp = ip + ihl;
    const std::size_t thl = (std::to_integer<unsigned>(tcp[12]) >> 4) * 4u;
    if (thl < 20 || head.size() < eth_len + ihl + thl) return std::nullopt;
    const std::uint8_t flags = std::to_integer<std::uint8_t>(tcp[13]);
    if ((flags & tcp_ack) == 0 || (flags & ~(tcp_ack | tcp_psh | tcp_fin)) != 0) return std::nullopt;
    if ((std::to_integer<unsigned>(tcp[12]) & 0x0f) != 0) return std::nullopt;  // reserved / AE bits
    const std::size_t headers = eth_len + ihl + thl;
    if (total <= headers) return std::nullopt;
    TcpSegment s;
    s.header_len = static_cast<std::uint16_t>(headers);
    s.payload = static_cast<std::uint16_t>(total - headers);
    s.seq = be32(tcp + 4);
    s.ip_id = be16(ip + 4);
    s.flags = flags;
    return s;
}

bool continues(std::span<const std::byte> prev_head, const TcpSegment& prev, std::span<const std::byte> next_head,
               const TcpSegment& next, std::uint16_t gso_size) {
    if (prev.payload != gso_size || next.payload > gso_size) return false;
    if ((prev.flags & (tcp_psh | tcp_fin)) != 0) return false;
    if (prev.header_len != next.header_len) return false;
    if (next.seq != prev.seq + prev.payload) return false;
    if (next.ip_id != static_cast<std::uint16_t>(prev.ip_id + 1)) return false;
    const std::byte* a = prev_head.data();
    const std::byte* b = next_head.data();
    const std::size_t ihl = (std::to_integer<unsigned>(a[eth_len]) & 0xf) * 4u;
    const std::byte* ia = a + eth_len;
    const std::byte* ib = b + eth_len;
    // Ethernet; IPv4 version..tos; flags/offset, ttl, protocol; addresses and options.
    if (!same(a, b, eth_len) || !same(ia, ib, 2) || !same(ia + 6, ib + 6, 4) || !same(ia + 12, ib + 12, ihl - 12))
        return false;
    const std::byte* ta = ia + ihl;
    const std::byte* tb = ib + ihl;
    const std::size_t thl = prev.header_len - eth_len - ihl;
    // Ports; acknowledgement, data offset; window; urgent pointer and options.
    return same(ta, tb, 4) && same(ta + 8, tb + 8, 5) && same(ta + 14, tb + 14, 2) &&
           same(ta + 18, tb + 18, thl - 18);
}

void make_super_header(std::span<std::byte> out, std::span<const std::byte> first_head, const TcpSegment& first,
                       std::size_t payload, std::uint8_t flags) {
    std::byte* h = out.data();
    std::memcpy(h, first_head.data(), first.header_len);
    std::byte* ip = h + eth_len;
    const std::size_t ihl = (std::to_integer<unsigned>(ip[0]) & 0xf) * 4u;
    const std::size_t tcp_len = first.header_len - eth_len - ihl + payload;
    put16(ip + 2, static_cast<std::uint16_t>(ihl + tcp_len));
    put16(ip + 10, 0);
    put16(ip + 10, static_cast<std::uint16_t>(~fold(sum16(ip, ihl))));
    std::byte* tcp = ip + ihl;
    tcp[13] = static_cast<std::byte>(flags);
    // RFC 793 pseudo-header: source, destination, zero + protocol, TCP length.
    const std::uint32_t pseudo = sum16(ip + 12, 8, 6u + static_cast<std::uint32_t>(tcp_len));
    put16(tcp + 16, fold(pseudo));
}

}  // namespace keel::net::detail
