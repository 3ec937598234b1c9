// A caller's buffer filled from the front, for writers of text protocols (HTTP heads,
// Prometheus metrics): no allocation, and never a byte past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace keel {

/// A write that does not fit, or fail(), turns ok() false for good, and nothing more is
/// written (text() keeps what was written before). Context: any.
class TextBuffer {
public:
    explicit TextBuffer(std::span<char> out) : out_(out) {}

    void put(std::string_view s);
    /// v in decimal.
    void put_u64(std::uint64_t v);
    void fail() { ok_ = false; }
    bool ok() const { return ok_; }
    std::string_view text() const { return std::string_view(out_.data(), len_); }

private:
    std::span<char> out_;
    std::size_t len_ = 0;
    bool ok_ = true;
};

}  // namespace keel
