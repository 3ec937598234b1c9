// A fake xenconsoled: the backend's end of the console page (io/console.h). It drains out[] when
// the guest notifies or waits (all at once, or a few bytes per wake-up), feeds in[] with "typed"
// input, checks that the guest keeps to the ring protocol, and can be told to misbehave.
#pragma once

#include <stdint.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xen/io/console.h>

#include "fakes/fake_byte_ring.h"

namespace keel::test {

class FakeXenconsoled;

/// The guest's end of the console event channel: a notify() drains (unless turned off), a wait()
/// always does.
using FakeConsPort = FakeDaemonPort<FakeXenconsoled>;

class FakeXenconsoled {
public:
    /// `start_index`: where all four ring indices start (to test the wrap).
    explicit FakeXenconsoled(std::uint32_t start_index = 0);
    FakeXenconsoled(const FakeXenconsoled&) = delete;
    FakeXenconsoled& operator=(const FakeXenconsoled&) = delete;

    volatile xencons_interface* ring() { return &page_.ring; }
    FakeConsPort& port() { return port_; }

    // ---- knobs
    /// Bytes drained per notify/wait; 0 = everything available.
    void set_drain_per_wake(std::size_t n) { drain_per_wake_ = n; }
    /// Whether a guest notify() drains (a wait() always does, unless stalled).
    void set_drain_on_notify(bool on) { drain_on_notify_ = on; }
    /// A backend that wakes the guest but never drains.
    void set_stalled(bool on) { stalled_ = on; }

    // ---- hostile backend: scribble on the indices the backend owns
    void set_out_cons(std::uint32_t v);
    void set_in_prod(std::uint32_t v);

    /// Drain out[] into output() (at most `max` bytes); checks the guest's out_prod first.
    void drain(std::size_t max = SIZE_MAX);
    /// What the guest wrote, in order.
    /// What `xl restore` does: a cleared ring page (all indices 0) for the new domain's
    /// xenconsoled connection. What was read so far stays in output().
    void restart();
    const std::string& output() const { return output_; }
    /// Bytes in out[] not yet drained.
    std::uint32_t undrained() const { return page_.ring.out_prod - out_.cons(); }

    /// Type `text`: as much as fits goes into in[] now, the rest as the guest consumes.
    void type(std::string_view text);
    std::size_t input_backlog() const { return typed_.size(); }

    bool guest_pending() const { return guest_pending_; }
    void clear_guest_pending() { guest_pending_ = false; }
    int violations() const { return violations_; }

    // Called by FakeConsPort.
    void on_notify();
    void on_wait();

private:
    void violation(const std::string& what);
    void feed_input();

    static constexpr std::uint32_t out_size = sizeof(xencons_interface::out);
    static constexpr std::uint32_t in_size = sizeof(xencons_interface::in);

    struct alignas(4096) Page {
        xencons_interface ring;
    } page_{};
    FakeConsPort port_;
    // The backend's ends of the two rings (its copies of the indices it owns).
    BackendReader<out_size> out_;
    BackendWriter<in_size> in_;
    bool hostile_ = false;  // after scribbling, the guest's view cannot be judged any more

    std::string output_;
    std::string typed_;
    std::size_t drain_per_wake_ = 0;
    bool drain_on_notify_ = true;
    bool stalled_ = false;
    bool guest_pending_ = false;
    int violations_ = 0;
};

}  // namespace keel::test
