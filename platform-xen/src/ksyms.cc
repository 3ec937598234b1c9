// Lookups in the .ksyms blob (layout in keel/xen/ksyms.h and cmake/gen-ksyms.sh). The blob is
// untrusted: every byte is read through a bounds check, token nesting is bounded by an explicit
// stack, and the work of one expansion by its output buffer.
#include "keel/xen/ksyms.h"

namespace keel::xen {
namespace {

constexpr std::size_t header_bytes = 8;
constexpr std::size_t entry_bytes = 7;  // u32 addr, u24 name_off
constexpr std::size_t max_tokens = 160;

std::uint64_t le(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

/// The header and tables, checked to lie inside the blob.
struct Table {
    const std::uint8_t* p;
    std::size_t size;
    std::uint64_t count;
    std::uint64_t ntok;
    std::size_t tokens;   ///< offset of the token offsets
    std::size_t strings;  ///< offset of the strings (S)

    std::uint64_t addr(std::uint64_t i) const { return le(p + header_bytes + i * entry_bytes, 4); }
    std::uint64_t name_off(std::uint64_t i) const { return le(p + header_bytes + i * entry_bytes + 4, 3); }
    std::uint64_t tok_off(std::uint64_t t) const { return le(p + tokens + 2 * t, 2); }
};

std::optional<Table> checked_table(const std::uint8_t* blob, std::size_t size) {
    if (!blob || size < header_bytes) return std::nullopt;
    const std::uint64_t count = le(blob, 4);
    const std::uint64_t ntok = le(blob + 4, 2);
    if (ntok > max_tokens) return std::nullopt;
    const std::uint64_t tokens = header_bytes + count * entry_bytes;  // < 2^35: no overflow
    const std::uint64_t strings = tokens + 2 * ntok;
    if (strings > size) return std::nullopt;
    return Table{blob, size, count, ntok, static_cast<std::size_t>(tokens), static_cast<std::size_t>(strings)};
}

bool literal(std::uint8_t c) { return c >= 0x20 && c <= 0x7e; }
/// The token a non-literal, non-NUL byte names.
std::uint64_t token_of(std::uint8_t c) { return c < 0x20 ? c - 1u : c - 0x7fu + 31; }

/// Offset in the blob of the string at `off` from S, if it starts inside the blob.
std::optional<std::size_t> string_at(const Table& t, std::uint64_t off) {
    if (off >= t.size - t.strings) return std::nullopt;
    return t.strings + static_cast<std::size_t>(off);
}

enum class Expand { done, truncated, malformed };

/// Expands the name at `off` into `out` (capacity >= 4), NUL-terminated; a name that does not
/// fit ends in "...". Reads in token strings are bounded by a budget proportional to the output:
/// every token a valid blob holds adds at least one character, so only a malformed blob (empty
/// tokens nested many times over) can exhaust it.
Expand expand(const Table& t, std::uint64_t off, std::span<char> out) {
    const std::optional<std::size_t> start = string_at(t, off);
    if (!start) return Expand::malformed;
    std::size_t pos[max_token_depth + 1];
    std::uint64_t limit[max_token_depth + 1];  // tokens usable at this level: those below it
    int top = 0;
    pos[0] = *start;
    limit[0] = t.ntok;
    std::size_t len = 0;
    std::size_t budget = (2 * max_token_depth + 2) * out.size();
    Expand result = Expand::done;
    for (;;) {
        if (pos[top] >= t.size) return Expand::malformed;  // not terminated inside the blob
        if (top > 0 && budget-- == 0) return Expand::malformed;
        const std::uint8_t c = t.p[pos[top]++];
        if (c == 0) {
            if (top == 0) break;
            --top;
            continue;
        }
        if (literal(c)) {
            if (len + 1 >= out.size()) {
                result = Expand::truncated;
                break;
            }
            out[len++] = static_cast<char>(c);
            continue;
        }
        const std::uint64_t tok = token_of(c);
        if (tok >= limit[top] || top == max_token_depth) return Expand::malformed;
        const std::optional<std::size_t> s = string_at(t, t.tok_off(tok));
        if (!s) return Expand::malformed;
        ++top;
        pos[top] = *s;
        limit[top] = tok;
    }
    if (result == Expand::truncated) {
        for (std::size_t i = len - 3; i < len; ++i) out[i] = '.';  // len == out.size() - 1 >= 3
    }
    out[len] = '\0';
    return result;
}

/// The string at `off` from S is terminated inside the blob, uses only tokens below `limit`
/// and is not empty unless `may_be_empty`. Its deepest token's depth (0: none) goes to *depth.
bool string_valid(const Table& t, std::uint64_t off, std::uint64_t limit, bool may_be_empty,
                  const int* token_depth, int* depth) {
    const std::optional<std::size_t> start = string_at(t, off);
    if (!start) return false;
    *depth = 0;
    for (std::size_t i = *start; i < t.size; ++i) {
        const std::uint8_t c = t.p[i];
        if (c == 0) return may_be_empty || i > *start;
        if (literal(c)) continue;
        const std::uint64_t tok = token_of(c);
        if (tok >= limit) return false;
        if (token_depth[tok] > *depth) *depth = token_depth[tok];
    }
    return false;
}

}  // namespace

std::optional<Symbol> symbolize(const std::uint8_t* blob, std::size_t blob_size, std::uint64_t addr,
                                std::span<char> name_buf) {
    if (name_buf.size() < 4) return std::nullopt;
    const std::optional<Table> t = checked_table(blob, blob_size);
    if (!t || t->count == 0) return std::nullopt;
    if (addr < t->addr(0)) return std::nullopt;
    // Binary search for the last entry with entry.addr <= addr.
    std::uint64_t lo = 0, hi = t->count;  // invariant: entry lo's addr <= addr, answer in [lo, hi)
    while (hi - lo > 1) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (t->addr(mid) <= addr)
            lo = mid;
        else
            hi = mid;
    }
    const Expand e = expand(*t, t->name_off(lo), name_buf);
    if (e == Expand::malformed) return std::nullopt;
    return Symbol{name_buf.data(), addr - t->addr(lo), e == Expand::truncated};
}

bool ksyms_valid(const std::uint8_t* blob, std::size_t blob_size) {
    const std::optional<Table> t = checked_table(blob, blob_size);
    if (!t) return false;
    if (le(blob + 6, 2) != 0) return false;
    int token_depth[max_tokens];
    for (std::uint64_t i = 0; i < t->ntok; ++i) {
        int depth = 0;
        if (!string_valid(*t, t->tok_off(i), i, false, token_depth, &depth)) return false;
        if (depth + 1 > max_token_depth) return false;
        token_depth[i] = depth + 1;
    }
    for (std::uint64_t i = 0; i < t->count; ++i) {
        if (i > 0 && t->addr(i) < t->addr(i - 1)) return false;
        int depth = 0;
        if (!string_valid(*t, t->name_off(i), t->ntok, true, token_depth, &depth)) return false;
    }
    return true;
}

}  // namespace keel::xen
