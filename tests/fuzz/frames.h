// What the fuzz targets that play hosts on the wire share (lwip_input, netfront_stack): reading
// and writing big-endian fields, checksums, the frames a peer at 10.0.0.1 sends to the stack at
// 10.0.0.2 (ARP, IPv4, UDP, TCP), and what the peers learn from the frames the stack sends
// (its TCP sequence numbers, the DNS query's port and id, DHCP's xid).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.h"
#include "keel/net/addr.h"

namespace keel::fuzz {

using Frame = std::vector<std::byte>;
using MacBytes = std::array<std::uint8_t, 6>;

inline const net::IpAddr our_ip = net::IpAddr::v4(10, 0, 0, 2);
inline const net::IpAddr peer_ip = net::IpAddr::v4(10, 0, 0, 1);
inline constexpr MacBytes peer_mac{0x02, 0, 0, 0, 0, 1};
/// The stack's MAC where the target chooses it (lwip_input's device).
inline constexpr MacBytes default_our_mac{0x02, 0, 0, 0, 0, 2};
/// TCP peer k is 10.0.0.1:40000+k, talking to port 80.
inline constexpr std::size_t tcp_peers = 4;
inline constexpr std::uint32_t tcp_peer_port = 40000;

inline std::uint16_t get16(const Frame& f, std::size_t at) {
    return static_cast<std::uint16_t>((unsigned(f[at]) << 8) | unsigned(f[at + 1]));
}
inline std::uint32_t get32(const Frame& f, std::size_t at) {
    return (std::uint32_t{get16(f, at)} << 16) | get16(f, at + 2);
}
inline void put16(Frame& f, std::size_t at, std::uint32_t v) {
    f[at] = std::byte(v >> 8);
    f[at + 1] = std::byte(v & 0xff);
}
inline void put32(Frame& f, std::size_t at, std::uint32_t v) {
    put16(f, at, v >> 16);
    put16(f, at + 2, v & 0xffff);
}
inline std::uint16_t checksum(const Frame& f, std::size_t at, std::size_t n, std::uint32_t acc) {
    for (std::size_t i = 0; i < n; i += 2)
        acc += (unsigned(f[at + i]) << 8) | (i + 1 < n ? unsigned(f[at + i + 1]) : 0u);
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<std::uint16_t>(~acc);
}

/// Recompute the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6 checksum where they can be.
inline void fix_checksums(Frame& f) {
    if (f.size() < 14) return;
    const std::uint16_t type = get16(f, 12);
    if (type == 0x0800 && f.size() >= 34) {
        const std::size_t ihl = (unsigned(f[14]) & 0xf) * 4;
        if (ihl < 20 || 14 + ihl > f.size()) return;
        put16(f, 24, 0);
        put16(f, 24, checksum(f, 14, ihl, 0));
        const std::size_t total = std::min<std::size_t>(get16(f, 16), f.size() - 14);
        if (total < ihl || (get16(f, 20) & 0x3fff) != 0) return;  // a fragment: leave it
        const std::size_t l4 = 14 + ihl, len = total - ihl;
        const unsigned proto = unsigned(f[23]);
        std::uint32_t pseudo = proto + static_cast<std::uint32_t>(len);
        for (std::size_t i = 0; i < 8; i += 2) pseudo += get16(f, 26 + i);
        const std::size_t at = proto == 6 ? 16 : proto == 17 ? 6 : proto == 1 ? 2 : 0;
        if (at == 0 || len < at + 2) return;
        put16(f, l4 + at, 0);
        put16(f, l4 + at, checksum(f, l4, len, proto == 1 ? 0 : pseudo));
    } else if (type == 0x86dd && f.size() >= 54) {
        const std::size_t len = std::min<std::size_t>(get16(f, 18), f.size() - 54);
        const unsigned next = unsigned(f[20]);
        std::uint32_t pseudo = next + static_cast<std::uint32_t>(len);
        for (std::size_t i = 0; i < 32; i += 2) pseudo += get16(f, 22 + i);
        const std::size_t at = next == 6 ? 16 : next == 17 ? 6 : next == 58 ? 2 : 0;
        if (at == 0 || len < at + 2) return;
        put16(f, 54 + at, 0);
        put16(f, 54 + at, checksum(f, 54, len, pseudo));
    }
}

/// A frame that may wait in lwIP's reassembly (an IPv4 fragment, an IPv6 extension header):
/// teardown has to wait it out (IPv6: 60 s).
inline bool may_reassemble(const Frame& f) {
    if (f.size() >= 34 && get16(f, 12) == 0x0800) return (get16(f, 20) & 0x3fff) != 0;
    if (f.size() >= 54 && get16(f, 12) == 0x86dd) {
        const unsigned next = unsigned(f[20]);
        return next != 6 && next != 17 && next != 58;  // an extension header: maybe a fragment
    }
    return false;
}

/// Ethernet + IPv4 (no options) + `l4` from the peer to `dst` (at `dst_mac`).
inline Frame ipv4_frame(unsigned proto, const Frame& l4, const net::IpAddr& dst,
                        const MacBytes& dst_mac = default_our_mac) {
    Frame f(34);
    for (std::size_t i = 0; i < 6; ++i) {
        f[i] = std::byte(dst_mac[i]);
        f[6 + i] = std::byte(peer_mac[i]);
    }
    put16(f, 12, 0x0800);
    f[14] = std::byte{0x45};
    put16(f, 16, static_cast<std::uint32_t>(20 + l4.size()));
    f[22] = std::byte{64};
    f[23] = std::byte(proto);
    for (std::size_t i = 0; i < 4; ++i) {
        f[26 + i] = std::byte(peer_ip.bytes()[i]);
        f[30 + i] = std::byte(dst.bytes()[i]);
    }
    f.insert(f.end(), l4.begin(), l4.end());
    fix_checksums(f);
    return f;
}

inline Frame udp(std::uint16_t sport, std::uint16_t dport, const Frame& payload) {
    Frame u(8);
    put16(u, 0, sport);
    put16(u, 2, dport);
    put16(u, 4, static_cast<std::uint32_t>(8 + payload.size()));
    u.insert(u.end(), payload.begin(), payload.end());
    return u;
}

/// The peer asks who has 10.0.0.2 (broadcast): the stack learns the peer's MAC from it.
inline Frame arp_who_has_us() {
    Frame arp(42);
    for (std::size_t i = 0; i < 6; ++i) {
        arp[i] = std::byte{0xff};
        arp[6 + i] = arp[22 + i] = std::byte(peer_mac[i]);
    }
    put16(arp, 12, 0x0806);
    put16(arp, 14, 1);
    put16(arp, 16, 0x0800);
    arp[18] = std::byte{6};
    arp[19] = std::byte{4};
    put16(arp, 20, 1);
    for (std::size_t i = 0; i < 4; ++i) {
        arp[28 + i] = std::byte(peer_ip.bytes()[i]);
        arp[38 + i] = std::byte(our_ip.bytes()[i]);
    }
    return arp;
}

/// The peers' side of the conversation: what they learned from the stack's frames, and their
/// own TCP sequence numbers.
struct Peers {
    std::array<std::uint32_t, tcp_peers> stack_next{};  // per peer: the stack's next sequence number
    std::array<std::uint32_t, tcp_peers> peer_next{};   // per peer: its own next sequence number
    std::uint16_t dns_port = 0, dns_id = 0;
    std::uint32_t dhcp_xid = 0;

    /// Read a frame the stack transmitted (a GSO super-segment too: its IPv4 total length
    /// covers the whole payload).
    void learn(const Frame& f) {
        if (f.size() < 42 || get16(f, 12) != 0x0800 || (unsigned(f[14]) & 0xf) != 5) return;
        const unsigned proto = unsigned(f[23]);
        if (proto == 6 && f.size() >= 54) {
            const unsigned dport = get16(f, 36);
            if (dport < tcp_peer_port || dport >= tcp_peer_port + tcp_peers) return;
            const std::size_t hdr = (unsigned(f[46]) >> 4) * 4;
            const std::size_t payload = get16(f, 16) - 20 - std::min<std::size_t>(hdr, get16(f, 16) - 20);
            const unsigned flags = unsigned(f[47]);
            stack_next[dport - tcp_peer_port] = get32(f, 38) + static_cast<std::uint32_t>(payload) +
                                                ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
        } else if (proto == 17 && get16(f, 36) == 53 && f.size() >= 44) {
            dns_port = get16(f, 34);
            dns_id = get16(f, 42);
        } else if (proto == 17 && get16(f, 36) == 67 && f.size() >= 50) {
            dhcp_xid = get32(f, 46);
        }
    }

    /// The TCP header and `payload` of a segment from peer `k` to port 80 whose sequence and
    /// acknowledgement numbers follow the conversation, plus the deltas; a SYN (without ACK)
    /// starts a new sequence. The peer's next sequence number advances only for an in-order
    /// segment (seq_delta 0). The ECN bits (which lwIP ignores) ask for options instead, and
    /// are dropped: a SYN with CWR (0x80) announces an MSS of 1460 and window scaling by the
    /// shift `ack_delta` (0-255: lwIP takes more than 14 as 14), as Linux's SYN does (with 7);
    /// any other segment with CWR carries an MSS option of 1, with ECE (0x40) one of 1460
    /// (lwIP parses the options of every segment).
    Frame tcp(std::size_t k, std::uint8_t flags, std::int8_t seq_delta, std::int8_t ack_delta,
              std::uint8_t window, const Frame& payload) {
        const bool syn = (flags & 0x12) == 0x02;
        if (syn) peer_next[k] = 1000u * static_cast<std::uint32_t>(k + 1);
        const bool scale = syn && (flags & 0x80) != 0;
        const bool mss = scale || (!syn && (flags & 0xc0) != 0);
        const std::uint16_t mss_value = (!syn && (flags & 0x80)) ? 1 : 1460;
        if (mss) flags &= 0x3f;
        Frame t(20 + (mss ? 4 : 0) + (scale ? 4 : 0));
        put16(t, 0, tcp_peer_port + static_cast<std::uint32_t>(k));
        put16(t, 2, 80);
        put32(t, 4, peer_next[k] + static_cast<std::uint32_t>(seq_delta));
        put32(t, 8, stack_next[k] + static_cast<std::uint32_t>(ack_delta));
        t[12] = std::byte(t.size() / 4 << 4);
        t[13] = std::byte(flags);
        if (mss) {  // kind 2, length 4, the MSS
            t[20] = std::byte{2};
            t[21] = std::byte{4};
            put16(t, 22, mss_value);
        }
        if (scale) {  // NOP, then kind 3, length 3, the shift
            t[24] = std::byte{1};
            t[25] = std::byte{3};
            t[26] = std::byte{3};
            t[27] = std::byte(ack_delta);
        }
        // The window byte's high 8 bits of 16; an odd one fills the low 8 with ones, an even one
        // with zeros (with a window scale, a multiple of 64 KiB can then arise).
        put16(t, 14, (window & 1) ? window * 256u + 255u : window * 256u);
        t.insert(t.end(), payload.begin(), payload.end());
        if (seq_delta == 0) {
            peer_next[k] += static_cast<std::uint32_t>(payload.size()) + ((flags & 0x02) ? 1 : 0) +
                            ((flags & 0x01) ? 1 : 0);
        }
        return t;
    }

    /// tcp() with its arguments from the input: k, flags, seq delta, ack delta, window byte,
    /// payload length byte, payload.
    Frame tcp(Input& in) {
        const std::size_t k = in.u8() % tcp_peers;
        const std::uint8_t flags = in.u8();
        const auto seq_delta = static_cast<std::int8_t>(in.u8());
        const auto ack_delta = static_cast<std::int8_t>(in.u8());
        const std::uint8_t window = in.u8();
        const auto payload = in.bytes<Frame>(in.u8());
        return tcp(k, flags, seq_delta, ack_delta, window, payload);
    }
};

}  // namespace keel::fuzz
