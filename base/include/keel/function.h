// A non-allocating std::function: the callable is stored inline (at most N bytes) or the
// program does not compile. Header-only vocabulary type, usable from every layer.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace keel {

template <typename Sig, std::size_t N = 48>
class Function;

template <typename R, typename... Args, std::size_t N>
class Function<R(Args...), N> {
public:
    // constexpr, so arrays of Functions in static storage are constant-initialized: they must
    // not be reset by global constructors after boot code has filled them.
    constexpr Function() = default;
    constexpr Function(std::nullptr_t) {}   // NOLINT

    template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Function>>>
    Function(F&& f) {   // NOLINT: implicit on purpose, like std::function
        using D = std::decay_t<F>;
        static_assert(sizeof(D) <= N, "callable too large for keel::Function; raise N");
        static_assert(alignof(D) <= alignof(std::max_align_t), "callable over-aligned");
        static_assert(std::is_nothrow_move_constructible_v<D>, "callable must be nothrow-movable");
        new (&buf_) D(std::forward<F>(f));
        ops_ = &ops_for<D>;
    }

    Function(Function&& o) noexcept { take(o); }
    Function& operator=(Function&& o) noexcept {
        if (this != &o) {
            reset();
            take(o);
        }
        return *this;
    }
    Function(const Function&) = delete;
    Function& operator=(const Function&) = delete;
    ~Function() { reset(); }

    explicit operator bool() const { return ops_ != nullptr; }

    R operator()(Args... args) { return ops_->call(&buf_, std::forward<Args>(args)...); }

    void reset() {
        if (ops_) ops_->destroy(&buf_);
        ops_ = nullptr;
    }

private:
    struct Ops {
        R (*call)(void*, Args&&...);
        void (*move)(void* dst, void* src);
        void (*destroy)(void*);
    };
    template <typename D>
    static constexpr Ops ops_for = {
        [](void* p, Args&&... a) -> R { return (*static_cast<D*>(p))(std::forward<Args>(a)...); },
        [](void* dst, void* src) { new (dst) D(std::move(*static_cast<D*>(src))); static_cast<D*>(src)->~D(); },
        [](void* p) { static_cast<D*>(p)->~D(); },
    };
    void take(Function& o) {
        ops_ = o.ops_;
        if (ops_) ops_->move(&buf_, &o.buf_);
        o.ops_ = nullptr;
    }

    alignas(std::max_align_t) unsigned char buf_[N] = {};
    const Ops* ops_ = nullptr;
};

}  // namespace keel
