// The shared bounds on received data waiting in queues (rx_budget.h).
#include "rx_budget.h"

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

bool may_copy(std::size_t n, std::size_t own) {
    const std::size_t held = static_cast<std::size_t>(counters().rx_heap_bytes);
    const std::size_t room = heap_headroom();
    if (own < socket_heap_floor && room >= heap_floor && n <= room - heap_floor) return true;
    const std::size_t half = room > SIZE_MAX - held ? SIZE_MAX / 2 : (held + room) / 2;
    const std::size_t limit = std::min(rx_heap_max, half);
    return held <= limit && n <= limit - held;
}

void held_on_heap(std::ptrdiff_t delta) { counters().rx_heap_bytes += static_cast<std::uint64_t>(delta); }

}  // namespace keel::net::detail
