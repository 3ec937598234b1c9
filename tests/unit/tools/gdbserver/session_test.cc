// The gdb commands a dom0 debugging session uses, byte for byte on the wire: acks, the 'g'
// layout, memory through the page walk, continue / ^C / detach, and what is refused.
#include "session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "fake_target.h"

namespace keel::gdbserver {
namespace {

using test::FakeTarget;

std::string le64(std::uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 8; ++i, v >>= 8) {
        s += kHex[(v >> 4) & 15];
        s += kHex[v & 15];
    }
    return s;
}

// One packet from gdb, in ack mode: the reply as gdb sees it.
std::string ask(Session& s, std::string_view body) { return s.receive(frame(body)); }

TEST(GdbSession, AttachingPausesAndTheEndResumes) {
    FakeTarget t;
    {
        Session s(t);
        EXPECT_TRUE(s.ok());
        EXPECT_EQ(t.pause_count, 1);
    }
    EXPECT_EQ(t.pause_count, 0) << "a lost connection must leave the guest running";
}

TEST(GdbSession, EveryGoodPacketIsAckedThenAnswered) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(ask(s, "?"), "+$S05#b8");
    EXPECT_EQ(ask(s, "qAttached"), "+" + frame("1"));
}

TEST(GdbSession, ABadChecksumIsNackedAndNotExecuted) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(s.receive("$D#00"), "-");
    EXPECT_FALSE(s.finished());
    EXPECT_EQ(t.pause_count, 1);
}

TEST(GdbSession, ANackResendsTheLastReply) {
    FakeTarget t;
    Session s(t);
    const std::string r = ask(s, "qC");
    EXPECT_EQ(r, "+" + frame("QC1"));
    EXPECT_EQ(s.receive("-"), frame("QC1"));
    EXPECT_EQ(s.receive("+"), "");
}

TEST(GdbSession, NoAckModeStartsAfterItsOwnReply) {
    FakeTarget t;
    Session s(t);
    EXPECT_NE(ask(s, "qSupported:multiprocess+;swbreak+").find("PacketSize=4000"), std::string::npos);
    EXPECT_EQ(ask(s, "QStartNoAckMode"), "+$OK#9a");
    EXPECT_EQ(ask(s, "?"), "$S05#b8");
    EXPECT_EQ(s.receive("$?#00"), "") << "no nack without acks";
    EXPECT_EQ(s.receive("-"), "");
}

TEST(GdbSession, RegistersInGdbsAmd64Order) {
    FakeTarget t;
    Registers& r = t.regs;
    r.rax = 0x1111111111111111, r.rbx = 0x2, r.rcx = 0x3, r.rdx = 0x4, r.rsi = 0x5, r.rdi = 0x6;
    r.rbp = 0x7, r.rsp = 0x8, r.r8 = 0x9, r.r15 = 0xf0f0, r.rip = 0xffffffff80001234, r.rflags = 0x246;
    r.cs = 0x10, r.ss = 0x18, r.ds = 0x18, r.es = 0x18, r.fs = 0, r.gs = 0x2b;
    Session s(t);
    const std::string g = s.handle("g");
    ASSERT_EQ(g.size(), (17 * 8 + 7 * 4) * 2u) << "rax..r15, rip: 8 bytes; eflags, cs..gs: 4 bytes";
    EXPECT_EQ(g.substr(0, 16), le64(r.rax));
    EXPECT_EQ(g.substr(16, 16), le64(r.rbx));
    EXPECT_EQ(g.substr(4 * 16, 16), le64(r.rsi)) << "rsi before rdi, after rdx";
    EXPECT_EQ(g.substr(6 * 16, 16), le64(r.rbp));
    EXPECT_EQ(g.substr(7 * 16, 16), le64(r.rsp));
    EXPECT_EQ(g.substr(15 * 16, 16), le64(r.r15));
    EXPECT_EQ(g.substr(16 * 16, 16), le64(r.rip));
    EXPECT_EQ(g.substr(17 * 16, 8), "46020000") << "eflags, 4 bytes";
    EXPECT_EQ(g.substr(17 * 16 + 8, 8), "10000000") << "cs";
    EXPECT_EQ(g.substr(17 * 16 + 6 * 8, 8), "2b000000") << "gs last";
}

TEST(GdbSession, SingleRegisterReadsAndUnknownNumbers) {
    FakeTarget t;
    t.regs.rip = 0xabcdef;
    t.regs.gs = 0x2b;
    Session s(t);
    EXPECT_EQ(s.handle("p10"), le64(0xabcdef));  // register 16: rip
    EXPECT_EQ(s.handle("p17"), "2b000000");      // register 23: gs
    EXPECT_EQ(s.handle("p18"), "");              // past gs: not served
    EXPECT_EQ(s.handle("pzz"), "E01");
}

class GdbSessionMemory : public ::testing::Test {
protected:
    void SetUp() override {
        // A 4 KiB text page, a 2 MiB data page after a hole.
        t.add_memory(0x1000000, 4096);
        t.map_4k(0xffffffff80001000, 0x1000000);
        t.poke(0x1000010, "\x55\x48\x89\xe5", 4);
        t.add_memory(0x2000000, 0x200000);
        t.map_2m(0xffffffff80400000, 0x2000000);
        const std::uint64_t counter = 42;
        t.poke(0x2001008, &counter, 8);
    }
    FakeTarget t;
};

TEST_F(GdbSessionMemory, ReadsThroughFourKibAndTwoMibPages) {
    Session s(t);
    EXPECT_EQ(s.handle("mffffffff80001010,4"), "554889e5");
    EXPECT_EQ(s.handle("mffffffff80401008,8"), le64(42));
}

TEST_F(GdbSessionMemory, NotPresentIsE14AndAPartialReadIsShort) {
    Session s(t);
    EXPECT_EQ(s.handle("mffffffff80002000,4"), "E14");
    EXPECT_EQ(s.handle("mffffffff80001ffe,4"), "0000") << "the bytes up to the hole";
    EXPECT_EQ(s.handle("m800000000000,1"), "E14") << "non-canonical";
}

TEST_F(GdbSessionMemory, MalformedReadsAreErrors) {
    Session s(t);
    EXPECT_EQ(s.handle("m"), "E01");
    EXPECT_EQ(s.handle("mffffffff80001010"), "E01");
    EXPECT_EQ(s.handle("mxyz,4"), "E01");
    EXPECT_EQ(s.handle("m1,12345678901234567"), "E01");
}

TEST_F(GdbSessionMemory, LongReadsAreCappedToThePacketSize) {
    Session s(t);
    const std::string r = s.handle("mffffffff80400000,100000");
    EXPECT_EQ(r.size(), PacketReader::kMaxBody);
}

TEST_F(GdbSessionMemory, WritesLandInGuestMemory) {
    Session s(t);
    EXPECT_EQ(s.handle("Mffffffff80401008,8:0700000000000000"), "OK");
    EXPECT_EQ(s.handle("mffffffff80401008,8"), le64(7));
    EXPECT_EQ(s.handle("Mffffffff80002000,1:00"), "E14");
    EXPECT_EQ(s.handle("Mffffffff80401008,2:07"), "E01") << "length disagrees with the data";
    EXPECT_EQ(s.handle("Mffffffff80401008,1:zz"), "E01");
    EXPECT_EQ(s.handle("Mffffffff80401008,1"), "E01");
}

TEST(GdbSession, ContinueRunsUntilInterruptThenStopsWithSigint) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(ask(s, "c"), "+") << "no reply until the target stops";
    EXPECT_TRUE(s.running());
    EXPECT_EQ(t.pause_count, 0);
    EXPECT_EQ(ask(s, "g"), "+") << "ignored while running (registers are not read)";
    EXPECT_EQ(s.poll(), "");
    EXPECT_EQ(s.receive("\x03"), frame("S02"));
    EXPECT_FALSE(s.running());
    EXPECT_EQ(t.pause_count, 1);
    EXPECT_EQ(s.handle("mffffffff80001000,1"), "E14");  // paused again: memory answers
}

TEST(GdbSession, InterruptWhileStoppedIsIgnored) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(s.receive("\x03"), "");
    EXPECT_EQ(t.pause_count, 1);
}

TEST(GdbSession, DetachResumesAndEnds) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(ask(s, "c"), "+");
    EXPECT_EQ(s.receive("\x03"), frame("S02"));
    EXPECT_EQ(ask(s, "D"), "+" + frame("OK"));
    EXPECT_TRUE(s.finished());
    EXPECT_EQ(t.pause_count, 0);
    EXPECT_EQ(ask(s, "?"), "") << "nothing after detach";
}

TEST(GdbSession, KillDetachesWithoutDestroying) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(ask(s, "k"), "+");
    EXPECT_TRUE(s.finished());
    EXPECT_EQ(t.pause_count, 0);
    EXPECT_TRUE(t.is_alive);
}

TEST(GdbSession, TheDomainsEndWhileRunningIsReported) {
    FakeTarget t;
    Session s(t);
    ask(s, "c");
    t.is_alive = false;
    EXPECT_EQ(s.poll(), frame("X09"));
    EXPECT_TRUE(s.finished());
}

TEST(GdbSession, ContinueAtAnAddressAndStepAreRefused) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(s.handle("cffffffff80001000"), "E01");
    EXPECT_EQ(s.handle("s"), "E01");
    EXPECT_FALSE(s.running());
    EXPECT_EQ(t.pause_count, 1);
}

TEST(GdbSession, BreakpointsAndUnknownPacketsGetTheEmptyReply) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(ask(s, "Z0,ffffffff80001000,1"), "+$#00");
    EXPECT_EQ(s.handle("z0,ffffffff80001000,1"), "");
    EXPECT_EQ(s.handle("vCont?"), "");
    EXPECT_EQ(s.handle("vMustReplyEmpty"), "");
    EXPECT_EQ(s.handle("G00"), "");
    EXPECT_EQ(s.handle(""), "");
}

TEST(GdbSession, OneThread) {
    FakeTarget t;
    Session s(t);
    EXPECT_EQ(s.handle("Hg0"), "OK");
    EXPECT_EQ(s.handle("Hc-1"), "OK");
    EXPECT_EQ(s.handle("qC"), "QC1");
    EXPECT_EQ(s.handle("qfThreadInfo"), "m1");
    EXPECT_EQ(s.handle("qsThreadInfo"), "l");
}

}  // namespace
}  // namespace keel::gdbserver
