// The Frontend base (keel/xenbus/frontend.h) with a minimal protocol -- one granted page
// published as "ring-ref" -- against a fake backend built on FakeBackend, through the generic
// frontend rig: the supervisor's back-off doubling, its give-up after max failures, the reset
// after consecutive protocol errors, and the reconnect after a backend restart.
#include "keel/xenbus/frontend.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "fakes/ring_ref_backend.h"
#include "fakes/frontend_rig.h"
#include "keel/loop.h"

namespace keel::test {
namespace {

using S = XenbusState;

constexpr const char* probe_front = "device/vif/3";
constexpr const char* probe_back = "/local/domain/0/backend/vif/7/3";

/// A driver with nothing but a control path (RingRefFrontend), counting its hooks.
class Probe final : public RingRefFrontend {
public:
    Probe(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform,
          const xenbus::FrontendOptions& options)
        : RingRefFrontend("probe", xs, node, grants, platform, options) {}

    // The data path's calls, for the test.
    void bad_response() { protocol_error(); }
    void fine_response() { good_response(); }

    std::vector<std::uint64_t> attempts;  ///< loop time of every configure()
    int fail_configures = 0;              ///< the next n configure() calls fail with Error::io
    int lives = 0, downs = 0, releases = 0, retires = 0;

private:
    Task<Result<void>> configure(XenbusConfig& cfg) override {
        attempts.push_back(loop().now());
        if (fail_configures > 0) {
            --fail_configures;
            co_return Error::io;
        }
        co_return co_await RingRefFrontend::configure(cfg);
    }
    void go_live() override { ++lives; }
    void go_down(Error) override { ++downs; }
    void release() override {
        ++releases;
        RingRefFrontend::release();
    }
    void retire() override {
        EXPECT_FALSE(has_connection()) << "retired with its connection still set up";
        ++retires;
    }
};

/// co_await p.wait_ready(timeout_ns).
Task<Result<void>> ready_within(Probe& p, std::uint64_t timeout_ns) {
    co_return co_await p.wait_ready(timeout_ns);
}

class FrontendTest : public FrontendRig {
protected:
    FrontendTest() : backend("probe", d, platform, entries, probe_front, probe_back) { add_backend(backend); }
    ~FrontendTest() override {
        backend.disconnect();
        probe.reset();
        finish();
    }

    Probe& make(xenbus::FrontendOptions o = {}) {
        backend.create();
        auto node = run(XenbusDevice::probe(xs, probe_front));
        EXPECT_TRUE(node && node->ok());
        probe.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
        auto r = run(probe->init());
        EXPECT_TRUE(r && r->ok());
        return *probe;
    }

    RingRefBackend backend;
    std::optional<RingRefBackend> moved;  ///< the new domain's backend (resume tests)
    std::optional<Probe> probe;
};

TEST_F(FrontendTest, SupervisorConnectsAndSetsReady) {
    Probe& p = make();
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    auto ready = run(ready_within(p, 0));
    ASSERT_TRUE(ready);
    EXPECT_TRUE(ready->ok()) << "a connected device is ready at once";
    EXPECT_EQ(p.connects(), 1u);
    EXPECT_EQ(p.lives, 1);
    EXPECT_TRUE(backend.connected());
    EXPECT_EQ(backend.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::initialised, S::connected}));
}

TEST_F(FrontendTest, BackOffDoublesUpToTheMax) {
    Probe& p = make({.reconnect_delay_ns = ms(100), .max_reconnect_delay_ns = ms(400), .max_connect_failures = 6});
    p.fail_configures = 100;
    p.start();
    ASSERT_TRUE(run_until([&] { return !p.supervising(); }));
    ASSERT_EQ(p.attempts.size(), 6u);
    const std::uint64_t want[] = {ms(100), ms(200), ms(400), ms(400), ms(400)};
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(p.attempts[i + 1] - p.attempts[i], want[i]) << "delay before attempt " << i + 2;
    }
}

TEST_F(FrontendTest, GivesUpAfterMaxFailedHandshakesInARow) {
    Probe& p = make({.reconnect_delay_ns = ms(10), .max_connect_failures = 3});
    p.fail_configures = 100;
    p.start();
    ASSERT_TRUE(run_until([&] { return !p.supervising(); }));
    EXPECT_EQ(p.attempts.size(), 3u);
    EXPECT_TRUE(logged("probe: device/vif/3: giving up after 3 failed handshakes (last: "));
    EXPECT_FALSE(p.live());
    EXPECT_EQ(p.connects(), 0u);
    // Nothing more happens: no later attempt.
    run_until([] { return false; }, 2000);
    EXPECT_EQ(p.attempts.size(), 3u);
}

TEST_F(FrontendTest, AFailureRunIsForgivenByASuccessfulConnect) {
    Probe& p = make({.reconnect_delay_ns = ms(10), .max_connect_failures = 3});
    p.fail_configures = 2;  // one short of giving up
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    EXPECT_EQ(p.attempts.size(), 3u);
    EXPECT_TRUE(p.supervising());
}

TEST_F(FrontendTest, ResetsAfterConsecutiveProtocolErrorsAndReconnects) {
    Probe& p = make({.max_consecutive_errors = 3, .reconnect_delay_ns = ms(10)});
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    p.bad_response();
    p.bad_response();
    p.fine_response();  // the run ends: two more are not enough
    p.bad_response();
    p.bad_response();
    EXPECT_TRUE(p.live());
    EXPECT_EQ(p.resets(), 0u);
    p.bad_response();  // three in a row
    EXPECT_FALSE(p.live()) << "the data path stops at once";
    EXPECT_EQ(p.resets(), 1u);
    EXPECT_EQ(p.downs, 0) << "go_down() must not run inside the data-path call that asked for the reset";
    loop.run_once(false);
    EXPECT_EQ(p.downs, 1) << "it runs from the loop";
    EXPECT_TRUE(logged("probe: device/vif/3: resetting the device: too many protocol errors in a row"));
    ASSERT_TRUE(run_until([&] { return p.connects() == 2 && p.live(); }));
    EXPECT_EQ(backend.connections(), 2);
    EXPECT_EQ(p.releases, 1) << "the first connection was released through xenbus";
    EXPECT_EQ(backend.xenbus().frontend_history(),
              (XenbusHistory{S::initialising, S::initialised, S::connected, S::closing, S::closed, S::initialising,
                             S::initialised, S::connected}));
}

TEST_F(FrontendTest, ReconnectsAfterTheBackendRestarts) {
    Probe& p = make({.reconnect_delay_ns = ms(10)});
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    backend.xenbus().set_state(S::closing);  // its driver domain restarts
    ASSERT_TRUE(run_until([&] { return p.connects() == 2 && p.live(); }));
    EXPECT_EQ(p.resets(), 0u);
    EXPECT_TRUE(logged("backend closed the connection; reconnecting"));
}

// xl restore: the new domain's device has a backend under another path (its domid is new), the
// toolstack wrote the frontend's nodes afresh, and the old backend is gone without closing. The
// platform's resume tells every Frontend; the supervisor connects to the new backend at once,
// writing nothing towards the old one (the new backend sees Initialising, never Closing).
TEST_F(FrontendTest, ConnectsToTheNewBackendAfterAResumeInANewDomain) {
    Probe& p = make({.reconnect_delay_ns = s(5)});  // a back-off would show
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    const std::uint64_t t0 = loop.now();
    backend.vanish();
    moved.emplace("probe", d, platform, entries, probe_front, "/local/domain/0/backend/vif/8/3");
    add_backend(*moved);
    moved->create();  // the frontend's backend, backend-id and state nodes anew
    EXPECT_EQ(xenbus::Frontend::resume_all_in_new_domain(), 1u);
    EXPECT_EQ(p.downs, 1);
    EXPECT_EQ(p.releases, 1);
    ASSERT_TRUE(run_until([&] { return p.connects() == 2 && p.live(); }));
    EXPECT_EQ(p.xenbus().backend_path(), "/local/domain/0/backend/vif/8/3");
    EXPECT_TRUE(moved->connected());
    EXPECT_LT(loop.now() - t0, s(1));
    EXPECT_EQ(p.resets(), 0u);
    EXPECT_TRUE(logged("has a new backend"));
    moved->disconnect();
}

// The resume came while the device was still connecting (soon after boot, or during a hot-plug
// walk): its handshake against the old backend's path fails, and the supervisor looks for the
// device's backend again instead of retrying the old path until it gives up (which it did).
TEST_F(FrontendTest, AHandshakeCutByAResumeFindsTheNewBackend) {
    Probe& p = make({.reconnect_delay_ns = ms(10), .max_connect_failures = 3});
    backend.vanish();
    moved.emplace("probe", d, platform, entries, probe_front, "/local/domain/0/backend/vif/8/3");
    add_backend(*moved);
    moved->create();
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live() || p.given_up(); }));
    EXPECT_TRUE(p.live());
    EXPECT_FALSE(p.given_up());
    EXPECT_EQ(p.xenbus().backend_path(), "/local/domain/0/backend/vif/8/3");
    EXPECT_TRUE(logged("has a new backend"));
    moved->disconnect();
}

TEST_F(FrontendTest, StopsWhenTheDeviceIsRemoved) {
    Probe& p = make({.reconnect_delay_ns = ms(10)});
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    d.remove(std::string(probe_front) + "/backend");  // xl network-detach removed the node
    backend.xenbus().set_state(S::closing);
    ASSERT_TRUE(run_until([&] { return !p.supervising(); }));
    EXPECT_TRUE(logged("device gone"));
    EXPECT_EQ(p.connects(), 1u);
    EXPECT_EQ(p.retires, 1);
}

// xl network-detach / xl block-detach as libxl runs them: the backend's `online` goes to 0 and
// the backend to Closing; only once it is Closed does libxl remove the nodes. The device closes
// and stays closed: a reconnect would race with the removal (and bring the backend back from
// Closed to InitWait, so that libxl's wait for Closed could time out).
TEST_F(FrontendTest, ADeviceTheToolstackDetachesIsClosedAndNotReconnected) {
    Probe& p = make({.reconnect_delay_ns = ms(10)});
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    d.set(std::string(probe_back) + "/online", "0");
    backend.xenbus().set_state(S::closing);
    ASSERT_TRUE(run_until([&] { return !p.supervising(); }));
    run_until([] { return false; }, 2000);  // nothing more happens
    EXPECT_TRUE(logged("probe: device/vif/3: detached by the toolstack (backend online = 0); not reconnecting"));
    EXPECT_EQ(p.connects(), 1u);
    EXPECT_EQ(p.attempts.size(), 1u) << "it tried to connect again";
    EXPECT_EQ(backend.xenbus().frontend_history(),
              (XenbusHistory{S::initialising, S::initialised, S::connected, S::closing, S::closed}));
    EXPECT_EQ(backend.xenbus().state(), S::closed);
    EXPECT_EQ(p.retires, 1) << "the driver was not told to give back its pages";
    EXPECT_EQ(d.watch_count(), 0u) << "a retired device still watches its backend's state";
    EXPECT_TRUE(p.retired());
    auto again = run(p.connect());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->error(), Error::closed);
}

// A task waiting for the device to become ready is answered when the supervisor gives up (and a
// later wait fails at once), never left waiting for a device nobody will connect. (Before, it
// waited forever.)
TEST_F(FrontendTest, ReadyWaitersGetAnErrorWhenTheDeviceIsGivenUp) {
    Probe& p = make({.reconnect_delay_ns = ms(10), .max_connect_failures = 3});
    p.fail_configures = 100;
    std::optional<Result<void>> waited;
    spawn(keep_result(ready_within(p, 0), waited));
    p.start();
    ASSERT_TRUE(run_until([&] { return waited.has_value(); }));
    EXPECT_TRUE(p.given_up());
    EXPECT_EQ(waited->error(), Error::closed);
    EXPECT_EQ(p.retires, 1);
    auto later = run(ready_within(p, s(60)));
    ASSERT_TRUE(later);
    EXPECT_EQ(later->error(), Error::closed);
}

// The same when the toolstack removed the device.
TEST_F(FrontendTest, ReadyWaitersGetAnErrorWhenTheDeviceIsGone) {
    Probe& p = make({.reconnect_delay_ns = ms(10)});
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    d.remove(std::string(probe_front) + "/backend");
    backend.xenbus().set_state(S::closing);
    std::optional<Result<void>> waited;
    ASSERT_TRUE(run_until([&] { return !p.live(); }));
    spawn(keep_result(ready_within(p, 0), waited));
    ASSERT_TRUE(run_until([&] { return waited.has_value(); }));
    EXPECT_FALSE(p.supervising());
    EXPECT_EQ(waited->error(), Error::closed);
}

// A Frontend destroyed while tasks wait for it to become ready answers them with
// Error::cancelled; they resume from the loop and touch nothing of it (ASan would see it).
// (Before, the destroyed Event panicked on its waiters.) A timed wait times out as before.
TEST_F(FrontendTest, ADestroyedFrontendAnswersItsReadyWaiters) {
    Probe& p = make({.reconnect_delay_ns = ms(10)});
    p.fail_configures = 1000;
    std::optional<Result<void>> forever, timed;
    spawn(keep_result(ready_within(p, 0), forever));
    spawn(keep_result(ready_within(p, ms(50)), timed));
    p.start();
    ASSERT_TRUE(run_until([&] { return timed.has_value(); }));
    EXPECT_EQ(timed->error(), Error::timed_out);
    EXPECT_FALSE(forever.has_value());
    probe.reset();
    ASSERT_TRUE(run_until([&] { return forever.has_value(); }));
    EXPECT_EQ(forever->error(), Error::cancelled);
}

TEST_F(FrontendTest, ConnectBeforeInitIsRefused) {
    backend.create();
    auto node = run(XenbusDevice::probe(xs, probe_front));
    ASSERT_TRUE(node && node->ok());
    probe.emplace(xs, node->value(), grants, platform, xenbus::FrontendOptions{});
    auto r = run(probe->connect());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->error(), Error::invalid_argument);
    auto again = run(probe->init());
    ASSERT_TRUE(again && again->ok());
    auto twice = run(probe->init());
    ASSERT_TRUE(twice);
    EXPECT_EQ(twice->error(), Error::busy);
}


TEST_F(FrontendTest, AResetStormIsGivenUpWithOneLine) {
    Probe& p = make({.max_consecutive_errors = 1, .reconnect_delay_ns = ms(10), .max_resets = 5,
                     .reset_window_ns = s(60)});
    p.start();
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(run_until([&] { return p.live(); }));
        p.bad_response();
        ASSERT_TRUE(run_until([&] { return !p.live(); }));
    }
    ASSERT_TRUE(run_until([&] { return !p.supervising(); }));
    EXPECT_TRUE(p.given_up());
    EXPECT_EQ(p.resets(), 5u);
    EXPECT_EQ(p.connects(), 5u) << "not connected again";
    EXPECT_EQ(p.retires, 1);
    EXPECT_TRUE(logged("probe: device/vif/3: giving up on the device: 5 resets within 60 s"));
}

TEST_F(FrontendTest, ResetsSpreadBeyondTheWindowAreNotAStorm) {
    Probe& p = make({.max_consecutive_errors = 1, .reconnect_delay_ns = ms(10), .max_resets = 3,
                     .reset_window_ns = s(1), .watchdog_ns = ms(100)});  // the watchdog ticks the clock
    p.start();
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(run_until([&] { return p.live(); }));
        const std::uint64_t until = loop.now() + s(1);
        ASSERT_TRUE(run_until([&] { return loop.now() >= until; }));  // a healthy second
        p.bad_response();
        ASSERT_TRUE(run_until([&] { return !p.live(); }));
    }
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    EXPECT_TRUE(p.supervising());
    EXPECT_FALSE(p.given_up());
}

TEST_F(FrontendTest, DestroyedWithAResetPendingItRunsNoHookLater) {
    Probe& p = make();
    p.start();
    ASSERT_TRUE(run_until([&] { return p.live(); }));
    for (int i = 0; i < 8; ++i) p.bad_response();
    EXPECT_EQ(p.downs, 0);
    backend.disconnect();
    probe.reset();  // shutdown() runs the deferred go_down() while the hooks still exist
    settle();       // nothing left queued on the loop points at it (ASan)
}

}  // namespace
}  // namespace keel::test
