// PV console data path: out[] producer, in[] consumer (io/console.h).
#include "keel/console/console.h"

#include <stdint.h>

#include <cstddef>

#include <xen/io/console.h>

namespace keel::console {

static_assert(sizeof(xencons_interface) == 1024 + 2048 + 4 * 4);
static_assert(offsetof(xencons_interface, out) == 1024);
static_assert(offsetof(xencons_interface, in_cons) == 3072);
static_assert(offsetof(xencons_interface, in_prod) == 3076);
static_assert(offsetof(xencons_interface, out_cons) == 3080);
static_assert(offsetof(xencons_interface, out_prod) == 3084);

namespace {

constexpr std::uint32_t out_size = sizeof(xencons_interface::out);
constexpr std::uint32_t in_size = sizeof(xencons_interface::in);

// The backend's index: read it before touching the bytes (or space) it describes.
std::uint32_t load_acquire(const volatile std::uint32_t* index) {
    return __atomic_load_n(index, __ATOMIC_ACQUIRE);
}
// Our index: every byte it covers is written (or copied out) before the backend sees it.
void store_release(volatile std::uint32_t* index, std::uint32_t value) {
    __atomic_store_n(index, value, __ATOMIC_RELEASE);
}

}  // namespace

Console::Console(volatile xencons_interface* ring, xen::EventChannel& evtchn)
    : ring_(ring),
      evtchn_(evtchn),
      // Continue from wherever the page's indices stand (a fresh page starts at 0).
      out_prod_(ring->out_prod),
      in_cons_(ring->in_cons) {}

void Console::abandon(std::string_view why, std::string_view rest) {
    ++stats_.errors;
    broken_ = true;
    if (fallback_ == nullptr) return;
    fallback_("keel: console: ");
    fallback_(why);
    fallback_("; output continues here\n");
    fallback_(rest);
}

void Console::write(std::string_view text) {
    if (broken_) {
        if (fallback_) fallback_(text);
        return;
    }
    std::size_t i = 0;
    bool cr_done = false;  // text[i] is a '\n' whose '\r' is already in the ring
    unsigned idle_waits = 0;
    while (i < text.size()) {
        // io/console.h, producer side: read out_cons before writing into the space it frees.
        const std::uint32_t cons = load_acquire(&ring_->out_cons);
        const std::uint32_t used = out_prod_ - cons;
        if (used > out_size) {
            return abandon("backend moved out_cons outside the ring", {text.data() + i, text.size() - i});
        }
        std::uint32_t space = out_size - used;
        if (space == 0) {
            if (idle_waits == max_waits_without_progress) {
                return abandon("backend stopped draining the ring", {text.data() + i, text.size() - i});
            }
            ++idle_waits;
            ++stats_.waits;
            evtchn_.notify();  // make sure xenconsoled knows there is something to drain
            evtchn_.wait();
            continue;
        }
        idle_waits = 0;
        std::uint32_t n = 0;
        while (n < space && i < text.size()) {
            char c = text[i];
            if (c == '\n' && !cr_done) {
                c = '\r';
                cr_done = true;
            } else {
                ++i;
                cr_done = false;
            }
            ring_->out[MASK_XENCONS_IDX(out_prod_ + n, ring_->out)] = c;
            ++n;
        }
        out_prod_ += n;
        stats_.bytes_out += n;
        // io/console.h: the bytes are in out[] before the out_prod that covers them.
        store_release(&ring_->out_prod, out_prod_);
    }
    evtchn_.notify();
}

void Console::on_event() {
    if (broken_ || !input_) return;  // without a handler, input waits in in[]
    // io/console.h, consumer side: read in_prod, then the bytes below it.
    const std::uint32_t prod = load_acquire(&ring_->in_prod);
    const std::uint32_t avail = prod - in_cons_;
    if (avail > in_size) return abandon("backend moved in_prod outside the ring", {});
    if (avail == 0) return;
    for (std::uint32_t k = 0; k < avail; ++k) {
        in_copy_[k] = ring_->in[MASK_XENCONS_IDX(in_cons_ + k, ring_->in)];
    }
    in_cons_ += avail;
    stats_.bytes_in += avail;
    // io/console.h: the bytes are copied out before in_cons hands the space back.
    store_release(&ring_->in_cons, in_cons_);
    evtchn_.notify();
    // Run a moved-out copy so the handler may replace (or clear) itself.
    const std::uint32_t generation = input_generation_;
    auto handler = std::move(input_);
    handler(std::string_view(in_copy_, avail));
    if (input_generation_ == generation) input_ = std::move(handler);
}

void Console::set_input_handler(Function<void(std::string_view)> handler) {
    input_ = std::move(handler);
    ++input_generation_;
}

}  // namespace keel::console
