// The event loop and its timers.
#include "keel/loop.h"

#include "keel/panic.h"
#include "keel/timer.h"

namespace keel {
namespace {

// Context: one loop per vCPU; keel runs on one vCPU for now, so this is a plain global.
EventLoop* g_loop = nullptr;

}  // namespace

void set_loop(EventLoop* l) { g_loop = l; }

EventLoop& loop() {
    KASSERT(g_loop != nullptr);
    return *g_loop;
}

EventLoop* current_loop() { return g_loop; }

EventLoop::EventLoop(LoopPlatform& p) : platform_(p) {}

EventLoop::~EventLoop() {
    while (Timer* t = timers_.pop_front()) {
        t->loop_ = nullptr;
        t->cb_.reset();
    }
    wakeups_.clear();
    if (g_loop == this) g_loop = nullptr;
}

std::uint64_t EventLoop::now() const { return platform_.now_ns(); }

Result<void> EventLoop::post(Function<void()> fn) {
    if (!fn) return Error::invalid_argument;
    if (count_ == post_capacity) return Error::no_space;
    posts_[(head_ + count_) % post_capacity] = std::move(fn);
    ++count_;
    return {};
}

void EventLoop::schedule(Wakeup& w) {
    if (w.pending()) return;
    wakeups_.push_back(w);
}

void EventLoop::run() {
    while (!stop_) run_once(true);
    stop_ = false;
}

bool EventLoop::run_once(bool may_idle) {
    bool ran = platform_.poll_events();
    ran |= run_timers();
    ran |= run_posted();
    ran |= run_wakeups();

    if (!may_idle || stop_ || count_ != 0 || !wakeups_.empty()) return ran;
    Timer* first = timers_.front();
    if (first != nullptr && first->deadline_ <= platform_.now_ns()) return ran;  // due: go round again
    platform_.arm_timer(first != nullptr ? first->deadline_ : 0);
    platform_.idle();
    return ran;
}

std::uint64_t EventLoop::next_deadline() {
    Timer* first = timers_.front();
    return first != nullptr ? first->deadline_ : 0;
}

void EventLoop::add_timer(Timer& t) {
    // Most new timers expire after the ones already running, so search from the back.
    Timer* pos = timers_.back();
    while (pos != nullptr && pos->deadline_ > t.deadline_) pos = timers_.prev(*pos);
    if (pos == nullptr)
        timers_.push_front(t);
    else
        timers_.insert_after(*pos, t);
    t.loop_ = this;
}

bool EventLoop::run_timers() {
    Timer* first = timers_.front();
    if (first == nullptr) return false;
    const std::uint64_t now = platform_.now_ns();
    Timer* stop = first;
    while (stop != nullptr && stop->deadline_ <= now) stop = timers_.next(*stop);
    if (stop == first) return false;

    // Detach the due timers first: a callback that restarts its timer for "now" waits for the
    // next iteration instead of running again here. Timers on `due` stay active, so callbacks
    // may still cancel or restart them.
    IntrusiveList<Timer, detail::TimerTag> due;
    due.splice_back_until(timers_, stop);
    while (Timer* t = due.pop_front()) {
        t->loop_ = nullptr;
        Function<void()> cb = std::move(t->cb_);
        cb();  // may destroy *t: do not touch it after this
    }
    return true;
}

bool EventLoop::run_posted() {
    std::size_t n = count_;
    if (n == 0) return false;
    // count_ is re-checked: a function that spins the loop (run_once) may drain the queue.
    for (; n > 0 && count_ > 0; --n) {
        Function<void()> fn = std::move(posts_[head_]);
        head_ = (head_ + 1) % post_capacity;
        --count_;
        fn();
    }
    return true;
}

bool EventLoop::run_wakeups() {
    if (wakeups_.empty()) return false;
    IntrusiveList<Wakeup, detail::WakeupTag> batch;
    batch.splice_back(wakeups_);
    while (Wakeup* w = batch.pop_front()) w->fn_(w->ctx_);  // may destroy *w
    return true;
}

void Timer::start_at(std::uint64_t deadline_ns, Function<void()> cb) {
    cancel();
    cb_ = std::move(cb);
    deadline_ = deadline_ns;
    loop().add_timer(*this);
}

void Timer::start_in(std::uint64_t delay_ns, Function<void()> cb) {
    const std::uint64_t now = loop().now();
    const std::uint64_t deadline = delay_ns > ~0ull - now ? ~0ull : now + delay_ns;
    start_at(deadline, std::move(cb));
}

void Timer::cancel() {
    if (loop_ == nullptr) return;
    unlink();
    loop_ = nullptr;
    cb_.reset();
}

}  // namespace keel
