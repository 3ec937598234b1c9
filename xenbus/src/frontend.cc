// Frontend: connect, close, reset and the supervisor that reconnects; the protocol is the
// driver's (hooks).
#include "keel/xenbus/frontend.h"

#include <algorithm>

#include "keel/log.h"
#include "keel/panic.h"

namespace keel::xenbus {
namespace {
Frontend* g_frontends = nullptr;  // linked through next_frontend_; a handful at most
}  // namespace

Frontend::Frontend(const char* driver, xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                   Platform& platform, const FrontendOptions& options)
    : xs_(xs), grants_(grants), platform_(platform), driver_(driver), options_(options),
      dev_(xs, node, options.xenbus) {
    if (options_.max_consecutive_errors == 0) options_.max_consecutive_errors = 1;
    next_frontend_ = g_frontends;
    g_frontends = this;
    // XenbusDevice calls this when a published connection ends, between Closing and Closed
    // (the backend left, or close()): the supervisor, if running, takes it from there.
    dev_.set_teardown([this] {
        release_connection();
        attention_.set();
    });
}

Frontend::~Frontend() {
    for (Frontend** p = &g_frontends; *p != nullptr; p = &(*p)->next_frontend_) {
        if (*p == this) {
            *p = next_frontend_;
            break;
        }
    }
    // The hooks are gone: nothing may run them from now on (a supervisor left behind would
    // resume into a destroyed driver; the deferred go_down withdraws itself with its Wakeup).
    supervisor_ = Task<void>{};
    dev_.set_teardown(nullptr);
    answer_ready_waiters(Error::cancelled);  // they resume later, touching nothing of ours
    KASSERT(!connection_ && !live_);  // the derived destructor did not call shutdown(): our bug
}

void Frontend::shutdown() {
    supervisor_ = Task<void>{};  // its frame may be inside dev_.connect() or waiting on attention_
    supervising_ = false;
    dev_.set_teardown(nullptr);
    release_connection();
    deferred_down_.cancel();
}

Task<Result<void>> Frontend::init() {
    if (initialised_) co_return Error::busy;
    Result<void> r = co_await prepare();
    if (r) initialised_ = true;
    co_return r;
}

Task<Result<void>> Frontend::backend_connected() { co_return Result<void>{}; }

// ---- connect and close ------------------------------------------------------------------------

Task<Result<void>> Frontend::connect() {
    if (!initialised_) co_return Error::invalid_argument;
    if (retired_) co_return Error::closed;  // its pages are gone
    if (connection_ || live_) co_return Error::busy;
    reset_wanted_ = false;
    Result<void> r =
        co_await dev_.connect([this](XenbusConfig& cfg) -> Task<Result<void>> { return configure(cfg); });
    if (!r) {
        // Teardown ran if the configuration was published; if not, undo what configure() did.
        release_connection();
        co_return r;
    }
    r = co_await backend_connected();
    if (r && !connection_) r = Error::closed;  // the backend left meanwhile (teardown ran)
    if (!r) {
        (void)co_await dev_.close();
        release_connection();
        co_return r;
    }
    live_ = true;
    resuming_ = false;
    healthy_ = false;
    consecutive_errors_ = 0;
    ++connects_;
    go_live();
    if (live_) answer_ready_waiters(Error::ok);  // go_live() may already have asked for a reset
    co_return r;
}

Task<Result<void>> Frontend::close() {
    stop_data_path(Error::closed);
    Result<void> r = co_await dev_.close();
    release_connection();  // no-op if the teardown already ran
    co_return r;
}

void Frontend::stop_data_path(Error why) {
    if (!live_) {
        finish_deferred_down();  // a reset's go_down() runs before anything else happens
        return;
    }
    live_ = false;
    go_down(why);
}

void Frontend::finish_deferred_down() {
    if (!down_pending_) return;
    down_pending_ = false;
    deferred_down_.cancel();
    go_down(down_why_);
    attention_.set();
}

void Frontend::on_deferred_down(void* self) { static_cast<Frontend*>(self)->finish_deferred_down(); }

void Frontend::release_connection() {
    stop_data_path(Error::closed);
    if (!connection_) return;
    connection_ = false;
    release();
}

// ---- resets ------------------------------------------------------------------------------------

void Frontend::report_reset(const char* why) {
    KLOG_ERROR("%s: %s: resetting the device: %s", driver_, dev_.nodename().data(), why);
}

void Frontend::request_reset(const char* why, Error fail_with) {
    if (!live_) return;
    report_reset(why);
    reset_wanted_ = true;
    ++resets_;
    // The data path stops touching the rings now; the caller (transmit(), an event handler)
    // returns an error. go_down() runs the driver's callbacks, which may call back into the
    // layer above that is still inside this very call (its transmit pump): so from the loop.
    live_ = false;
    down_pending_ = true;
    down_why_ = fail_with;
    loop().schedule(deferred_down_);
}

bool Frontend::reset_storm() {
    if (options_.max_resets == 0) return false;
    const std::uint64_t now = loop().now();
    if (window_resets_ == 0 || now - window_start_ > options_.reset_window_ns) {
        window_start_ = now;
        window_resets_ = 0;
    }
    return ++window_resets_ >= options_.max_resets;
}

void Frontend::give_up() {
    given_up_ = true;
    stop_supervising();
}

void Frontend::stop_supervising() {
    supervising_ = false;
    resuming_ = false;
    answer_ready_waiters(Error::closed);
    release_connection();  // already released on every path here; retire() relies on it
    dev_.stop_watching();
    if (!retired_) {
        retired_ = true;
        retire();
    }
}

void Frontend::answer_ready_waiters(Error e) {
    while (ReadyAwaiter* w = ready_waiters_.pop_front()) w->answer(e);
}

// ---- resume in a new domain ----------------------------------------------------------------

std::size_t Frontend::resume_all_in_new_domain() {
    std::size_t n = 0;
    for (Frontend* f = g_frontends; f != nullptr; f = f->next_frontend_) {
        f->resumed_in_new_domain();
        ++n;
    }
    return n;
}

std::size_t Frontend::drain_all_before_suspend(std::uint64_t deadline_ns) {
    std::size_t busy = 0;
    for (Frontend* f = g_frontends; f != nullptr; f = f->next_frontend_) {
        bool left = false;
        while (f->live_ && (left = f->drain_step()) && loop().now() < deadline_ns) {
        }
        if (left && f->live_) {
            KLOG_WARN("%s: %s: requests still in flight at suspend; issued again after the resume", f->driver_,
                      f->dev_.nodename().data());
            ++busy;
        }
    }
    return busy;
}

void Frontend::resumed_in_new_domain() {
    if (!supervising_) return;
    resuming_ = true;
    // The calls in flight are told first, with `again` (the driver issues them again once
    // connected); the teardown's own go_down() then finds the data path stopped.
    stop_data_path(Error::again);
    if (Result<void> r = dev_.forget_connection(); !r) {
        // A handshake or a close is running against the old backend: it fails by its bounded
        // waits, and the supervisor then finds the new backend by probing.
        KLOG_INFO("%s: %s: resumed in a new domain while (dis)connecting", driver_, dev_.nodename().data());
    }
    release_connection();  // no-op if the teardown ran
    troubles_ = 0;
    attention_.set();
}

// ---- supervisor ----------------------------------------------------------------------------------

void Frontend::start() {
    if (started_ || !initialised_) return;
    started_ = true;
    supervising_ = true;
    supervisor_ = supervise();
    supervisor_.start();
}

Task<void> Frontend::supervise() {
    const char* name = dev_.nodename().data();  // XenbusNode keeps it NUL-terminated
    unsigned failures = 0;
    for (;;) {
        attention_.reset();
        Result<void> r = co_await connect();
        if (r) {
            failures = 0;
            if (options_.watchdog_ns != 0) {
                while (!co_await attention_.wait_for(options_.watchdog_ns)) watchdog();
            } else {
                co_await attention_.wait();
            }
            const bool reset = reset_wanted_;
            (void)co_await close();
            if (reset && reset_storm()) {
                KLOG_ERROR("%s: %s: giving up on the device: %u resets within %llu s; the backend keeps breaking "
                           "the protocol",
                           driver_, name, window_resets_,
                           static_cast<unsigned long long>(options_.reset_window_ns / s(1)));
                give_up();
                co_return;
            }
            if (reset || !healthy_) {
                ++troubles_;
            } else {
                troubles_ = 0;
            }
            if (!reset) {
                // The backend closed. If the toolstack removed the device, stop here.
                Result<XenbusNode> node = co_await XenbusDevice::probe(xs_, dev_.nodename());
                if (!node) {
                    KLOG_WARN("%s: %s: device gone (%s); not reconnecting", driver_, name, to_string(node.error()));
                    stop_supervising();
                    co_return;
                }
                // After a resume in a new domain (xl restore, migration) the device has a new
                // backend, under a path with the new domid: no trouble, reconnect at once.
                Result<bool> moved = dev_.retarget(*node);
                if (moved && *moved) {
                    troubles_ = 0;
                    KLOG_INFO("%s: %s: the device has a new backend; connecting to it", driver_, name);
                    continue;
                }
                // xl network-detach / block-detach: libxl sets the backend's `online` to 0, asks
                // it to close, and removes the nodes once it is Closed. Reconnecting would race
                // with that removal (and ask a closing backend to come back).
                Result<std::uint64_t> online = co_await dev_.read_backend_uint("online");
                if (online && *online == 0) {
                    KLOG_WARN("%s: %s: detached by the toolstack (backend online = 0); not reconnecting", driver_,
                              name);
                    stop_supervising();
                    co_return;
                }
                KLOG_INFO("%s: %s: backend closed the connection; reconnecting", driver_, name);
            }
        } else {
            ++troubles_;
            // A resume in a new domain cut this handshake (or came before it, during a
            // hot-plug walk): the device's backend moved, and the old path only fails again.
            if (Result<XenbusNode> node = co_await XenbusDevice::probe(xs_, dev_.nodename()); node) {
                Result<bool> moved = dev_.retarget(*node);
                if (moved && *moved) {
                    failures = 0;
                    troubles_ = 0;
                    KLOG_INFO("%s: %s: the device has a new backend; connecting to it", driver_, name);
                    continue;
                }
            }
            if (++failures >= options_.max_connect_failures) {
                KLOG_ERROR("%s: %s: giving up after %u failed handshakes (last: %s)", driver_, name, failures,
                           to_string(r.error()));
                give_up();
                co_return;
            }
        }
        std::uint64_t delay = options_.reconnect_delay_ns;
        for (unsigned i = 1; i < troubles_ && delay < options_.max_reconnect_delay_ns; ++i) delay *= 2;
        co_await sleep_for(std::min(delay, options_.max_reconnect_delay_ns));
    }
}

}  // namespace keel::xenbus
