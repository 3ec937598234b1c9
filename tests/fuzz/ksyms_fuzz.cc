// The .ksyms blob as untrusted bytes (layout in keel/xen/ksyms.h): symbolize() must stay inside
// the blob and the name buffer whatever it holds, write a NUL-terminated name that ends in "..."
// exactly when cut, and find every address at or above the first symbol of a blob that
// ksyms_valid() accepts.
#include <cstring>

#include "fuzz_support.h"
#include "keel/xen/ksyms.h"

using keel::xen::ksyms_valid;
using keel::xen::symbolize;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const bool valid = ksyms_valid(data, size);
    // Addresses: each entry's own (the table is read raw here, as far as the input reaches),
    // one byte below it and one past it, and the extremes.
    std::uint64_t addrs[3 * 64 + 2] = {0, ~std::uint64_t{0}};
    std::size_t n = 2;
    const std::uint64_t count = size >= 4 ? (data[0] | data[1] << 8 | std::uint64_t{data[2]} << 16 | std::uint64_t{data[3]} << 24) : 0;
    for (std::uint64_t i = 0; i < count && i < 64 && 8 + 7 * i + 4 <= size; ++i) {
        std::uint64_t a = 0;
        std::memcpy(&a, data + 8 + 7 * i, 4);  // little-endian host
        addrs[n++] = a;
        addrs[n++] = a - 1;
        addrs[n++] = a + 1;
    }
    const std::uint64_t first = n > 2 ? addrs[2] : 0;
    for (std::size_t cap : {std::size_t{4}, std::size_t{17}, std::size_t{256}}) {
        char* buf = new char[cap];  // exact size: ASan catches a write past it
        for (std::size_t i = 0; i < n; ++i) {
            auto s = symbolize(data, size, addrs[i], {buf, cap});
            if (valid && count > 0 && addrs[i] >= first) CHECK(s.has_value());
            if (!s) continue;
            CHECK(s->name == buf);
            const std::size_t len = strnlen(buf, cap);
            CHECK(len < cap);
            if (s->truncated) CHECK(len == cap - 1 && std::memcmp(buf + len - 3, "...", 3) == 0);
            for (std::size_t j = 0; j < len; ++j) CHECK(buf[j] >= 0x20 && buf[j] <= 0x7e);
        }
        delete[] buf;
    }
    return 0;
}
