// Test rig for netfront: the fake xenstored, a fake netback on the same grant table and pages,
// and an event loop with a virtual clock, pumped the way the guest's loop would be.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_netback.h"
#include "fakes/allocation_counter.h"
#include "fakes/fake_loop.h"
#include "keel/netfront/netfront.h"

namespace keel::test {


template <typename T>
Task<void> capture(Task<T> t, std::optional<T>& out) {
    out.emplace(co_await std::move(t));
}

/// Idling advances the virtual clock only when nothing is left to do (as a real vCPU would not
/// halt with an event pending).
struct NetLoopPlatform : FakePlatform {
    std::function<bool()> busy;
    void idle() override {
        if (busy && busy()) {
            ++idles;
            return;
        }
        FakePlatform::idle();
    }
};

std::vector<std::byte> make_frame(std::size_t n, unsigned seed);
std::vector<std::byte> flatten(const netfront::RxBuffer& b);

class NetfrontTest : public ::testing::Test {
protected:
    NetfrontTest();
    ~NetfrontTest() override;

    /// Toolstack nodes + backend features, then a Netfront over them, init()ed.
    netfront::Netfront& make(const BackendFeatures& f = {}, netfront::Options o = {});
    /// make() without init() (for init's own tests).
    netfront::Netfront& construct(const BackendFeatures& f = {}, netfront::Options o = {});
    /// connect() to Connected, then let everything settle.
    void connect();

    /// One round of the world: the daemon, the backend, the guest's xenstore and channel events.
    bool pump();
    /// The data path only (no xenstore: allocates nothing): backend, then guest events, until
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
        spawn(capture(std::move(t), out));
        for (int i = 0; i < max_iterations && !out; ++i) loop.run_once(true);
        EXPECT_TRUE(out.has_value()) << "the task did not finish";
        return out;
    }

    std::optional<std::string> key(const char* k) const { return d.get(std::string(FakeNetback::front) + "/" + k); }
    bool logged(std::string_view needle) const;
    /// Keep every received frame in `rx`.
    void collect();

    CaptureSink log;
    NetLoopPlatform loop_platform;
    EventLoop loop{loop_platform};
    FakeXenstored d;
    xen::XenStore xs{d.ring(), d.port()};
    bool kick = false;
    std::vector<grant_entry_v1_t> entries;
    std::vector<std::uint32_t> meta;
    xen::GrantTable grants;
    NetTestPlatform platform;
    FakeNetback nb;
    std::optional<netfront::Netfront> nf;
    std::vector<netfront::RxBuffer> rx;
    std::size_t expected_leaked_pages = 0;
    std::size_t frames_before = 0;
};

}  // namespace keel::test
