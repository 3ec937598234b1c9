#include "walk.h"

#include <algorithm>

namespace keel::gdbserver {
namespace {

constexpr std::uint64_t kPresent = 1u << 0;
constexpr std::uint64_t kPageSizeBit = 1u << 7;                // PS: a 1 GiB (PDPTE) or 2 MiB (PDE) page
constexpr std::uint64_t kAddressMask = 0x000ffffffffff000ull;  // bits 51:12 of an entry and of cr3
constexpr std::uint64_t kCr0Pg = 1ull << 31;
constexpr std::uint64_t kCr4Pae = 1ull << 5;
constexpr std::uint64_t kCr4La57 = 1ull << 12;
constexpr std::uint64_t kEferLma = 1ull << 10;

bool canonical(std::uint64_t va) {
    const auto top = static_cast<std::int64_t>(va) >> 47;
    return top == 0 || top == -1;
}

}  // namespace

std::optional<std::uint64_t> translate(Target& target, const Registers& regs, std::uint64_t va) {
    if (!(regs.cr0 & kCr0Pg)) return va;
    // keel runs in long mode from its first instruction on; 32-bit paging and 5-level paging are
    // refused rather than walked wrongly.
    if (!(regs.cr4 & kCr4Pae) || !(regs.efer & kEferLma) || (regs.cr4 & kCr4La57)) return std::nullopt;
    if (!canonical(va)) return std::nullopt;
    // cr3 bits 11:0 are PCID or PWT/PCD, bit 63 the no-flush hint: only 51:12 name the table.
    std::uint64_t table = regs.cr3 & kAddressMask;
    for (int level = 4; level >= 1; --level) {
        const unsigned shift = 12 + 9 * (level - 1);
        const std::uint64_t index = (va >> shift) & 511;
        std::uint64_t entry = 0;
        if (!target.read_physical(table + index * 8, &entry, sizeof entry)) return std::nullopt;
        if (!(entry & kPresent)) return std::nullopt;
        if ((level == 3 || level == 2) && (entry & kPageSizeBit)) {
            const std::uint64_t span = 1ull << shift;  // 1 GiB or 2 MiB
            return (entry & kAddressMask & ~(span - 1)) | (va & (span - 1));
        }
        table = entry & kAddressMask;
    }
    return table | (va & (kPageSize - 1));
}

namespace {

template <typename Access>
std::size_t walk_range(Target& target, const Registers& regs, std::uint64_t va, std::size_t len,
                       Access access) {
    std::size_t done = 0;
    while (done < len) {
        const std::uint64_t at = va + done;
        const std::size_t chunk = std::min<std::uint64_t>(len - done, kPageSize - (at & (kPageSize - 1)));
        const auto gpa = translate(target, regs, at);
        if (!gpa || !access(*gpa, done, chunk)) break;
        done += chunk;
    }
    return done;
}

}  // namespace

std::size_t read_virtual(Target& target, const Registers& regs, std::uint64_t va, void* buf,
                         std::size_t len) {
    auto* out = static_cast<std::uint8_t*>(buf);
    return walk_range(target, regs, va, len, [&](std::uint64_t gpa, std::size_t off, std::size_t n) {
        return target.read_physical(gpa, out + off, n);
    });
}

std::size_t write_virtual(Target& target, const Registers& regs, std::uint64_t va, const void* buf,
                          std::size_t len) {
    const auto* in = static_cast<const std::uint8_t*>(buf);
    return walk_range(target, regs, va, len, [&](std::uint64_t gpa, std::size_t off, std::size_t n) {
        return target.write_physical(gpa, in + off, n);
    });
}

}  // namespace keel::gdbserver
