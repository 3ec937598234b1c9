// The framing rules of gdb's remote protocol: $BODY#CC with the modulo-256 sum, acks, the
// interrupt byte, and every malformed packet refused with '-'.
#include "packet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keel::gdbserver {
namespace {

using Event = PacketReader::Event;

std::vector<Event> feed_all(PacketReader& r, std::string_view bytes) {
    std::vector<Event> out;
    for (char c : bytes) {
        const auto e = r.feed(c);
        if (e != Event::none) out.push_back(e);
    }
    return out;
}

TEST(GdbPacket, ChecksumIsTheByteSumModulo256) {
    EXPECT_EQ(checksum(""), 0);
    EXPECT_EQ(checksum("OK"), 0x9a);
    EXPECT_EQ(checksum(std::string(300, '\xff')), (300 * 0xff) % 256);
}

TEST(GdbPacket, FrameAppendsTheChecksumInLowercaseHex) {
    EXPECT_EQ(frame("OK"), "$OK#9a");
    EXPECT_EQ(frame(""), "$#00");
    EXPECT_EQ(frame("S05"), "$S05#b8");
}

TEST(GdbPacket, AWellFormedPacketYieldsItsBody) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, frame("qSupported:multiprocess+")), std::vector<Event>{Event::packet});
    EXPECT_EQ(r.body(), "qSupported:multiprocess+");
}

TEST(GdbPacket, ChecksumDigitsMayBeUppercase) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "$OK#9A"), std::vector<Event>{Event::packet});
}

TEST(GdbPacket, AWrongChecksumIsRefused) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "$OK#9b"), std::vector<Event>{Event::bad});
    // The reader recovers: the retransmission is accepted.
    EXPECT_EQ(feed_all(r, "$OK#9a"), std::vector<Event>{Event::packet});
}

TEST(GdbPacket, ANonHexTrailerIsRefused) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "$OK#zz"), std::vector<Event>{Event::bad});
    EXPECT_EQ(feed_all(r, "$OK#9"), std::vector<Event>{});  // incomplete: waits
    EXPECT_EQ(feed_all(r, "g"), std::vector<Event>{Event::bad});
}

TEST(GdbPacket, AnOverlongBodyIsRefusedNotTruncated) {
    PacketReader r;
    const std::string body(PacketReader::kMaxBody + 1, 'a');
    EXPECT_EQ(feed_all(r, frame(body)), std::vector<Event>{Event::bad});
    const std::string fits(PacketReader::kMaxBody, 'a');
    EXPECT_EQ(feed_all(r, frame(fits)), std::vector<Event>{Event::packet});
    EXPECT_EQ(r.body().size(), PacketReader::kMaxBody);
}

TEST(GdbPacket, AcksNacksAndInterruptBetweenPackets) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "+-\x03"), (std::vector<Event>{Event::ack, Event::nack, Event::interrupt}));
}

TEST(GdbPacket, InsideAPacketAckBytesAreData) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, frame("+-\x03")), std::vector<Event>{Event::packet});
    EXPECT_EQ(r.body(), "+-\x03");
}

TEST(GdbPacket, NoiseBetweenPacketsIsSkipped) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "xyz#12" + frame("g")), std::vector<Event>{Event::packet});
    EXPECT_EQ(r.body(), "g");
}

TEST(GdbPacket, ADollarInsideAPacketStartsOver) {
    PacketReader r;
    EXPECT_EQ(feed_all(r, "$m10" + frame("?")), std::vector<Event>{Event::packet});
    EXPECT_EQ(r.body(), "?");
}

}  // namespace
}  // namespace keel::gdbserver
