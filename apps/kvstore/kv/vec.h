// Growable arrays that report a failed allocation instead of panicking. A client decides how
// much the server allocates (a bulk string, a reply to KEYS *), so running out of memory, or
// going over a limit, must end in an error reply, never in a crash.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace keel::kv {

/// A vector of trivially copyable elements with nothrow growth and an optional size limit.
/// Elements added by resize() are uninitialized unless a fill value is given.
template <typename T>
class Vec {
    static_assert(std::is_trivially_copyable_v<T>, "kv::Vec holds trivially copyable elements");

public:
    Vec() = default;
    /// At most `limit` elements; reserve()/append() beyond it fail.
    explicit Vec(std::size_t limit) : limit_(limit) {}
    Vec(Vec&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)),
          size_(std::exchange(o.size_, 0)),
          cap_(std::exchange(o.cap_, 0)),
          limit_(o.limit_) {}
    Vec& operator=(Vec&& o) noexcept {
        if (this != &o) {
            free();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            cap_ = std::exchange(o.cap_, 0);
            limit_ = o.limit_;
        }
        return *this;
    }
    Vec(const Vec&) = delete;
    Vec& operator=(const Vec&) = delete;
    ~Vec() { free(); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return cap_; }
    bool empty() const { return size_ == 0; }
    std::size_t limit() const { return limit_; }
    void set_limit(std::size_t limit) { limit_ = limit; }
    T& operator[](std::size_t i) { return data_[i]; }
    const T& operator[](std::size_t i) const { return data_[i]; }
    T* begin() { return data_; }
    T* end() { return data_ + size_; }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + size_; }

    /// Capacity for at least n elements. False (nothing changed) over the limit or out of memory.
    bool reserve(std::size_t n) {
        if (n <= cap_) return true;
        if (n > limit_) return false;
        std::size_t cap = cap_ < 16 ? 16 : cap_;
        while (cap < n) cap = cap > limit_ / 2 ? limit_ : cap * 2;
        if (cap > max_elements()) {
            if (n > max_elements()) return false;
            cap = n;
        }
        T* p = static_cast<T*>(::operator new (cap * sizeof(T), std::nothrow_t{}));
        if (p == nullptr) {
            if (cap == n) return false;
            cap = n;  // doubling is too much for what is left: try the exact size
            p = static_cast<T*>(::operator new (cap * sizeof(T), std::nothrow_t{}));
            if (p == nullptr) return false;
        }
        if (size_ != 0) std::memcpy(static_cast<void*>(p), data_, size_ * sizeof(T));
        ::operator delete(data_);
        data_ = p;
        cap_ = cap;
        return true;
    }
    bool push_back(const T& v) {
        if (!reserve(size_ + 1)) return false;
        data_[size_++] = v;
        return true;
    }
    bool append(const T* p, std::size_t n) {
        if (n > limit_ - size_ || !reserve(size_ + n)) return false;
        if (n != 0) std::memcpy(static_cast<void*>(data_ + size_), p, n * sizeof(T));
        size_ += n;
        return true;
    }
    /// Grow or shrink to n elements; new ones are left uninitialized.
    bool resize(std::size_t n) {
        if (!reserve(n)) return false;
        size_ = n;
        return true;
    }
    /// Grow or shrink to n elements; new ones are `fill`.
    bool resize(std::size_t n, const T& fill) {
        if (!reserve(n)) return false;
        for (std::size_t i = size_; i < n; ++i) data_[i] = fill;
        size_ = n;
        return true;
    }
    void truncate(std::size_t n) {
        if (n < size_) size_ = n;
    }
    void clear() { size_ = 0; }
    /// Drop the first n elements (moving the rest to the front).
    void erase_front(std::size_t n) {
        if (n >= size_) {
            size_ = 0;
            return;
        }
        std::memmove(static_cast<void*>(data_), data_ + n, (size_ - n) * sizeof(T));
        size_ -= n;
    }
    /// Give the memory back if more than `keep` elements' worth is held and the vector is empty.
    void shrink_if_empty(std::size_t keep) {
        if (size_ == 0 && cap_ > keep) free();
    }
    void free() {
        ::operator delete(data_);
        data_ = nullptr;
        size_ = cap_ = 0;
    }

private:
    static constexpr std::size_t max_elements() { return static_cast<std::size_t>(-1) / 2 / sizeof(T); }

    T* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
    std::size_t limit_ = static_cast<std::size_t>(-1);
};

using Bytes = Vec<char>;

}  // namespace keel::kv
