// The fake xenconsoled: backend side of io/console.h, with the checks a strict backend would make.
#include "fakes/fake_xenconsoled.h"

#include <cstring>

#include <gtest/gtest.h>

namespace keel::test {

FakeXenconsoled::FakeXenconsoled(std::uint32_t start_index)
    : port_(*this),
      out_({page_.ring.out, &page_.ring.out_prod, &page_.ring.out_cons}, start_index),
      in_({page_.ring.in, &page_.ring.in_prod, &page_.ring.in_cons}, start_index) {
    page_.ring.out_cons = page_.ring.out_prod = start_index;
    page_.ring.in_cons = page_.ring.in_prod = start_index;
}

void FakeXenconsoled::restart() {
    std::memset(const_cast<xencons_interface*>(&page_.ring), 0, sizeof page_.ring);
    out_ = BackendReader<out_size>({page_.ring.out, &page_.ring.out_prod, &page_.ring.out_cons}, 0);
    in_ = BackendWriter<in_size>({page_.ring.in, &page_.ring.in_prod, &page_.ring.in_cons}, 0);
}

void FakeXenconsoled::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << "console protocol violation by the guest: " << what;
}

void FakeXenconsoled::set_out_cons(std::uint32_t v) {
    hostile_ = true;
    out_.force_cons(v);
    guest_pending_ = true;
}

void FakeXenconsoled::set_in_prod(std::uint32_t v) {
    hostile_ = true;
    in_.force_prod(v);
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
    // The guest must never write the indices the backend owns.
    if (out_.guest_wrote_cons()) violation("guest wrote out_cons");
    if (in_.guest_wrote_prod()) violation("guest wrote in_prod");
    // io/console.h, consumer side: read out_prod, then the bytes below it.
    const ByteRingStep step = out_.take(max, output_);
    if (step.violation) return violation(std::string("out_prod ") + step.violation);
    if (step.bytes != 0) guest_pending_ = true;  // xenconsoled signals after draining
}

void FakeXenconsoled::type(std::string_view text) {
    typed_.append(text);
    feed_input();
}

void FakeXenconsoled::feed_input() {
    if (hostile_ || typed_.empty()) return;
    // io/console.h, producer side: read in_cons before reusing the space it frees.
    const ByteRingStep step = in_.put(typed_);
    if (step.violation) return violation(std::string("in_cons ") + step.violation);
    if (step.bytes != 0) guest_pending_ = true;
}

}  // namespace keel::test
