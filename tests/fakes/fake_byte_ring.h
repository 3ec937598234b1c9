// The backend's end of the byte rings that xenstore (io/xs_wire.h) and the console
// (io/console.h) share with the guest: each direction is a power-of-two byte array with a
// free-running producer and consumer index, one written by each side. The fakes of both daemons
// keep their own copies of the indices they own and check the ones the guest owns here; the
// guest signals them through a FakeDaemonPort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "keel/function.h"
#include "keel/xen/event_channel.h"

namespace keel::test {

/// The guest's end of a fake daemon's event channel. notify() lets the daemon react
/// (Daemon::on_notify()); wait() always lets it run once (Daemon::on_wait()), then returns as if
/// the port had fired, which consumes the daemon's pending signal.
template <typename Daemon>
class FakeDaemonPort final : public xen::EventChannel {
public:
    explicit FakeDaemonPort(Daemon& daemon) : daemon_(daemon) {}
    void notify() override {
        ++notifies;
        daemon_.on_notify();
    }
    void wait() override {
        ++waits;
        daemon_.on_wait();
        daemon_.clear_guest_pending();
    }
    void set_handler(Function<void()> handler) override { handler_ = std::move(handler); }

    int notifies = 0;
    int waits = 0;

private:
    Daemon& daemon_;
    Function<void()> handler_;
};

inline std::uint32_t load_acquire(const volatile std::uint32_t* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
inline void store_release(volatile std::uint32_t* p, std::uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/// One direction of a shared byte ring: `data` (Size bytes), the producer and consumer index.
template <std::uint32_t Size>
struct ByteRingView {
    static_assert(Size != 0 && (Size & (Size - 1)) == 0, "the index mask needs a power of two");
    volatile char* data;
    volatile std::uint32_t* prod;
    volatile std::uint32_t* cons;

    volatile char& at(std::uint32_t index) const { return data[index & (Size - 1)]; }
};

/// What a backend step did: bytes moved, or the guest's violation (nullptr when none).
struct ByteRingStep {
    std::uint32_t bytes = 0;
    const char* violation = nullptr;
};

/// The backend consuming what the guest produces (xenstore req[], console out[]).
template <std::uint32_t Size>
class BackendReader {
public:
    BackendReader(ByteRingView<Size> view, std::uint32_t start) : v_(view), cons_(start), last_prod_(start) {}

    /// The ring rule, consumer side: read prod, then the bytes below it; copy at most `max` of
    /// them to `out`, then release their space. The guest's producer index may neither move
    /// backwards nor claim more than the ring holds.
    ByteRingStep take(std::size_t max, std::string& out) {
        const std::uint32_t prod = load_acquire(v_.prod);
        if (static_cast<std::int32_t>(prod - last_prod_) < 0) return {0, "moved backwards"};
        if (prod - cons_ > Size) return {0, "points beyond the free space"};
        last_prod_ = prod;
        std::uint32_t n = prod - cons_;
        if (n > max) n = static_cast<std::uint32_t>(max);
        for (std::uint32_t i = 0; i < n; ++i) out.push_back(v_.at(cons_ + i));
        if (n != 0) {
            cons_ += n;
            store_release(v_.cons, cons_);  // bytes copied before the space is released
        }
        return {n, nullptr};
    }

    /// Whether the guest wrote the consumer index, which only the backend may.
    bool guest_wrote_cons() const { return *v_.cons != cons_; }
    /// A hostile backend: publish any consumer index.
    void force_cons(std::uint32_t v) {
        cons_ = v;
        store_release(v_.cons, v);
    }
    std::uint32_t cons() const { return cons_; }
    std::uint32_t last_prod() const { return last_prod_; }

private:
    ByteRingView<Size> v_;
    std::uint32_t cons_, last_prod_;
};

/// The backend producing what the guest consumes (xenstore rsp[], console in[]).
template <std::uint32_t Size>
class BackendWriter {
public:
    BackendWriter(ByteRingView<Size> view, std::uint32_t start) : v_(view), prod_(start), last_cons_(start) {}

    /// The ring rule, producer side: read cons before reusing the space it frees; write as much
    /// of `bytes` as fits (at most `max`), erase it from `bytes`, then publish prod. The guest's
    /// consumer index may neither move backwards nor pass the producer.
    ByteRingStep put(std::string& bytes, std::size_t max = SIZE_MAX) {
        const std::uint32_t cons = load_acquire(v_.cons);
        if (static_cast<std::int32_t>(cons - last_cons_) < 0) return {0, "moved backwards"};
        if (prod_ - cons > Size) return {0, "moved beyond the producer"};
        last_cons_ = cons;
        std::size_t n = Size - (prod_ - cons);
        if (n > bytes.size()) n = bytes.size();
        if (n > max) n = max;
        for (std::size_t i = 0; i < n; ++i) v_.at(prod_ + static_cast<std::uint32_t>(i)) = bytes[i];
        bytes.erase(0, n);
        if (n != 0) {
            prod_ += static_cast<std::uint32_t>(n);
            store_release(v_.prod, prod_);  // bytes visible before the index
        }
        return {static_cast<std::uint32_t>(n), nullptr};
    }

    /// Whether the guest wrote the producer index, which only the backend may.
    bool guest_wrote_prod() const { return *v_.prod != prod_; }
    /// A hostile backend: publish any producer index.
    void force_prod(std::uint32_t v) {
        prod_ = v;
        store_release(v_.prod, v);
    }
    /// After force_prod(): accept the guest's consumer index once it has caught up.
    bool guest_caught_up() const { return load_acquire(v_.cons) == prod_; }
    void resync() { last_cons_ = load_acquire(v_.cons); }
    std::uint32_t prod() const { return prod_; }

private:
    ByteRingView<Size> v_;
    std::uint32_t prod_, last_cons_;
};

}  // namespace keel::test
