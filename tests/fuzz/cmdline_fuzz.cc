// The guest command line (xl cmdline = "..."): parse() must accept or reject any bytes with a
// reason and a position, and what it accepts must satisfy the grammar in keel/cmdline.h.
#include <string_view>

#include "fuzz_support.h"
#include "keel/cmdline.h"

namespace {

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const char* why = nullptr;
    std::size_t where = ~std::size_t{0};
    auto r = keel::CommandLine::parse(text, &why, &where);
    if (!r.ok()) {
        CHECK(why != nullptr && why[0] != '\0');
        CHECK(where <= size);
        return 0;
    }
    const keel::CommandLine& c = r.value();
    CHECK(size <= keel::CommandLine::max_length && c.size() <= keel::CommandLine::max_words);
    CHECK(c.text() == text && c.c_str()[size] == '\0');
    for (std::size_t i = 0; i < c.size(); ++i) {
        const auto& a = c[i];
        CHECK(!a.key.empty());
        for (char ch : a.key) CHECK(key_char(ch));
        for (char ch : a.value) CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f && ch != '"');
        // Views point into the command line's own copy, and lookups find each word.
        CHECK(a.key.data() >= c.c_str() && a.key.data() + a.key.size() <= c.c_str() + size);
        CHECK(c.has(a.key));
        if (a.has_value) CHECK(c.get(a.key) == a.value);
        (void)c.get_uint(a.key, 0, 0, ~std::uint64_t{0});
        for (std::size_t j = 0; j < i; ++j) CHECK(c[j].key != a.key);  // duplicates are refused
    }
    // A copy re-points its views at its own buffer and says the same.
    keel::CommandLine copy = c;
    CHECK(copy.size() == c.size() && copy.text() == c.text());
    for (std::size_t i = 0; i < copy.size(); ++i) {
        CHECK(copy[i].key == c[i].key && copy[i].value == c[i].value);
        CHECK(copy[i].key.data() >= copy.c_str() && copy[i].key.data() < copy.c_str() + size);
    }
    return 0;
}
