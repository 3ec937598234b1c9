// Lookups in the .ksyms blob (layout in keel/xen/ksyms.h and cmake/gen-ksyms.sh). The blob is
// untrusted: every byte is read through a bounds check, token nesting is bounded by an explicit
// stack, and the work of one expansion by its output buffer.
#include "keel/xen/ksyms.h"

namespace keel::xen {
namespace {

constexpr std::size_t header_bytes = 8;
constexpr std::size_t max_tokens = 160;
constexpr int max_delta_bytes = 4;  // ULEB128: deltas below 2^28

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
    std::size_t strings;  ///< offset of the strings (S)
    std::size_t entries;  ///< offset of the first entry

    std::uint64_t tok_off(std::uint64_t t) const { return le(p + header_bytes + 2 * t, 2); }
};

std::optional<Table> checked_table(const std::uint8_t* blob, std::size_t size) {
    if (!blob || size < header_bytes) return std::nullopt;
    const std::uint64_t count = le(blob, 4);
    const std::uint64_t ntok = le(blob + 4, 2);
    if (ntok > max_tokens) return std::nullopt;
    const std::size_t strings = header_bytes + 2 * ntok;
    const std::size_t entries = strings + le(blob + 6, 2);
    if (entries > size) return std::nullopt;
    if (count > (size - entries) / 2) return std::nullopt;  // an entry takes 2 bytes or more
    return Table{blob, size, count, ntok, strings, entries};
}

/// Adds the delta at *pos to *addr and moves *pos to the entry's name. False if the delta runs
/// past the blob or past max_delta_bytes.
bool read_delta(const Table& t, std::size_t* pos, std::uint64_t* addr) {
    std::uint64_t delta = 0;
    for (int i = 0; i < max_delta_bytes && *pos < t.size; ++i) {
        const std::uint8_t b = t.p[(*pos)++];
        delta |= std::uint64_t{b & 0x7fu} << (7 * i);
        if ((b & 0x80) == 0) {
            *addr += delta;  // count < 2^32 deltas < 2^28 each: no overflow
            return true;
        }
    }
    return false;
}

/// Moves *pos past the NUL that ends the string there; false if none does inside the blob.
bool skip_string(const Table& t, std::size_t* pos) {
    while (*pos < t.size) {
        if (t.p[(*pos)++] == 0) return true;
    }
    return false;
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

/// Expands the name at blob offset `start` into `out` (capacity >= 4), NUL-terminated; a name that does not
/// fit ends in "...". Reads in token strings are bounded by a budget proportional to the output:
/// every token a valid blob holds adds at least one character, so only a malformed blob (empty
/// tokens nested many times over) can exhaust it.
Expand expand(const Table& t, std::size_t start, std::span<char> out) {
    std::size_t pos[max_token_depth + 1];
    std::uint64_t limit[max_token_depth + 1];  // tokens usable at this level: those below it
    int top = 0;
    pos[0] = start;
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

/// The string at blob offset `start` is terminated inside the blob, uses only tokens below
/// `limit` and is not empty unless `may_be_empty`. Its deepest token's depth (0: none) goes to
/// *depth.
bool string_valid(const Table& t, std::size_t start, std::uint64_t limit, bool may_be_empty,
                  const int* token_depth, int* depth) {
    *depth = 0;
    for (std::size_t i = start; i < t.size; ++i) {
        const std::uint8_t c = t.p[i];
        if (c == 0) return may_be_empty || i > start;
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
    if (!t) return std::nullopt;
    // The last entry whose address is <= addr: entries are in address order.
    std::size_t pos = t->entries;
    std::uint64_t entry_addr = 0;
    std::optional<std::size_t> name;
    std::uint64_t name_addr = 0;
    std::uint64_t end = ~std::uint64_t{0};
    for (std::uint64_t i = 0; i < t->count; ++i) {
        if (!read_delta(*t, &pos, &entry_addr)) return std::nullopt;
        if (entry_addr > addr) {
            end = entry_addr;
            break;
        }
        name = pos;
        name_addr = entry_addr;
        if (!skip_string(*t, &pos)) return std::nullopt;
    }
    if (!name) return std::nullopt;
    const Expand e = expand(*t, *name, name_buf);
    if (e == Expand::malformed) return std::nullopt;
    return Symbol{name_buf.data(), addr - name_addr, end, e == Expand::truncated};
}

bool ksyms_valid(const std::uint8_t* blob, std::size_t blob_size) {
    const std::optional<Table> t = checked_table(blob, blob_size);
    if (!t) return false;
    int token_depth[max_tokens];
    for (std::uint64_t i = 0; i < t->ntok; ++i) {
        const std::optional<std::size_t> start = string_at(*t, t->tok_off(i));
        int depth = 0;
        if (!start || !string_valid(*t, *start, i, false, token_depth, &depth)) return false;
        if (depth + 1 > max_token_depth) return false;
        token_depth[i] = depth + 1;
    }
    std::size_t pos = t->entries;
    std::uint64_t addr = 0;
    for (std::uint64_t i = 0; i < t->count; ++i) {
        int depth = 0;
        if (!read_delta(*t, &pos, &addr)) return false;
        if (!string_valid(*t, pos, t->ntok, true, token_depth, &depth)) return false;
        skip_string(*t, &pos);  // terminated: string_valid checked
    }
    return true;
}

}  // namespace keel::xen
