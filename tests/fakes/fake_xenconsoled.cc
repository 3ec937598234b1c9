// The fake xenconsoled: backend side of io/console.h, with the checks a strict backend would make.
#include "fakes/fake_xenconsoled.h"

#include <gtest/gtest.h>

namespace keel::test {

namespace {

std::uint32_t load_acquire(const volatile std::uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(volatile std::uint32_t* p, std::uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

constexpr std::uint32_t out_size = sizeof(xencons_interface::out);
constexpr std::uint32_t in_size = sizeof(xencons_interface::in);

}  // namespace

void FakeConsPort::notify() {
    ++notifies;
    daemon_.on_notify();
}

void FakeConsPort::wait() {
    ++waits;
    daemon_.on_wait();
    daemon_.clear_guest_pending();  // wait() consumes the pending bit
}

FakeXenconsoled::FakeXenconsoled(std::uint32_t start_index)
    : port_(*this),
      out_cons_(start_index),
      in_prod_(start_index),
      last_out_prod_(start_index),
      last_in_cons_(start_index) {
    page_.ring.out_cons = page_.ring.out_prod = start_index;
    page_.ring.in_cons = page_.ring.in_prod = start_index;
}

void FakeXenconsoled::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << "console protocol violation by the guest: " << what;
}

void FakeXenconsoled::set_out_cons(std::uint32_t v) {
    hostile_ = true;
    out_cons_ = v;
    store_release(&page_.ring.out_cons, v);
    guest_pending_ = true;
}

void FakeXenconsoled::set_in_prod(std::uint32_t v) {
    hostile_ = true;
    in_prod_ = v;
    store_release(&page_.ring.in_prod, v);
    guest_pending_ = true;
}

void FakeXenconsoled::on_notify() {
    if (drain_on_notify_) drain(drain_per_wake_ ? drain_per_wake_ : SIZE_MAX);
    feed_input();
}

void FakeXenconsoled::on_wait() {
    drain(drain_per_wake_ ? drain_per_wake_ : SIZE_MAX);
    feed_input();
}

void FakeXenconsoled::drain(std::size_t max) {
    if (hostile_ || stalled_) return;
    volatile xencons_interface* r = ring();
    // The guest must never write the indices the backend owns.
    if (r->out_cons != out_cons_) violation("guest wrote out_cons");
    if (r->in_prod != in_prod_) violation("guest wrote in_prod");
    // io/console.h, consumer side: read out_prod, then the bytes below it.
    const std::uint32_t prod = load_acquire(&r->out_prod);
    if (static_cast<std::int32_t>(prod - last_out_prod_) < 0) {
        violation("out_prod moved backwards");
        return;
    }
    if (prod - out_cons_ > out_size) {
        violation("guest wrote beyond the free space of out[]");
        return;
    }
    last_out_prod_ = prod;
    std::uint32_t n = prod - out_cons_;
    if (n > max) n = static_cast<std::uint32_t>(max);
    for (std::uint32_t i = 0; i < n; ++i) {
        output_.push_back(r->out[MASK_XENCONS_IDX(out_cons_ + i, r->out)]);
    }
    if (n == 0) return;
    out_cons_ += n;
    store_release(&r->out_cons, out_cons_);  // bytes copied before the space is released
    guest_pending_ = true;                   // xenconsoled signals after draining
}

void FakeXenconsoled::type(std::string_view text) {
    typed_.append(text);
    feed_input();
}

void FakeXenconsoled::feed_input() {
    if (hostile_ || typed_.empty()) return;
    volatile xencons_interface* r = ring();
    // io/console.h, producer side: read in_cons before reusing the space it frees.
    const std::uint32_t cons = load_acquire(&r->in_cons);
    if (static_cast<std::int32_t>(cons - last_in_cons_) < 0) {
        violation("in_cons moved backwards");
        return;
    }
    if (in_prod_ - cons > in_size) {
        violation("in_cons moved beyond in_prod");
        return;
    }
    last_in_cons_ = cons;
    std::uint32_t n = in_size - (in_prod_ - cons);
    if (n > typed_.size()) n = static_cast<std::uint32_t>(typed_.size());
    if (n == 0) return;
    for (std::uint32_t i = 0; i < n; ++i) r->in[MASK_XENCONS_IDX(in_prod_ + i, r->in)] = typed_[i];
    typed_.erase(0, n);
    in_prod_ += n;
    store_release(&r->in_prod, in_prod_);  // bytes visible before the index
    guest_pending_ = true;
}

}  // namespace keel::test
