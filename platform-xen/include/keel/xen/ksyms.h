// The kernel symbol table built into each image by cmake/gen-ksyms.sh (section .ksyms, symbol
// keel_ksyms), used to symbolize fault reports and panic backtraces. The blob is treated as
// untrusted input: every read is bounds checked.
//
// Layout (little-endian, no alignment; S = 8 + 2 * ntok is where strings start):
//   u32 count; u16 ntok; u16 entries_off
//   ntok x u16 tok_off                    token i's string, counting from S
//   strings: the tokens', NUL-terminated; then, at S + entries_off, count entries in address
//   order, each {delta: ULEB128 of at most 4 bytes; name: NUL-terminated}. An entry's address
//   is the one before plus its delta (the first's: its delta). In a string, a byte 0x20..0x7e
//   stands for itself, any other non-zero byte is a token expanded in place (0x01..0x1f:
//   tokens 0..30, 0x7f..0xff: tokens 31..159). Token i's string may use only tokens before it,
//   nested at most max_token_depth deep.
// Entries are read in turn (a lookup is O(size)): no index of fixed-width addresses and name
// offsets, which was 42% of hello's table. Lookups run per fault-report frame and, in a profile
// report, per function and per line printed; never on a data path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace keel::xen {

/// How deep tokens may nest (gen-ksyms.sh keeps to it).
inline constexpr int max_token_depth = 8;

/// A symbolized address: `name` is the caller's buffer holding the expanded name, `offset` is
/// addr - symbol address, `end` the address of the next symbol above addr (~0: none, and then
/// every address from addr - offset on has this answer, else every one in [addr - offset, end)). A name
/// longer than the buffer is cut and ends in "..." (`truncated`).
struct Symbol {
    const char* name;
    std::uint64_t offset;
    std::uint64_t end;
    bool truncated;
};

/// The symbol at or below `addr` (the last one whose address is <= addr), its name expanded
/// into `name_buf` (NUL-terminated; at least 4 bytes or nothing is found). nullopt if the blob
/// is null, malformed where this lookup touches it (token table or entries outside the blob,
/// more entries counted than the bytes could hold, a delta longer than 4 bytes, a name or
/// token string not terminated inside the blob, a byte naming no token, a token using itself
/// or a later one) or addr lies below the first symbol. An
/// address past the last symbol resolves to the last one. `blob_size` is the number of
/// readable bytes at `blob`. Never reads outside [blob, blob + blob_size) and never writes
/// outside `name_buf`.
std::optional<Symbol> symbolize(const std::uint8_t* blob, std::size_t blob_size, std::uint64_t addr,
                                std::span<char> name_buf);

/// Full check of a blob: header and tables fit, all `count` entries inside it, every token and
/// name in range, terminated and using only defined earlier tokens. O(size); for tests and tools.
/// symbolize() is safe on blobs that fail it.
bool ksyms_valid(const std::uint8_t* blob, std::size_t blob_size);

}  // namespace keel::xen
