// The .ksyms blob as untrusted bytes (layout in keel/xen/ksyms.h): symbolize() must stay inside
// the blob and the name buffer whatever it holds, write a NUL-terminated name that ends in "..."
// exactly when cut, and, in a blob that ksyms_valid() accepts, find every address at or above
// the first symbol and none below it; where this harness decoded every entry, with the exact
// offset and end.
#include <cstring>

#include "fuzz_support.h"
#include "keel/xen/ksyms.h"

using keel::xen::ksyms_valid;
using keel::xen::symbolize;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const bool valid = ksyms_valid(data, size);
    // The entries' addresses, read here by this harness's own decoder as far as the input
    // reaches (up to 64). Queries: each entry's address, one below and one past it, and the
    // extremes.
    std::uint64_t entry[64];
    std::uint64_t decoded = 0;
    const std::uint64_t count =
        size >= 8 ? (data[0] | data[1] << 8 | std::uint64_t{data[2]} << 16 | std::uint64_t{data[3]} << 24)
                  : 0;
    std::size_t pos =
        size >= 8 ? 8 + 2 * static_cast<std::size_t>(data[4] | data[5] << 8) + (data[6] | data[7] << 8)
                  : size;
    std::uint64_t a = 0;
    for (; decoded < count && decoded < 64 && pos < size; ++decoded) {
        std::uint64_t delta = 0;
        for (int shift = 0; pos < size && shift < 28; shift += 7) {
            delta |= std::uint64_t{data[pos] & 0x7fu} << shift;
            if ((data[pos++] & 0x80) == 0) break;
        }
        a += delta;
        entry[decoded] = a;
        while (pos < size && data[pos++] != 0) {
        }  // the name
    }
    std::uint64_t addrs[3 * 64 + 2] = {0, ~std::uint64_t{0}};
    std::size_t n = 2;
    for (std::uint64_t i = 0; i < decoded; ++i) {
        addrs[n++] = entry[i];
        addrs[n++] = entry[i] - 1;
        addrs[n++] = entry[i] + 1;
    }
    // A valid blob whose entries were all decoded: every answer is known exactly.
    const bool exact = valid && decoded == count;
    for (std::size_t cap : {std::size_t{4}, std::size_t{17}, std::size_t{256}}) {
        char* buf = new char[cap];  // exact size: ASan catches a write past it
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t q = addrs[i];
            auto s = symbolize(data, size, q, {buf, cap});
            if (valid) CHECK(s.has_value() == (count > 0 && q >= entry[0]));
            if (exact) {
                std::uint64_t at = 0, end = ~std::uint64_t{0};
                for (std::uint64_t j = 0; j < decoded; ++j) {
                    if (entry[j] <= q) {
                        at = entry[j];
                    } else {
                        end = entry[j];
                        break;
                    }
                }
                if (s) CHECK(s->offset == q - at && s->end == end);
            }
            if (!s) continue;
            CHECK(s->name == buf);
            CHECK(s->offset <= q);
            CHECK(s->end > q || s->end == ~std::uint64_t{0});
            const std::size_t len = strnlen(buf, cap);
            CHECK(len < cap);
            if (s->truncated) CHECK(len == cap - 1 && std::memcmp(buf + len - 3, "...", 3) == 0);
            for (std::size_t j = 0; j < len; ++j) CHECK(buf[j] >= 0x20 && buf[j] <= 0x7e);
        }
        delete[] buf;
    }
    return 0;
}
