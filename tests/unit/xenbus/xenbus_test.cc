// The xenbus frontend helper against the fake xenstored and a fake backend that enforces the
// io/blkif.h state diagrams, on an event loop with a virtual clock.
#include "keel/xenbus/xenbus.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_xenbus_backend.h"
#include "fakes/fake_loop.h"

namespace keel {
namespace {

using S = XenbusState;

using test::FakeXenbusBackend;
using test::FakeXenstored;

constexpr const char* front = "device/vif/0";
constexpr const char* back = "/local/domain/0/backend/vif/7/0";

template <typename T>
Task<void> capture(Task<T> t, std::optional<T>& out) {
    out.emplace(co_await std::move(t));
}

/// The loop platform: events are the fake xenstored's signals; idling advances the virtual
/// clock only when neither the guest nor the daemon has anything left to do (as a real vCPU
/// would not halt with an event pending).
struct XsPlatform : test::FakePlatform {
    FakeXenstored* d = nullptr;
    bool* kick = nullptr;
    bool busy() const {
        return d->ring()->req_prod != d->ring()->req_cons || d->guest_pending() || *kick;
    }
    void idle() override {
        if (busy()) {
            ++idles;
            return;
        }
        FakePlatform::idle();
    }
};

Task<Result<void>> standard_config(XenbusConfig& c) {
    c.write_uint("tx-ring-ref", 8);
    c.write_uint("rx-ring-ref", 9);
    c.write_uint("event-channel", 5);
    c.write("request-rx-copy", "1");
    co_return Result<void>{};
}

class XenbusTest : public ::testing::Test {
protected:
    XenbusTest() : frames_before_(live_task_frames()) {
        d.set_auto_step(false);  // the daemon runs from the loop, one step per iteration
        platform.d = &d;
        platform.kick = &kick;
        platform.events = [this] { return pump(); };
        set_loop(&loop);
        set_log_sink(&log);
        xs.set_wakeup([this] { kick = true; });
        backend.create_nodes();
        backend.require_keys({"tx-ring-ref", "rx-ring-ref", "event-channel"});
    }
    ~XenbusTest() override {
        dev.reset();
        settle();
        EXPECT_EQ(d.watch_count(), 0u) << "the device left its watch behind";
        EXPECT_EQ(d.violations(), 0);
        EXPECT_EQ(backend.violations(), 0);
        EXPECT_EQ(live_task_frames(), frames_before_) << "a task frame leaked";
        set_log_sink(nullptr);
        set_loop(nullptr);
    }

    bool pump() {
        d.step();
        backend.step();
        if (!d.guest_pending() && !kick) return false;
        d.clear_guest_pending();
        kick = false;
        xs.on_event();
        return true;
    }

    /// Run the loop without advancing time until nothing is left to do.
    void settle() {
        for (int i = 0; i < 10000; ++i) {
            if (!loop.run_once(false) && !platform.busy() && loop.queued() == 0) return;
        }
        ADD_FAILURE() << "the loop never settled";
    }

    template <typename T>
    std::optional<T> run(Task<T> t, int max_iterations = 100000) {
        std::optional<T> out;
        spawn(capture(std::move(t), out));
        for (int i = 0; i < max_iterations && !out; ++i) loop.run_once(true);
        EXPECT_TRUE(out.has_value()) << "the task did not finish";
        return out;
    }

    XenbusNode probe_ok() {
        auto node = run(XenbusDevice::probe(xs, front));
        EXPECT_TRUE(node && node->ok());
        return node && node->ok() ? node->value() : XenbusNode{};
    }

    XenbusDevice& open(XenbusDevice::Options options = {}) {
        dev.emplace(xs, probe_ok(), options);
        dev->set_teardown([this] {
            ++teardowns;
            front_at_teardown = backend.frontend_state();
            back_at_teardown = backend.state();
        });
        return *dev;
    }

    Result<void> connect(Function<Task<Result<void>>(XenbusConfig&)> cfg = standard_config) {
        auto r = run(dev->connect(std::move(cfg)));
        return r ? *r : Result<void>(Error::cancelled);
    }

    std::size_t requests_of(std::uint32_t type) const {
        std::size_t n = 0;
        for (const auto& r : d.requests()) n += r.type == type;
        return n;
    }

    bool logged(std::string_view needle) const {
        for (const auto& l : log.lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }
    bool logged_all(std::initializer_list<std::string_view> needles) const {
        for (const auto& l : log.lines) {
            bool all = true;
            for (auto n : needles) all = all && l.find(n) != std::string::npos;
            if (all) return true;
        }
        return false;
    }

    using History = test::XenbusHistory;

    test::CaptureSink log;
    FakeXenstored d;
    xen::XenStore xs{d.ring(), d.port()};
    FakeXenbusBackend backend{d, front, back, 0};
    bool kick = false;
    XsPlatform platform;
    EventLoop loop{platform};
    int teardowns = 0;
    std::optional<XenbusState> front_at_teardown;
    std::optional<XenbusState> back_at_teardown;
    std::optional<XenbusDevice> dev;

private:
    std::size_t frames_before_;
};

// ---- vocabulary -----------------------------------------------------------------------------

TEST(XenbusParse, StatesAreOneDigit) {
    const std::pair<std::string_view, std::optional<XenbusState>> cases[] = {
        {"4", XenbusState::connected}, {"0", XenbusState::unknown}, {"8", XenbusState::reconfigured},
        {"9", std::nullopt},           {"04", std::nullopt},        {"", std::nullopt},
        {"4\n", std::nullopt}};
    for (const auto& [text, want] : cases) EXPECT_EQ(parse_xenbus_state(text), want) << text;
    EXPECT_STREQ(to_string(XenbusState::init_wait), "InitWait");
    EXPECT_STREQ(to_string(XenbusDevice::State::initialised), "Initialised");
}

TEST(XenbusParse, UintsAreStrictDecimal) {
    EXPECT_EQ(parse_xenstore_uint("0"), 0u);
    EXPECT_EQ(parse_xenstore_uint("32751"), 32751u);
    EXPECT_EQ(parse_xenstore_uint("18446744073709551615"), ~0ull);
    EXPECT_EQ(parse_xenstore_uint("18446744073709551616"), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(""), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint("-1"), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint("+1"), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(" 1"), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint("0x10"), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(std::string_view("1\0", 2)), std::nullopt);
}

TEST(XenbusConfigTest, StagesValidWrites) {
    XenbusConfig c;
    c.write("ring-ref", "8");
    c.write_uint("queue-0/event-channel", 12345678901ull);
    c.write("mac", "");
    ASSERT_TRUE(c.status().ok());
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c.key(1), "queue-0/event-channel");
    EXPECT_EQ(c.value(1), "12345678901");
    EXPECT_EQ(c.value(2), "");
}

TEST(XenbusConfigTest, RejectsBadKeysAndValues) {
    for (std::string_view key : {"", "state", "/abs", "a//b", "a/", "a b", "a.b", "..",
                                 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}) {
        XenbusConfig c;
        c.write(key, "1");
        EXPECT_EQ(c.status().error(), Error::invalid_argument) << key;
    }
    XenbusConfig c;
    c.write("k", std::string_view("a\0b", 3));
    EXPECT_EQ(c.status().error(), Error::invalid_argument);
    c.write("fine", "1");  // sticky: the first error stays
    EXPECT_EQ(c.size(), 0u);
}

TEST(XenbusConfigTest, BoundedInEntriesAndBytes) {
    XenbusConfig c;
    for (std::size_t i = 0; i < XenbusConfig::max_entries; ++i) c.write_uint("k" + std::to_string(i), i);
    EXPECT_TRUE(c.status().ok());
    c.write("one-more", "1");
    EXPECT_EQ(c.status().error(), Error::no_space);

    XenbusConfig big;
    const std::string value(1500, 'v');
    big.write("a", value);
    EXPECT_TRUE(big.status().ok());
    big.write("b", value);
    EXPECT_EQ(big.status().error(), Error::no_space);
}

// ---- discovery and probe --------------------------------------------------------------------

TEST_F(XenbusTest, ListsDeviceIdsAndSkipsJunk) {
    d.set("device/vif/1/state", test::state_value(S::initialising));
    d.set("device/vif/junk/state", test::state_value(S::initialising));
    d.set("device/vif/4294967296/state", test::state_value(S::initialising));
    std::uint32_t ids[8] = {};
    auto n = run(list_xenbus_devices(xs, "vif", ids));
    ASSERT_TRUE(n && n->ok());
    ASSERT_EQ(n->value(), 2u);
    EXPECT_EQ(ids[0], 0u);
    EXPECT_EQ(ids[1], 1u);
    EXPECT_TRUE(logged_all({"device/vif:", "ignored 2 entries that are not device ids"}));

    auto none = run(list_xenbus_devices(xs, "vbd", ids));
    ASSERT_TRUE(none && none->ok());
    EXPECT_EQ(none->value(), 0u);

    std::uint32_t one[1] = {};
    auto cut = run(list_xenbus_devices(xs, "vif", one));
    ASSERT_TRUE(cut && cut->ok());
    EXPECT_EQ(cut->value(), 1u);
    EXPECT_TRUE(logged("1 devices beyond the first 1 ignored"));

    for (std::string_view bad : {"", "VIF", "../x", "vif/0"}) {
        auto r = run(list_xenbus_devices(xs, bad, ids));
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->error(), Error::invalid_argument) << bad;
    }
}

TEST_F(XenbusTest, ProbeReadsBackendAndDomid) {
    d.set(std::string(front) + "/backend-id", "32751");
    XenbusNode node = probe_ok();
    EXPECT_EQ(node.nodename_view(), front);
    EXPECT_EQ(node.backend_view(), back);
    EXPECT_EQ(node.backend_id, 32751);
}

TEST_F(XenbusTest, ProbeRejectsMalformedBackendId) {
    const std::string key = std::string(front) + "/backend-id";
    for (const std::string& bad : std::vector<std::string>{"", "abc", "-1", "+1", " 0", "0x0", "32752", "65535", "99999999999999999999999",
                            std::string(30, '1'), std::string("1\x01", 2)}) {
        d.set(key, bad);
        auto r = run(XenbusDevice::probe(xs, front));
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->error(), Error::bad_input) << "backend-id \"" << bad << "\"";
    }
    EXPECT_TRUE(logged_all({"device/vif/0", "rejected backend-id \"abc\""}));
    d.remove(key);
    auto missing = run(XenbusDevice::probe(xs, front));
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->error(), Error::not_found);
}

TEST_F(XenbusTest, ProbeRejectsMalformedBackendPath) {
    const std::string key = std::string(front) + "/backend";
    for (const std::string& bad : std::vector<std::string>{"", "relative/path", "/", "/a//b", "/a/", "/a b", "/a/../b", "/" + std::string(200, 'x')}) {
        d.set(key, bad);
        auto r = run(XenbusDevice::probe(xs, front));
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->error(), Error::bad_input) << "backend \"" << bad << "\"";
    }
    EXPECT_TRUE(logged_all({"device/vif/0", "rejected backend path \"relative/path\""}));
    auto bad_name = run(XenbusDevice::probe(xs, "device//vif"));
    ASSERT_TRUE(bad_name.has_value());
    EXPECT_EQ(bad_name->error(), Error::invalid_argument);
}

// ---- the handshake --------------------------------------------------------------------------

TEST_F(XenbusTest, HappyPathToConnected) {
    XenbusDevice& dv = open();
    std::optional<std::uint64_t> rx_copy;
    Result<void> r = connect([&dv, &rx_copy](XenbusConfig& c) -> Task<Result<void>> {
        auto f = co_await dv.read_backend_uint("feature-rx-copy");
        if (f) rx_copy = *f;
        co_return co_await standard_config(c);
    });
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(dv.state(), XenbusDevice::State::connected);
    EXPECT_EQ(dv.backend_state(), XenbusState::connected);
    EXPECT_EQ(rx_copy, 1u);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected}));
    EXPECT_EQ(d.get(std::string(front) + "/tx-ring-ref"), "8");
    EXPECT_EQ(d.get(std::string(front) + "/event-channel"), "5");
    EXPECT_EQ(d.get(std::string(front) + "/request-rx-copy"), "1");
    EXPECT_EQ(requests_of(XS_TRANSACTION_START), 1u);
    EXPECT_EQ(d.open_transactions(), 0u);
    EXPECT_EQ(teardowns, 0);
    EXPECT_TRUE(logged_all({"device/vif/0", "connected to", back}));

    char mac[32];
    d.set(std::string(front) + "/mac", "00:16:3e:00:00:01");
    auto m = run(dv.read_frontend("mac", mac));
    ASSERT_TRUE(m && m->ok());
    EXPECT_EQ(std::string_view(mac, m->value()), "00:16:3e:00:00:01");
    auto bad = run(dv.read_backend_uint("../x"));
    EXPECT_EQ(bad->error(), Error::invalid_argument);
    auto absent = run(dv.read_backend_uint("feature-nothing"));
    EXPECT_EQ(absent->error(), Error::not_found);
    char tiny[4];
    auto small = run(dv.read_frontend("mac", tiny));
    EXPECT_EQ(small->error(), Error::no_space);

    auto again = run(dv.connect(standard_config));
    EXPECT_EQ(again->error(), Error::busy);
}

TEST_F(XenbusTest, NetbackConnectsOnlyOnTheFrontendsConnected) {
    backend.act_like_netback(true);
    XenbusDevice::Options o;
    o.publish_connected = true;
    XenbusDevice& dv = open(o);
    Result<void> r = connect(standard_config);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(dv.state(), XenbusDevice::State::connected);
    EXPECT_EQ(dv.backend_state(), XenbusState::connected);
    // Keys and Connected in one transaction, straight from Initialising.
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::connected}));
    EXPECT_EQ(d.get(std::string(front) + "/tx-ring-ref"), "8");
}

TEST_F(XenbusTest, NetbackNeverConnectsOnInitialised) {
    // Without publish_connected a netback-like backend waits forever: the time limit applies.
    backend.act_like_netback(true);
    XenbusDevice::Options o;
    o.backend_timeout_ns = 2'000'000'000ull;
    open(o);
    Result<void> r = connect(standard_config);
    EXPECT_EQ(r.error(), Error::timed_out);
}

TEST_F(XenbusTest, BackendThatNeverAnswersTimesOut) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::silent);
    XenbusDevice& dv = open();
    const std::uint64_t start = platform.now;
    Result<void> r = connect();
    EXPECT_EQ(r.error(), Error::timed_out);
    EXPECT_GE(platform.now - start, s(10));
    EXPECT_LT(platform.now - start, s(11));
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::closed}));
    EXPECT_EQ(teardowns, 0);  // nothing was published
    EXPECT_TRUE(logged_all({"device/vif/0", "timed out", "InitWait", "Initialising"}));
}

TEST_F(XenbusTest, TimeLimitIsConfigurable) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::silent);
    XenbusDevice::Options o;
    o.backend_timeout_ns = ms(1500);
    open(o);
    const std::uint64_t start = platform.now;
    EXPECT_EQ(connect().error(), Error::timed_out);
    EXPECT_GE(platform.now - start, ms(1500));
    EXPECT_LT(platform.now - start, ms(1600));
}

TEST_F(XenbusTest, BackendThatNeverConnectsTimesOutAndTearsDown) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::never_connect);
    XenbusDevice& dv = open();
    const std::uint64_t start = platform.now;
    EXPECT_EQ(connect().error(), Error::timed_out);
    EXPECT_GE(platform.now - start, s(10));
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::closing, S::closed}));
    EXPECT_EQ(teardowns, 1);  // the backend could have seen the ring references
    EXPECT_EQ(front_at_teardown, S::closing);
    EXPECT_TRUE(logged_all({"device/vif/0", "timed out", "Connected", "InitWait", "Initialised"}));
}

TEST_F(XenbusTest, BackendClosingWhileConnectedTearsDown) {
    XenbusDevice& dv = open();
    ASSERT_TRUE(connect().ok());
    backend.set_state(S::closing);  // xl network-detach
    settle();
    EXPECT_EQ(teardowns, 1);
    EXPECT_EQ(front_at_teardown, S::closing);  // we said Closing first, Closed only after the teardown
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected, S::closing, S::closed}));
    EXPECT_EQ(backend.state(), S::closed);
    EXPECT_TRUE(logged_all({"device/vif/0", "Closing", "tearing down"}));
    // close() on a closed device is a no-op; wait_closed completes at once.
    auto c = run(dv.close());
    EXPECT_TRUE(c && c->ok());
    bool waited = false;
    auto waiter = [](XenbusDevice& x, bool& flag) -> Task<void> {
        co_await x.wait_closed();
        flag = true;
    };
    spawn(waiter(dv, waited));
    EXPECT_TRUE(waited);
    EXPECT_EQ(teardowns, 1);
}

TEST_F(XenbusTest, BackendVanishingOrBabblingWhileConnectedTearsDown) {
    open();
    ASSERT_TRUE(connect().ok());
    backend.remove_state();
    settle();
    EXPECT_EQ(teardowns, 1);
    EXPECT_EQ(dev->state(), XenbusDevice::State::closed);

    // Reconnect, then the backend writes garbage: taken as Unknown, the device is reset.
    backend.set_state(S::init_wait);
    ASSERT_TRUE(connect().ok());
    d.set(std::string(back) + "/state", "connected!");
    settle();
    EXPECT_EQ(teardowns, 2);
    EXPECT_EQ(dev->state(), XenbusDevice::State::closed);
    EXPECT_TRUE(logged("backend wrote state \"connected!\""));
}

TEST_F(XenbusTest, BackendClosingBeforeConnectedFailsConnect) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::never_connect);
    open();
    std::optional<Result<void>> r;
    spawn(capture(dev->connect(standard_config), r));
    for (int i = 0; i < 1000 && backend.frontend_state() != S::initialised; ++i) loop.run_once(false);
    ASSERT_EQ(backend.frontend_state(), S::initialised);
    backend.set_state(S::closing);
    for (int i = 0; i < 1000 && !r; ++i) loop.run_once(true);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error(), Error::closed);
    EXPECT_EQ(teardowns, 1);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::closing, S::closed}));
    EXPECT_TRUE(logged_all({"device/vif/0", "went Closing while we waited for Connected"}));
}

TEST_F(XenbusTest, TransactionConflictIsRetried) {
    open();
    d.force_conflict_once();
    ASSERT_TRUE(connect().ok());
    EXPECT_EQ(requests_of(XS_TRANSACTION_START), 2u);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected}));  // never a half-written config
    EXPECT_EQ(d.open_transactions(), 0u);
}

TEST_F(XenbusTest, PersistentConflictGivesUp) {
    XenbusDevice::Options o;
    o.max_tx_attempts = 3;
    XenbusDevice& dv = open(o);
    backend.conflict_next_transactions(100);
    EXPECT_EQ(connect().error(), Error::again);
    EXPECT_EQ(requests_of(XS_TRANSACTION_START), 3u);
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::closed}));
    EXPECT_EQ(d.get(std::string(front) + "/tx-ring-ref"), std::nullopt);
    EXPECT_EQ(teardowns, 0);
    EXPECT_TRUE(logged_all({"device/vif/0", "3 conflicting transactions"}));
}

TEST_F(XenbusTest, DriverConfigErrorsAbortTheHandshake) {
    XenbusDevice& dv = open();
    EXPECT_EQ(connect([](XenbusConfig&) -> Task<Result<void>> { co_return Error::no_memory; }).error(),
              Error::no_memory);
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(connect([](XenbusConfig& c) -> Task<Result<void>> {
                  c.write("state", test::state_value(S::connected));  // not the driver's to write
                  co_return Result<void>{};
              }).error(),
              Error::invalid_argument);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::closed, S::initialising, S::closed}));
    EXPECT_EQ(requests_of(XS_TRANSACTION_START), 0u);
}

TEST_F(XenbusTest, WriteFailureInTheTransactionAborts) {
    XenbusDevice& dv = open();
    d.set_read_only(std::string(front) + "/tx-ring-ref");
    EXPECT_EQ(connect().error(), Error::permission);
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(d.open_transactions(), 0u);
    EXPECT_EQ(d.get(std::string(front) + "/rx-ring-ref"), std::nullopt);
}

TEST_F(XenbusTest, FrontendCloseWaitsForTheBackendThenTearsDown) {
    XenbusDevice& dv = open();
    ASSERT_TRUE(connect().ok());
    auto r = run(dv.close());
    ASSERT_TRUE(r && r->ok());
    EXPECT_EQ(teardowns, 1);
    EXPECT_EQ(front_at_teardown, S::closing);
    EXPECT_EQ(back_at_teardown, S::closing);  // the backend had let go of our grants
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected, S::closing, S::closed}));
    settle();
    EXPECT_EQ(backend.state(), S::closed);
}

TEST_F(XenbusTest, FrontendCloseIsBoundedWhenTheBackendIgnoresIt) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::deaf_to_close);
    XenbusDevice::Options o;
    o.close_timeout_ns = s(3);
    XenbusDevice& dv = open(o);
    ASSERT_TRUE(connect().ok());
    const std::uint64_t start = platform.now;
    auto r = run(dv.close());
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error(), Error::timed_out);
    EXPECT_GE(platform.now - start, s(3));
    EXPECT_LT(platform.now - start, s(4));
    EXPECT_EQ(teardowns, 1);      // torn down all the same (grants still mapped leak, counted)
    EXPECT_EQ(back_at_teardown, S::connected);
    EXPECT_EQ(dv.state(), XenbusDevice::State::closed);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected, S::closing, S::closed}));
    EXPECT_TRUE(logged_all({"device/vif/0", "timed out", "Closing", "it is Connected"}));
}

TEST_F(XenbusTest, ReconnectAfterClose) {
    XenbusDevice& dv = open();
    ASSERT_TRUE(connect().ok());
    ASSERT_TRUE(run(dv.close())->ok());
    settle();
    ASSERT_TRUE(connect().ok());
    EXPECT_EQ(dv.state(), XenbusDevice::State::connected);
    EXPECT_EQ(backend.frontend_history(), (History{S::initialising, S::initialised, S::connected, S::closing, S::closed, S::initialising, S::initialised, S::connected}));
    EXPECT_EQ(d.watch_count(), 1u);
}

TEST_F(XenbusTest, DestroyingTheDeviceMidHandshakeIsClean) {
    backend.set_behaviour(FakeXenbusBackend::Behaviour::never_connect);
    open();
    {
        std::optional<Result<void>> r;
        Task<void> t = capture(dev->connect(standard_config), r);
        t.start();
        for (int i = 0; i < 1000 && backend.frontend_state() != S::initialised; ++i) loop.run_once(false);
        ASSERT_EQ(backend.frontend_state(), S::initialised);
        // The driver goes away: its task first, then the device (the order the header asks).
    }
    dev.reset();
    settle();
    EXPECT_EQ(d.watch_count(), 0u);
}

}  // namespace
}  // namespace keel
