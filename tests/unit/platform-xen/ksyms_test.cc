// symbolize() and ksyms_valid() over blobs laid out like cmake/gen-ksyms.sh output.
#include "keel/xen/ksyms.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace keel::xen {
namespace {

// u64 count, count x {addr, name_off}, then the names; padded to whole u64s.
std::vector<std::uint64_t> make_blob(const std::vector<std::pair<std::uint64_t, std::string>>& syms) {
    std::vector<std::uint64_t> table{syms.size()};
    std::string names;
    const std::size_t names_start = 8 + 16 * syms.size();
    for (const auto& [addr, name] : syms) {
        table.push_back(addr);
        table.push_back(names_start + names.size());
        names += name;
        names.push_back('\0');
    }
    std::vector<std::uint64_t> blob = table;
    blob.resize(table.size() + (names.size() + 7) / 8, 0);
    std::memcpy(blob.data() + table.size(), names.data(), names.size());
    return blob;
}

std::size_t bytes(const std::vector<std::uint64_t>& blob) { return blob.size() * 8; }

class KsymsTest : public ::testing::Test {
protected:
    std::vector<std::uint64_t> blob =
        make_blob({{0x1000, "keel_boot"}, {0x1100, "keel::xen::install_traps()"}, {0x2000, "__text_end"}});
    std::optional<Symbol> at(std::uint64_t addr) { return symbolize(blob.data(), bytes(blob), addr); }
};

// An address resolves to the last symbol at or below it, with the distance from there.
TEST_F(KsymsTest, AddressesResolveToTheSymbolAtOrBelow) {
    struct Case {
        std::uint64_t addr;
        const char* name;
        std::uint64_t offset;
    };
    const Case cases[] = {
        {0x1100, "keel::xen::install_traps()", 0},  // exact matches
        {0x1000, "keel_boot", 0},
        {0x10ff, "keel_boot", 0xff},  // offsets
        {0x1234, "keel::xen::install_traps()", 0x134},
        // Past the last symbol resolves to it; the linker's __text_end makes such addresses
        // obvious.
        {0x9000, "__text_end", 0x7000},
        {~0ull, "__text_end", ~0ull - 0x2000},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.addr);
        auto s = at(c.addr);
        ASSERT_TRUE(s);
        EXPECT_STREQ(s->name, c.name);
        EXPECT_EQ(s->offset, c.offset);
    }
}

TEST_F(KsymsTest, BeforeFirstSymbol) {
    EXPECT_FALSE(at(0xfff));
    EXPECT_FALSE(at(0));
}

TEST_F(KsymsTest, WellFormedBlobIsValid) { EXPECT_TRUE(ksyms_valid(blob.data(), bytes(blob))); }

TEST(Ksyms, EmptyAndMissingTables) {
    std::vector<std::uint64_t> empty{0};  // what ksyms-empty.S produces
    EXPECT_FALSE(symbolize(empty.data(), 8, 0x1000));
    EXPECT_TRUE(ksyms_valid(empty.data(), 8));
    EXPECT_FALSE(symbolize(nullptr, 0, 0x1000));
    EXPECT_FALSE(symbolize(empty.data(), 4, 0x1000));
    EXPECT_FALSE(ksyms_valid(nullptr, 100));
}

TEST(Ksyms, CountLargerThanTheBlob) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "b"}});
    blob[0] = 1000;
    EXPECT_FALSE(symbolize(blob.data(), bytes(blob), 0x1000));
    EXPECT_FALSE(ksyms_valid(blob.data(), bytes(blob)));
    blob[0] = ~0ull;  // would overflow 8 + 16 * count
    EXPECT_FALSE(symbolize(blob.data(), bytes(blob), 0x1000));
    // The size given decides, not the vector: the same blob cut short is rejected.
    blob[0] = 2;
    EXPECT_FALSE(symbolize(blob.data(), 8 + 16, 0x2000));
}

TEST(Ksyms, NameOffsetOutOfRange) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "b"}});
    blob[2] = 8;  // points into the table
    EXPECT_FALSE(symbolize(blob.data(), bytes(blob), 0x1000));
    EXPECT_TRUE(symbolize(blob.data(), bytes(blob), 0x2000));
    EXPECT_FALSE(ksyms_valid(blob.data(), bytes(blob)));
    blob[2] = bytes(blob);  // just past the end
    EXPECT_FALSE(symbolize(blob.data(), bytes(blob), 0x1000));
    blob[2] = ~0ull;
    EXPECT_FALSE(symbolize(blob.data(), bytes(blob), 0x1000));
}

TEST(Ksyms, UnterminatedLastName) {
    auto blob = make_blob({{0x1000, "a"}, {0x2000, "bbbbbbb"}});
    const std::size_t cut = 8 + 2 * 16 + 2 + 7;  // table, "a\0", "bbbbbbb" without its NUL
    EXPECT_FALSE(symbolize(blob.data(), cut, 0x2000));
    EXPECT_TRUE(symbolize(blob.data(), cut, 0x1000));
    EXPECT_FALSE(ksyms_valid(blob.data(), cut));
}

TEST(Ksyms, UnsortedTableIsInvalid) {
    auto blob = make_blob({{0x2000, "a"}, {0x1000, "b"}});
    EXPECT_FALSE(ksyms_valid(blob.data(), bytes(blob)));
}

TEST(Ksyms, AliasesAtOneAddress) {
    auto blob = make_blob({{0x1000, "f"}, {0x1000, "f_alias"}, {0x1010, "g"}});
    EXPECT_TRUE(ksyms_valid(blob.data(), bytes(blob)));
    auto s = symbolize(blob.data(), bytes(blob), 0x1004);
    ASSERT_TRUE(s);
    EXPECT_STREQ(s->name, "f_alias");
    EXPECT_EQ(s->offset, 4u);
}

TEST(Ksyms, BinarySearchAgreesWithLinearScan) {
    std::vector<std::pair<std::uint64_t, std::string>> syms;
    for (std::uint64_t i = 0; i < 1000; ++i) syms.push_back({0x100000 + i * i * 3, "s" + std::to_string(i)});
    auto blob = make_blob(syms);
    ASSERT_TRUE(ksyms_valid(blob.data(), bytes(blob)));
    for (std::uint64_t addr = 0xffff0; addr < 0x100000 + 1000 * 1000 * 3; addr += 997) {
        auto s = symbolize(blob.data(), bytes(blob), addr);
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
    }
}

}  // namespace
}  // namespace keel::xen
