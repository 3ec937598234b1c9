// The out ring of io/console.h: out_prod is ours, out_cons the backend's; both run freely and
// are reduced modulo the ring size (MASK_XENCONS_IDX), so out_prod - out_cons is what is
// outstanding and can never exceed sizeof(out).
#include "keel/xen/console_ring.h"

#include <cstddef>

namespace keel::xen {

static_assert(sizeof(xencons_interface) == 1024 + 2048 + 4 * 4);
static_assert(offsetof(xencons_interface, out) == 1024);
static_assert(offsetof(xencons_interface, out_cons) == 3080);
static_assert(offsetof(xencons_interface, out_prod) == 3084);

Result<std::size_t> console_ring_put(volatile xencons_interface& ring, std::string_view text) {
    constexpr std::uint32_t size = sizeof(ring.out);
    // Our own index needs no ordering; the backend's is read before the space it frees is used.
    const std::uint32_t prod = ring.out_prod;
    const std::uint32_t cons = __atomic_load_n(&ring.out_cons, __ATOMIC_ACQUIRE);
    const std::uint32_t used = prod - cons;
    if (used > size) return Error::protocol;
    std::size_t n = 0;
    while (n < text.size() && used + n < size) {
        ring.out[MASK_XENCONS_IDX(prod + static_cast<std::uint32_t>(n), ring.out)] = text[n];
        ++n;
    }
    // The bytes before the index that covers them (io/console.h: the consumer reads up to out_prod).
    __atomic_store_n(&ring.out_prod, prod + static_cast<std::uint32_t>(n), __ATOMIC_RELEASE);
    return n;
}

bool console_ring_drained(const volatile xencons_interface& ring) {
    return __atomic_load_n(&ring.out_cons, __ATOMIC_ACQUIRE) == ring.out_prod;
}

}  // namespace keel::xen
