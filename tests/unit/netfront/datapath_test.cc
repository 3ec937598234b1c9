// Netfront's data path against the fake netback: rx and tx, single and multi-slot, checksum
// flags, GSO both ways, back-pressure, and 10k packets without an allocation.
#include <gtest/gtest.h>

#include "fakes/netfront_rig.h"

namespace keel::test {
namespace {

using netfront::RxBuffer;
using netfront::TxFlags;
using Parts = std::vector<std::span<const std::byte>>;

Result<void> send(netfront::Netfront& n, const std::vector<std::byte>& f, TxFlags flags = TxFlags::none) {
    const std::span<const std::byte> parts[] = {f};
    return n.transmit(parts, flags);
}

Result<void> send_gso(netfront::Netfront& n, const std::vector<std::byte>& f, std::uint16_t mss,
                      TxFlags flags = TxFlags::checksum_blank) {
    const std::span<const std::byte> parts[] = {f};
    return n.transmit(parts, flags, mss);
}

constexpr std::uint16_t gso_first_flags = NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info;

// ---- receive -------------------------------------------------------------------------------------

TEST_F(NetfrontTest, ReceivesASingleSlotFrameWithoutACopy) {
    make_connected();
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
    make_connected();
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
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
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
    make_connected();
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
    make_connected();
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
    make_connected();
    nb.inject(make_frame(100, 6));
    pump_data();
    EXPECT_EQ(nf->stats().rx.no_handler, 1u);
    EXPECT_EQ(nf->stats().rx.dropped, 1u);
    EXPECT_EQ(nb.rx_posted(), 256u);
}

TEST_F(NetfrontTest, HandlerMayReplaceItselfAndBuffersMayMove) {
    make_connected();
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
    make_connected({}, o);
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
    make_connected();
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
    make_connected();
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
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
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
    make_connected();
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
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
    ASSERT_TRUE(run(nf->init())->ok());
    connect();
    EXPECT_EQ(send(*nf, make_frame(5000, 1)).error(), Error::invalid_argument);
    EXPECT_TRUE(send(*nf, make_frame(4096, 1)).ok());
}

TEST_F(NetfrontTest, FullRingPushesBackThenSignalsReady) {
    make_connected();
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

// A transmit response is worth an event only to a sender waiting for room: otherwise each would
// cost the backend a notification and the guest a wake-up (the backend here notifies by
// RING_PUSH_RESPONSES_AND_CHECK_NOTIFY, as Linux's netback does). With one channel for both
// rings, the only events are then the receive ones.
class NetfrontTxEventTest : public NetfrontTest {
protected:
    void only_while_a_sender_waits(bool split);
    void rx_event_looks_at_tx(bool split);
};

void NetfrontTxEventTest::only_while_a_sender_waits(bool split) {
    BackendFeatures features;
    features.split_event_channels = split;
    make_connected(features);
    netfront::Netfront& n = *nf;
    FakeChannel* tx = nb.tx_channel();
    ASSERT_NE(tx, nullptr);
    ASSERT_EQ(tx == nb.rx_channel(), !split);
    // A fresh ring asks for an event on its first response (rsp_event = 1, io/ring.h's
    // SHARED_RING_INIT, which the fake backend checks): that one comes.
    int ready = 0;
    n.set_tx_ready_handler([&] { ++ready; });
    ASSERT_TRUE(send(n, make_frame(200, 16)).ok());
    pump_data();
    int fired = tx->fired;
    // Four times round the pool and the ring, each frame answered at once: the pages come back
    // when transmit() runs short, never through an event.
    for (int i = 1; i < 1024; ++i) {
        ASSERT_TRUE(send(n, make_frame(200, 16)).ok()) << i;
        pump_data();
    }
    EXPECT_EQ(tx->fired, fired);
    EXPECT_EQ(nb.tx_frames().size(), 1024u);
    // A receive event takes back what was answered too (one event, on the shared channel).
    nb.inject(make_frame(80, 17));
    pump_data();
    EXPECT_EQ(tx->fired, fired + (split ? 0 : 1));
    fired = tx->fired;
    auto s = n.stats();
    EXPECT_EQ(s.tx.packets, 1024u);
    EXPECT_EQ(s.tx_busy, 0u);

    // A sender that finds no room asks for the event that tells it of room.
    nb.hold_tx = true;
    while (send(n, make_frame(200, 18)).ok()) pump_data();
    pump_data();
    EXPECT_EQ(tx->fired, fired);
    EXPECT_EQ(ready, 0);
    nb.hold_tx = false;
    nb.release_tx(1);
    pump_data();
    EXPECT_EQ(tx->fired, fired + 1);
    EXPECT_EQ(ready, 1);
    // Served: no more events asked for (the one armed by the last look may still come once).
    nb.release_tx();
    pump_data();
    const int after = tx->fired;
    for (int i = 0; i < 512; ++i) {
        ASSERT_TRUE(send(n, make_frame(200, 19)).ok()) << i;
        pump_data();
    }
    EXPECT_EQ(tx->fired, after) << "the event armed by the last look came with release_tx()";
    s = n.stats();
    EXPECT_EQ(s.tx.packets, 1024u + 256u + 512u);
    EXPECT_EQ(s.tx.dropped, 0u);
    EXPECT_EQ(s.tx_busy, 1u);
    EXPECT_EQ(s.resets, 0u);
}

TEST_F(NetfrontTxEventTest, OnOneChannel) { only_while_a_sender_waits(false); }

TEST_F(NetfrontTxEventTest, OnSplitChannels) { only_while_a_sender_waits(true); }

// The rx handler looks at the tx ring too: a bogus tx rsp_prod published without an event is
// found by the next rx event (stats(), which would find it as well, is called only after).
void NetfrontTxEventTest::rx_event_looks_at_tx(bool split) {
    BackendFeatures features;
    features.split_event_channels = split;
    make_connected(features);
    ASSERT_TRUE(send(*nf, make_frame(200, 20)).ok());
    pump_data();
    ASSERT_TRUE(nf->link_up());
    nb.jump_tx_silently();
    pump_data();
    EXPECT_TRUE(nf->link_up()) << "nothing looked yet";
    nb.rx_channel()->fire();  // an rx event (the jumped fake backend delivers no more frames)
    pump_data();
    EXPECT_FALSE(nf->link_up());
    EXPECT_EQ(nf->stats().tx.ring_overrun, 1u);
}

TEST_F(NetfrontTxEventTest, RxEventLooksAtTxOnOneChannel) { rx_event_looks_at_tx(false); }

TEST_F(NetfrontTxEventTest, RxEventLooksAtTxOnSplitChannels) { rx_event_looks_at_tx(true); }

TEST_F(NetfrontTest, TxReadyHandlerMayTransmit) {
    make_connected();
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

// Frames answered but not taken back yet when the connection ends (no tx event is asked for
// them) were sent; only the unanswered ones are aborted.
TEST_F(NetfrontTest, CloseAbortsFramesInFlight) {
    make_connected();
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(send(*nf, make_frame(100, 9)).ok());
        pump_data();
    }
    nb.hold_tx = true;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(*nf, make_frame(100, i)).ok());
    pump_data();
    (void)run(nf->close());
    settle();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.aborted, 3u);
    EXPECT_EQ(s.tx.dropped, 3u);
    EXPECT_EQ(s.tx.packets, 2u);
    nb.hold_tx = false;
    connect();
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    EXPECT_EQ(nf->stats().tx.packets, 3u);  // the counters run on across connections
}

TEST_F(NetfrontTest, SplitChannelsCarryTheirOwnEvents) {
    BackendFeatures f;
    f.split_event_channels = true;
    make_connected(f);
    collect();
    nb.inject(make_frame(100, 1));
    ASSERT_TRUE(send(*nf, make_frame(100, 2)).ok());
    pump_data();
    EXPECT_EQ(rx.size(), 1u);
    EXPECT_EQ(nf->stats().tx.packets, 1u);
}

// ---- GSO ----------------------------------------------------------------------------------------

TEST_F(NetfrontTest, ReceivesAGsoFrameOfManySlots) {
    make_connected();
    collect();
    const auto f = make_frame(66000, 20);  // 17 full pages' worth, as netback fills them
    nb.inject_gso(f, 1448);
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].segment_count(), 17u);
    EXPECT_EQ(rx[0].size(), 66000u);
    EXPECT_EQ(flatten(rx[0]), f);
    EXPECT_EQ(rx[0].flags().gso_size, 1448u);
    EXPECT_TRUE(rx[0].flags().checksum_blank);
    EXPECT_TRUE(rx[0].flags().data_validated);
    EXPECT_EQ(rx[0].data().data(), nb.last_rx_data);
    EXPECT_EQ(nb.rx_posted(), 256u - 17) << "the extra-info slot's page went straight back";
    rx.clear();
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u) << "every page back in the ring";
    // An ordinary frame after it has no gso_size.
    nb.inject(make_frame(100, 21));
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].flags().gso_size, 0u);
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.packets, 2u);
    EXPECT_EQ(s.rx.gso, 1u);
    EXPECT_EQ(s.rx.bytes, 66100u);
    EXPECT_EQ(s.rx.dropped, 0u);
}

TEST_F(NetfrontTest, ReceivesGsoFramesOfEverySizeAndMss) {
    make_connected();
    collect();
    // Single-slot to the protocol's limit (XEN_NETIF_NR_SLOTS_MIN pages), over and over, so the
    // ring wraps with extra-info slots at every position.
    const std::size_t sizes[] = {1000, 4096, 4097, 30000, 65536, XEN_NETIF_NR_SLOTS_MIN * 4096};
    std::size_t n = 0;
    for (int round = 0; round < 8; ++round) {
        for (std::size_t size : sizes) {
            const auto mss = static_cast<std::uint16_t>(536 + n);
            const auto f = make_frame(size, static_cast<unsigned>(n));
            nb.inject_gso(f, mss);
            pump_data();
            ASSERT_EQ(rx.size(), 1u) << size;
            EXPECT_EQ(flatten(rx[0]), f);
            EXPECT_EQ(rx[0].segment_count(), (size + 4095) / 4096);
            EXPECT_EQ(rx[0].flags().gso_size, mss);
            rx.clear();
            ++n;
        }
    }
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u);
    EXPECT_EQ(nf->stats().rx.gso, n);
    EXPECT_EQ(nf->stats().rx.dropped, 0u);
}

TEST_F(NetfrontTest, TransmitsA64KiBGsoFrameAndTheNullResponsesWrapTheRing) {
    make_connected();
    const auto f = make_frame(netfront::Netfront::max_gso_frame, 22);
    const std::span<const std::byte> whole(f);
    const std::span<const std::byte> parts[] = {whole.first(54), whole.subspan(54, 5000), whole.subspan(5054)};
    // 17 ring slots a frame (16 pages + the extra-info): 40 frames go round the ring 2.6 times.
    for (int i = 0; i < 40; ++i) {
        ASSERT_TRUE(nf->transmit(parts, TxFlags::checksum_blank, 1448).ok()) << i;
        pump_data();
        // And an ordinary frame between them, so the extra slots land everywhere.
        ASSERT_TRUE(send(*nf, make_frame(60, 23)).ok());
        pump_data();
    }
    ASSERT_EQ(nb.tx_frames().size(), 80u);
    const auto& g = nb.tx_frames()[0];
    EXPECT_EQ(g.data, f);
    EXPECT_EQ(g.slots, 16u);
    EXPECT_EQ(g.gso_size, 1448u);
    EXPECT_EQ(g.flags, gso_first_flags | NETTXF_more_data);
    EXPECT_EQ(nb.tx_frames()[78].data, f);
    EXPECT_EQ(nb.tx_frames()[78].gso_size, 1448u);
    EXPECT_EQ(nb.tx_frames()[1].gso_size, 0u);
    EXPECT_EQ(nb.tx_frames()[1].flags, 0);
    EXPECT_EQ(nb.tx_null_responses, 40u);
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.packets, 80u);
    EXPECT_EQ(s.tx.gso, 40u);
    EXPECT_EQ(s.tx.bytes, 40u * (netfront::Netfront::max_gso_frame + 60));
    EXPECT_EQ(s.tx.dropped, 0u);
    EXPECT_EQ(s.tx.bad_status + s.tx.bad_id, 0u);
    EXPECT_EQ(s.resets, 0u);
    EXPECT_TRUE(nf->link_up());
}

TEST_F(NetfrontTest, TransmitsSmallGsoFramesInOneSlot) {
    make_connected();
    const auto f = make_frame(3000, 24);  // two segments of 1448, in one page
    ASSERT_TRUE(send_gso(*nf, f, 1448).ok());
    pump_data();
    ASSERT_EQ(nb.tx_frames().size(), 1u);
    EXPECT_EQ(nb.tx_frames()[0].data, f);
    EXPECT_EQ(nb.tx_frames()[0].slots, 1u);
    EXPECT_EQ(nb.tx_frames()[0].flags, gso_first_flags);
    EXPECT_EQ(nb.tx_frames()[0].gso_size, 1448u);
    EXPECT_EQ(nf->stats().tx.gso, 1u);
}

TEST_F(NetfrontTest, TransmitRefusesGsoFramesItCannotSend) {
    make_connected();
    const auto big = make_frame(netfront::Netfront::max_gso_frame, 25);
    EXPECT_EQ(send_gso(*nf, big, 1448, TxFlags::none).error(), Error::invalid_argument)
        << "the backend must be told the checksum is blank";
    EXPECT_EQ(send_gso(*nf, make_frame(netfront::Netfront::max_gso_frame + 1, 25), 1448).error(),
              Error::invalid_argument)
        << "the first request's size has 16 bits";
    EXPECT_EQ(send_gso(*nf, make_frame(13, 25), 1448).error(), Error::invalid_argument);
    EXPECT_EQ(send(*nf, big, TxFlags::checksum_blank).error(), Error::invalid_argument)
        << "without gso_size the limit is max_frame()";
    EXPECT_TRUE(send_gso(*nf, big, 1448).ok());
    pump_data();
    EXPECT_EQ(nb.tx_frames().size(), 1u);
}

TEST_F(NetfrontTest, GsoNeedsTheBackendsOffer) {
    BackendFeatures f;
    f.gso_tcpv4 = false;
    make_connected(f);
    EXPECT_EQ(send_gso(*nf, make_frame(3000, 26), 1448).error(), Error::not_supported);
    EXPECT_EQ(send_gso(*nf, make_frame(3000, 26), 1448, TxFlags::none).error(), Error::invalid_argument);
    EXPECT_TRUE(send(*nf, make_frame(1514, 26), TxFlags::checksum_blank).ok());
    pump_data();
    EXPECT_EQ(nb.tx_frames().size(), 1u);
}

TEST_F(NetfrontTest, GsoNeedsATxPoolThatHoldsTheFrame) {
    netfront::Options o;
    o.tx_buffers = 8;
    make_connected({}, o);
    EXPECT_EQ(send_gso(*nf, make_frame(8 * 4096 + 1, 27), 1448).error(), Error::invalid_argument)
        << "9 pages can never fit in 8: not Error::again";
    EXPECT_TRUE(send_gso(*nf, make_frame(8 * 4096, 27), 1448).ok());
    pump_data();
    EXPECT_EQ(nb.tx_frames().size(), 1u);
}

TEST_F(NetfrontTest, GsoFramesPushBackCountingTheirExtraSlot) {
    make_connected();
    nb.hold_tx = true;
    int ready = 0;
    nf->set_tx_ready_handler([&] { ++ready; });
    // 15 pages + the extra-info: 16 ring slots a frame. 15 of them and one small frame leave 15
    // ring slots (and 30 pages) free: enough for the pages, one slot short for the frame.
    const auto big = make_frame(15 * 4096, 28);
    for (int i = 0; i < 15; ++i) {
        ASSERT_TRUE(send_gso(*nf, big, 1448).ok()) << i;
        pump_data();
    }
    ASSERT_TRUE(send(*nf, make_frame(60, 29)).ok());
    pump_data();
    EXPECT_EQ(send_gso(*nf, big, 1448).error(), Error::again);
    EXPECT_EQ(nf->stats().tx_busy, 1u);
    // The 15 free slots still take 15 one-page frames, and then nothing.
    for (int i = 0; i < 15; ++i) ASSERT_TRUE(send(*nf, make_frame(60, 29)).ok()) << i;
    EXPECT_EQ(send(*nf, make_frame(60, 29)).error(), Error::again);
    pump_data();
    EXPECT_EQ(ready, 0);
    EXPECT_EQ(nb.tx_held(), 256u) << "every ring slot answered late, NULL responses included";
    // The first GSO frame's first response, its NULL and 13 more: 15 slots and 28 pages free.
    nb.release_tx(15);
    pump_data();
    EXPECT_EQ(ready, 0) << "the refused GSO frame needs 16 ring slots";
    nb.release_tx(1);
    pump_data();
    EXPECT_EQ(ready, 1) << "once, when a GSO frame fits again";
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
    EXPECT_EQ(ready, 1);
    EXPECT_EQ(nf->stats().tx.packets, 31u);
    EXPECT_EQ(nf->stats().tx.gso, 15u);
    EXPECT_EQ(nf->stats().tx.bad_status, 0u);
    EXPECT_TRUE(send_gso(*nf, big, 1448).ok());
    pump_data();
    EXPECT_EQ(nb.tx_frames().size(), 32u);
    EXPECT_EQ(nb.tx_frames().back().gso_size, 1448u);
}

TEST_F(NetfrontTest, A64KiBGsoFrameWaitsForItsSeventeenthSlot) {
    make_connected();
    nb.hold_tx = true;
    const auto big = make_frame(netfront::Netfront::max_gso_frame, 33);
    int sent = 0;
    Result<void> r;
    while ((r = send_gso(*nf, big, 1448)).ok() && sent < 100) {
        ++sent;
        pump_data();
    }
    // The 256 pages would take 16 such frames; the ring takes 15 (17 slots each, 255 in all).
    EXPECT_EQ(sent, 15);
    EXPECT_EQ(r.error(), Error::again);
    EXPECT_TRUE(send(*nf, make_frame(60, 34)).ok()) << "the last slot";
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
    EXPECT_EQ(nf->stats().tx.gso, 15u);
    EXPECT_TRUE(send_gso(*nf, big, 1448).ok());
}

TEST_F(NetfrontTest, TxReadyHandlerMayTransmitGsoFrames) {
    make_connected();
    nb.hold_tx = true;
    const auto big = make_frame(40000, 30);
    while (send_gso(*nf, big, 1460).ok()) pump_data();
    int resent = 0;
    nf->set_tx_ready_handler([&] {
        while (resent < 20 && send_gso(*nf, big, 1460).ok()) ++resent;
    });
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
    EXPECT_GT(resent, 0);
    EXPECT_EQ(nf->stats().tx.bad_status, 0u);
    EXPECT_EQ(nf->stats().resets, 0u);
}

// ---- steady state --------------------------------------------------------------------------------

TEST_F(NetfrontTest, TenThousandPacketsEachWayAllocateNothing) {
    make_connected();
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

TEST_F(NetfrontTest, GsoFramesEachWayAllocateNothing) {
    make_connected();
    nb.record_tx = false;
    std::uint64_t received = 0, rx_sum = 0, rx_gso = 0;
    nf->set_receive_handler([&](RxBuffer b) {
        ++received;
        rx_gso += b.flags().gso_size;
        for (std::size_t i = 0; i < b.segment_count(); ++i) {
            for (std::byte x : b.segment(i)) rx_sum += static_cast<std::uint8_t>(x);
        }
    });
    const auto big = make_frame(netfront::Netfront::max_gso_frame, 31);
    const auto small = make_frame(1514, 32);
    std::uint64_t big_sum = 0, small_sum = 0;
    for (std::byte x : big) big_sum += static_cast<std::uint8_t>(x);
    for (std::byte x : small) small_sum += static_cast<std::uint8_t>(x);
    const std::span<const std::byte> big_parts[] = {big};
    const std::span<const std::byte> small_parts[] = {small};
    pump_data();

    std::size_t allocations = 0;
    {
        AllocationCounter counter;
        for (int i = 0; i < 1000; ++i) {
            nb.inject_gso(big, 1448);
            nb.inject(small);
            if (!nf->transmit(big_parts, TxFlags::checksum_blank, 1448).ok()) break;
            if (!nf->transmit(small_parts).ok()) break;
            pump_data();
        }
        allocations = counter.count();
    }
    EXPECT_EQ(allocations, 0u);
    EXPECT_EQ(received, 2000u);
    EXPECT_EQ(rx_gso, 1000u * 1448);
    EXPECT_EQ(rx_sum, 1000 * (big_sum + small_sum));
    EXPECT_EQ(nb.tx_frames_seen, 2000u);
    EXPECT_EQ(nb.tx_gso_frames_seen, 1000u);
    EXPECT_EQ(nb.tx_sum, static_cast<std::uint32_t>(1000 * (big_sum + small_sum)));
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.gso, 1000u);
    EXPECT_EQ(s.tx.gso, 1000u);
    EXPECT_EQ(s.rx.packets + s.tx.packets, 4000u);
    EXPECT_EQ(s.rx.dropped + s.tx.dropped, 0u);
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
