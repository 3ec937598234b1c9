// Blkfront's init and xenbus handshake against the fake blkback: ring size, keys, features, the
// disk's properties, closing and reconnecting.
#include <gtest/gtest.h>

#include "fakes/blkfront_rig.h"

namespace keel::test {
namespace {

using S = XenbusState;

using blkfront::Blkfront;
using blkfront::FlushOp;

TEST_F(BlkfrontTest, InitAllocatesThePages) {
    Blkfront& b = make();
    // 4 ring pages (order 2), 256 data pages, 256 / 12 + 1 indirect pages.
    EXPECT_EQ(platform.pages_outstanding(), 4u + 256 + 22);
    EXPECT_FALSE(b.connected());
    EXPECT_EQ(b.geometry().sectors, 0u);
    EXPECT_EQ(b.name(), "device/vbd/51712");
    auto again = run(b.init());
    EXPECT_EQ(again->error(), Error::busy);
}

TEST_F(BlkfrontTest, CallsBeforeTheFirstConnectionSayClosed) {
    Blkfront& b = make();
    std::vector<std::byte> buf(512);
    EXPECT_EQ(io(b.read(0, buf)), Error::closed);
    EXPECT_EQ(io(b.write(0, buf)), Error::closed);
    EXPECT_EQ(io(b.flush()), Error::closed);
    EXPECT_EQ(io(b.discard(0, 1)), Error::closed);
    EXPECT_EQ(b.stats().errors, 4u);
}

TEST_F(BlkfrontTest, SinglePageRingWhenTheBackendOffersNoOrder) {
    DiskConfig c;
    c.max_ring_page_order = -1;
    make_connected(c);
    EXPECT_TRUE(key("ring-ref").has_value());
    EXPECT_FALSE(key("ring-page-order").has_value());
    EXPECT_FALSE(key("ring-ref0").has_value());
    EXPECT_EQ(bf->features().ring_page_order, 0u);
    EXPECT_EQ(bf->features().ring_slots, 32u);
    EXPECT_EQ(bb.ring_order(), 0u);
    EXPECT_EQ(key("protocol"), "x86_64-abi");
    EXPECT_EQ(key("feature-persistent"), "1");
    EXPECT_TRUE(key("event-channel").has_value());
    EXPECT_EQ(key("state"), state_value(S::connected));
    // blkback's convention: the keys go out with Initialised, Connected follows the backend's.
    EXPECT_EQ(bb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::initialised, S::connected}));
    EXPECT_TRUE(logged("connected: 2048 sectors of 512 bytes"));
}

TEST_F(BlkfrontTest, MultiPageRingUpToTheOptionsOrder) {
    DiskConfig c;
    c.max_ring_page_order = 3;  // the backend offers 8 pages; we want at most 4 (default)
    make_connected(c);
    EXPECT_EQ(key("ring-page-order"), "2");
    EXPECT_EQ(key("num-ring-pages"), "4");
    for (const char* k : {"ring-ref0", "ring-ref1", "ring-ref2", "ring-ref3"})
        EXPECT_TRUE(key(k).has_value()) << k;
    EXPECT_FALSE(key("ring-ref4").has_value());
    EXPECT_FALSE(key("ring-ref").has_value());
    EXPECT_EQ(bf->features().ring_slots, 128u);
    EXPECT_EQ(bb.ring_order(), 2u);
}

TEST_F(BlkfrontTest, MultiPageRingBelowTheOptionsOrder) {
    DiskConfig c;
    c.max_ring_page_order = 1;
    blkfront::Options o;
    o.max_ring_page_order = 4;
    make(c, o);
    EXPECT_EQ(platform.pages_outstanding(), 16u + 256 + 22);
    connect();
    EXPECT_EQ(key("ring-page-order"), "1");
    EXPECT_EQ(bb.ring_order(), 1u);
    EXPECT_EQ(bf->features().ring_slots, 64u);
}

TEST_F(BlkfrontTest, TheDeprecatedMaxRingPagesIsUnderstood) {
    DiskConfig c;
    c.max_ring_page_order = -1;
    c.max_ring_pages = 2;
    make_connected(c);
    EXPECT_EQ(key("ring-page-order"), "1");
    EXPECT_EQ(key("num-ring-pages"), "2");
    EXPECT_EQ(bb.ring_order(), 1u);
}

TEST_F(BlkfrontTest, AnAbsurdOrderIsCapped) {
    DiskConfig c;
    c.max_ring_page_order = 3;
    make(c);
    d.set("/local/domain/0/backend/vbd/7/51712/max-ring-page-order", "4000000000");
    connect();
    EXPECT_EQ(key("ring-page-order"), "2");
}

TEST_F(BlkfrontTest, PropertiesBecomeTheGeometry) {
    DiskConfig c;
    c.sectors512 = 4096;
    c.flush_cache = true;
    c.discard = true;
    make_connected(c);
    const auto& g = bf->geometry();
    EXPECT_EQ(g.sectors, 4096u);
    EXPECT_EQ(g.sector_size, 512u);
    EXPECT_FALSE(g.read_only);
    EXPECT_TRUE(g.flush);
    EXPECT_TRUE(g.discard);
    EXPECT_EQ(bf->features().flush, FlushOp::flush_diskcache);
}

TEST_F(BlkfrontTest, FourKilobyteSectors) {
    DiskConfig c;
    c.sectors512 = 2048;  // Linux's blkback counts 512-byte units whatever the sector size
    c.sector_size = 4096;
    make_connected(c);
    EXPECT_EQ(bf->geometry().sectors, 256u);
    EXPECT_EQ(bf->geometry().sector_size, 4096u);
}

TEST_F(BlkfrontTest, ReadOnlyBarrierOnlyNoDiscard) {
    DiskConfig c;
    c.info = VDISK_READONLY | VDISK_REMOVABLE;
    c.flush_cache = false;
    c.barrier = true;
    c.discard = false;
    make_connected(c);
    EXPECT_TRUE(bf->geometry().read_only);
    EXPECT_TRUE(bf->geometry().flush);
    EXPECT_FALSE(bf->geometry().discard);
    EXPECT_EQ(bf->features().flush, FlushOp::write_barrier);
    EXPECT_TRUE(logged("(read-only)"));
}

TEST_F(BlkfrontTest, NoFlushFeatureAtAll) {
    DiskConfig c;
    c.flush_cache = false;
    c.barrier = false;
    make_connected(c);
    EXPECT_FALSE(bf->geometry().flush);
    EXPECT_EQ(bf->features().flush, FlushOp::none);
}

TEST_F(BlkfrontTest, PersistentGrantsFollowTheBackend) {
    for (bool persistent : {true, false}) {
        bf.reset();
        DiskConfig c;
        c.persistent = persistent;
        make(c);
        connect();
        EXPECT_EQ(key("feature-persistent"), "1") << "published either way";
        EXPECT_EQ(bf->features().persistent, persistent);
        EXPECT_EQ(bb.persistent(), persistent);
        (void)run(bf->close());
        settle();
    }
}

TEST_F(BlkfrontTest, IndirectSegmentsNegotiated) {
    struct Case {
        unsigned offered;
        std::uint16_t wanted;
        bool indirect;
        std::uint16_t segments;
    };
    for (const Case k : {Case{256, 64, true, 64}, Case{32, 64, true, 32}, Case{0, 64, false, 11},
                         Case{256, 0, false, 11}, Case{8, 64, false, 11}}) {
        bf.reset();
        DiskConfig c;
        c.max_indirect_segments = k.offered;
        blkfront::Options o;
        o.max_indirect_segments = k.wanted;
        make(c, o);
        connect();
        EXPECT_EQ(bf->features().indirect, k.indirect) << k.offered << " " << k.wanted;
        EXPECT_EQ(bf->features().segments_per_request, k.segments) << k.offered << " " << k.wanted;
        (void)run(bf->close());
        settle();
    }
}

TEST_F(BlkfrontTest, ASmallPoolLimitsTheRequestSize) {
    blkfront::Options o;
    o.data_pages = 4;
    make_connected({}, o);
    EXPECT_FALSE(bf->features().indirect);
    EXPECT_EQ(bf->features().segments_per_request, 4u);
}

struct BadProperty {
    const char* name;
    DiskConfig config;
    Error expected;
};

class BadProperties : public BlkfrontTest, public ::testing::WithParamInterface<BadProperty> {};

TEST_P(BadProperties, ConnectFailsAndNothingStaysGranted) {
    make(GetParam().config);
    auto r = run(bf->connect());
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error(), GetParam().expected);
    settle();
    EXPECT_FALSE(bf->connected());
    EXPECT_EQ(bf->xenbus().state(), XenbusDevice::State::closed);
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(platform.open_channels(), 0u);
}

DiskConfig with_sectors(const char* text, bool omit = false) {
    DiskConfig c;
    c.sectors_text = text;
    c.omit_sectors = omit;
    return c;
}
DiskConfig with_sector_size(std::uint32_t size) {
    DiskConfig c;
    c.sector_size = size;
    return c;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadProperties,
    ::testing::Values(BadProperty{"no_sectors", with_sectors(nullptr, true), Error::bad_input},
                      BadProperty{"malformed_sectors", with_sectors("12x"), Error::bad_input},
                      BadProperty{"sector_size_1000", with_sector_size(1000), Error::bad_input},
                      BadProperty{"sector_size_256", with_sector_size(256), Error::bad_input},
                      BadProperty{"sector_size_8192", with_sector_size(8192), Error::not_supported}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(BlkfrontTest, MissingSectorSizeMeans512) {
    make_connected(with_sector_size(0));
    EXPECT_EQ(bf->geometry().sector_size, 512u);
}

TEST_F(BlkfrontTest, CloseRevokesEverything) {
    make_connected();
    EXPECT_GT(grants.stats().in_use, 256u);
    auto r = run(bf->close());
    ASSERT_TRUE(r && r->ok());
    settle();
    EXPECT_FALSE(bf->connected());
    EXPECT_FALSE(bb.connected());
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(platform.open_channels(), 0u);
    // ... and connects again.
    connect();
    EXPECT_EQ(bf->stats().connects, 2u);
    EXPECT_EQ(bb.connections(), 2);
}

TEST_F(BlkfrontTest, TheSupervisorReconnectsAfterTheBackendCloses) {
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    bb.xenbus().set_state(S::closing);  // an unplug, then the backend comes back
    ASSERT_TRUE(run_until([&] { return !bf->connected(); }));
    // The fake answers our Closed with Closed, and our Initialising with InitWait again.
    ASSERT_TRUE(run_until([&] { return bf->connected() && bf->stats().connects == 2; }));
    EXPECT_EQ(bb.connections(), 2);
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(io(bf->read(0, buf)), Error::ok);
}

// xl block-detach: the device is retired and gives back its ring and pools (before, a detached
// disk kept them for the guest's life); its calls fail with closed and it never connects again.
TEST_F(BlkfrontTest, ADetachedDiskGivesBackItsPages) {
    make();
    bf->start();
    ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(io(bf->write(0, buf)), Error::ok);
    EXPECT_GT(platform.pages_outstanding(), 0u);
    d.set("/local/domain/0/backend/vbd/7/51712/online", "0");  // libxl's detach
    bb.xenbus().set_state(S::closing);
    ASSERT_TRUE(run_until([&] { return bf->retired(); }));
    settle();
    EXPECT_EQ(platform.pages_outstanding(), 0u);
    EXPECT_EQ(io(bf->read(0, buf)), Error::closed);
    auto again = run(bf->connect());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->error(), Error::closed);
    EXPECT_EQ(bb.connections(), 1);
}

TEST_F(BlkfrontTest, ABackendThatNeverConnectsTimesOut) {
    make();
    bb.xenbus().set_behaviour(FakeXenbusBackend::Behaviour::never_connect);
    auto r = run(bf->connect());
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error(), Error::timed_out);
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u);
}

TEST_F(BlkfrontTest, AFailedChannelOpenLeavesNothingBehind) {
    make();
    platform.fail_channel_opens = 1;
    auto r = run(bf->connect());
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error(), Error::io);
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u);
    connect();  // the next attempt works
}

// Issue 11: a reconnect to another disk (sector size, size, flush) was accepted with a warning;
// a log written at the old offsets, or trusting a flush that does nothing, loses data.
struct DiskChange {
    const char* name;
    DiskConfig after;
};

class ReconnectToAnotherDisk : public BlkfrontTest, public ::testing::WithParamInterface<DiskChange> {};

TEST_P(ReconnectToAnotherDisk, FailsTheDeviceForGood) {
    make_connected();
    std::vector<std::byte> buf(4096, std::byte{7});
    ASSERT_EQ(io(bf->write(0, buf)), Error::ok);
    (void)run(bf->close());
    settle();
    bb.create(GetParam().after);
    auto r = run(bf->connect());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::io);
    EXPECT_TRUE(bf->failed());
    EXPECT_TRUE(logged("the disk changed across a reconnect"));
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(io(bf->write(0, buf)), Error::io);
    EXPECT_EQ(io(bf->read(0, buf)), Error::io);
    EXPECT_EQ(io(bf->flush()), Error::io);
    r = run(bf->connect());  // and it stays failed
    EXPECT_EQ(r->error(), Error::io);
    EXPECT_FALSE(bf->connected());
}

INSTANTIATE_TEST_SUITE_P(Changes, ReconnectToAnotherDisk,
                         ::testing::Values(DiskChange{"sector_size", {.sector_size = 4096}},
                                           DiskChange{"shrunk", {.sectors512 = 1024}},
                                           DiskChange{"flush_withdrawn", {.flush_cache = false}}),
                         [](const auto& p) { return std::string(p.param.name); });

TEST_F(BlkfrontTest, ADiskThatGrowsOrSwitchesToABarrierStaysInUse) {
    make_connected();
    (void)run(bf->close());
    settle();
    bb.create({.sectors512 = 4096, .flush_cache = false, .barrier = true});
    connect();
    EXPECT_FALSE(bf->failed());
    EXPECT_EQ(bf->geometry().sectors, 4096u);
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bb.barriers, 1u);
}

}  // namespace
}  // namespace keel::test
