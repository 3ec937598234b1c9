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

void Console::reconnect() {
    ++stats_.reconnects;
    out_prod_ = ring_->out_prod;
    in_cons_ = ring_->in_cons;
    broken_ = false;
    on_event();
}

bool Console::drained() const {
    return broken_ || (backlog_used_ == 0 && __atomic_load_n(&ring_->out_cons, __ATOMIC_ACQUIRE) == out_prod_);
}

void Console::abandon(std::string_view why) {
    ++stats_.errors;
    broken_ = true;
    if (fallback_ == nullptr) {
        stats_.dropped_bytes += backlog_used_;  // lost, but counted
        backlog_used_ = 0;
        return;
    }
    fallback_("keel: console: ");
    fallback_(why);
    fallback_("; output continues here\n");
    // The backlog, in order (CRLF-expanded already: the fallback takes it as it is).
    const std::size_t first = backlog_bytes - backlog_head_ < backlog_used_ ? backlog_bytes - backlog_head_ : backlog_used_;
    fallback_({backlog_ + backlog_head_, first});
    fallback_({backlog_, backlog_used_ - first});
    backlog_used_ = 0;
}

bool Console::queue(std::string_view text) {
    std::size_t need = text.size();
    for (char c : text) need += c == '\n';
    if (need > backlog_bytes - backlog_used_) return false;
    std::size_t at = (backlog_head_ + backlog_used_) % backlog_bytes;
    for (char c : text) {
        if (c == '\n') {
            backlog_[at] = '\r';
            at = (at + 1) % backlog_bytes;
        }
        backlog_[at] = c;
        at = (at + 1) % backlog_bytes;
    }
    backlog_used_ += need;
    return true;
}

bool Console::queue_gap() {
    if (unreported_drops_ == 0) return true;
    char digits[24];
    std::size_t n = 0;
    for (std::uint64_t v = unreported_drops_; n == 0 || v != 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
    char line[64] = "[console: ";
    std::size_t len = 10;
    while (n != 0) line[len++] = digits[--n];
    constexpr std::string_view tail = " bytes dropped]\n";
    for (char c : tail) line[len++] = c;
    if (!queue({line, len})) return false;
    unreported_drops_ = 0;
    ++stats_.gaps;
    return true;
}

bool Console::pump() {
    // io/console.h, producer side: read out_cons before writing into the space it frees.
    const std::uint32_t cons = load_acquire(&ring_->out_cons);
    const std::uint32_t used = out_prod_ - cons;
    if (used > out_size) {
        abandon("backend moved out_cons outside the ring");
        return false;
    }
    std::uint32_t n = 0;
    for (; n < out_size - used && backlog_used_ != 0; ++n) {
        ring_->out[MASK_XENCONS_IDX(out_prod_ + n, ring_->out)] = backlog_[backlog_head_];
        backlog_head_ = (backlog_head_ + 1) % backlog_bytes;
        --backlog_used_;
    }
    if (n == 0) return true;
    out_prod_ += n;
    stats_.bytes_out += n;
    // io/console.h: the bytes are in out[] before the out_prod that covers them.
    store_release(&ring_->out_prod, out_prod_);
    evtchn_.notify();
    return true;
}

void Console::write(std::string_view text) {
    if (broken_ || !pump()) {
        if (fallback_)
            fallback_(text);
        else
            stats_.dropped_bytes += text.size();  // lost, but counted
        return;
    }
    // Drop the newest text, whole lines only; the gap line goes in before the next line that
    // fits, so the output shows where the gap is.
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl == std::string_view::npos ? text.size() : nl + 1);
        text.remove_prefix(line.size());
        if (!queue_gap() || !queue(line)) {
            const std::size_t n = line.size() + (line.back() == '\n');
            unreported_drops_ += n;
            stats_.dropped_bytes += n;
        }
    }
    (void)pump();  // on a broken ring, abandon() handed the backlog to the fallback
}

void Console::flush_sync() {
    if (broken_ || !pump()) return;
    for (;;) {
        if (backlog_used_ == 0) {
            if (!queue_gap() || backlog_used_ == 0 || !pump()) return;
            continue;
        }
        if (sync_waits_left_ == 0) return;
        const std::size_t before = backlog_used_;
        ++stats_.waits;
        evtchn_.notify();
        evtchn_.wait();
        if (!pump()) return;
        if (backlog_used_ == before) --sync_waits_left_;
    }
}

void Console::on_event() {
    if (broken_) return;
    if (!pump()) return;
    if (queue_gap()) (void)pump();  // the backlog emptied enough for the gap line: send it now
    if (broken_ || !input_) return;  // without a handler, input waits in in[]
    // io/console.h, consumer side: read in_prod, then the bytes below it.
    const std::uint32_t prod = load_acquire(&ring_->in_prod);
    const std::uint32_t avail = prod - in_cons_;
    if (avail > in_size) return abandon("backend moved in_prod outside the ring");
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
