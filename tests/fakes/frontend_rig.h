// The generic test rig for a PV frontend: an event loop on a virtual clock whose events are the
// fake xenstored's and the fake backends' (tests/fakes/fake_backend.h), the guest's xenstore
// client, a grant table over test memory and the TestPlatform (pages and channels with
// accounting). A driver's rig (netfront_rig.h, blkfront_rig.h) derives from it, adds its
// backends (add_backend) and device, and calls finish() from its destructor once the device is
// gone: it fails the test on a protocol violation, a page or channel or grant left behind, or a
// leaked task frame.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fakes/failure_capture.h"
#include "fakes/fake_backend.h"
#include "fakes/fake_loop.h"
#include "fakes/fake_xenstored.h"
#include "fakes/test_platform.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/xenstore.h"
#include "keel/xenbus/ring.h"

namespace keel::test {

/// Idling advances the virtual clock only when nothing is left to do (as a real vCPU would not
/// halt with an event pending).
struct RigLoopPlatform : FakePlatform {
    std::function<bool()> busy;
    /// false: deadlines are not recorded (FakePlatform keeps every one, which would allocate
    /// while an allocation-counting test runs).
    bool record_timers = true;
    void arm_timer(std::uint64_t deadline_ns) override {
        if (record_timers) {
            FakePlatform::arm_timer(deadline_ns);
        } else {
            armed = deadline_ns;
        }
    }
    void idle() override {
        if (busy && busy()) {
            ++idles;
            return;
        }
        FakePlatform::idle();
    }
};

class FrontendRig : public ::testing::Test {
protected:
    /// `grant_frames`: the grant table's size, in frames of grant entries.
    explicit FrontendRig(std::size_t grant_frames = 2);
    ~FrontendRig() override;

    /// A backend whose step() and data_step() the loop runs (in the order added).
    void add_backend(FakeBackend& b) { backends_.push_back(&b); }
    /// For the driver rig's destructor, after its devices are gone: settle, then check that
    /// nothing was left behind and no fake saw a violation.
    void finish();

    /// One round of the world: the daemon, the backends, the guest's xenstore and channel
    /// events (with data_only: the backends' data paths and channel events alone).
    bool pump();
    /// The data path only (no xenstore: allocates nothing): backends, then guest events, until
    /// quiet.
    void pump_data();
    bool busy();
    /// Run the loop without advancing time until nothing is left to do.
    void settle();
    /// Run the loop (time may advance) until `done` or `max` iterations.
    bool run_until(const std::function<bool()>& done, int max = 200000);

    template <typename T>
    std::optional<T> run(Task<T> t, int max_iterations = 200000) {
        std::optional<T> out;
        spawn(keep_result(std::move(t), out));
        for (int i = 0; i < max_iterations && !out; ++i) loop.run_once(true);
        EXPECT_TRUE(out.has_value()) << "the task did not finish";
        return out;
    }

    bool logged(std::string_view needle) const;

    /// For the fakes' own tests: run `provoke` (what a broken frontend would do) and expect
    /// `backend` to fail the test with a message containing `needle`; then forgive it.
    template <typename F>
    void expect_violation(FakeBackend& backend, F&& provoke, std::string_view needle) {
        const auto failures = failures_of(provoke);
        EXPECT_TRUE(mentions(failures, needle)) << ::testing::PrintToString(failures);
        EXPECT_GE(backend.violations(), 1);
        backend.forgive_violations();
    }

    /// Play a broken frontend (for the fakes' own tests): push the last request on the
    /// one-page ring whose grant reference is `ring_ref` once more, the same id and all.
    template <typename Sring>
    void push_last_request_again(const std::optional<std::string>& ring_ref) {
        ASSERT_TRUE(ring_ref);
        auto* s = reinterpret_cast<Sring*>(platform.page_of(entries[std::stoul(*ring_ref)].frame));
        ASSERT_NE(s, nullptr);
        constexpr RING_IDX size = xenbus::FrontRing<Sring>::slots_for(0);
        const RING_IDX prod = s->req_prod;
        std::memcpy(&s->ring[prod % size].req, &s->ring[(prod - 1) % size].req, sizeof(s->ring[0].req));
        s->req_prod = prod + 1;
    }

    template <typename T>
    static Task<void> keep_result(Task<T> t, std::optional<T>& out) {
        out.emplace(co_await std::move(t));
    }

    CaptureSink log;
    RigLoopPlatform loop_platform;
    EventLoop loop{loop_platform};
    FakeXenstored d;
    xen::XenStore xs{d.ring(), d.port()};
    bool kick = false;
    std::vector<grant_entry_v1_t> entries;
    std::vector<std::uint32_t> meta;
    xen::GrantTable grants;
    TestPlatform platform;
    /// true: the loop pumps only the data path (no xenstore), which allocates nothing.
    bool data_only = false;
    /// Pages the test expects the device to have leaked on purpose (held by the backend).
    std::size_t expected_leaked_pages = 0;

private:
    std::vector<FakeBackend*> backends_;
    std::size_t frames_before_ = 0;
    bool finished_ = false;
};

}  // namespace keel::test
