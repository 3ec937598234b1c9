// The blkfront test rig.
#include "fakes/blkfront_rig.h"

namespace keel::test {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i)
        f[i] = static_cast<std::byte>((i * 7 + seed * 13 + (i >> 9) * 5) & 0xFF);
    return f;
}

BlkfrontTest::BlkfrontTest()
    : entries(4 * xen::grant_entries_per_frame),
      meta(entries.size()),
      grants(entries, meta),
      bb(d, platform, entries),
      bb2(d, platform, entries, "device/vbd/51728", "/local/domain/0/backend/vbd/7/51728") {
    d.set_auto_step(false);  // the daemon runs from the loop, one step per pump
    loop_platform.events = [this] { return pump(); };
    loop_platform.busy = [this] { return busy(); };
    set_loop(&loop);
    set_log_sink(&log);
    xs.set_wakeup([this] { kick = true; });
    frames_before = live_task_frames();
}

BlkfrontTest::~BlkfrontTest() {
    data_only = false;
    bb.disconnect();  // so the devices' destructors find every grant free to revoke
    bb2.disconnect();
    bf.reset();
    bf2.reset();
    settle();
    blkfront::clear_devices();
    EXPECT_EQ(bb.violations(), 0);
    EXPECT_EQ(bb2.violations(), 0);
    EXPECT_EQ(d.violations(), 0);
    EXPECT_EQ(platform.pages_outstanding(), expected_leaked_pages) << "pages not given back";
    EXPECT_EQ(platform.open_channels(), 0u) << "event channels left open";
    EXPECT_EQ(grants.stats().in_use, grants.stats().leaked) << "grants left behind";
    EXPECT_EQ(live_task_frames(), frames_before) << "a task frame leaked";
    set_log_sink(nullptr);
    set_loop(nullptr);
}

blkfront::Blkfront& BlkfrontTest::make(const DiskConfig& c, blkfront::Options o) {
    bb.create(c);
    auto node = run(XenbusDevice::probe(xs, bb.front()));
    EXPECT_TRUE(node && node->ok());
    bf.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
    auto r = run(bf->init());
    EXPECT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    return *bf;
}

blkfront::Blkfront& BlkfrontTest::make_second(const DiskConfig& c, blkfront::Options o) {
    bb2.create(c);
    auto node = run(XenbusDevice::probe(xs, bb2.front()));
    EXPECT_TRUE(node && node->ok());
    bf2.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
    auto r = run(bf2->init());
    EXPECT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    return *bf2;
}

void BlkfrontTest::connect(blkfront::Blkfront& b) {
    auto r = run(b.connect());
    ASSERT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    settle();
    ASSERT_TRUE(b.connected());
}

bool BlkfrontTest::pump() {
    bool any = false;
    if (data_only) {
        bb.data_step();
        bb2.data_step();
        return platform.deliver_events();
    }
    d.step();
    bb.step();
    bb2.step();
    if (d.guest_pending() || kick) {
        d.clear_guest_pending();
        kick = false;
        xs.on_event();
        any = true;
    }
    if (platform.deliver_events()) any = true;
    return any;
}

bool BlkfrontTest::busy() {
    if (data_only) return platform.events_pending();
    return d.ring()->req_prod != d.ring()->req_cons || d.guest_pending() || kick || platform.events_pending();
}

void BlkfrontTest::settle() {
    for (int i = 0; i < 10000; ++i) {
        if (!loop.run_once(false) && !busy() && loop.queued() == 0) return;
    }
    ADD_FAILURE() << "the loop never settled";
}

bool BlkfrontTest::run_until(const std::function<bool()>& done, int max) {
    for (int i = 0; i < max; ++i) {
        if (done()) return true;
        loop.run_once(true);
    }
    return done();
}

bool BlkfrontTest::logged(std::string_view needle) const {
    for (const auto& l : log.lines) {
        if (l.find(needle) != std::string::npos) return true;
    }
    return false;
}

}  // namespace keel::test
