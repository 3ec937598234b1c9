// Test rig for blkfront: the fake xenstored, fake blkbacks on the same grant table and pages,
// and an event loop with a virtual clock, pumped the way the guest's loop would be.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_blkback.h"
#include "keel/blkfront/blkfront.h"
#include "fakes/allocation_counter.h"
#include "fakes/fake_loop.h"

namespace keel::test {

template <typename T>
Task<void> capture(Task<T> t, std::optional<T>& out) {
    out.emplace(co_await std::move(t));
}

/// Idling advances the virtual clock only when nothing is left to do.
struct BlkLoopPlatform : FakePlatform {
    std::function<bool()> busy;
    /// Not recorded (FakePlatform keeps every deadline, which would allocate while counting).
    void arm_timer(std::uint64_t deadline_ns) override { armed = deadline_ns; }
    void idle() override {
        if (busy && busy()) {
            ++idles;
            return;
        }
        FakePlatform::idle();
    }
};

/// Bytes with a pattern that differs per seed and per position.
std::vector<std::byte> pattern(std::size_t n, unsigned seed);

class BlkfrontTest : public ::testing::Test {
protected:
    BlkfrontTest();
    ~BlkfrontTest() override;

    /// The toolstack's nodes and the backend's disk, then a Blkfront over them, init()ed.
    blkfront::Blkfront& make(const DiskConfig& c = {}, blkfront::Options o = {});
    /// The same for the second disk (device/vbd/51728).
    blkfront::Blkfront& make_second(const DiskConfig& c = {}, blkfront::Options o = {});
    /// connect() to Connected, then let everything settle.
    void connect(blkfront::Blkfront& b);
    void connect() { connect(*bf); }

    /// One round of the world: the daemon, the backends, the guest's xenstore and channel events.
    bool pump();
    bool busy();
    void settle();
    bool run_until(const std::function<bool()>& done, int max = 200000);

    template <typename T>
    std::optional<T> run(Task<T> t, int max_iterations = 200000) {
        std::optional<T> out;
        spawn(capture(std::move(t), out));
        for (int i = 0; i < max_iterations && !out; ++i) loop.run_once(true);
        EXPECT_TRUE(out.has_value()) << "the task did not finish";
        return out;
    }
    /// Run a block call to its end; its error (Error::ok on success).
    Error io(Task<Result<void>> t) {
        auto r = run(std::move(t));
        return r ? r->error() : Error::cancelled;
    }

    std::optional<std::string> key(const char* k) const { return d.get(bb.front() + "/" + k); }
    bool logged(std::string_view needle) const;

    CaptureSink log;
    BlkLoopPlatform loop_platform;
    EventLoop loop{loop_platform};
    FakeXenstored d;
    xen::XenStore xs{d.ring(), d.port()};
    bool kick = false;
    /// true: the loop pumps only the data path (no xenstore), which allocates nothing.
    bool data_only = false;
    std::vector<grant_entry_v1_t> entries;
    std::vector<std::uint32_t> meta;
    xen::GrantTable grants;
    BlkTestPlatform platform;
    FakeBlkback bb;
    FakeBlkback bb2;
    std::optional<blkfront::Blkfront> bf;
    std::optional<blkfront::Blkfront> bf2;
    std::size_t expected_leaked_pages = 0;
    std::size_t frames_before = 0;
};

}  // namespace keel::test
