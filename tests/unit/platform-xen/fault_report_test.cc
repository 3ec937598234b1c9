// Fault reports: page-fault decoding, report lines, and frame-pointer walks over a fake stack.
#include "keel/xen/fault_report.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace keel::xen {
namespace {

// ---- page fault causes ----

using Guards = std::array<GuardRange, FaultContext::max_guards>;
const Guards no_guards{};

TEST(PageFaultCause, EveryKind) {
    const std::uint64_t far = 0x40001234;
    EXPECT_STREQ(page_fault_cause(pf_present | pf_write, far, no_guards), "write to a read-only page");
    EXPECT_STREQ(page_fault_cause(pf_write, far, no_guards), "write to an unmapped page");
    EXPECT_STREQ(page_fault_cause(pf_write, 0x8, no_guards),
                 "write to an unmapped page (null pointer dereference)");
    EXPECT_STREQ(page_fault_cause(pf_present | pf_fetch, far, no_guards),
                 "instruction fetch from a non-executable page");
    EXPECT_STREQ(page_fault_cause(pf_fetch, far, no_guards), "instruction fetch from an unmapped page");
    EXPECT_STREQ(page_fault_cause(pf_fetch, 0, no_guards),
                 "instruction fetch from an unmapped page (call through a null pointer)");
    EXPECT_STREQ(page_fault_cause(0, far, no_guards), "read of an unmapped page");
    EXPECT_STREQ(page_fault_cause(0, 0, no_guards), "read of an unmapped page (null pointer dereference)");
    EXPECT_STREQ(page_fault_cause(0, 4095, no_guards), "read of an unmapped page (null pointer dereference)");
    // Nothing is mapped below 64 KiB: null plus any offset under it is still a null pointer.
    EXPECT_STREQ(page_fault_cause(0, 4096, no_guards), "read of an unmapped page (null pointer dereference)");
    EXPECT_STREQ(page_fault_cause(0, 0xffff, no_guards),
                 "read of an unmapped page (null pointer dereference)");
    EXPECT_STREQ(page_fault_cause(0, 0x10000, no_guards), "read of an unmapped page");
    EXPECT_STREQ(page_fault_cause(pf_present, far, no_guards),
                 "read of a page that denies reads (protection violation)");
    EXPECT_STREQ(page_fault_cause(pf_present | pf_reserved, far, no_guards),
                 "reserved bit set in a page-table entry (corrupt page tables)");
    EXPECT_STREQ(page_fault_cause(pf_present | pf_pkey, far, no_guards), "protection-key violation");
    EXPECT_STREQ(page_fault_cause(pf_present | pf_shadow_stack | pf_write, far, no_guards),
                 "shadow-stack access violation");
    // A write into the (read-only) page tables says so; a read of them is ordinary.
    const GuardRange tables{0x200000, 0x210000};
    EXPECT_STREQ(page_fault_cause(pf_present | pf_write, 0x201008, no_guards, tables),
                 "write to a page-table page (page tables are read-only once built)");
    EXPECT_STREQ(page_fault_cause(pf_present | pf_write, 0x210000, no_guards, tables),
                 "write to a read-only page");
    // User-mode accesses decode the same (PV guests run their kernel in ring 3).
    EXPECT_STREQ(page_fault_cause(pf_user | pf_present | pf_write, far, no_guards),
                 "write to a read-only page");
}

TEST(PageFaultCause, StackGuardRanges) {
    Guards g{};
    g[0] = {0x200000, 0x201000};
    g[2] = {0x300000, 0x302000};
    const char* hit = "stack guard page hit (stack overflow)";
    EXPECT_STREQ(page_fault_cause(pf_write, 0x200000, g), hit);
    EXPECT_STREQ(page_fault_cause(pf_write, 0x200ff8, g), hit);
    EXPECT_STREQ(page_fault_cause(0, 0x301000, g), hit);
    EXPECT_STREQ(page_fault_cause(pf_write, 0x201000, g), "write to an unmapped page");  // hi excluded
    EXPECT_STREQ(page_fault_cause(pf_write, 0x1fffff, g), "write to an unmapped page");
    // Unused slots (lo == hi == 0) match nothing, not even address 0.
    EXPECT_STREQ(page_fault_cause(0, 0, g), "read of an unmapped page (null pointer dereference)");
}

TEST(VectorName, KnownAndUnknownVectors) {
    EXPECT_STREQ(vector_name(14).name, "page fault");
    EXPECT_STREQ(vector_name(14).mnemonic, "#PF");
    EXPECT_STREQ(vector_name(13).mnemonic, "#GP");
    EXPECT_STREQ(vector_name(6).name, "invalid opcode");
    EXPECT_STREQ(vector_name(8).mnemonic, "#DF");
    EXPECT_STREQ(vector_name(0).mnemonic, "#DE");
    EXPECT_STREQ(vector_name(15).name, "reserved exception");
    EXPECT_STREQ(vector_name(31).name, "reserved exception");
    EXPECT_STREQ(vector_name(32).name, "interrupt");
    EXPECT_STREQ(vector_name(~0ull).name, "interrupt");
}

// ---- reports and backtraces ----

std::vector<std::string> g_lines;
void collect(const char* line) { g_lines.emplace_back(line); }

// A fake stack the frame walker may read; everything else is "unmapped".
alignas(16) std::uint64_t g_stack[128];
bool stack_readable(std::uint64_t a) {
    const auto lo = reinterpret_cast<std::uint64_t>(&g_stack[0]);
    const auto hi = reinterpret_cast<std::uint64_t>(&g_stack[128]);
    return a >= lo && a + 8 <= hi;
}
std::uint64_t slot(std::size_t i) { return reinterpret_cast<std::uint64_t>(&g_stack[i]); }

// Symbols: 0x1000 keel_boot, 0x1100 app_main, 0x1200 faulty(int), 0x2000 __text_end, in
// gen-ksyms.sh's layout with one token: 0x01 = "keel_". Each entry: its address's ULEB128
// delta from the one before, its name.
std::vector<std::uint8_t> make_ksyms() {
    // Octal escapes: a hex one would swallow the name's first letters.
    const char strings[] =
        "keel_\0"                                                  // token 0
        "\200\040\001boot\0"                                       // +0x1000: token 0, "boot"
        "\200\002app_main\0"                                       // +0x100
        "\200\002faulty(int)\0"                                    // +0x100
        "\200\034__text_end";                                      // +0xe00
    std::vector<std::uint8_t> blob{4, 0, 0, 0, 1, 0, 6, 0, 0, 0};  // token 0 at offset 0, entries at 6
    blob.insert(blob.end(), strings, strings + sizeof(strings));
    return blob;
}

class FaultReportTest : public ::testing::Test {
protected:
    void SetUp() override {
        g_lines.clear();
        for (auto& w : g_stack) w = 0;
    }
    void backtrace(std::uint64_t rbp, std::uint64_t rip, bool (*readable)(std::uint64_t) = stack_readable) {
        write_backtrace(rbp, rip, ksyms.data(), ksyms.size(), readable, collect);
    }
    // Frame at slot i: [i] = saved rbp (slot `next`, or 0), [i+1] = return address.
    void frame(std::size_t i, std::size_t next, std::uint64_t ret) {
        g_stack[i] = next ? slot(next) : 0;
        g_stack[i + 1] = ret;
    }
    // A fault in `tf` at `cr2`, with the symbol table and the test stack readable.
    FaultContext context(const TrapFrame& tf, std::uint64_t cr2) const {
        FaultContext ctx{};
        ctx.frame = &tf;
        ctx.cr2 = cr2;
        ctx.ksyms = ksyms.data();
        ctx.ksyms_size = ksyms.size();
        ctx.readable = stack_readable;
        return ctx;
    }
    std::vector<std::uint8_t> ksyms = make_ksyms();
};

TEST_F(FaultReportTest, BacktraceFollowsTheFramePointerChain) {
    frame(4, 10, 0x1150);   // faulty(int) was called from app_main
    frame(10, 20, 0x1010);  // app_main from keel_boot
    frame(20, 0, 0x1008);   // keel_boot's frame ends the chain (saved rbp 0)
    backtrace(slot(4), 0x1234);
    ASSERT_EQ(g_lines.size(), 5u);
    EXPECT_EQ(g_lines[0], "backtrace:");
    EXPECT_EQ(g_lines[1], "  #0  0x0000000000001234 <faulty(int)+0x34>");
    EXPECT_EQ(g_lines[2], "  #1  0x0000000000001150 <app_main+0x50>");
    EXPECT_EQ(g_lines[3], "  #2  0x0000000000001010 <keel_boot+0x10>");
    EXPECT_EQ(g_lines[4], "  #3  0x0000000000001008 <keel_boot+0x8>");
}

TEST_F(FaultReportTest, ReturnAddressIsSymbolizedByItsCall) {
    // A call that is the last instruction of keel_boot returns to the first byte of app_main.
    frame(4, 0, 0x1100);
    backtrace(slot(4), 0x1205);
    ASSERT_EQ(g_lines.size(), 3u);
    EXPECT_EQ(g_lines[2], "  #1  0x0000000000001100 <keel_boot+0x100>");
}

TEST_F(FaultReportTest, UnknownAddressesHaveNoSymbol) {
    frame(4, 0, 0x10);
    backtrace(slot(4), 0x20);
    ASSERT_EQ(g_lines.size(), 3u);
    EXPECT_EQ(g_lines[1], "  #0  0x0000000000000020");
    EXPECT_EQ(g_lines[2], "  #1  0x0000000000000010");
    g_lines.clear();
    write_backtrace(0, 0x1234, nullptr, 0, stack_readable, collect);
    ASSERT_EQ(g_lines.size(), 2u);
    EXPECT_EQ(g_lines[1], "  #0  0x0000000000001234");
}

TEST_F(FaultReportTest, ChainEndsAtZeroReturnAddress) {
    frame(4, 10, 0x1150);
    frame(10, 20, 0);
    backtrace(slot(4), 0x1234);
    EXPECT_EQ(g_lines.size(), 3u);
}

TEST_F(FaultReportTest, SelfLoopStops) {
    frame(4, 4, 0x1150);
    backtrace(slot(4), 0x1234);
    ASSERT_EQ(g_lines.size(), 4u);
    EXPECT_EQ(g_lines[2], "  #1  0x0000000000001150 <app_main+0x50>");
    EXPECT_NE(g_lines[3].find("loop or corrupt chain, stopping"), std::string::npos) << g_lines[3];
}

TEST_F(FaultReportTest, TwoFrameLoopStops) {
    frame(4, 10, 0x1150);
    frame(10, 4, 0x1010);  // points back down the stack
    backtrace(slot(4), 0x1234);
    ASSERT_EQ(g_lines.size(), 5u);
    EXPECT_NE(g_lines[4].find("loop or corrupt chain"), std::string::npos) << g_lines[4];
}

TEST_F(FaultReportTest, DeepChainStopsAtMaxDepth) {
    for (std::size_t i = 0; i < 50; ++i) frame(2 * i, 2 * i + 2, 0x1010 + i);  // 50 frames, all valid
    backtrace(slot(0), 0x1234);
    // "backtrace:", frames #0..#31, then the note.
    ASSERT_EQ(g_lines.size(), 1u + max_backtrace_depth + 1u);
    EXPECT_EQ(g_lines[32], "  #31 0x000000000000102e <keel_boot+0x2e>");
    EXPECT_EQ(g_lines.back(), "  (stopped after 32 frames)");
}

TEST_F(FaultReportTest, ExactlyMaxDepthHasNoNote) {
    for (std::size_t i = 0; i < 31; ++i) frame(2 * i, i == 30 ? 0 : 2 * i + 2, 0x1010);
    backtrace(slot(0), 0x1234);
    EXPECT_EQ(g_lines.size(), 1u + max_backtrace_depth);
}

TEST_F(FaultReportTest, UnreadableFramePointerStops) {
    frame(4, 0, 0x1150);
    g_stack[4] = slot(4) + 0x100000;  // saved rbp above the frame but outside the stack
    backtrace(slot(4), 0x1234);
    ASSERT_EQ(g_lines.size(), 4u);
    EXPECT_EQ(g_lines[2], "  #1  0x0000000000001150 <app_main+0x50>");
    EXPECT_NE(g_lines[3].find("is not readable; stopping)"), std::string::npos) << g_lines[3];
    // The last readable word of the stack holds a frame's saved rbp; its return address would
    // lie past the end.
    g_lines.clear();
    backtrace(slot(127), 0x1234);
    ASSERT_EQ(g_lines.size(), 3u);
    EXPECT_NE(g_lines[2].find("is not readable"), std::string::npos);
}

TEST_F(FaultReportTest, MisalignedFramePointerStops) {
    backtrace(slot(4) + 4, 0x1234);
    ASSERT_EQ(g_lines.size(), 3u);
    EXPECT_NE(g_lines[2].find("is misaligned"), std::string::npos) << g_lines[2];
}

TEST_F(FaultReportTest, NoReadableCallbackMeansNoWalk) {
    frame(4, 0, 0x1150);
    backtrace(slot(4), 0x1234, nullptr);
    ASSERT_EQ(g_lines.size(), 3u);
    EXPECT_NE(g_lines[2].find("is not readable"), std::string::npos);
}

TEST_F(FaultReportTest, PageFaultReport) {
    frame(4, 0, 0x1150);
    TrapFrame tf{};
    tf.rax = 0xaaaa;
    tf.rbx = 0xbbbb;
    tf.r8 = 8;
    tf.r15 = 0xf15;
    tf.rbp = slot(4);
    tf.vector = 14;
    tf.error_code = pf_present | pf_write;
    tf.rip = 0x1234;
    tf.cs = 0x8;
    tf.rflags = 0x10046;
    tf.rsp = slot(2);
    tf.ss = 0x10;
    write_fault_report(context(tf, 0x105008), collect);

    ASSERT_EQ(g_lines.size(), 11u);
    EXPECT_EQ(g_lines[0], "FAULT: page fault (#PF, vector 14) error=0x3: write to a read-only page");
    EXPECT_EQ(g_lines[1], "  at rip=0x0000000000001234 <faulty(int)+0x34>");
    EXPECT_EQ(g_lines[2], "  cr2=0x0000000000105008");
    EXPECT_EQ(
        g_lines[3],
        "  rax=0x000000000000aaaa rbx=0x000000000000bbbb rcx=0x0000000000000000 rdx=0x0000000000000000");
    EXPECT_NE(g_lines[4].find("rbp=0x"), std::string::npos);
    EXPECT_EQ(
        g_lines[5],
        "  r8 =0x0000000000000008 r9 =0x0000000000000000 r10=0x0000000000000000 r11=0x0000000000000000");
    EXPECT_NE(g_lines[6].find("r15=0x0000000000000f15"), std::string::npos);
    EXPECT_EQ(
        g_lines[7],
        "  rip=0x0000000000001234 rfl=0x0000000000010046 cs =0x0000000000000008 ss =0x0000000000000010");
    EXPECT_EQ(g_lines[8], "backtrace:");
    EXPECT_EQ(g_lines[10], "  #1  0x0000000000001150 <app_main+0x50>");
}

TEST_F(FaultReportTest, GuardPageAndNullReports) {
    TrapFrame tf{};
    tf.vector = 14;
    tf.error_code = pf_write;
    tf.rip = 0x1234;
    FaultContext ctx{};
    ctx.frame = &tf;
    ctx.readable = stack_readable;
    ctx.guards[1] = {0x7000, 0x8000};
    ctx.cr2 = 0x7ff8;
    write_fault_report(ctx, collect);
    EXPECT_EQ(g_lines[0],
              "FAULT: page fault (#PF, vector 14) error=0x2: stack guard page hit (stack overflow)");
    EXPECT_EQ(g_lines[1], "  at rip=0x0000000000001234");  // no symbol table given

    g_lines.clear();
    tf.error_code = 0;
    ctx.cr2 = 0x18;
    write_fault_report(ctx, collect);
    EXPECT_EQ(
        g_lines[0],
        "FAULT: page fault (#PF, vector 14) error=0x0: read of an unmapped page (null pointer dereference)");
}

TEST_F(FaultReportTest, OtherVectorsHaveNoCr2) {
    TrapFrame tf{};
    tf.vector = 13;
    tf.error_code = 0x18;
    tf.rip = 0x1105;
    FaultContext ctx = context(tf, 0x1234);
    ctx.readable = nullptr;
    write_fault_report(ctx, collect);
    EXPECT_EQ(g_lines[0], "FAULT: general protection fault (#GP, vector 13) error=0x18");
    EXPECT_EQ(g_lines[1], "  at rip=0x0000000000001105 <app_main+0x5>");
    for (const auto& l : g_lines) EXPECT_EQ(l.find("cr2"), std::string::npos) << l;
    EXPECT_EQ(g_lines.size(), 9u);  // fault, at, 5 register lines, "backtrace:", #0
}

TEST_F(FaultReportTest, MissingFrame) {
    FaultContext ctx{};
    write_fault_report(ctx, collect);
    ASSERT_EQ(g_lines.size(), 1u);
    EXPECT_EQ(g_lines[0], "FAULT: no trap frame");
}

TEST_F(FaultReportTest, LongSymbolNamesAreTruncated) {
    std::string name(600, 'n');
    std::vector<std::uint8_t> blob{1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x20};  // one entry at 0x1000, no tokens
    blob.insert(blob.end(), name.c_str(), name.c_str() + name.size() + 1);
    write_backtrace(0, 0x1001, blob.data(), blob.size(), stack_readable, collect);
    ASSERT_EQ(g_lines.size(), 2u);
    EXPECT_EQ(g_lines[1].size(), 255u);
    EXPECT_EQ(g_lines[1].rfind("  #0  0x0000000000001001 <nnn", 0), 0u);
}

TEST_F(FaultReportTest, FetchFaultNamesTheCallerFromTheStackTop) {
    // exec-from-data: a call into a non-executable buffer faults before any prologue ran, so
    // the caller is only visible as the return address on top of the stack.
    g_stack[2] = 0x1210;  // returns into faulty(int)
    TrapFrame tf{};
    tf.vector = 14;
    tf.error_code = pf_present | pf_fetch;
    tf.rip = 0x7000;
    tf.rsp = slot(2);
    FaultContext ctx = context(tf, 0x7000);
    write_fault_report(ctx, collect);
    ASSERT_GE(g_lines.size(), 4u);
    EXPECT_EQ(g_lines[3].rfind("  called from 0x0000000000001210 <faulty(int)+0x", 0), 0u) << g_lines[3];

    // Not a fetch fault: no such line.
    g_lines.clear();
    tf.error_code = pf_present | pf_write;
    write_fault_report(ctx, collect);
    for (const auto& l : g_lines) EXPECT_EQ(l.find("called from"), std::string::npos) << l;
}

}  // namespace
}  // namespace keel::xen
