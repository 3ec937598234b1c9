// A backend that breaks io/blkif.h: every bad response is counted and fails its call, the guest
// never crashes, persistent or ring-breaking errors reset the device, and a backend that goes
// away fails what was in flight with Error::closed.
#include <gtest/gtest.h>

#include <cstring>

#include "fakes/blkfront_rig.h"

namespace keel::test {
namespace {

using S = XenbusState;

using Fault = FakeBlkback::Fault;
using blkfront::Stats;

Task<void> store(Task<Result<void>> t, Error& out, int& done) {
    Result<void> r = co_await std::move(t);
    out = r.error();
    ++done;
}

struct InSync {
    Fault fault;
    std::uint64_t Stats::*counter;
    Error error;
};

class BadResponse : public BlkfrontTest, public ::testing::WithParamInterface<InSync> {};

TEST_P(BadResponse, IsCountedFailsItsCallAndTheNextCallWorks) {
    const InSync c = GetParam();
    make_connected();
    bb.disk()[0] = std::byte{0x11};
    bb.misbehave(c.fault);
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(io(bf->read(0, buf)), c.error);
    EXPECT_NE(buf[0], std::byte{0x11}) << "no data from a refused response";
    const Stats s = bf->stats();
    EXPECT_EQ(s.*(c.counter), 1u);
    EXPECT_EQ(s.errors, 1u);
    EXPECT_EQ(s.resets, 0u) << "one bad response is not yet a reason to reset";
    EXPECT_TRUE(bf->connected());
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
    EXPECT_EQ(buf[0], std::byte{0x11});
}

INSTANTIATE_TEST_SUITE_P(Faults, BadResponse,
                         ::testing::Values(InSync{Fault::bad_status, &Stats::bad_status, Error::protocol},
                                           InSync{Fault::eopnotsupp, &Stats::bad_status, Error::protocol},
                                           InSync{Fault::bad_operation, &Stats::bad_operation,
                                                  Error::protocol},
                                           InSync{Fault::status_error, &Stats::backend_error, Error::io}));

TEST_F(BlkfrontTest, PersistentProtocolErrorsResetTheDevice) {
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    std::vector<std::byte> buf(4096);
    // Seven in a row, one good answer, seven more: the run was broken, no reset.
    bb.misbehave(Fault::bad_status, 7);
    for (int i = 0; i < 7; ++i) EXPECT_EQ(io(bf->read(0, buf)), Error::protocol);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
    bb.misbehave(Fault::bad_operation, 7);
    for (int i = 0; i < 7; ++i) EXPECT_EQ(io(bf->read(0, buf)), Error::protocol);
    EXPECT_EQ(bf->stats().resets, 0u);
    // The eighth in a row resets.
    bb.misbehave(Fault::bad_status, 1);
    EXPECT_EQ(io(bf->read(0, buf)), Error::protocol);
    EXPECT_EQ(bf->stats().resets, 1u);
    EXPECT_FALSE(bf->connected());
    EXPECT_TRUE(logged("resetting the device: too many protocol errors in a row"));
    EXPECT_EQ(io(bf->read(0, buf)), Error::closed) << "while the device is being reset";
    // The supervisor closes (grants revoked) and connects again.
    ASSERT_TRUE(run_until([&] { return bf->connected() && bf->stats().connects == 2; }));
    EXPECT_EQ(bb.connections(), 2);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
}

struct SlotStealer {
    Fault fault;
    std::uint64_t Stats::*counter;
};

class StolenSlot : public BlkfrontTest, public ::testing::WithParamInterface<SlotStealer> {};

TEST_P(StolenSlot, ResetsAtOnceAndReconnects) {
    const SlotStealer c = GetParam();
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    std::vector<std::byte> buf(4096);
    ASSERT_EQ(io(bf->read(0, buf)), Error::ok);  // something answered before (for duplicate)
    bb.misbehave(c.fault);
    EXPECT_EQ(io(bf->read(8, buf)), Error::protocol);
    const Stats s = bf->stats();
    EXPECT_EQ(s.*(c.counter), 1u);
    EXPECT_EQ(s.lost, 1u);
    EXPECT_EQ(s.resets, 1u);
    EXPECT_TRUE(logged("responses lost"));
    ASSERT_TRUE(run_until([&] { return bf->connected() && bf->stats().connects == 2; }));
    EXPECT_EQ(io(bf->read(8, buf)), Error::ok);
}

INSTANTIATE_TEST_SUITE_P(Faults, StolenSlot,
                         ::testing::Values(SlotStealer{Fault::unknown_id, &Stats::unknown_id},
                                           SlotStealer{Fault::not_in_flight, &Stats::not_in_flight},
                                           SlotStealer{Fault::duplicate, &Stats::duplicate}));

TEST_F(BlkfrontTest, AWrongIdFailsTheCallWhoseAnswerItTook) {
    make_connected();
    bb.hold = true;
    Error r[4];
    int done = 0;
    std::vector<std::byte> bufs[4];
    for (int i = 0; i < 4; ++i) {
        bufs[i].resize(4096);
        spawn(store(bf->read(i * 8, bufs[i]), r[i], done));
    }
    settle();
    ASSERT_EQ(bb.held(), 4u);
    bb.misbehave(Fault::unknown_id, 1, 1);  // the second response carries a wrong id
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return done == 4; }));
    EXPECT_EQ(r[0], Error::ok);
    EXPECT_EQ(r[1], Error::protocol) << "its answer never came: the wrong id took its slot";
    EXPECT_EQ(r[2], Error::ok);
    EXPECT_EQ(r[3], Error::ok);
    EXPECT_EQ(bf->stats().unknown_id, 1u);
    EXPECT_EQ(bf->stats().lost, 1u);
    EXPECT_EQ(bf->stats().resets, 1u);
}

TEST_F(BlkfrontTest, ARspProdOverrunResetsAtOnce) {
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    std::vector<std::byte> buf(4096);
    bb.misbehave(Fault::rsp_prod_jump);
    EXPECT_EQ(io(bf->read(0, buf)), Error::protocol);
    EXPECT_EQ(bf->stats().ring_overrun, 1u);
    EXPECT_EQ(bf->stats().resets, 1u);
    ASSERT_TRUE(run_until([&] { return bf->connected() && bf->stats().connects == 2; }));
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
}

TEST_F(BlkfrontTest, BackendClosingMidFlightFailsCallsWithClosed) {
    blkfront::Options o;
    o.data_pages = 8;
    make_connected({}, o);
    bb.hold = true;
    Error r[3] = {Error::ok, Error::ok, Error::ok};
    int done = 0;
    std::vector<std::byte> a(4 * 4096), b(4 * 4096), c(4 * 4096);
    spawn(store(bf->read(0, a), r[0], done));
    spawn(store(bf->write(8, b), r[1], done));
    spawn(store(bf->write(16, c), r[2], done));  // no pages left: waits
    settle();
    ASSERT_EQ(bb.held(), 2u);
    bb.xenbus().set_state(S::closing);  // the backend is going away
    ASSERT_TRUE(run_until([&] { return done == 3; }));
    for (Error e : r) EXPECT_EQ(e, Error::closed);
    EXPECT_EQ(bf->stats().aborted, 3u);
    EXPECT_EQ(bf->stats().resets, 0u);
    settle();
    EXPECT_FALSE(bf->connected());
    EXPECT_EQ(bf->xenbus().state(), XenbusDevice::State::closed);
    EXPECT_EQ(grants.stats().in_use, 0u) << "everything revoked once the backend let go";
    EXPECT_EQ(io(bf->read(0, a)), Error::closed);
}

TEST_F(BlkfrontTest, CloseFailsCallsInFlight) {
    make_connected();
    bb.hold = true;
    Error r = Error::ok;
    int done = 0;
    std::vector<std::byte> a(4096);
    spawn(store(bf->read(0, a), r, done));
    settle();
    ASSERT_EQ(bb.held(), 1u);
    (void)run(bf->close());
    ASSERT_TRUE(run_until([&] { return done == 1; }));
    EXPECT_EQ(r, Error::closed);
    EXPECT_EQ(grants.stats().in_use, 0u);
}

TEST_F(BlkfrontTest, GrantsTheBackendKeepsAreKeptForItNotReplaced) {
    make_connected();
    std::vector<std::byte> buf = std::vector<std::byte>(4096, std::byte{1});
    ASSERT_EQ(io(bf->write(0, buf)), Error::ok);  // maps one data page persistently
    const std::size_t pages = platform.pages_outstanding();
    const std::size_t in_use = grants.stats().in_use;
    bb.keep_mapped = true;
    (void)run(bf->close());
    settle();
    EXPECT_EQ(bf->stats().held_pages, 1u) << "the data page";
    EXPECT_TRUE(logged("still maps the ring"));
    EXPECT_EQ(grants.stats().in_use, 5u) << "the ring's 4 pages and the data page stay granted";
    bb.keep_mapped = false;
    connect();  // the same backend: its ring and data page, as they are
    EXPECT_EQ(bf->stats().held_pages, 0u);
    EXPECT_EQ(platform.pages_outstanding(), pages) << "no replacement pages";
    EXPECT_EQ(grants.stats().in_use, in_use) << "no new references for what it still maps";
    ASSERT_EQ(io(bf->write(8, buf)), Error::ok);
    std::vector<std::byte> back(4096);
    ASSERT_EQ(io(bf->read(8, back)), Error::ok);
    EXPECT_EQ(back, buf);
}

// Issue 11: a backend that keeps its mappings across resets used to leak the ring and every
// page it had mapped at each reset, until the grant table was full and no disk reconnected.
TEST_F(BlkfrontTest, ManyResetsWithABackendThatKeepsItsMappingsStayBounded) {
    make_connected();
    bb.keep_mapped = true;
    const auto data = pattern(64 * 1024, 3);  // 16 pages: an indirect request
    std::vector<std::byte> back(data.size());
    ASSERT_EQ(io(bf->write(0, data)), Error::ok);
    const std::size_t pages = platform.pages_outstanding();
    std::size_t in_use = 0;
    for (int round = 0; round < 100; ++round) {
        (void)run(bf->close());
        settle();
        connect();
        ASSERT_EQ(io(bf->write(round % 8 * 128, data)), Error::ok) << "round " << round;
        ASSERT_EQ(io(bf->read(round % 8 * 128, back)), Error::ok);
        ASSERT_EQ(back, data);
        if (round == 0) in_use = grants.stats().in_use;
        ASSERT_EQ(grants.stats().in_use, in_use) << "round " << round;
        ASSERT_EQ(platform.pages_outstanding(), pages) << "round " << round;
    }
    bb.keep_mapped = false;  // lets go at the last close: nothing left behind
}

TEST_F(BlkfrontTest, EveryKindOfGarbageInTurnNeverHurtsTheGuest) {
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    std::vector<std::byte> buf(8 * 4096);
    // A duplicate needs an answer before it on the same connection: status_error gives one.
    const Fault faults[] = {Fault::bad_status,    Fault::unknown_id,   Fault::eopnotsupp,
                            Fault::not_in_flight, Fault::status_error, Fault::duplicate,
                            Fault::bad_operation, Fault::rsp_prod_jump};
    for (int round = 0; round < 3; ++round) {
        for (Fault f : faults) {
            ASSERT_TRUE(run_until([&] { return bf->connected(); }));
            bb.misbehave(f);
            EXPECT_NE(io(bf->read(16, buf)), Error::ok);
        }
    }
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    const auto data = pattern(buf.size(), 9);
    EXPECT_EQ(io(bf->write(16, data)), Error::ok);
    EXPECT_EQ(io(bf->read(16, buf)), Error::ok);
    EXPECT_EQ(buf, data);
    EXPECT_EQ(bf->stats().resets, 3u * 4) << "unknown, not in flight, duplicate, overrun: each round";
}

}  // namespace
}  // namespace keel::test
