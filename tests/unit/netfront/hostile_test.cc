// A backend that breaks io/netif.h: every bad response is counted and its frame dropped, the
// guest never crashes, and persistent or fatal errors reset the device.
#include <gtest/gtest.h>

#include <algorithm>

#include "fakes/netfront_rig.h"

namespace keel::test {
namespace {

using S = XenbusState;

using Fault = FakeNetback::Fault;
using netfront::DirectionStats;

Result<void> send(netfront::Netfront& n, const std::vector<std::byte>& f) {
    const std::span<const std::byte> parts[] = {f};
    return n.transmit(parts);
}

struct RxCase {
    Fault fault;
    std::uint64_t DirectionStats::*counter;
    bool protocol_error;
    bool rx_gso = true;  ///< Options::rx_gso
};

class HostileRx : public NetfrontTest, public ::testing::WithParamInterface<RxCase> {};

TEST_P(HostileRx, BadFrameIsDroppedAndCountedTheNextOneArrives) {
    const RxCase c = GetParam();
    netfront::Options o;
    o.rx_gso = c.rx_gso;
    make_connected({}, o);
    collect();
    nb.misbehave_rx(c.fault);
    nb.inject(make_frame(300, 1));
    nb.inject(make_frame(300, 2));
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(flatten(rx[0]), make_frame(300, 2));
    EXPECT_EQ(rx[0].flags().gso_size, 0u);
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.*(c.counter), 1u);
    EXPECT_EQ(s.rx.dropped, 1u);
    EXPECT_EQ(s.rx.packets, 1u);
    EXPECT_EQ(s.rx.gso, 0u);
    EXPECT_EQ(s.resets, 0u);
    EXPECT_TRUE(nf->link_up());
    if (c.rx_gso) {
        // GSO frames still flow after the bad one.
        nb.inject_gso(make_frame(20000, 3), 1448);
        pump_data();
        ASSERT_EQ(rx.size(), 2u);
        EXPECT_EQ(rx[1].flags().gso_size, 1448u);
        EXPECT_EQ(flatten(rx[1]), make_frame(20000, 3));
    }
    rx.clear();
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u) << "every page of the bad frame went back into the ring";
}

INSTANTIATE_TEST_SUITE_P(
    Faults, HostileRx,
    ::testing::Values(RxCase{Fault::bad_id, &DirectionStats::bad_id, true},
                      RxCase{Fault::bad_status, &DirectionStats::bad_status, true},
                      RxCase{Fault::status_error, &DirectionStats::backend_error, false},
                      RxCase{Fault::status_dropped, &DirectionStats::backend_dropped, false},
                      RxCase{Fault::bad_length, &DirectionStats::bad_length, true},
                      RxCase{Fault::zero_length, &DirectionStats::bad_length, true},
                      RxCase{Fault::too_many_slots, &DirectionStats::too_many_slots, true},
                      // A well-formed GSO extra-info, but we did not write feature-gso-tcpv4.
                      RxCase{Fault::extra_info, &DirectionStats::bad_extra, true, false},
                      RxCase{Fault::extra_unknown, &DirectionStats::bad_extra, true},
                      RxCase{Fault::gso_zero_size, &DirectionStats::bad_extra, true},
                      RxCase{Fault::gso_tcpv6, &DirectionStats::bad_extra, true},
                      RxCase{Fault::gso_twice, &DirectionStats::bad_extra, true},
                      RxCase{Fault::gso_late, &DirectionStats::bad_extra, true}));

struct TxCase {
    Fault fault;
    std::uint64_t DirectionStats::*counter;
};

class HostileTx : public NetfrontTest, public ::testing::WithParamInterface<TxCase> {};

TEST_P(HostileTx, FailedFrameIsCountedTheRingKeepsGoing) {
    const TxCase c = GetParam();
    make_connected();
    nb.misbehave_tx(c.fault);
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    ASSERT_TRUE(send(*nf, make_frame(100, 2)).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.*(c.counter), 1u);
    EXPECT_EQ(s.tx.dropped, 1u);
    EXPECT_EQ(s.tx.packets, 1u);
    EXPECT_EQ(s.resets, 0u);
    for (int i = 0; i < 600; ++i) {
        ASSERT_TRUE(send(*nf, make_frame(100, 3)).ok()) << i;
        pump_data();
    }
}

INSTANTIATE_TEST_SUITE_P(Faults, HostileTx,
                         ::testing::Values(TxCase{Fault::bad_status, &DirectionStats::bad_status},
                                           TxCase{Fault::status_error, &DirectionStats::backend_error},
                                           TxCase{Fault::status_dropped, &DirectionStats::backend_dropped}));

TEST_F(NetfrontTest, UnknownTxIdLosesAPageAndResets) {
    make_connected();
    nb.misbehave_tx(Fault::bad_id);
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.bad_id, 1u);
    EXPECT_EQ(s.resets, 1u) << "the real response can never come: the page is lost until a reset";
    EXPECT_FALSE(nf->link_up());
    EXPECT_EQ(send(*nf, make_frame(100, 1)).error(), Error::closed);
}

TEST_F(NetfrontTest, SpuriousNullTxResponseIsABadStatus) {
    make_connected();
    nb.misbehave_tx(Fault::null_status);  // a frame's only response says NETIF_RSP_NULL
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.bad_status, 1u) << "no extra-info was sent: nothing to answer with NULL";
    EXPECT_EQ(s.tx.packets, 0u);
    EXPECT_EQ(s.resets, 1u) << "its id is not looked at, so the frame's page never comes back";
}

TEST_F(NetfrontTest, NullResponsesBeyondTheExtrasSentAreBadStatuses) {
    make_connected();
    // A GSO frame: its first response, the NULL for its extra-info, then a data slot answered
    // NULL as well -- one NULL more than extras sent.
    nb.misbehave_tx(Fault::null_status, 1, 1);
    const auto f = make_frame(10000, 1);
    const std::span<const std::byte> parts[] = {f};
    ASSERT_TRUE(nf->transmit(parts, netfront::TxFlags::checksum_blank, 1448).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.bad_status, 1u);
    EXPECT_EQ(s.tx.gso, 0u);
    EXPECT_EQ(s.resets, 1u);
}

TEST_F(NetfrontTest, AnExtraInfoSlotAnsweredLikeARequestResets) {
    make_connected();
    nb.okay_for_null = true;  // OKAY under the frame's own id instead of NETIF_RSP_NULL
    const auto f = make_frame(3000, 1);
    const std::span<const std::byte> parts[] = {f};
    ASSERT_TRUE(nf->transmit(parts, netfront::TxFlags::checksum_blank, 1448).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.packets, 1u);
    EXPECT_EQ(s.tx.bad_id, 1u) << "the id was answered already";
    EXPECT_EQ(s.resets, 1u) << "every slot answered, yet the extra-info never was";
}

TEST_F(NetfrontTest, GsoTxFramesKeepGoingThroughFailedResponses) {
    make_connected();
    nb.misbehave_tx(Fault::status_error);  // the first GSO frame's first response
    const auto f = make_frame(20000, 1);
    const std::span<const std::byte> parts[] = {f};
    for (int i = 0; i < 40; ++i) {
        ASSERT_TRUE(nf->transmit(parts, netfront::TxFlags::checksum_blank, 1448).ok()) << i;
        pump_data();
    }
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.backend_error, 1u);
    EXPECT_EQ(s.tx.dropped, 1u);
    EXPECT_EQ(s.tx.gso, 39u);
    EXPECT_EQ(s.tx.bad_status, 0u);
    EXPECT_EQ(s.resets, 0u);
}

TEST_F(NetfrontTest, DuplicateTxResponseIsRefused) {
    make_connected();
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    nb.misbehave_tx(Fault::duplicate);
    ASSERT_TRUE(send(*nf, make_frame(100, 2)).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.packets, 1u);
    EXPECT_EQ(s.tx.bad_id, 1u);
    EXPECT_EQ(s.resets, 1u);
}

TEST_F(NetfrontTest, DuplicateResponseForAFramesFirstSlotIsRefused) {
    construct();
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
    ASSERT_TRUE(run(nf->init())->ok());
    connect();
    nb.misbehave_tx(Fault::duplicate, 1, 1);  // the second response repeats the first's id
    const auto f = make_frame(9000, 1);
    const std::span<const std::byte> parts[] = {f};
    ASSERT_TRUE(nf->transmit(parts).ok());
    pump_data();
    const auto s = nf->stats();
    EXPECT_EQ(s.tx.bad_id, 1u);
    EXPECT_EQ(s.tx.packets, 0u);
    EXPECT_EQ(s.resets, 1u) << "the slot whose response was replaced never comes back";
}

TEST_F(NetfrontTest, AFrameLongerThanThePostedBuffersIsDropped) {
    netfront::Options o;
    o.rx_buffers = 4;
    make_connected({}, o);
    collect();
    nb.misbehave_rx(Fault::endless_frame);
    nb.inject(make_frame(60, 1));  // spread over every buffer, never finished
    pump_data();
    EXPECT_EQ(nf->stats().rx.too_many_slots, 1u);
    nb.inject(make_frame(60, 2));  // taken for the tail of the endless frame: dropped with it
    nb.inject(make_frame(60, 3));
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(flatten(rx[0]), make_frame(60, 3));
    EXPECT_TRUE(nf->link_up());
}

TEST_F(NetfrontTest, TxRspProdJumpResetsAtOnce) {
    make_connected();
    nb.misbehave_tx(Fault::rsp_prod_jump);
    ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
    pump_data();
    EXPECT_EQ(nf->stats().tx.ring_overrun, 1u);
    EXPECT_EQ(nf->stats().resets, 1u);
    EXPECT_FALSE(nf->link_up());
    EXPECT_TRUE(logged("resetting the device"));
}

TEST_F(NetfrontTest, RxRspProdJumpResetsAtOnce) {
    make_connected();
    collect();
    nb.misbehave_rx(Fault::rsp_prod_jump);
    nb.inject(make_frame(100, 1));
    pump_data();
    EXPECT_EQ(nf->stats().rx.ring_overrun, 1u);
    EXPECT_EQ(nf->stats().resets, 1u);
    EXPECT_TRUE(rx.empty());
    // Nothing more is read from the rings until the reset.
    nb.inject(make_frame(100, 2));
    pump_data();
    EXPECT_TRUE(rx.empty());
}

TEST_F(NetfrontTest, ErrorsInARowResetGoodFramesBetweenDoNot) {
    make_connected();
    collect();
    auto bad = [&](int n) {
        nb.misbehave_rx(Fault::bad_status, n);
        for (int i = 0; i < n; ++i) {
            nb.inject(make_frame(60, 1));
            pump_data();
        }
    };
    bad(15);
    nb.inject(make_frame(60, 2));
    pump_data();
    bad(15);
    EXPECT_EQ(nf->stats().resets, 0u);
    EXPECT_TRUE(nf->link_up());
    nb.inject(make_frame(60, 3));
    pump_data();
    bad(16);
    EXPECT_EQ(nf->stats().resets, 1u);
    EXPECT_FALSE(nf->link_up());
    EXPECT_EQ(nf->stats().rx.bad_status, 46u);
    EXPECT_EQ(rx.size(), 2u);
}

TEST_F(NetfrontTest, PersistentErrorsResetTheDeviceThroughXenbus) {
    make();
    collect();
    std::vector<bool> link;
    nf->set_link_handler([&link](bool up) { link.push_back(up); });
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    nb.misbehave_rx(Fault::bad_id, 16);
    for (int i = 0; i < 16; ++i) {
        nb.inject(make_frame(60, 1));
        (void)pump();
    }
    ASSERT_TRUE(run_until([&] { return !nf->link_up(); }));
    EXPECT_EQ(nf->stats().resets, 1u);
    // Closed through xenbus (the fake checks every grant was revoked), then connected again.
    ASSERT_TRUE(run_until([&] { return nf->link_up() && nf->stats().connects == 2; }));
    EXPECT_EQ(nb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::connected, S::closing, S::closed, S::initialising, S::connected}));
    EXPECT_EQ(nb.connections(), 2);
    EXPECT_EQ(link, (std::vector<bool>{true, false, true}));
    // And it works.
    nb.inject(make_frame(80, 2));
    settle();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(flatten(rx[0]), make_frame(80, 2));
    EXPECT_TRUE(send(*nf, make_frame(80, 3)).ok());
    settle();
    EXPECT_EQ(nf->stats().tx.packets, 1u);
}

TEST_F(NetfrontTest, AMisbehavingBackendIsResetAgainAndAgainWithBackoff) {
    make();
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    const std::uint64_t start = loop.now();
    for (int round = 0; round < 4; ++round) {
        nb.misbehave_tx(Fault::rsp_prod_jump);
        ASSERT_TRUE(send(*nf, make_frame(100, 1)).ok());
        ASSERT_TRUE(run_until([&] { return !nf->link_up(); }));
        ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    }
    EXPECT_EQ(nf->stats().resets, 4u);
    // 100 + 200 + 400 + 800 ms of back-off at least.
    EXPECT_GE(loop.now() - start, ms(1500));
}


// ---- issue 11: re-entrancy, rx pages the backend can still change, reset storms -----------

TEST_F(NetfrontTest, AResetFoundInsideTransmitRunsTheLinkHandlerFromTheLoop) {
    make_connected();
    bool in_transmit = false, reentered = false;
    std::vector<bool> link;
    nf->set_link_handler([&](bool up) {
        if (in_transmit) reentered = true;
        link.push_back(up);
    });
    auto transmit = [&](unsigned seed) {
        in_transmit = true;
        const Result<void> r = send(*nf, make_frame(100, seed));
        in_transmit = false;
        return r;
    };
    // The backend lets the tx ring fill, then publishes a bogus rsp_prod without an event:
    // transmit() finds it when it looks for room.
    nb.hold_tx = true;
    Result<void> r;
    for (unsigned i = 0; (r = transmit(i)).ok(); ++i) pump_data();
    ASSERT_EQ(r.error(), Error::again);
    nb.jump_tx_silently();
    EXPECT_EQ(transmit(1).error(), Error::closed);
    EXPECT_FALSE(reentered) << "the link handler ran inside transmit()";
    EXPECT_TRUE(link.empty());
    EXPECT_FALSE(nf->link_up());
    settle();
    EXPECT_EQ(link, std::vector<bool>{false}) << "from the loop, once";
    EXPECT_EQ(nf->stats().tx.ring_overrun, 1u);
}

TEST_F(NetfrontTest, ADeviceDestroyedWithItsResetPendingRunsNothingLater) {
    make_connected();
    int calls = 0;
    nf->set_link_handler([&](bool) { ++calls; });
    nb.jump_tx_silently();
    nf->on_tx_event();  // finds the overrun: the link goes down from the loop, later
    EXPECT_EQ(calls, 0);
    nb.disconnect();
    nf.reset();
    settle();  // the deferred go_down went with the device (ASan would see it run on freed memory)
    EXPECT_EQ(calls, 0);
}

TEST_F(NetfrontTest, TheStackReadsRxPagesTheBackendCanNoLongerWrite) {
    make_connected();
    std::vector<bool> granted;
    nf->set_receive_handler([&](netfront::RxBuffer b) {
        const grant_entry_v1_t e = entries[nb.last_rx_ref];
        granted.push_back((e.flags & GTF_type_mask) == GTF_permit_access);
        rx.push_back(std::move(b));
    });
    nb.inject(make_frame(300, 1));
    pump_data();
    nb.inject_gso(make_frame(20000, 2), 1448);
    pump_data();
    ASSERT_EQ(rx.size(), 2u);
    EXPECT_EQ(granted, (std::vector<bool>{false, false})) << "grant ended before the frame went up";
    EXPECT_EQ(flatten(rx[1]), make_frame(20000, 2));
    rx.clear();
    pump_data();
    EXPECT_EQ(nb.rx_posted(), 256u) << "granted again when posted again";
    nb.inject(make_frame(300, 3));
    collect();
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
}

TEST_F(NetfrontTest, ABackendStillMappingAnRxPageGetsNothingParsedAndAReset) {
    make_connected();
    collect();
    nb.map_rx_pages = true;
    nb.inject(make_frame(300, 1));
    pump_data();
    // Its late write (after the guest looked at the frame) lands, but in a page nobody parses.
    EXPECT_TRUE(nb.late_write(std::byte{0x42}));
    EXPECT_TRUE(rx.empty()) << "a frame the backend can still change was handed up";
    const auto s = nf->stats();
    EXPECT_EQ(s.rx.still_mapped, 1u);
    EXPECT_EQ(s.rx.packets, 0u);
    EXPECT_EQ(s.resets, 1u);
    EXPECT_EQ(s.held_pages, 1u);
    EXPECT_FALSE(nf->link_up());
}

TEST_F(NetfrontTest, ABackendKeepingItsMappingsAcrossResetsPinsNoMoreThenIsGivenUp) {
    netfront::Options o;
    o.frontend.max_resets = 50;
    make({}, o);
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    const std::size_t pages = platform.pages_outstanding();
    const std::size_t grants_connected = grants.stats().in_use;
    nb.map_rx_pages = true;
    nb.keep_rx_mapped = true;  // every page it ever mapped, for good
    std::size_t max_grants = 0, max_pages = 0;
    for (unsigned round = 0; nf->supervising(); ++round) {
        ASSERT_LT(round, 60u);
        ASSERT_TRUE(run_until([&] { return nf->link_up() || !nf->supervising(); }));
        if (!nf->supervising()) break;
        nb.inject(make_frame(100, round));
        ASSERT_TRUE(run_until([&] { return !nf->link_up(); }));
        max_grants = std::max(max_grants, grants.stats().in_use);
        max_pages = std::max(max_pages, platform.pages_outstanding());
    }
    const auto s = nf->stats();
    EXPECT_EQ(s.resets, 50u);
    EXPECT_EQ(s.given_up, 1u);
    EXPECT_EQ(s.held_pages, 50u) << "one page a reset, kept out of use";
    EXPECT_EQ(max_pages, pages) << "no page allocated to replace a held one";
    EXPECT_LE(max_grants, grants_connected) << "held pages keep their grant instead of leaking it";
    EXPECT_EQ(grants.stats().leaked, 0u);
    int lines = 0;
    for (const auto& l : log.lines) lines += l.find("giving up on the device: 50 resets within") != std::string::npos;
    EXPECT_EQ(lines, 1);
    nb.let_go();  // at last: the device gives everything back (checked by the rig)
}

TEST_F(NetfrontTest, ABackendKeepingTheRingsPinsABoundedNumberOfThem) {
    netfront::Options o;
    o.frontend.max_connect_failures = 3;
    make({}, o);
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    const std::size_t pages = platform.pages_outstanding();
    nb.keep_rings_mapped = true;
    for (unsigned round = 0; nf->supervising(); ++round) {
        ASSERT_LT(round, 20u);
        ASSERT_TRUE(run_until([&] { return nf->link_up() || !nf->supervising(); }));
        if (!nf->supervising()) break;
        nb.jump_tx_silently();
        nf->on_tx_event();
        ASSERT_TRUE(run_until([&] { return !nf->link_up(); }));
    }
    const auto s = nf->stats();
    EXPECT_EQ(s.resets, netfront::Netfront::max_held_rings);
    EXPECT_EQ(s.held_pages, 2 * netfront::Netfront::max_held_rings);
    EXPECT_EQ(s.given_up, 1u);
    EXPECT_GT(pages, 2 * netfront::Netfront::max_held_rings);
    EXPECT_EQ(platform.pages_outstanding(), 2 * netfront::Netfront::max_held_rings)
        << "given up: the pools are given back, only the ring pairs the backend maps stay";
    EXPECT_EQ(grants.stats().leaked, 0u);
    EXPECT_TRUE(logged("old ring pairs; not connecting"));
    EXPECT_TRUE(logged("giving up after 3 failed handshakes"));
    nb.let_go();
}

}  // namespace
}  // namespace keel::test
