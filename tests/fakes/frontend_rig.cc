// The generic frontend rig.
#include "fakes/frontend_rig.h"

namespace keel::test {

FrontendRig::FrontendRig(std::size_t grant_frames)
    : entries(grant_frames * xen::grant_entries_per_frame), meta(entries.size()), grants(entries, meta) {
    d.set_auto_step(false);  // the daemon runs from the loop, one step per pump
    loop_platform.events = [this] { return pump(); };
    loop_platform.busy = [this] { return busy(); };
    set_loop(&loop);
    set_log_sink(&log);
    xs.set_wakeup([this] { kick = true; });
    frames_before_ = live_task_frames();
}

FrontendRig::~FrontendRig() {
    EXPECT_TRUE(finished_) << "the driver rig must call finish() from its destructor";
    set_log_sink(nullptr);
    set_loop(nullptr);
}

void FrontendRig::finish() {
    data_only = false;
    settle();
    for (FakeBackend* b : backends_) EXPECT_EQ(b->violations(), 0);
    EXPECT_EQ(d.violations(), 0);
    EXPECT_EQ(platform.pages_outstanding(), expected_leaked_pages) << "pages not given back";
    EXPECT_EQ(platform.open_channels(), 0u) << "event channels left open";
    EXPECT_EQ(grants.stats().in_use, grants.stats().leaked) << "grants left behind";
    EXPECT_EQ(live_task_frames(), frames_before_) << "a task frame leaked";
    backends_.clear();
    finished_ = true;
}

bool FrontendRig::pump() {
    if (data_only) {
        for (FakeBackend* b : backends_) b->data_step();
        return platform.deliver_events();
    }
    bool any = false;
    d.step();
    for (FakeBackend* b : backends_) b->step();
    if (d.guest_pending() || kick) {
        d.clear_guest_pending();
        kick = false;
        xs.on_event();
        any = true;
    }
    if (platform.deliver_events()) any = true;
    return any;
}

void FrontendRig::pump_data() {
    for (int i = 0; i < 1000; ++i) {
        for (FakeBackend* b : backends_) b->data_step();
        if (!platform.deliver_events()) return;
    }
    ADD_FAILURE() << "the frontend and its fake backends never settled";
}

bool FrontendRig::busy() {
    if (data_only) return platform.events_pending();
    return d.ring()->req_prod != d.ring()->req_cons || d.guest_pending() || kick || platform.events_pending();
}

void FrontendRig::settle() {
    for (int i = 0; i < 10000; ++i) {
        if (!loop.run_once(false) && !busy() && loop.queued() == 0) return;
    }
    ADD_FAILURE() << "the loop never settled";
}

bool FrontendRig::run_until(const std::function<bool()>& done, int max) {
    for (int i = 0; i < max; ++i) {
        if (done()) return true;
        loop.run_once(true);
    }
    return done();
}

bool FrontendRig::logged(std::string_view needle) const {
    for (const auto& l : log.lines) {
        if (l.find(needle) != std::string::npos) return true;
    }
    return false;
}

}  // namespace keel::test
