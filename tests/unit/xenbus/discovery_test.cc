// DeviceWatcher (keel/xenbus/discovery.h): the boot walk and hot-plug of one device class over
// the fake xenstored, with a minimal driver (one granted page published as "ring-ref") and a
// fake backend per device. The rules under test: every id listed at boot is brought up; an id
// that appears later is brought up by the same path; an id that fails is logged once, not tried
// on every event; at most max_devices ids are known; an id that was unplugged and comes back
// is a new device.
#include "keel/xenbus/discovery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fakes/ring_ref_backend.h"
#include "fakes/frontend_rig.h"
#include "keel/loop.h"

namespace keel::test {
namespace {

using S = XenbusState;

std::string front_of(unsigned id) { return "device/vif/" + std::to_string(id); }
std::string back_of(unsigned id) { return "/local/domain/0/backend/vif/7/" + std::to_string(id); }

/// Set: every Stub's handshake fails (as with a backend that keeps refusing it).
bool g_fail_configure = false;

/// A driver with a control path only.
class Stub final : public RingRefFrontend {
public:
    Stub(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform)
        : RingRefFrontend("stub", xs, node, grants, platform,
                          {.reconnect_delay_ns = ms(10), .max_reconnect_delay_ns = ms(10), .max_connect_failures = 3}) {}

protected:
    Task<Result<void>> configure(XenbusConfig& cfg) override {
        if (g_fail_configure) co_return Error::bad_input;
        co_return co_await RingRefFrontend::configure(cfg);
    }
};

// Discovery's callbacks are plain functions: they reach the test through these.
std::vector<std::unique_ptr<Stub>>* g_registered = nullptr;
xen::GrantTable* g_grants = nullptr;

Result<void> register_stub(xenbus::Frontend& device) {
    g_registered->emplace_back(static_cast<Stub*>(&device));
    return {};
}
xen::GrantTable* test_grants() { return g_grants; }

class DiscoveryTest : public FrontendRig {
protected:
    DiscoveryTest() {
        g_registered = &registered;
        g_grants = &grants;
    }
    ~DiscoveryTest() override {
        g_fail_configure = false;
        watcher.reset();
        for (auto& b : backends) b->disconnect();
        registered.clear();
        finish();
        g_registered = nullptr;
        g_grants = nullptr;
    }

    /// The toolstack adds device/vif/<id> and its backend.
    RingRefBackend& plug(unsigned id) {
        backends.push_back(std::make_unique<RingRefBackend>("stub", d, platform, entries, front_of(id), back_of(id)));
        backends.back()->share_grant_table();  // the devices share the grant table
        add_backend(*backends.back());
        backends.back()->create();
        return *backends.back();
    }
    /// A device node whose backend-id is garbage: its probe fails.
    void plug_broken(unsigned id) {
        d.set(front_of(id) + "/backend", back_of(id));
        d.set(front_of(id) + "/backend-id", "not-a-domid");
    }
    void start(xenbus::Discovery what = {}) {
        what.driver = "stub";
        what.type = "vif";
        what.make = &xenbus::construct<Stub>;
        what.add = &register_stub;
        what.discovered = &discovered;
        what.added = &added;
        watcher.emplace(what, xs, platform, &test_grants);
        watcher->start();
        ASSERT_TRUE(run_until([&] { return discovered.is_set(); }));
    }
    /// libxl's detach up to the removal of the nodes: the backend's online = 0, then Closing;
    /// true once the device's supervisor stopped (registered[0] is the device).
    bool detach(RingRefBackend& backend, unsigned id) {
        d.set(back_of(id) + "/online", "0");
        backend.xenbus().set_state(S::closing);
        return run_until([&] { return !registered[0]->supervising(); });
    }
    bool all_live(std::size_t n) {
        if (registered.size() != n) return false;
        return std::all_of(registered.begin(), registered.end(), [](auto& s) { return s->live(); });
    }
    std::size_t count_logged(std::string_view needle) const {
        return static_cast<std::size_t>(
            std::count_if(log.lines.begin(), log.lines.end(),
                          [&](const std::string& l) { return l.find(needle) != std::string::npos; }));
    }

    Event discovered;
    Event added;
    std::vector<std::unique_ptr<RingRefBackend>> backends;
    std::vector<std::unique_ptr<Stub>> registered;
    std::optional<xenbus::DeviceWatcher> watcher;  // after the events: destroyed first
};

TEST_F(DiscoveryTest, TheBootWalkBringsUpEveryListedDevice) {
    plug(0);
    plug(1);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(2); }));
    EXPECT_EQ(watcher->added(), 2u);
    EXPECT_TRUE(added.is_set());
    EXPECT_TRUE(logged("stub: device/vif/0: found (backend /local/domain/0/backend/vif/7/0, domain 0)"));
}

TEST_F(DiscoveryTest, WithoutDevicesDiscoveryIsStillSet) {
    start();
    EXPECT_EQ(watcher->added(), 0u);
    EXPECT_TRUE(watcher->watching());
}

// xl network-attach: the toolstack writes device/vif/1 after boot; the watch on device/vif
// brings it up through the same probe, init, register, start.
TEST_F(DiscoveryTest, ADeviceAddedAfterBootIsBroughtUp) {
    plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(1); }));
    added.reset();
    plug(1);
    ASSERT_TRUE(run_until([&] { return all_live(2); })) << "the hot-plugged device was not brought up";
    EXPECT_EQ(registered[1]->nodename(), "device/vif/1");
    EXPECT_TRUE(added.is_set());
    EXPECT_TRUE(
        logged("stub: device/vif/1: found (backend /local/domain/0/backend/vif/7/1, domain 0), hot-plugged"));
    EXPECT_EQ(watcher->added(), 2u);
}

// Our own devices' handshakes change nodes under device/vif all the time: each walk finds them
// known and brings nothing up twice.
TEST_F(DiscoveryTest, KnownDevicesAreNotBroughtUpAgainOnLaterEvents) {
    plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(1); }));
    const std::uint64_t walks = watcher->walks();
    d.set(front_of(0) + "/unrelated", "1");
    d.set(front_of(0) + "/unrelated", "2");
    settle();
    EXPECT_GT(watcher->walks(), walks) << "the events were not seen";
    EXPECT_EQ(registered.size(), 1u);
    EXPECT_EQ(watcher->added(), 1u);
}

TEST_F(DiscoveryTest, AnIdThatFailsIsLoggedOnceAndNotTriedOnEveryEvent) {
    plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(1); }));
    plug_broken(3);
    settle();
    for (int i = 0; i < 5; ++i) {
        d.set(front_of(0) + "/unrelated", std::to_string(i));
        settle();
    }
    EXPECT_EQ(watcher->failed(), 1u);
    EXPECT_EQ(count_logged("device/vif/3: rejected backend-id"), 1u);
    EXPECT_EQ(registered.size(), 1u);
}

TEST_F(DiscoveryTest, AtMostMaxDevicesIdsAreKnownAndTheRestLoggedOnce) {
    for (unsigned id = 0; id < xenbus::max_devices + 2; ++id) plug_broken(id);
    start();
    EXPECT_EQ(watcher->failed(), xenbus::max_devices);
    for (int i = 0; i < 3; ++i) {
        d.set(front_of(0) + "/unrelated", std::to_string(i));
        settle();
    }
    EXPECT_EQ(watcher->failed(), xenbus::max_devices) << "failed ids tried again";
    EXPECT_EQ(count_logged("2 device(s) under device/vif beyond the first 8 left alone"), 1u);
    // The toolstack removes one: its slot goes to one of the ids left alone.
    d.remove(front_of(0));
    settle();
    EXPECT_EQ(watcher->failed(), xenbus::max_devices + 1);
    EXPECT_EQ(count_logged("1 device(s) under device/vif beyond the first 8 left alone"), 1u);
}

// xl network-detach then xl network-attach given the same id. The old driver stopped (the
// toolstack removed the device); the id coming back is a new device.
TEST_F(DiscoveryTest, AnUnpluggedIdThatComesBackIsANewDevice) {
    RingRefBackend& first = plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(1); }));
    ASSERT_TRUE(detach(first, 0));
    first.vanish();
    d.remove(front_of(0));
    settle();
    plug(0);
    ASSERT_TRUE(run_until([&] { return registered.size() == 2 && registered[1]->live(); }))
        << "the id that came back was not brought up";
    EXPECT_FALSE(registered[0]->live());
    EXPECT_EQ(count_logged("stub: device/vif/0: found"), 2u);
    EXPECT_EQ(watcher->added(), 2u);
}

// The same, but the detach's removal and the attach's writes come before the next walk: the
// id never vanishes from a listing. Its backend being online again tells the new attach from
// the detach still under way (online = 0 until libxl removes the nodes).
TEST_F(DiscoveryTest, AnIdDetachedAndAttachedAgainBetweenTwoWalksIsANewDevice) {
    RingRefBackend& first = plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return all_live(1); }));
    ASSERT_TRUE(detach(first, 0));
    // The detach is still under way: later events bring nothing up.
    const std::uint64_t walks = watcher->walks();
    d.set(front_of(0) + "/unrelated", "x");
    ASSERT_TRUE(run_until([&] { return watcher->walks() > walks; }));
    settle();
    EXPECT_EQ(registered.size(), 1u) << "a device being detached was brought up again";
    // The removal and the new attach, with no walk in between.
    first.vanish();
    d.remove(front_of(0));
    plug(0);
    d.set(back_of(0) + "/online", "1");
    ASSERT_TRUE(run_until([&] { return registered.size() == 2 && registered[1]->live(); }))
        << "the id attached again was not brought up";
    EXPECT_FALSE(registered[0]->live());
    EXPECT_EQ(watcher->added(), 2u);
}

// A device whose backend kept breaking the protocol (the supervisor gave up) is not brought up
// again by later events while it stays listed.
TEST_F(DiscoveryTest, ADeviceGivenUpOnIsNotBroughtUpAgain) {
    g_fail_configure = true;
    plug(0);
    start();
    ASSERT_TRUE(run_until([&] { return registered.size() == 1 && registered[0]->given_up(); }));
    const std::uint64_t walks = watcher->walks();
    d.set(front_of(0) + "/unrelated", "x");
    ASSERT_TRUE(run_until([&] { return watcher->walks() > walks; }));
    settle();
    EXPECT_EQ(registered.size(), 1u) << "a device given up on was brought up again";
    EXPECT_EQ(watcher->added(), 1u);
}

// After a resume in a new domain xenstored knows no watch of the old connection;
// XenStore::reconnect() registers ours again, so a device attached afterwards is still seen.
TEST_F(DiscoveryTest, AfterAReconnectDevicesAddedLaterAreStillSeen) {
    start();
    d.restart_connection();
    xs.reconnect();
    settle();
    xs.on_event();  // what the wakeup hook posts
    settle();
    plug(0);
    ASSERT_TRUE(run_until([&] { return all_live(1); })) << "the watch did not come back";
    EXPECT_EQ(watcher->added(), 1u);
}

TEST_F(DiscoveryTest, WithoutAGrantTableDevicesAreLeftAloneWithOneLine) {
    g_grants = nullptr;
    plug_broken(0);
    plug_broken(1);
    start();
    EXPECT_EQ(watcher->failed(), 2u);
    EXPECT_EQ(count_logged("no grant table"), 1u);
    EXPECT_TRUE(registered.empty());
}

}  // namespace
}  // namespace keel::test
