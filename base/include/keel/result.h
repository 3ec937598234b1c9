// One error type for the whole tree: Result<T> over an enum class error code.
// Freestanding and header-only, so host tests and the guest share it.
#pragma once

#include <new>
#include <type_traits>
#include <utility>

namespace keel {

/// Every failure in keel is one of these. Keep the list short; add a value only when a caller
/// must be able to tell it apart from the others.
enum class Error : int {
    ok = 0,
    invalid_argument,   ///< caller passed something malformed (bad command line, bad path)
    bad_input,          ///< the other side sent something malformed (ring response, reply)
    protocol,           ///< the other side broke the protocol (wrong id, wrong type, order)
    not_found,          ///< ENOENT and friends
    permission,         ///< EACCES / EPERM / read-only
    exists,             ///< EEXIST
    again,              ///< EAGAIN: retry (xenstore transaction conflict)
    busy,               ///< EBUSY: resource still in use (grant still mapped)
    no_memory,          ///< out of pages / heap / ring slots
    no_space,           ///< E2BIG / ENOSPC: too large for the buffer or ring
    timed_out,          ///< a bounded wait ran out
    closed,             ///< the peer or device went away
    not_supported,      ///< feature or operation not offered
    io,                 ///< the device reported an I/O error
    cancelled,          ///< the operation was abandoned by its owner
};

/// Short, stable text for an error (for logs and reports).
constexpr const char* to_string(Error e) {
    switch (e) {
    case Error::ok: return "ok";
    case Error::invalid_argument: return "invalid argument";
    case Error::bad_input: return "bad input";
    case Error::protocol: return "protocol violation";
    case Error::not_found: return "not found";
    case Error::permission: return "permission denied";
    case Error::exists: return "already exists";
    case Error::again: return "try again";
    case Error::busy: return "busy";
    case Error::no_memory: return "out of memory";
    case Error::no_space: return "no space";
    case Error::timed_out: return "timed out";
    case Error::closed: return "closed";
    case Error::not_supported: return "not supported";
    case Error::io: return "I/O error";
    case Error::cancelled: return "cancelled";
    }
    return "unknown error";
}

/// Either a T or an Error. Check with `ok()` / `operator bool`, read with `value()` / `error()`.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(const T& v) : has_(true) { new (&storage_) T(v); }                    // NOLINT
    Result(T&& v) : has_(true) { new (&storage_) T(std::move(v)); }              // NOLINT
    Result(Error e) : has_(false), error_(e) {}                                  // NOLINT
    Result(const Result& o) : has_(o.has_), error_(o.error_) {
        if (has_) new (&storage_) T(o.value());
    }
    Result(Result&& o) noexcept : has_(o.has_), error_(o.error_) {
        if (has_) new (&storage_) T(std::move(o.value()));
    }
    Result& operator=(Result o) noexcept {
        destroy();
        has_ = o.has_;
        error_ = o.error_;
        if (has_) new (&storage_) T(std::move(o.value()));
        return *this;
    }
    ~Result() { destroy(); }

    bool ok() const { return has_; }
    explicit operator bool() const { return has_; }
    Error error() const { return has_ ? Error::ok : error_; }

    T& value() & { return *std::launder(reinterpret_cast<T*>(&storage_)); }
    const T& value() const& { return *std::launder(reinterpret_cast<const T*>(&storage_)); }
    T&& value() && { return std::move(*std::launder(reinterpret_cast<T*>(&storage_))); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T value_or(T fallback) const { return has_ ? value() : fallback; }

private:
    void destroy() {
        if (has_) value().~T();
        has_ = false;
    }
    bool has_;
    Error error_ = Error::ok;
    alignas(T) unsigned char storage_[sizeof(T)];
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : error_(e) {}   // NOLINT
    bool ok() const { return error_ == Error::ok; }
    explicit operator bool() const { return ok(); }
    Error error() const { return error_; }

private:
    Error error_ = Error::ok;
};

}  // namespace keel

/// Evaluate a Result-returning expression; on error return the error from the enclosing function.
/// On success the expression's value is the value of TRY(...) (GNU statement expression).
#define TRY(expr)                                                       \
    ({                                                                  \
        auto&& keel_try_result_ = (expr);                               \
        if (!keel_try_result_.ok()) return keel_try_result_.error();    \
        std::move(keel_try_result_).value();                            \
    })

/// TRY for Result<void>.
#define TRY_VOID(expr)                                                  \
    do {                                                                \
        auto keel_try_result_ = (expr);                                 \
        if (!keel_try_result_.ok()) return keel_try_result_.error();    \
    } while (0)
