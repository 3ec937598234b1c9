// symbolize() and ksyms_valid() over blobs laid out like cmake/gen-ksyms.sh output, and over
// malformed ones.
#include "keel/xen/ksyms.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace keel::xen {
namespace {

using Blob = std::vector<std::uint8_t>;

void put_le(Blob& b, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// The byte that stands for token i (0x01..0x1f, then 0x7f..0xff).
char tok(int i) { return static_cast<char>(i < 31 ? 1 + i : 0x7f + (i - 31)); }

void put_uleb(std::string& s, std::uint64_t v) {
    do {
        const std::uint8_t low = v & 0x7f;
        v >>= 7;
        s.push_back(static_cast<char>(v != 0 ? low | 0x80 : low));
    } while (v != 0);
}

// gen-ksyms.sh's layout: u32 count, u16 ntok, u16 entries_off; ntok x u16 tok_off; the token
// strings, each NUL-terminated, then the entries {ULEB128 address delta, name (already
// encoded), NUL}. Addresses must be sorted.
Blob make_blob(const std::vector<std::pair<std::uint64_t, std::string>>& syms,
               const std::vector<std::string>& tokens = {}) {
    std::string strings;
    std::vector<std::size_t> tok_off;
    for (const std::string& t : tokens) {
        tok_off.push_back(strings.size());
        strings += t;
        strings.push_back('\0');
    }
    const std::size_t entries_off = strings.size();
    std::uint64_t prev = 0;
    for (const auto& [addr, name] : syms) {
        put_uleb(strings, addr - prev);
        prev = addr;
        strings += name;
        strings.push_back('\0');
    }
    Blob b;
    put_le(b, syms.size(), 4);
    put_le(b, tokens.size(), 2);
    put_le(b, entries_off, 2);
    for (std::size_t off : tok_off) put_le(b, off, 2);
    b.insert(b.end(), strings.begin(), strings.end());
    return b;
}

// Where the strings (S) start in a make_blob blob.
std::size_t strings_at(const Blob& b) { return 8 + 2 * (b[4] | b[5] << 8); }

struct Found {
    std::string name;
    std::uint64_t offset;
    std::uint64_t end;
    bool truncated;
};
std::optional<Found> lookup(const Blob& b, std::uint64_t addr, std::size_t size, std::size_t buf_size = 256) {
    std::vector<char> buf(buf_size, 'X');
    auto s = symbolize(b.data(), size, addr, {buf.data(), buf.size()});
    if (!s) return std::nullopt;
    EXPECT_EQ(s->name, buf.data());
    return Found{s->name, s->offset, s->end, s->truncated};
}
std::optional<Found> lookup(const Blob& b, std::uint64_t addr) { return lookup(b, addr, b.size()); }
bool valid(const Blob& b) { return ksyms_valid(b.data(), b.size()); }

class KsymsTest : public ::testing::Test {
protected:
    // Tokens: 0 "keel::", 1 "xen::", 2 = token 0 + token 1 ("keel::xen::"), 31 (byte 0x7f) "_boot".
    std::vector<std::string> tokens = [] {
        std::vector<std::string> t(32, "?");
        t[0] = "keel::";
        t[1] = "xen::";
        t[2] = std::string{tok(0), tok(1)};
        t[31] = "_boot";
        return t;
    }();
    Blob blob = make_blob({{0x1000, std::string{"keel"} + tok(31)},
                           {0x1100, std::string{tok(2)} + "install_traps"},
                           {0x2000, "__text_end"}},
                          tokens);
};

// An address resolves to the last symbol at or below it, with the distance from there and
// where the next symbol starts; tokens, nested ones too, are expanded in full.
TEST_F(KsymsTest, AddressesResolveToTheSymbolAtOrBelow) {
    struct Case {
        std::uint64_t addr;
        const char* name;
        std::uint64_t offset;
        std::uint64_t end;
    };
    const Case cases[] = {
        {0x1100, "keel::xen::install_traps", 0, 0x2000},  // exact matches
        {0x1000, "keel_boot", 0, 0x1100},
        {0x10ff, "keel_boot", 0xff, 0x1100},  // offsets
        {0x1234, "keel::xen::install_traps", 0x134, 0x2000},
        // Past the last symbol resolves to it; the linker's __text_end makes such addresses
        // obvious. Nothing follows it.
        {0x9000, "__text_end", 0x7000, ~0ull},
        {~0ull, "__text_end", ~0ull - 0x2000, ~0ull},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.addr);
        auto s = lookup(blob, c.addr);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->name, c.name);
        EXPECT_EQ(s->offset, c.offset);
        EXPECT_EQ(s->end, c.end);
        EXPECT_FALSE(s->truncated);
    }
}

TEST_F(KsymsTest, BeforeFirstSymbol) {
    EXPECT_FALSE(lookup(blob, 0xfff));
    EXPECT_FALSE(lookup(blob, 0));
}

TEST_F(KsymsTest, WellFormedBlobIsValid) { EXPECT_TRUE(valid(blob)); }

// A name longer than the buffer is cut at the buffer and ends in "..."; nothing is written
// past it (the vector's own bounds are checked by ASan).
TEST_F(KsymsTest, LongNameIsTruncatedAndMarked) {
    auto s = lookup(blob, 0x1100, blob.size(), 12);  // "keel::xen::install_traps" is 24
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name, "keel::xe...");
    EXPECT_TRUE(s->truncated);
    s = lookup(blob, 0x1000, blob.size(), 10);  // "keel_boot" and its NUL fit exactly
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name, "keel_boot");
    EXPECT_FALSE(s->truncated);
    std::vector<char> tiny(3);
    EXPECT_FALSE(symbolize(blob.data(), blob.size(), 0x1000, {tiny.data(), tiny.size()}));
}

TEST(Ksyms, EmptyAndMissingTables) {
    const Blob empty{0, 0, 0, 0, 0, 0, 0, 0};  // what ksyms-empty.S produces
    EXPECT_FALSE(lookup(empty, 0x1000));
    EXPECT_TRUE(valid(empty));
    char buf[64];
    EXPECT_FALSE(symbolize(nullptr, 0, 0x1000, buf));
    EXPECT_FALSE(symbolize(empty.data(), 4, 0x1000, buf));
    EXPECT_FALSE(ksyms_valid(nullptr, 100));
    EXPECT_FALSE(ksyms_valid(empty.data(), 7));
}

TEST(Ksyms, CountLargerThanTheBlob) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "b"}});
    blob[0] = 5;  // an entry takes 2 bytes or more: 5 cannot fit in the 8 left
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
    blob[0] = blob[1] = blob[2] = blob[3] = 0xff;
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
    // 3 entries could fit, 2 are there: a lookup that reads past them finds the blob's end.
    blob[0] = 3;
    blob[1] = blob[2] = blob[3] = 0;
    EXPECT_TRUE(lookup(blob, 0x1000));
    EXPECT_FALSE(lookup(blob, 0x2000));
    EXPECT_FALSE(valid(blob));
    // The size given decides, not the vector: the same blob cut inside the second entry. A
    // lookup reads the entries up to the first above its address.
    blob[0] = 2;
    EXPECT_TRUE(lookup(blob, 0x2000));
    const std::size_t in_delta = blob.size() - 3, in_name = blob.size() - 2;  // "\x80\x20b\0"
    EXPECT_FALSE(lookup(blob, 0x1000, in_delta));
    EXPECT_FALSE(ksyms_valid(blob.data(), in_delta));
    EXPECT_TRUE(lookup(blob, 0x1000, in_name));
    EXPECT_FALSE(lookup(blob, 0x2000, in_name));
    EXPECT_FALSE(ksyms_valid(blob.data(), in_name));
}

TEST(Ksyms, TokenTableLargerThanTheBlob) {
    auto blob = make_blob({{0x1000, "a"}}, {"xy"});
    blob[4] = 100;  // 100 token offsets: past the end
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
    blob[4] = 161;  // more tokens than there are token bytes
    EXPECT_FALSE(valid(blob));
}

TEST(Ksyms, EntriesOffsetOutOfRange) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "b"}}, {"xy"});
    ASSERT_TRUE(valid(blob));
    const std::size_t past = blob.size() - strings_at(blob) + 1;  // one past the end
    blob[6] = static_cast<std::uint8_t>(past);
    blob[7] = static_cast<std::uint8_t>(past >> 8);
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
    blob[6] = blob[7] = 0xff;
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
}

TEST(Ksyms, TokenOffsetOutOfRange) {
    auto blob = make_blob({{0x1000, std::string{"a"} + tok(0)}}, {"xy"});
    ASSERT_TRUE(lookup(blob, 0x1000));
    EXPECT_EQ(lookup(blob, 0x1000)->name, "axy");
    blob[8] = 0xff;  // token 0's offset
    blob[8 + 1] = 0xff;
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
}

TEST(Ksyms, UnterminatedLastName) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "bbbbbbb"}});
    const std::size_t cut = blob.size() - 1;  // "bbbbbbb" without its NUL
    EXPECT_FALSE(lookup(blob, 0x2000, cut));
    EXPECT_TRUE(lookup(blob, 0x1000, cut));
    EXPECT_FALSE(ksyms_valid(blob.data(), cut));
}

// The last byte of the blob is a token (no NUL after it), and a name that is one token whose
// string runs to the end of the blob: neither reads past it.
TEST(Ksyms, TokenAtTheVeryEnd) {
    auto blob = make_blob({{0x1000, std::string{"a"} + tok(0)}}, {"xy"});
    const std::size_t cut = blob.size() - 1;  // the token, not its NUL
    EXPECT_EQ(blob[cut - 1], 1);
    EXPECT_FALSE(lookup(blob, 0x1000, cut));
    EXPECT_FALSE(ksyms_valid(blob.data(), cut));
    // Token 0's offset moved to the second name, whose NUL is cut away: the first name is
    // that token alone.
    Blob shared = make_blob({{0x1000, std::string{tok(0)}}, {0x1001, "zz"}}, {"xy"});
    const std::size_t zz = shared.size() - 3;
    ASSERT_EQ(shared[zz], 'z');
    const std::size_t off = zz - strings_at(shared);
    shared[8] = static_cast<std::uint8_t>(off);
    shared[9] = static_cast<std::uint8_t>(off >> 8);
    EXPECT_EQ(lookup(shared, 0x1000)->name, "zz");
    shared.pop_back();
    EXPECT_FALSE(lookup(shared, 0x1000));
    EXPECT_FALSE(valid(shared));
}

// A byte that names no token, a token that uses itself or a later one (a loop), and nesting
// deeper than max_token_depth are malformed, not followed.
TEST(Ksyms, BadTokensAreRejected) {
    auto undefined = make_blob({{0x1000, std::string{"a"} + tok(1)}}, {"xy"});
    EXPECT_FALSE(lookup(undefined, 0x1000));
    EXPECT_FALSE(valid(undefined));
    auto self = make_blob({{0x1000, std::string{tok(0)}}}, {std::string{"x"} + tok(0)});
    EXPECT_FALSE(lookup(self, 0x1000));
    EXPECT_FALSE(valid(self));
    auto later = make_blob({{0x1000, std::string{tok(0)}}}, {std::string{tok(1)}, "y"});
    EXPECT_FALSE(lookup(later, 0x1000));
    EXPECT_FALSE(valid(later));
    // Tokens 1..n each wrap the one before: n = max_token_depth expands, one more does not.
    for (int n : {max_token_depth - 1, max_token_depth}) {
        std::vector<std::string> tokens{"z"};
        for (int i = 1; i <= n; ++i) tokens.push_back(std::string{tok(i - 1)} + "z");
        auto nested = make_blob({{0x1000, std::string{tok(n)}}}, tokens);
        SCOPED_TRACE(n);
        EXPECT_EQ(lookup(nested, 0x1000).has_value(), n < max_token_depth);
        EXPECT_EQ(valid(nested), n < max_token_depth);
    }
}

// Empty tokens nested many times over cost work, not output: the budget stops them.
TEST(Ksyms, EmptyTokensCannotMakeALookupRunAway) {
    std::vector<std::string> tokens{""};
    for (int i = 1; i < max_token_depth; ++i) tokens.push_back(std::string(200, tok(i - 1)));
    auto blob = make_blob({{0x1000, std::string(200, tok(max_token_depth - 1))}}, tokens);
    EXPECT_FALSE(lookup(blob, 0x1000));
    EXPECT_FALSE(valid(blob));
}

// A delta is at most 4 bytes of ULEB128 (below 2^28): a fifth byte is malformed.
TEST(Ksyms, DeltaOfMoreThanFourBytesIsMalformed) {
    Blob four{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 'a', 0};
    EXPECT_TRUE(valid(four));
    auto s = lookup(four, (1u << 28) - 1);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name, "a");
    EXPECT_FALSE(lookup(four, (1u << 28) - 2));
    Blob five{1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x01, 'a', 0};
    EXPECT_FALSE(valid(five));
    EXPECT_FALSE(lookup(five, 1u << 28));
}

// Entries at one address (the linker's aliases): an address resolves to the last of them.
TEST(Ksyms, AliasesAtOneAddress) {
    auto blob = make_blob({{0x1000, "f"}, {0x1000, "f_alias"}, {0x1010, "g"}});
    EXPECT_TRUE(valid(blob));
    auto s = lookup(blob, 0x1004);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name, "f_alias");
    EXPECT_EQ(s->offset, 4u);
    EXPECT_EQ(s->end, 0x1010u);
    EXPECT_EQ(lookup(blob, 0x1000)->end, 0x1010u);
    EXPECT_EQ(lookup(blob, 0x1010)->name, "g");
}

TEST(Ksyms, LookupsAgreeWithTheList) {
    std::vector<std::pair<std::uint64_t, std::string>> syms;
    for (std::uint64_t i = 0; i < 1000; ++i) syms.push_back({0x100000 + i * i * 3, "s" + std::to_string(i)});
    auto blob = make_blob(syms);
    ASSERT_TRUE(valid(blob));
    for (std::uint64_t addr = 0xffff0; addr < 0x100000 + 1000 * 1000 * 3; addr += 997) {
        auto s = lookup(blob, addr);
        std::size_t want = syms.size();
        for (std::size_t i = 0; i < syms.size(); ++i)
            if (syms[i].first <= addr) want = i;
        if (want == syms.size()) {
            EXPECT_FALSE(s) << addr;
            continue;
        }
        ASSERT_TRUE(s) << addr;
        EXPECT_EQ(s->name, syms[want].second) << addr;
        EXPECT_EQ(s->offset, addr - syms[want].first);
        EXPECT_EQ(s->end, want + 1 < syms.size() ? syms[want + 1].first : ~0ull);
    }
}

}  // namespace
}  // namespace keel::xen
