// The shared bounds on data that clients make the guest hold (budget.h).
#include "budget.h"

#include <algorithm>
#include <cstdint>

#include "keel/heap.h"
#include "lwip_glue.h"

namespace keel::net::detail {

std::size_t count_pinned(const struct pbuf* p) {
    std::size_t n = 0;
    for (; p != nullptr; p = p->next) n += pinned(p) ? 1 : 0;
    return n;
}

std::size_t heap_bytes(const struct pbuf* p) {
    std::size_t n = 0;
    for (; p != nullptr; p = p->next) n += pinned(p) ? 0 : p->len;
    return n;
}

std::size_t& pinned_in_queues() {
    static std::size_t n = 0;
    return n;
}

std::size_t share_left(std::size_t held, std::size_t free, std::size_t cap) {
    const std::size_t half = free > SIZE_MAX - held ? SIZE_MAX / 2 : (held + free) / 2;
    const std::size_t limit = std::min(cap, half);
    return held < limit ? limit - held : 0;
}

std::size_t heap_above_floor() {
    const std::size_t room = heap_headroom();
    return room > heap_floor ? room - heap_floor : 0;
}

bool may_copy(std::size_t n, std::size_t own) {
    if (own < socket_heap_floor && n <= heap_above_floor()) return true;
    return n <= share_left(static_cast<std::size_t>(counters().rx_heap_bytes), heap_headroom(), kind_heap_max);
}

void held_on_heap(std::ptrdiff_t delta) { counters().rx_heap_bytes += static_cast<std::uint64_t>(delta); }

}  // namespace keel::net::detail
