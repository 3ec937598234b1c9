// Private to net/: what the data a client or peer makes the guest hold may take of the memory
// every socket shares.
//
// Received data waits in sockets' queues for the service to read. Data in the link's receive
// buffers (zero-copy pbufs) or lwIP's pbuf pool is "pinned": a socket whose service does not
// read would otherwise keep them all and the link would receive nothing else. So the queues
// together keep at most all_pinned_max such pbufs (each socket a smaller share, its own rule);
// beyond, data is copied onto the heap and the link's buffer goes back at once.
//
// Data queued to send waits in lwIP's send queues until the peer acknowledges it; a peer that
// never reads keeps a connection's whole send buffer (TCP_SND_BUF) there.
//
// Both kinds are bounded by one rule (share_left): the sockets of a kind together take at most
// half of what is left, counting what they hold, so that many sockets each holding a window
// cannot run the heap (or lwIP's segment pool, for the send queues) out under everything else
// (operator new's panic, a connection that reads). A socket holding little keeps a small floor
// of its own, so a connection that reads keeps making progress while others sit on the share.
// Context: loop only.
#pragma once

#include <cstddef>

extern "C" {
#include "lwip/pbuf.h"
}

namespace keel::net::detail {

/// Pinned pbufs in all queues together (a quarter of netfront's 256 receive buffers).
inline constexpr std::size_t all_pinned_max = 64;
/// The most heap the sockets of one kind may hold together, however much is free.
inline constexpr std::size_t kind_heap_max = 16u << 20;

/// True if `p` lies in a shared receive buffer (not a heap allocation).
inline bool pinned(const struct pbuf* p) { return pbuf_get_allocsrc(p) != PBUF_TYPE_ALLOC_SRC_MASK_STD_HEAP; }

/// Pinned pbufs in the chain, and bytes of the chain's heap pbufs.
std::size_t count_pinned(const struct pbuf* p);
std::size_t heap_bytes(const struct pbuf* p);

/// Pinned pbufs in every queue (see above).
std::size_t& pinned_in_queues();

/// A socket holding less than this of its kind on the heap has a floor of its own: it may add
/// to it while the heap keeps heap_floor (net::serve_heap_reserve), whatever the others hold.
inline constexpr std::size_t socket_heap_floor = 16u << 10;
inline constexpr std::size_t heap_floor = 256u << 10;

/// How much more the holders of a resource, holding `held` together with `free` left, may take:
/// up to half of held + free (so they never hold more than is left), and at most `cap` in all.
std::size_t share_left(std::size_t held, std::size_t free, std::size_t cap);

/// What the heap has beyond heap_floor: what a socket under its floor may still add.
std::size_t heap_above_floor();

/// Whether `n` more bytes of received data may be copied onto the heap for a socket holding
/// `own` bytes there already: within share_left of all copies (Stats::rx_heap_bytes) or, for a
/// socket under socket_heap_floor, one whole chain more while the heap keeps heap_floor (a
/// received chain cannot be taken in part). So the copies are bounded by the share plus the
/// floor and one chain per socket.
bool may_copy(std::size_t n, std::size_t own);
/// Heap bytes of unread data taken into (positive) or released from (negative) a queue; the
/// total is Stats::rx_heap_bytes.
void held_on_heap(std::ptrdiff_t delta);

}  // namespace keel::net::detail
