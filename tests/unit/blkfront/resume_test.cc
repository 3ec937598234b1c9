// Suspend and resume (docs/lifecycle.md): before a suspend blkfront takes the answers to its
// requests in flight (bounded); after a resume in a new domain every call waits for the new
// backend, and a call the resume interrupted runs again there, whole. The caller sees no error;
// a new backend that never comes fails the call after Options::resume_wait_ns.
#include <gtest/gtest.h>

#include <cstring>

#include "fakes/blkfront_rig.h"

namespace keel::test {
namespace {

Task<void> store(Task<Result<void>> t, Error& out, int& done) {
    Result<void> r = co_await std::move(t);
    out = r.error();
    ++done;
}

bool holds(const std::vector<std::byte>& disk, std::size_t at, const std::vector<std::byte>& data) {
    return disk.size() >= at + data.size() && std::memcmp(disk.data() + at, data.data(), data.size()) == 0;
}

class BlkfrontResume : public BlkfrontTest {
protected:
    void start(blkfront::Options o = {}) {
        make({}, o);
        bf->start();
        ASSERT_TRUE(run_until([&] { return bf->connected(); }));
    }
    /// A write the backend holds (mapped, unanswered): its outcome lands in `result`, `done`.
    void held_write(std::uint64_t sector, const std::vector<std::byte>& data) {
        bb.hold = true;
        spawn(store(bf->write(sector, data), result, done));
        settle();
        ASSERT_EQ(bb.held(), 1u);
    }
    Error result = Error::busy;
    int done = 0;
};

// Before: the write failed with Error::closed (kvstore then refuses every write for good).
TEST_F(BlkfrontResume, AWriteInFlightRunsAgainOnTheNewBackend) {
    start();
    const auto data = pattern(3 * 4096, 1);
    held_write(8, data);
    FakeBlkback& moved = move_to_new_domain();
    EXPECT_EQ(xenbus::Frontend::resume_all_in_new_domain(), 1u);
    ASSERT_TRUE(run_until([&] { return done == 1; }));
    EXPECT_EQ(result, Error::ok);
    EXPECT_TRUE(holds(moved.disk(), 8 * 512, data));
    EXPECT_EQ(bf->stats().reissued, 1u);
    EXPECT_EQ(bf->stats().errors, 0u);
    EXPECT_EQ(bf->stats().connects, 2u);
    EXPECT_FALSE(bf->resuming());
}

// A call that waits for ring room when the resume comes runs too, after the one in flight.
TEST_F(BlkfrontResume, ACallWaitingForRoomRunsOnTheNewBackend) {
    blkfront::Options o;
    o.data_pages = 4;
    start(o);
    const auto a = pattern(4 * 4096, 2), b = pattern(4 * 4096, 3);
    Error second = Error::busy;
    spawn(store(bf->write(64, b), second, done));  // no pages left once the first is out: waits
    held_write(0, a);
    FakeBlkback& moved = move_to_new_domain();
    xenbus::Frontend::resume_all_in_new_domain();
    ASSERT_TRUE(run_until([&] { return done == 2; }));
    EXPECT_EQ(result, Error::ok);
    EXPECT_EQ(second, Error::ok);
    EXPECT_TRUE(holds(moved.disk(), 0, a));
    EXPECT_TRUE(holds(moved.disk(), 64 * 512, b));
    EXPECT_EQ(bf->stats().reissued, 2u);
}

// Before: a call made between the resume and the new connection failed at once with closed.
TEST_F(BlkfrontResume, ACallMadeWhileResumingWaitsForTheNewBackend) {
    start();
    const auto data = pattern(4096, 4);
    FakeBlkback& moved = move_to_new_domain();
    xenbus::Frontend::resume_all_in_new_domain();
    EXPECT_FALSE(bf->connected());
    EXPECT_TRUE(bf->resuming());
    EXPECT_EQ(io(bf->write(0, data)), Error::ok);
    EXPECT_TRUE(holds(moved.disk(), 0, data));
    std::vector<std::byte> back(4096);
    EXPECT_EQ(io(bf->read(0, back)), Error::ok);
    EXPECT_EQ(back, data);
    EXPECT_EQ(io(bf->flush()), Error::ok);
    EXPECT_EQ(bf->stats().reissued, 0u);
}

// A new domain whose backend never answers: the call fails after resume_wait_ns, not forever.
TEST_F(BlkfrontResume, ACallFailsWhenTheNewBackendNeverConnects) {
    blkfront::Options o;
    o.resume_wait_ns = s(3);
    start(o);
    move_to_new_domain(/*answering=*/false);
    xenbus::Frontend::resume_all_in_new_domain();
    const std::uint64_t t0 = loop.now();
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(io(bf->read(0, buf)), Error::timed_out);
    EXPECT_GE(loop.now() - t0, s(3));
    EXPECT_EQ(bf->stats().errors, 1u);
}

// The drain before a suspend: the backend answers while the guest polls its channel, so the
// old backend is done with every request before the domain moves and nothing runs again.
// Before: nothing waited (the requests were still held when the domain moved).
TEST_F(BlkfrontResume, TheDrainBeforeASuspendTakesTheAnswersInFlight) {
    start();
    const auto data = pattern(2 * 4096, 5);
    held_write(16, data);
    int polls = 0;
    bb.channel()->on_wait = [&] {
        ++polls;
        bb.hold = false;
        bb.release();
    };
    EXPECT_EQ(xenbus::Frontend::drain_all_before_suspend(loop.now() + s(5)), 0u);
    EXPECT_EQ(polls, 1);
    EXPECT_EQ(bb.held(), 0u);
    EXPECT_TRUE(holds(bb.disk(), 16 * 512, data)) << "written by the old backend before the move";
    bb.channel()->on_wait = nullptr;
    move_to_new_domain();
    xenbus::Frontend::resume_all_in_new_domain();
    ASSERT_TRUE(run_until([&] { return done == 1 && bf->connected(); }));
    EXPECT_EQ(result, Error::ok);
    EXPECT_EQ(bf->stats().reissued, 0u) << "it was answered before the suspend";
}

// A backend that does not answer in time: the drain gives up at its deadline with a line, and
// the request runs again after the resume.
TEST_F(BlkfrontResume, TheDrainGivesUpAtItsDeadline) {
    start();
    const auto data = pattern(4096, 6);
    held_write(0, data);
    int polls = 0;
    bb.channel()->on_wait = [&] {
        ++polls;
        loop_platform.now += s(1);  // a second passes in SCHEDOP_poll, no answer
    };
    EXPECT_EQ(xenbus::Frontend::drain_all_before_suspend(loop.now() + s(3)), 1u);
    EXPECT_EQ(polls, 3);
    EXPECT_TRUE(logged("requests still in flight at suspend"));
    bb.channel()->on_wait = nullptr;
    FakeBlkback& moved = move_to_new_domain();
    xenbus::Frontend::resume_all_in_new_domain();
    ASSERT_TRUE(run_until([&] { return done == 1; }));
    EXPECT_EQ(result, Error::ok);
    EXPECT_TRUE(holds(moved.disk(), 0, data));
    EXPECT_EQ(bf->stats().reissued, 1u);
}

}  // namespace
}  // namespace keel::test
