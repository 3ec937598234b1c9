// Private to net/: what received data waiting in sockets' queues for the service to read may
// hold of the memory every socket shares. Data in the link's receive buffers (zero-copy pbufs)
// or lwIP's pbuf pool is "pinned": a socket whose service does not read would otherwise keep
// them all and the link would receive nothing else. So the queues together keep at most
// all_pinned_max such pbufs (each socket a smaller share, its own rule); beyond, data is copied
// onto the heap and the link's buffer goes back at once. Copies are bounded too (may_copy):
// together they take at most half of what the heap has left, so that many sockets each holding
// a window of copies cannot run the heap out under everything else. Context: loop only.
#pragma once

#include <cstddef>

extern "C" {
#include "lwip/pbuf.h"
}

namespace keel::net::detail {

/// Pinned pbufs in all queues together (a quarter of netfront's 256 receive buffers).
inline constexpr std::size_t all_pinned_max = 64;
/// The most heap the copies may hold together, however much is free.
inline constexpr std::size_t rx_heap_max = 16u << 20;

/// True if `p` lies in a shared receive buffer (not a heap allocation).
inline bool pinned(const struct pbuf* p) { return pbuf_get_allocsrc(p) != PBUF_TYPE_ALLOC_SRC_MASK_STD_HEAP; }

/// Pinned pbufs in the chain, and bytes of the chain's heap pbufs.
std::size_t count_pinned(const struct pbuf* p);
std::size_t heap_bytes(const struct pbuf* p);

/// Pinned pbufs in every queue (see above).
std::size_t& pinned_in_queues();

/// A socket holding less than this on the heap may copy one more chain while the heap keeps
/// heap_floor (net::serve_heap_reserve), whatever the others hold: a socket that reads keeps
/// making progress while others sit on the share.
inline constexpr std::size_t socket_heap_floor = 16u << 10;
inline constexpr std::size_t heap_floor = 256u << 10;

/// Whether `n` more bytes of received data may be copied onto the heap for a socket holding
/// `own` bytes there already: with them the copies together hold at most rx_heap_max and at
/// most half of what they hold plus the heap's headroom (beyond that only a socket under
/// socket_heap_floor may: the copies are bounded by the share plus the floor and one chain
/// per socket).
bool may_copy(std::size_t n, std::size_t own);
/// Heap bytes of unread data taken into (positive) or released from (negative) a queue; the
/// total is Stats::rx_heap_bytes.
void held_on_heap(std::ptrdiff_t delta);

}  // namespace keel::net::detail
