// TextBuffer (text_buffer.h).
#include "keel/text_buffer.h"

#include <array>

namespace keel {

void TextBuffer::put(std::string_view s) {
    if (!ok_) return;
    if (s.size() > out_.size() - len_) {
        ok_ = false;
        return;
    }
    for (char c : s) out_[len_++] = c;
}

void TextBuffer::put_u64(std::uint64_t v) {
    std::array<char, 20> digits;
    std::size_t i = digits.size();
    do {
        digits[--i] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(std::string_view(digits.data() + i, digits.size() - i));
}

}  // namespace keel
