// Frontend: connect, close, reset and the supervisor that reconnects; the protocol is the
// driver's (hooks).
#include "keel/xenbus/frontend.h"

#include <algorithm>

#include "keel/log.h"

namespace keel::xenbus {

Frontend::Frontend(const char* driver, xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                   Platform& platform, const FrontendOptions& options)
    : xs_(xs), grants_(grants), platform_(platform), driver_(driver), options_(options),
      dev_(xs, node, options.xenbus) {
    if (options_.max_consecutive_errors == 0) options_.max_consecutive_errors = 1;
    // XenbusDevice calls this when a published connection ends, between Closing and Closed
    // (the backend left, or close()): the supervisor, if running, takes it from there.
    dev_.set_teardown([this] {
        release_connection();
        attention_.set();
    });
}

Frontend::~Frontend() = default;

void Frontend::shutdown() {
    supervisor_ = Task<void>{};  // its frame may be inside dev_.connect() or waiting on attention_
    supervising_ = false;
    dev_.set_teardown(nullptr);
    release_connection();
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
    healthy_ = false;
    consecutive_errors_ = 0;
    ++connects_;
    go_live();
    if (live_) ready_.set();  // go_live() may already have asked for a reset
    co_return r;
}

Task<Result<void>> Frontend::close() {
    stop_data_path(Error::closed);
    Result<void> r = co_await dev_.close();
    release_connection();  // no-op if the teardown already ran
    co_return r;
}

void Frontend::stop_data_path(Error why) {
    if (!live_) return;
    live_ = false;
    ready_.reset();
    go_down(why);
}

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
    stop_data_path(fail_with);  // the data path stops touching the rings now
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
                    supervising_ = false;
                    co_return;
                }
                KLOG_INFO("%s: %s: backend closed the connection; reconnecting", driver_, name);
            }
        } else {
            ++troubles_;
            if (++failures >= options_.max_connect_failures) {
                KLOG_ERROR("%s: %s: giving up after %u failed handshakes (last: %s)", driver_, name, failures,
                           to_string(r.error()));
                supervising_ = false;
                co_return;
            }
        }
        std::uint64_t delay = options_.reconnect_delay_ns;
        for (unsigned i = 1; i < troubles_ && delay < options_.max_reconnect_delay_ns; ++i) delay *= 2;
        co_await sleep_for(std::min(delay, options_.max_reconnect_delay_ns));
    }
}

}  // namespace keel::xenbus
