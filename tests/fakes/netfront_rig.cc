// The netfront test rig.
#include "fakes/netfront_rig.h"

namespace keel::test {

std::vector<std::byte> make_frame(std::size_t n, unsigned seed) {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<std::byte>((i * 7 + seed * 13 + (i >> 8)) & 0xFF);
    return f;
}

std::vector<std::byte> flatten(const netfront::RxBuffer& b) {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < b.segment_count(); ++i) {
        auto s = b.segment(i);
        out.insert(out.end(), s.begin(), s.end());
    }
    return out;
}

NetfrontTest::NetfrontTest()
    : entries(2 * xen::grant_entries_per_frame),
      meta(entries.size()),
      grants(entries, meta),
      nb(d, platform, entries) {
    d.set_auto_step(false);  // the daemon runs from the loop, one step per pump
    loop_platform.events = [this] { return pump(); };
    loop_platform.busy = [this] { return busy(); };
    set_loop(&loop);
    set_log_sink(&log);
    xs.set_wakeup([this] { kick = true; });
    frames_before = live_task_frames();
}

NetfrontTest::~NetfrontTest() {
    rx.clear();
    nb.disconnect();  // so the device's destructor finds every grant free to revoke
    nf.reset();
    settle();
    EXPECT_EQ(nb.violations(), 0);
    EXPECT_EQ(d.violations(), 0);
    EXPECT_EQ(platform.pages_outstanding(), expected_leaked_pages) << "pages not given back";
    EXPECT_EQ(platform.open_channels(), 0u) << "event channels left open";
    EXPECT_EQ(grants.stats().in_use, grants.stats().leaked) << "grants left behind";
    EXPECT_EQ(live_task_frames(), frames_before) << "a task frame leaked";
    set_log_sink(nullptr);
    set_loop(nullptr);
}

netfront::Netfront& NetfrontTest::construct(const BackendFeatures& f, netfront::Options o) {
    nb.create(f);
    auto node = run(XenbusDevice::probe(xs, FakeNetback::front));
    EXPECT_TRUE(node && node->ok());
    nf.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
    return *nf;
}

netfront::Netfront& NetfrontTest::make(const BackendFeatures& f, netfront::Options o) {
    construct(f, o);
    auto r = run(nf->init());
    EXPECT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    return *nf;
}

void NetfrontTest::connect() {
    auto r = run(nf->connect());
    ASSERT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    settle();
    ASSERT_TRUE(nf->link_up());
    ASSERT_TRUE(nb.connected());
}

bool NetfrontTest::pump() {
    bool any = false;
    d.step();
    nb.step();
    if (d.guest_pending() || kick) {
        d.clear_guest_pending();
        kick = false;
        xs.on_event();
        any = true;
    }
    if (platform.deliver_events()) any = true;
    return any;
}

void NetfrontTest::pump_data() {
    for (int i = 0; i < 1000; ++i) {
        nb.data_step();
        if (!platform.deliver_events()) return;
    }
    ADD_FAILURE() << "netfront and the fake netback never settled";
}

bool NetfrontTest::busy() {
    return d.ring()->req_prod != d.ring()->req_cons || d.guest_pending() || kick || platform.events_pending();
}

void NetfrontTest::settle() {
    for (int i = 0; i < 10000; ++i) {
        if (!loop.run_once(false) && !busy() && loop.queued() == 0) return;
    }
    ADD_FAILURE() << "the loop never settled";
}

bool NetfrontTest::run_until(const std::function<bool()>& done, int max) {
    for (int i = 0; i < max; ++i) {
        if (done()) return true;
        loop.run_once(true);
    }
    return done();
}

bool NetfrontTest::logged(std::string_view needle) const {
    for (const auto& l : log.lines) {
        if (l.find(needle) != std::string::npos) return true;
    }
    return false;
}

void NetfrontTest::collect() {
    nf->set_receive_handler([this](netfront::RxBuffer b) { rx.push_back(std::move(b)); });
}

}  // namespace keel::test
