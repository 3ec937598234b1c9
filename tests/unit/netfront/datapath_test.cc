// Netfront's data path against the fake netback: rx and tx, single and multi-slot, checksum
// flags, back-pressure, and 10k packets without an allocation.
#include <gtest/gtest.h>

#include "rig.h"

namespace keel::test {
namespace {

using netfront::RxBuffer;
using netfront::TxFlags;
using Parts = std::vector<std::span<const std::byte>>;

Result<void> send(netfront::Netfront& n, const std::vector<std::byte>& f, TxFlags flags = TxFlags::none) {
    const std::span<const std::byte> parts[] = {f};
    return n.transmit(parts, flags);
}

// ---- receive -------------------------------------------------------------------------------------

TEST_F(NetfrontTest, ReceivesASingleSlotFrameWithoutACopy) {
    make();
    connect();
    collect();
    const auto f = make_frame(1514, 1);
    nb.inject(f);
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].segment_count(), 1u);
    EXPECT_EQ(rx[0].size(), 1514u);
    EXPECT_EQ(flatten(rx[0]), f);
    EXPECT_EQ(rx[0].data().data(), nb.last_rx_data) << "the frame is handed up in the page it arrived in";
    EXPECT_FALSE(rx[0].flags().data_validated);
    EXPECT_FALSE(rx[0].flags().checksum_blank);
    EXPECT_EQ(nb.rx_posted(), 255u) << "the page is with the stack";
    rx.clear();  // the page goes back into the ring
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u);
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.packets, 1u);
    EXPECT_EQ(s.rx.bytes, 1514u);
    EXPECT_EQ(s.rx.dropped, 0u);
}

TEST_F(NetfrontTest, ReceivesAtAnOffset) {
    make();
    connect();
    collect();
    nb.rx_offset = 2;
    const auto f = make_frame(60, 2);
    nb.inject(f);
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(flatten(rx[0]), f);
}

TEST_F(NetfrontTest, ReceivesAMultiSlotFrame) {
    construct();
    d.set(std::string(FakeNetback::front) + "/mtu", "9000");
    ASSERT_TRUE(run(nf->init())->ok());
    connect();
    collect();
    const auto f = make_frame(9014, 3);
    nb.inject(f, NETRXF_data_validated);
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].segment_count(), 3u);
    EXPECT_EQ(rx[0].size(), 9014u);
    EXPECT_EQ(flatten(rx[0]), f);
    EXPECT_TRUE(rx[0].flags().data_validated);
    EXPECT_EQ(nb.rx_posted(), 253u);
    rx.clear();
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u);
}

TEST_F(NetfrontTest, ReceivesManySmallSlots) {
    make();
    connect();
    collect();
    nb.rx_chunk = 100;  // a backend may split a frame as it likes
    const auto f = make_frame(1514, 4);
    nb.inject(f);
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].segment_count(), 16u);
    EXPECT_EQ(flatten(rx[0]), f);
}

TEST_F(NetfrontTest, ReportsTheChecksumFlags) {
    make();
    connect();
    collect();
    const auto f = make_frame(100, 5);
    nb.inject(f, NETRXF_data_validated);
    nb.inject(f, NETRXF_csum_blank | NETRXF_data_validated);
    nb.inject(f, 0);
    pump_data();
    ASSERT_EQ(rx.size(), 3u);
    EXPECT_TRUE(rx[0].flags().data_validated);
    EXPECT_FALSE(rx[0].flags().checksum_blank);
    EXPECT_TRUE(rx[1].flags().data_validated);
    EXPECT_TRUE(rx[1].flags().checksum_blank);
    EXPECT_FALSE(rx[2].flags().data_validated);
    EXPECT_FALSE(rx[2].flags().checksum_blank);
}

TEST_F(NetfrontTest, FramesWithoutAHandlerAreDroppedAndCounted) {
    make();
    connect();
    nb.inject(make_frame(100, 6));
    pump_data();
    EXPECT_EQ(nf->stats().rx.no_handler, 1u);
    EXPECT_EQ(nf->stats().rx.dropped, 1u);
    EXPECT_EQ(nb.rx_posted(), 256u);
}

TEST_F(NetfrontTest, HandlerMayReplaceItselfAndBuffersMayMove) {
    make();
    connect();
    int first = 0, second = 0;
    RxBuffer kept;
    nf->set_receive_handler([&](RxBuffer b) {
        ++first;
        kept = std::move(b);
        nf->set_receive_handler([&](RxBuffer) { ++second; });
    });
    nb.inject(make_frame(100, 7));
    nb.inject(make_frame(100, 8));
    pump_data();
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 1);
    ASSERT_TRUE(kept.valid());
    EXPECT_EQ(flatten(kept), make_frame(100, 7));
    RxBuffer moved = std::move(kept);
    EXPECT_FALSE(kept.valid());
    EXPECT_EQ(nb.rx_posted(), 255u);
    moved.reset();
    EXPECT_EQ(nb.rx_posted(), 256u);
}

TEST_F(NetfrontTest, RunsOutOfRxBuffersAndRecovers) {
    netfront::Options o;
    o.rx_buffers = 4;
    make({}, o);
    connect();
    collect();
    for (unsigned i = 0; i < 6; ++i) nb.inject(make_frame(100, i));
    pump_data();
    EXPECT_EQ(rx.size(), 4u) << "the stack holds every page";
    EXPECT_EQ(nb.rx_queued(), 2u);
    rx.clear();  // pages back: posted, and the backend was told (feature-rx-notify)
    pump_data();
    EXPECT_EQ(rx.size(), 2u);
    EXPECT_EQ(nb.rx_queued(), 0u);
}

TEST_F(NetfrontTest, AnRxBufferOutlivesAReconnect) {
    make();
    connect();
    collect();
    nb.inject(make_frame(100, 9));
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    (void)run(nf->close());
    settle();
    EXPECT_EQ(flatten(rx[0]), make_frame(100, 9)) << "still readable while disconnected";
    connect();
    EXPECT_EQ(nb.rx_posted(), 255u);
    rx.clear();
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u) << "the page came back into the new connection's ring";
}

// ---- transmit ------------------------------------------------------------------------------------

TEST_F(NetfrontTest, TransmitsASingleSlotFrameFromFragments) {
    make();
    connect();
    const auto f = make_frame(1514, 10);
    const std::span<const std::byte> whole(f);
    const std::span<const std::byte> parts[] = {whole.first(14), whole.subspan(14, 20), {}, whole.subspan(34)};
    ASSERT_TRUE(nf->transmit(parts).ok());
    pump_data();
    ASSERT_EQ(nb.tx_frames().size(), 1u);
    EXPECT_EQ(nb.tx_frames()[0].data, f);
    EXPECT_EQ(nb.tx_frames()[0].slots, 1u);
    EXPECT_EQ(nb.tx_frames()[0].flags, 0);
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.packets, 1u);
    EXPECT_EQ(s.tx.bytes, 1514u);
}

TEST_F(NetfrontTest, TransmitsAMultiSlotFrame) {
    construct();
    d.set(std::string(FakeNetback::front) + "/mtu", "9000");
    ASSERT_TRUE(run(nf->init())->ok());
    connect();
    const auto f = make_frame(9018, 11);
    const std::span<const std::byte> whole(f);
    const std::span<const std::byte> parts[] = {whole.first(4000), whole.subspan(4000, 200), whole.subspan(4200)};
    ASSERT_TRUE(nf->transmit(parts, TxFlags::checksum_blank).ok());
    pump_data();
    ASSERT_EQ(nb.tx_frames().size(), 1u);
    EXPECT_EQ(nb.tx_frames()[0].data, f);
    EXPECT_EQ(nb.tx_frames()[0].slots, 3u);
    EXPECT_EQ(nb.tx_frames()[0].flags, NETTXF_csum_blank | NETTXF_data_validated | NETTXF_more_data);
    EXPECT_EQ(nf->stats().tx.packets, 1u);
    // All three pages came back.
    for (unsigned i = 0; i < 300; ++i) {
        ASSERT_TRUE(nf->transmit(parts).ok());
        pump_data();
    }
}

TEST_F(NetfrontTest, ChecksumBlankSetsBothFlags) {
    make();
    connect();
    ASSERT_TRUE(send(*nf, make_frame(60, 12), TxFlags::checksum_blank).ok());
    ASSERT_TRUE(send(*nf, make_frame(60, 13)).ok());
    pump_data();
    ASSERT_EQ(nb.tx_frames().size(), 2u);
    EXPECT_EQ(nb.tx_frames()[0].flags, NETTXF_csum_blank | NETTXF_data_validated);
    EXPECT_EQ(nb.tx_frames()[1].flags, 0);
}

TEST_F(NetfrontTest, TransmitRefusesWhatItCannotSend) {
    BackendFeatures f;
    f.no_csum_offload = true;
    f.sg = false;
    make(f);
    EXPECT_EQ(send(*nf, make_frame(60, 1)).error(), Error::closed) << "before the link is up";
    connect();
    EXPECT_EQ(send(*nf, make_frame(13, 1)).error(), Error::invalid_argument);
    EXPECT_EQ(send(*nf, make_frame(1519, 1)).error(), Error::invalid_argument);
    EXPECT_EQ(send(*nf, make_frame(60, 1), TxFlags::checksum_blank).error(), Error::not_supported);
    EXPECT_TRUE(send(*nf, make_frame(1518, 1)).ok());
    pump_data();
    EXPECT_EQ(nb.tx_frames().size(), 1u);
}

TEST_F(NetfrontTest, MultiSlotFramesNeedFeatureSg) {
    BackendFeatures f;
    f.sg = false;
    construct(f);
    d.set(std::string(FakeNetback::front) + "/mtu", "9000");
    ASSERT_TRUE(run(nf->init())->ok());
    connect();
    EXPECT_EQ(send(*nf, make_frame(5000, 1)).error(), Error::invalid_argument);
    EXPECT_TRUE(send(*nf, make_frame(4096, 1)).ok());
}

TEST_F(NetfrontTest, FullRingPushesBackThenSignalsReady) {
    make();
    connect();
    nb.hold_tx = true;
    int ready = 0;
    nf->set_tx_ready_handler([&] { ++ready; });
    const auto f = make_frame(200, 14);
    int sent = 0;
    Result<void> r;
    while ((r = send(*nf, f)).ok() && sent < 1000) {
        ++sent;
        pump_data();
    }
    EXPECT_EQ(sent, 256);
    EXPECT_EQ(r.error(), Error::again);
    EXPECT_EQ(send(*nf, f).error(), Error::again);
    EXPECT_EQ(nf->stats().tx_busy, 2u);
    EXPECT_EQ(ready, 0);
    pump_data();
    EXPECT_EQ(ready, 0);
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
    EXPECT_EQ(ready, 1) << "once, when space freed";
    EXPECT_EQ(nf->stats().tx.packets, 256u);
    EXPECT_TRUE(send(*nf, f).ok());
    pump_data();
    EXPECT_EQ(ready, 1);
    EXPECT_EQ(nb.tx_frames().size(), 257u);
}

TEST_F(NetfrontTest, TxReadyHandlerMayTransmit) {
    make();
    connect();
    nb.hold_tx = true;
    const auto f = make_frame(200, 15);
    while (send(*nf, f).ok()) pump_data();
    int resent = 0;
    nf->set_tx_ready_handler([&] {
        while (resent < 256 && send(*nf, f).ok()) ++resent;
    });
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
    EXPECT_EQ(resent, 256);
}

TEST_F(NetfrontTest, CloseAbortsFramesInFlight) {
    make();
    connect();
    nb.hold_tx = true;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(*nf, make_frame(100, i)).ok());
    pump_data();
    (void)run(nf->close());
    settle();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.aborted, 3u);
    EXPECT_EQ(s.tx.dropped, 3u);
    EXPECT_EQ(s.tx.packets, 0u);
    nb.hold_tx = false;
    connect();
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    EXPECT_EQ(nf->stats().tx.packets, 1u);
}

TEST_F(NetfrontTest, SplitChannelsCarryTheirOwnEvents) {
    BackendFeatures f;
    f.split_event_channels = true;
    make(f);
    connect();
    collect();
    nb.inject(make_frame(100, 1));
    ASSERT_TRUE(send(*nf, make_frame(100, 2)).ok());
    pump_data();
    EXPECT_EQ(rx.size(), 1u);
    EXPECT_EQ(nf->stats().tx.packets, 1u);
}

// ---- steady state --------------------------------------------------------------------------------

TEST_F(NetfrontTest, TenThousandPacketsEachWayAllocateNothing) {
    make();
    connect();
    nb.record_tx = false;
    std::uint64_t received = 0, rx_sum = 0;
    nf->set_receive_handler([&received, &rx_sum](RxBuffer b) {
        ++received;
        for (std::byte x : b.data()) rx_sum += static_cast<std::uint8_t>(x);
    });
    const auto f = make_frame(1514, 16);
    std::uint64_t frame_sum = 0;
    for (std::byte x : f) frame_sum += static_cast<std::uint8_t>(x);
    const std::span<const std::byte> whole(f);
    const std::span<const std::byte> parts[] = {whole.first(14), whole.subspan(14)};
    pump_data();

    std::size_t allocations = 0;
    {
        AllocationCounter counter;
        for (int i = 0; i < 10000; ++i) {
            nb.inject(f);
            if (!nf->transmit(parts).ok()) break;
            pump_data();
        }
        allocations = counter.count();
    }
    EXPECT_EQ(allocations, 0u);
    EXPECT_EQ(received, 10000u);
    EXPECT_EQ(rx_sum, 10000 * frame_sum);
    EXPECT_EQ(nb.tx_frames_seen, 10000u);
    EXPECT_EQ(nb.tx_sum, static_cast<std::uint32_t>(10000 * frame_sum));
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.packets, 10000u);
    EXPECT_EQ(s.tx.packets, 10000u);
    EXPECT_EQ(s.rx.dropped + s.tx.dropped, 0u);
}

TEST(AllocationCounter, SeesAllocations) {
    AllocationCounter counter;
    static int* volatile sink;
    sink = new int(3);
    delete sink;
    EXPECT_EQ(counter.count(), 1u);
}

TEST_F(NetfrontTest, WatchdogTakesRxResponsesWhoseEventWasLost) {
    make();
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    collect();
    nb.lose_rx_notify = true;
    for (unsigned i = 0; i < 3; ++i) nb.inject(make_frame(200, i));
    pump_data();
    EXPECT_TRUE(rx.empty()) << "no event, no poll";
    nf->check_rx();  // published after the last check: not yet a miss
    EXPECT_TRUE(rx.empty());
    EXPECT_EQ(nf->stats().rx_missed_events, 0u);
    ASSERT_TRUE(run_until([&] { return rx.size() == 3; })) << "the supervisor's next check takes them";
    EXPECT_EQ(nf->stats().rx_missed_events, 1u);
    EXPECT_TRUE(logged("3 rx responses waited without an event"));
    EXPECT_EQ(flatten(rx[2]), make_frame(200, 2));
    EXPECT_EQ(nb.violations(), 0);
}

TEST_F(NetfrontTest, WatchdogReportsAnRxRingWithNothingPosted) {
    netfront::Options o;
    o.rx_buffers = 4;
    make({}, o);
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    collect();
    for (unsigned i = 0; i < 4; ++i) nb.inject(make_frame(100, i));
    pump_data();
    ASSERT_EQ(rx.size(), 4u) << "the stack holds every page";
    nf->check_rx();
    EXPECT_EQ(nf->stats().rx_ring_empty, 1u);
    EXPECT_EQ(nf->stats().rx_missed_events, 0u);
    EXPECT_TRUE(logged("no rx buffer posted: 4 with the stack, 0 free"));
    rx.clear();
    pump_data();
    nf->check_rx();
    EXPECT_EQ(nf->stats().rx_ring_empty, 1u) << "posted again";
}

}  // namespace
}  // namespace keel::test
