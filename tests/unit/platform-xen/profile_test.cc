// The sampling profiler's table: equal stacks counted once, a full table drops (counted), and
// the report ranks functions by self samples and stacks by count, symbolized.
#include "keel/xen/profile.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace keel::xen {
namespace {

std::vector<std::string> g_lines;
void collect(const char* line) { g_lines.emplace_back(line); }

// Functions at 0x1000 ("alpha", 0x100 long), 0x2000 ("beta"), 0x3000 ("gamma"). Counts its calls.
int g_lookups = 0;
bool symbols(std::uint64_t pc, char* name, std::size_t n, std::uint64_t* start, std::uint64_t* end) {
    ++g_lookups;
    static const struct {
        std::uint64_t start;
        const char* name;
    } table[] = {{0x1000, "alpha"}, {0x2000, "beta"}, {0x3000, "gamma"}};
    for (const auto& s : table) {
        if (pc >= s.start && pc < s.start + 0x100) {
            std::snprintf(name, n, "%s", s.name);
            *start = s.start;
            *end = s.start + 0x100;
            return true;
        }
    }
    return false;
}

std::string report(const StackProfile& p, unsigned top = 5) {
    g_lines.clear();
    p.report(collect, symbols, top);
    std::string all;
    for (const auto& l : g_lines) all += l + "\n";
    return all;
}

TEST(StackProfile, CountsEqualStacksOnce) {
    std::vector<StackProfile::Entry> table(64);
    StackProfile p(table.data(), table.size());
    const std::uint64_t a[] = {0x1010, 0x2020, 0x3030};
    const std::uint64_t b[] = {0x1010, 0x2040};
    for (int i = 0; i < 5; ++i) p.add(a, 3);
    p.add(b, 2);
    p.add(a, 0);  // ignored
    EXPECT_EQ(p.samples(), 6u);
    EXPECT_EQ(p.stacks(), 2u);
    EXPECT_EQ(p.dropped(), 0u);
}

TEST(StackProfile, ADeepStackIsCutAtMaxDepth) {
    std::vector<StackProfile::Entry> table(8);
    StackProfile p(table.data(), table.size());
    std::uint64_t deep[20];
    for (int i = 0; i < 20; ++i) deep[i] = 0x1000 + i;
    p.add(deep, 20);
    std::uint64_t cut[StackProfile::max_depth];
    std::memcpy(cut, deep, sizeof cut);
    p.add(cut, StackProfile::max_depth);
    EXPECT_EQ(p.stacks(), 1u) << "the cut stack and the same first max_depth frames are one";
}

// A full table never overwrites: new stacks are dropped and counted.
TEST(StackProfile, AFullTableDropsAndCounts) {
    std::vector<StackProfile::Entry> table(4);
    StackProfile p(table.data(), table.size());
    for (std::uint64_t i = 0; i < 10; ++i) {
        const std::uint64_t pc[] = {0x1000 + i};
        p.add(pc, 1);
    }
    EXPECT_EQ(p.samples(), 10u);
    EXPECT_EQ(p.stacks(), 4u);
    EXPECT_EQ(p.dropped(), 6u);
    const std::uint64_t known[] = {table[0].pcs[0]};
    p.add(known, 1);  // a stack already in the table still counts
    EXPECT_EQ(p.dropped(), 6u);
    EXPECT_NE(report(p).find("11 samples, 4 distinct stacks, 6 dropped"), std::string::npos) << report(p);
}

TEST(StackProfile, NoTableDropsEverything) {
    StackProfile p(nullptr, 16);
    const std::uint64_t pc[] = {0x1000};
    p.add(pc, 1);
    EXPECT_EQ(p.dropped(), 1u);
    EXPECT_EQ(p.stacks(), 0u);
}

// Self samples are summed per function across stacks; stacks are ranked by count and each
// frame is named (a return address names its call, one byte back).
TEST(StackProfile, ReportRanksFunctionsAndStacks) {
    std::vector<StackProfile::Entry> table(64);
    StackProfile p(table.data(), table.size());
    const std::uint64_t in_beta_from_alpha[] = {0x2010, 0x1020};
    const std::uint64_t in_beta_from_gamma[] = {0x2030, 0x3040};
    const std::uint64_t in_alpha[] = {0x1050};
    const std::uint64_t unknown[] = {0x9000};
    for (int i = 0; i < 3; ++i) p.add(in_beta_from_alpha, 2);
    for (int i = 0; i < 2; ++i) p.add(in_beta_from_gamma, 2);
    for (int i = 0; i < 4; ++i) p.add(in_alpha, 1);
    p.add(unknown, 1);
    const std::string r = report(p);
    // beta: 5 of 10 (two stacks), alpha 4, the unknown PC 1.
    const auto beta = r.find(" 50.0%        5  0x2000 beta");
    const auto alpha = r.find(" 40.0%        4  0x1000 alpha");
    const auto unk = r.find(" 10.0%        1  0x9000 ?");
    ASSERT_NE(beta, std::string::npos) << r;
    ASSERT_NE(alpha, std::string::npos) << r;
    ASSERT_NE(unk, std::string::npos) << r;
    EXPECT_LT(beta, alpha);
    EXPECT_LT(alpha, unk);
    // Stacks: alpha alone (4), beta<-alpha (3), beta<-gamma (2), unknown (1).
    const auto s1 = r.find(" 40.0%        4\n      0x1050 alpha+0x50\n");
    const auto s2 = r.find(" 30.0%        3\n      0x2010 beta+0x10\n      0x1020 alpha+0x1f\n");
    const auto s3 = r.find(" 20.0%        2\n      0x2030 beta+0x30\n      0x3040 gamma+0x3f\n");
    const auto s4 = r.find(" 10.0%        1\n      0x9000 ?\n");
    ASSERT_NE(s1, std::string::npos) << r;
    ASSERT_NE(s2, std::string::npos) << r;
    ASSERT_NE(s3, std::string::npos) << r;
    ASSERT_NE(s4, std::string::npos) << r;
    EXPECT_LT(s1, s2);
    EXPECT_LT(s2, s3);
    EXPECT_LT(s3, s4);
}

// Aggregating asks the symbolizer once per function, not once per stack (a lookup in the
// image's table reads it from its start); unknown PCs are asked each.
TEST(StackProfile, ReportLooksUpEachFunctionOnce) {
    std::vector<StackProfile::Entry> table(64);
    StackProfile p(table.data(), table.size());
    for (std::uint64_t i = 0; i < 20; ++i) {
        const std::uint64_t pc[] = {(i % 2 ? 0x1000 : 0x2000) + i, 0x3000 + i};  // 20 stacks
        p.add(pc, 2);
    }
    // Unknown PCs, the top two addresses among them: each is its own function, shared by the
    // stacks that start there.
    const std::uint64_t unknown[] = {0x9000}, unknown2[] = {0x9001};
    const std::uint64_t top_a[] = {~0ull, 0x1}, top_b[] = {~0ull, 0x2}, below_top[] = {~0ull - 1};
    for (const std::uint64_t* pc : {unknown, unknown2, below_top}) p.add(pc, 1);
    p.add(top_a, 2);
    p.add(top_b, 2);
    g_lookups = 0;
    report(p, 0);  // no lists: the aggregation alone
    EXPECT_EQ(g_lookups, 6) << "alpha, beta and the unknown 0x9000, 0x9001, ~0 - 1 and ~0";
    const std::string r = report(p, 6);
    EXPECT_NE(r.find(" 40.0%       10  0x1000 alpha"), std::string::npos) << r;
    EXPECT_NE(r.find(" 40.0%       10  0x2000 beta"), std::string::npos) << r;
    EXPECT_NE(r.find("  8.0%        2  0xffffffffffffffff ?"), std::string::npos) << r;
    EXPECT_NE(r.find("  4.0%        1  0xfffffffffffffffe ?"), std::string::npos) << r;
}

// Equal counts are all shown (none skipped, none twice) and `top` bounds both lists.
TEST(StackProfile, TiesAreEachShownOnceAndTopBoundsTheLists) {
    std::vector<StackProfile::Entry> table(64);
    StackProfile p(table.data(), table.size());
    for (std::uint64_t i = 0; i < 6; ++i) {
        const std::uint64_t pc[] = {0x1000 + i, 0x3000};
        p.add(pc, 2);
    }
    report(p, 4);
    int stacks = 0;
    for (const auto& l : g_lines) stacks += l.find("16.6%        1") != std::string::npos;
    EXPECT_EQ(stacks, 4) << "top 4 stacks of 6 equal ones";
    report(p, 10);
    std::vector<std::string> firsts;
    for (std::size_t i = 0; i + 1 < g_lines.size(); ++i) {
        if (g_lines[i].find("16.6%        1") != std::string::npos) firsts.push_back(g_lines[i + 1]);
    }
    ASSERT_EQ(firsts.size(), 6u);
    for (std::size_t i = 0; i < firsts.size(); ++i) {
        for (std::size_t j = i + 1; j < firsts.size(); ++j) EXPECT_NE(firsts[i], firsts[j]);
    }
}

}  // namespace
}  // namespace keel::xen
