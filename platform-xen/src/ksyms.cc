// Lookups in the .ksyms blob (layout in keel/xen/ksyms.h and cmake/gen-ksyms.sh).
#include "keel/xen/ksyms.h"

namespace keel::xen {
namespace {

constexpr std::size_t header_bytes = 8;
constexpr std::size_t entry_bytes = 16;

/// Number of entries if it fits in the blob, else nullopt.
std::optional<std::uint64_t> checked_count(const std::uint64_t* blob, std::size_t size) {
    if (!blob || size < header_bytes) return std::nullopt;
    const std::uint64_t count = blob[0];
    if (count > (size - header_bytes) / entry_bytes) return std::nullopt;
    return count;
}

/// The name at `name_off` if it lies after the table and ends inside the blob.
const char* checked_name(const std::uint64_t* blob, std::size_t size, std::uint64_t count,
                         std::uint64_t name_off) {
    const std::uint64_t names_start = header_bytes + count * entry_bytes;
    if (name_off < names_start || name_off >= size) return nullptr;
    const char* base = reinterpret_cast<const char*>(blob);
    for (std::uint64_t i = name_off; i < size; ++i)
        if (base[i] == '\0') return base + name_off;
    return nullptr;
}

}  // namespace

std::optional<Symbol> symbolize(const std::uint64_t* blob, std::size_t blob_size, std::uint64_t addr) {
    const std::optional<std::uint64_t> count = checked_count(blob, blob_size);
    if (!count || *count == 0) return std::nullopt;
    const std::uint64_t* table = blob + 1;  // entry i: table[2i] = addr, table[2i+1] = name_off
    if (addr < table[0]) return std::nullopt;
    // Binary search for the last entry with entry.addr <= addr.
    std::uint64_t lo = 0, hi = *count;  // invariant: table[lo].addr <= addr, answer in [lo, hi)
    while (hi - lo > 1) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (table[2 * mid] <= addr)
            lo = mid;
        else
            hi = mid;
    }
    const char* name = checked_name(blob, blob_size, *count, table[2 * lo + 1]);
    if (!name) return std::nullopt;
    return Symbol{name, addr - table[2 * lo]};
}

bool ksyms_valid(const std::uint64_t* blob, std::size_t blob_size) {
    const std::optional<std::uint64_t> count = checked_count(blob, blob_size);
    if (!count) return false;
    const std::uint64_t* table = blob + 1;
    for (std::uint64_t i = 0; i < *count; ++i) {
        if (i > 0 && table[2 * i] < table[2 * (i - 1)]) return false;
        if (!checked_name(blob, blob_size, *count, table[2 * i + 1])) return false;
    }
    return true;
}

}  // namespace keel::xen
