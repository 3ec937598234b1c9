// The kernel symbol table built into each image by cmake/gen-ksyms.sh (section .ksyms, symbol
// keel_ksyms), used to symbolize fault reports and panic backtraces.
//
// Layout (all little-endian u64): count, then count x {addr, name_off}, then the NUL-terminated
// names; name_off counts from the start of the blob; entries are sorted by addr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace keel::xen {

/// A symbolized address: `name` points into the blob, `offset` is addr - symbol address.
struct Symbol {
    const char* name;
    std::uint64_t offset;
};

/// The symbol at or below `addr` (the last one whose address is <= addr). nullopt if the blob
/// is null, malformed where this lookup touches it (count larger than the blob, name_off
/// outside the names, name not terminated inside the blob) or addr lies below the first symbol.
/// An address past the last symbol resolves to the last one. `blob_size` is the number of
/// readable bytes at `blob`. Never reads outside [blob, blob + blob_size).
std::optional<Symbol> symbolize(const std::uint64_t* blob, std::size_t blob_size, std::uint64_t addr);

/// Full check of a blob: count fits, addresses sorted, every name in range and terminated.
/// O(size); meant for once at boot. symbolize() is safe on blobs that fail it.
bool ksyms_valid(const std::uint64_t* blob, std::size_t blob_size);

}  // namespace keel::xen
