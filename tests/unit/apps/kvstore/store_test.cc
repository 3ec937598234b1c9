// CRC-32C and SipHash against published check values, the glob matcher, and the Store (replace,
// erase, expiry on access and by sweep, table growth and shrinking, the memory limit).
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "kv/crc32c.h"
#include "kv/glob.h"
#include "kv/store.h"

namespace keel::kv {
namespace {

using namespace std::literals;

TEST(Crc32c, CheckValues) {
    EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
    EXPECT_EQ(crc32c("", 0), 0u);
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xff, ascending.
    std::string zeros(32, '\0'), ones(32, '\xff'), up(32, '\0');
    for (int i = 0; i < 32; ++i) up[static_cast<std::size_t>(i)] = static_cast<char>(i);
    EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
    EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
    EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794Eu);
}

TEST(Crc32c, ContinuesAcrossPieces) {
    const std::string s = "The quick brown fox jumps over the lazy dog, twice over and again.";
    const std::uint32_t all = crc32c(s.data(), s.size());
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        EXPECT_EQ(crc32c(s.data() + cut, s.size() - cut, crc32c(s.data(), cut)), all) << cut;
    }
}

/// One glob_match() case: does `pattern` match `text`?
struct GlobCase {
    const char* pattern;
    const char* text;
    bool match;
};

void expect_matches(std::initializer_list<GlobCase> cases) {
    for (const GlobCase& c : cases) {
        EXPECT_EQ(glob_match(c.pattern, c.text), c.match)
            << "pattern \"" << c.pattern << "\", text \"" << c.text << '"';
    }
}

TEST(Glob, Basics) {
    expect_matches({
        {"*", "", true},
        {"*", "anything", true},
        {"", "", true},
        {"", "a", false},
        {"key:*", "key:1", true},
        {"key:*", "kez:1", false},
        {"h?llo", "hello", true},
        {"h?llo", "hllo", false},
        {"h*llo", "hllo", true},
        {"h*llo", "heeeello", true},
        {"*a*b*c*", "xxaxxbxxcxx", true},
        {"*a*b*c*", "xxaxxcxxbxx", false},
        {"a**b", "ab", true},
    });
}

TEST(Glob, Classes) {
    expect_matches({
        {"h[ae]llo", "hello", true},
        {"h[ae]llo", "hallo", true},
        {"h[ae]llo", "hillo", false},
        {"h[^e]llo", "hallo", true},
        {"h[^e]llo", "hello", false},
        {"h[!e]llo", "hallo", true},
        {"h[a-b]llo", "hbllo", true},
        {"h[a-b]llo", "hcllo", false},
        {"[z-a]", "m", true},  // a reversed range still works
        {"[a-]", "-", true},   // '-' at the end is a member
        {"[\\]]", "]", true},
        {"[\\-a]", "-", true},
        {"[]", "a", false},  // a set without members
        {"[^]", "a", true},
        {"[abc", "[abc", true},  // no closing bracket: literal
        {"[abc", "a", false},
    });
}

TEST(Glob, Escapes) {
    expect_matches({
        {"\\*", "*", true},
        {"\\*", "a", false},
        {"a\\?", "a?", true},
        {"a\\?", "ab", false},
        {"a\\", "a\\", true},  // a trailing backslash is itself
        {"\\[x]", "[x]", true},
    });
}

TEST(Glob, NoExponentialBacktracking) {
    const std::string s(10000, 'a');
    std::string pat;
    for (int i = 0; i < 50; ++i) pat += "a*";
    pat += "b";
    EXPECT_FALSE(glob_match(pat, s));  // quadratic at worst: finishes at once
    EXPECT_TRUE(glob_match(pat.substr(0, pat.size() - 1), s));
}

TEST(Store, SetGetReplaceErase) {
    Store st;
    EXPECT_EQ(st.find("k", 0), nullptr);
    ASSERT_TRUE(st.set("k", "v1", 0).ok());
    ASSERT_NE(st.find("k", 0), nullptr);
    EXPECT_EQ(st.find("k", 0)->value(), "v1");
    ASSERT_TRUE(st.set("k", "v2", 0).ok());      // same size: in place
    ASSERT_TRUE(st.set("k", "longer", 0).ok());  // another size: a new entry
    EXPECT_EQ(st.find("k", 0)->value(), "longer");
    ASSERT_TRUE(st.set("k", "", 0).ok());
    EXPECT_EQ(st.find("k", 0)->value(), "");
    EXPECT_EQ(st.size(), 1u);
    EXPECT_EQ(st.data_bytes(), 1u);
    EXPECT_TRUE(st.erase("k"));
    EXPECT_FALSE(st.erase("k"));
    EXPECT_EQ(st.size(), 0u);
    EXPECT_EQ(st.memory(), 0u);
}

TEST(Store, BinaryKeys) {
    Store st;
    ASSERT_TRUE(st.set("a\0b"sv, "1", 0).ok());
    ASSERT_TRUE(st.set("a\0c"sv, "2", 0).ok());
    EXPECT_EQ(st.find("a\0b"sv, 0)->value(), "1");
    EXPECT_EQ(st.find("a"sv, 0), nullptr);
    EXPECT_EQ(st.size(), 2u);
}

TEST(Store, ExpiryOnAccess) {
    Store st;
    ASSERT_TRUE(st.set("k", "v", 1000).ok());
    EXPECT_EQ(st.expiring(), 1u);
    EXPECT_NE(st.find("k", 999), nullptr);
    EXPECT_EQ(st.find("k", 1000), nullptr);  // expired at the deadline
    EXPECT_EQ(st.size(), 0u);
    EXPECT_EQ(st.expiring(), 0u);
    EXPECT_EQ(st.expired_total(), 1u);
    // Replacing drops the expiry unless the caller passes one.
    ASSERT_TRUE(st.set("k", "v", 1000).ok());
    ASSERT_TRUE(st.set("k", "w", 0).ok());
    EXPECT_NE(st.find("k", 5000), nullptr);
    EXPECT_EQ(st.expiring(), 0u);
}

TEST(Store, SweepDeletesExpiredInBatches) {
    Store st;
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(st.set("k" + std::to_string(i), "v", i % 2 == 0 ? 100 : 0).ok());
    }
    EXPECT_EQ(st.expiring(), 500u);
    std::size_t swept = 0;
    for (int round = 0; round < 10000 && st.expiring() != 0; ++round) swept += st.sweep(100, 16);
    EXPECT_EQ(swept, 500u);
    EXPECT_EQ(st.size(), 500u);
    EXPECT_EQ(st.sweep(50, 1000000), 0u);
}

TEST(Store, GrowsShrinksAndKeepsEverything) {
    Store st;
    std::map<std::string, std::string> model;
    for (int i = 0; i < 20000; ++i) {
        const std::string k = "key:" + std::to_string(i * 7919 % 20011);
        const std::string v = std::to_string(i);
        ASSERT_TRUE(st.set(k, v, 0).ok());
        model[k] = v;
    }
    EXPECT_EQ(st.size(), model.size());
    EXPECT_GE(st.bucket_count(), model.size());
    for (const auto& [k, v] : model) ASSERT_EQ(st.find(k, 0)->value(), v);
    std::size_t seen = 0;
    st.for_each([&](const Entry& e) {
        ++seen;
        EXPECT_EQ(model.at(std::string(e.key())), e.value());
    });
    EXPECT_EQ(seen, model.size());
    const std::size_t big = st.bucket_count();
    int n = 0;
    for (const auto& [k, v] : model) {
        if (n++ % 50 != 0) {
            ASSERT_TRUE(st.erase(k));
        }
    }
    EXPECT_LT(st.bucket_count(), big);
    st.clear();
    EXPECT_EQ(st.size(), 0u);
    EXPECT_EQ(st.memory(), 0u);
}

TEST(Store, PausedTableKeepsItsSize) {
    Store st;
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(st.set(std::to_string(i), "v", 0).ok());
    const std::size_t n = st.bucket_count();
    st.pause_resize();
    for (int i = 100; i < 1000; ++i) ASSERT_TRUE(st.set(std::to_string(i), "v", 0).ok());
    EXPECT_EQ(st.bucket_count(), n);
    st.clear();
    EXPECT_EQ(st.bucket_count(), n);
    ASSERT_TRUE(st.set("x", "v", 0).ok());
    st.resume_resize();
    EXPECT_LE(st.bucket_count(), n);
    EXPECT_EQ(st.find("x", 0)->value(), "v");
}

TEST(Store, MemoryLimit) {
    StoreOptions o;
    o.max_memory = 4096;
    Store st(o);
    ASSERT_TRUE(st.set("a", std::string(1000, 'x'), 0).ok());
    EXPECT_EQ(st.set("b", std::string(4000, 'x'), 0).error(), Error::no_memory);
    EXPECT_EQ(st.find("b", 0), nullptr);
    ASSERT_TRUE(st.set("a", std::string(10, 'x'), 0).ok());  // shrinking is always fine
    EXPECT_LE(st.memory(), o.max_memory);
}


}  // namespace
}  // namespace keel::kv
