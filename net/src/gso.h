// Private to net/: merging consecutive TCP/IPv4 segments that lwIP sent into one super-segment
// for a link with segmentation offload (netfront's feature-gso-tcpv4). The link's backend cuts
// it again the way Linux's GSO does (io/netif.h leaves the rules to it): every segment gets the
// super-segment's headers, its own sequence number, IP id + 1 per segment, PSH and FIN only on
// the last. So only segments that would come out exactly like that are merged: the same
// headers but for those fields, each but the last carrying gso_size bytes and no PSH/FIN. What
// the wire sees is then what lwIP sent. No lwIP types here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace keel::net::detail {

/// What merging needs to know about one Ethernet + IPv4 + TCP frame.
struct TcpSegment {
    std::uint16_t header_len = 0;  ///< Ethernet + IPv4 + TCP headers, options included
    std::uint16_t payload = 0;     ///< TCP payload bytes
    std::uint32_t seq = 0;
    std::uint16_t ip_id = 0;
    std::uint8_t flags = 0;  ///< TCP flags byte
};

/// The frame's segment, if it may take part in a super-segment: Ethernet type IPv4 (untagged),
/// IPv4 not fragmented, TCP with ACK and at most PSH and FIN besides (no SYN, RST, URG, ECN),
/// at least one payload byte, all headers within `head` (the first contiguous bytes of the
/// frame), and the IPv4 total length matching the frame's `total` length.
std::optional<TcpSegment> parse_tcp_segment(std::span<const std::byte> head, std::size_t total);

/// True if `next` may follow `prev` in a super-segment cut at `gso_size`: `prev` carries
/// exactly gso_size bytes without PSH or FIN, `next` at most gso_size; every header byte is the
/// same but for the IPv4 id (prev + 1), its header checksum, the sequence number (prev's + its
/// payload), the TCP checksum and flags.
bool continues(std::span<const std::byte> prev_head, const TcpSegment& prev, std::span<const std::byte> next_head,
               const TcpSegment& next, std::uint16_t gso_size);

/// Write into `out` (first.header_len bytes) the super-segment's headers: `first_head`'s, with
/// the IPv4 total length for `payload` bytes and its header checksum, the TCP flags `flags`
/// (the last segment's), and in the TCP checksum field the pseudo-header sum only (folded, not
/// complemented), as a checksum-offloading sender leaves it.
void make_super_header(std::span<std::byte> out, std::span<const std::byte> first_head, const TcpSegment& first,
                       std::size_t payload, std::uint8_t flags);

}  // namespace keel::net::detail
