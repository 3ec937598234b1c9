// The part of a PV frontend that does not depend on its protocol: the XenbusDevice, the
// connection supervisor, resets and protocol-error counting, and the waits for a connection.
// A driver (netfront, blkfront) derives from Frontend and implements only its protocol
// through the hooks below; its data path stays non-virtual (it calls the inline
// good_response() / protocol_error() and reads live()).
//
//   class Netfront final : public xenbus::Frontend {
//       Task<Result<void>> prepare() override;                    // init(): read mac, alloc pages
//       Task<Result<void>> configure(XenbusConfig& cfg) override; // features, grants, keys
//       void go_live() override;  void go_down(Error why) override;  void release() override;
//   };
//   nic.init();  nic.start();   // or connect()/close() by hand (tests)
//
// The supervisor (start()) is the single place that (re)connects: it connects, waits while the
// connection lives (calling watchdog() every FrontendOptions::watchdog_ns), closes through
// xenbus when the data path asks for a reset or the backend leaves, probes the device node (a
// device the toolstack removed is not reconnected) and connects again after a back-off that
// doubles per trouble in a row (a failed handshake, a reset, or a connection that never saw a
// good response) up to max_reconnect_delay_ns. After max_connect_failures failed handshakes in
// a row, or max_resets resets within reset_window_ns (a backend that keeps breaking the
// protocol), it gives up (supervising() turns false, given_up() true) with one log line.
//
// No handler runs inside the call that caused it: a reset asked for from the data path
// (protocol_error(), request_reset(), typically inside the driver's transmit() or an event
// handler) stops the data path at once (live() turns false, the call returns its error) but
// go_down() -- which runs the driver's link callbacks and fails its waiters -- runs later, from
// the loop, as does the supervisor's wake-up.
//
// Suspend/resume and hot-plug are this same mechanism, not new paths. A resume in a new domain
// (resume_all_in_new_domain(), docs/lifecycle.md) is "every supervisor's connection ended;
// reconnect now, without back-off" (the backend of the new domain is another backend: the hooks
// already revoke every grant in release() and re-grant in configure()). A hot-plug is discovery
// (keel/xenbus/discovery.h) watching device/<class> and bringing up ids not known yet through
// the same init() and start(); an unplug is the supervisor, after the backend closed, finding
// the device node gone or the backend's `online` node 0 (libxl's detach sets it before asking
// the backend to close and removes the nodes only once it is Closed): it stops there, the
// device Closed, and does not reconnect. A device stopped for good (gone, detached or given
// up) is retire()d: the driver gives back its pages, and only its object stays. Drivers must
// therefore keep everything connection-specific in configure()/release() and everything
// device-specific in prepare() (undone by retire()).
//
// Context: event loop only; hooks run from the supervisor's Task or from connect()/close().
#pragma once

#include <cstdint>
#include <string_view>

#include "keel/intrusive_list.h"
#include "keel/loop.h"
#include "keel/result.h"
#include "keel/task.h"
#include "keel/timer.h"
#include "keel/xen/grant_table.h"
#include "keel/xen/xenstore.h"
#include "keel/xenbus/platform.h"
#include "keel/xenbus/xenbus.h"

namespace keel::xenbus {

/// How a Frontend supervises its connection. Each driver has its own defaults.
struct FrontendOptions {
    /// Protocol errors in a row (no good response between them) before the device is reset.
    /// 0 is taken as 1.
    unsigned max_consecutive_errors = 8;
    /// Delay before reconnecting after a reset or a failed connect; doubles per trouble in a
    /// row, up to max_reconnect_delay_ns.
    std::uint64_t reconnect_delay_ns = ms(100);
    std::uint64_t max_reconnect_delay_ns = s(5);
    /// Failed handshakes in a row after which the supervisor gives up.
    unsigned max_connect_failures = 8;
    /// Resets (the data path asked for them) within reset_window_ns after which the supervisor
    /// gives up on the device: a backend that keeps misbehaving is not reconnected forever.
    /// 0: never give up for resets.
    unsigned max_resets = 20;
    std::uint64_t reset_window_ns = s(600);
    /// While connected, the supervisor calls watchdog() this often; 0: never.
    std::uint64_t watchdog_ns = 0;
    /// The handshake's timeouts and conventions.
    XenbusDevice::Options xenbus{};
};

/// The most devices of one class a guest takes at once (discovery logs and leaves alone the
/// rest).
inline constexpr std::size_t max_devices = 8;
/// The most devices of one class a guest takes over its life, detached ones included: a
/// detached device keeps its object (services keep pointers to it; netfront's is about 21 KiB,
/// blkfront's 64 KiB) but gives back its pages (retire()), and stays in its class's registry
/// with its counters. Hot-plug beyond it is refused with a line.
inline constexpr std::size_t max_attached = 32;

class Frontend {
public:
    /// After a resume in a new domain: every supervised Frontend's connection is over (its
    /// backend, grants and channels stayed with the old domain). Each stops its data path
    /// (go_down(Error::again): the driver's calls issue what was in flight again), releases the
    /// connection without xenbus, and its supervisor connects to the device's new backend at
    /// once. Returns how many were told.
    static std::size_t resume_all_in_new_domain();
    /// Before a suspend (the loop is not running; interrupts still on): every live Frontend
    /// takes the answers to its requests in flight (drain_step()) until none is left or
    /// `deadline_ns` (loop().now()) passes, so the old backend has finished with them before
    /// the domain moves; a write an old backend completed late could otherwise land after the
    /// new domain wrote the same blocks again. Returns the Frontends that still had some.
    static std::size_t drain_all_before_suspend(std::uint64_t deadline_ns);

    /// The derived destructor must call shutdown() first (the hooks are gone by now). Stops
    /// the supervisor and withdraws a deferred go_down() in any case; a connection left set up
    /// by a derived class that did not call shutdown() is our bug (panics).
    virtual ~Frontend();
    Frontend(const Frontend&) = delete;
    Frontend& operator=(const Frontend&) = delete;

    /// Device-specific setup, once (the driver's prepare(): read its frontend nodes, allocate
    /// its pages). Error::busy if called twice; the driver's errors otherwise.
    Task<Result<void>> init();
    /// Spawn the supervisor (see the header comment). Once, after a successful init().
    void start();
    /// One handshake: the driver's configure() (features, grants, channels, keys) committed
    /// through XenbusDevice::connect, then its backend_connected(), then the data path starts
    /// (go_live()). Error::invalid_argument before init(), busy while connected; errors from
    /// XenbusDevice::connect and the hooks. On error nothing stays granted (release() ran).
    Task<Result<void>> connect();
    /// Stop the data path (go_down(Error::closed)) and close through xenbus (the teardown runs
    /// release()).
    Task<Result<void>> close();

    class ReadyAwaiter;
    /// True while the data path runs (connected and not being reset).
    bool live() const { return live_; }
    /// co_await: Result<void> once the data path runs (at once if it does); Error::closed when
    /// the supervisor gave up or found the device gone, Error::cancelled when the Frontend is
    /// destroyed meanwhile (the waiter then touches nothing of it), Error::timed_out after
    /// `timeout_ns` (0: no timeout). Discovery waits so for a first connection.
    ReadyAwaiter wait_ready(std::uint64_t timeout_ns = 0);
    /// The supervisor runs (false before start(), after it gave up or found the device gone).
    bool supervising() const { return supervising_; }
    std::string_view nodename() const { return dev_.nodename(); }
    XenbusDevice& xenbus() { return dev_; }
    /// Handshakes that reached the data path; resets the data path asked for.
    std::uint64_t connects() const { return connects_; }
    std::uint64_t resets() const { return resets_; }
    /// The supervisor gave up on the device (failed handshakes or a reset storm).
    bool given_up() const { return given_up_; }
    /// The supervisor stopped for good (the device is gone or detached, or given up) and the
    /// driver gave back its pages (retire()): connect() fails with Error::closed from now on.
    bool retired() const { return retired_; }
    /// From a resume in a new domain until the data path runs again (or the supervisor stops):
    /// a driver's calls wait for the connection (wait_ready) instead of failing, and those the
    /// resume stopped (go_down(Error::again)) are issued again.
    bool resuming() const { return resuming_; }
    /// A driver's Stats with the supervisor's counters filled in (its `connects`, `resets`,
    /// and `given_up` if it has one).
    template <typename Stats>
    Stats with_connection_counts(Stats s) const {
        s.connects = connects_;
        s.resets = resets_;
        if constexpr (requires { s.given_up; }) s.given_up = given_up_ ? 1 : 0;
        return s;
    }
    /// The protocol's name in logs ("netfront").
    const char* driver() const { return driver_; }

protected:
    Frontend(const char* driver, xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
             Platform& platform, const FrontendOptions& options);

    // ---- hooks (control path)
    /// init()'s device-specific part.
    virtual Task<Result<void>> prepare() = 0;
    /// The backend is ready for our parameters: read its features, grant, open channels (call
    /// begin_connection() before the first resource, so release() undoes a partial setup),
    /// stage the keys in `cfg`. On error, release_connection() before returning.
    virtual Task<Result<void>> configure(XenbusConfig& cfg) = 0;
    /// The backend said Connected: read what it publishes then (blkfront's disk properties).
    virtual Task<Result<void>> backend_connected();
    /// The data path starts (live() is true): kick the backend, tell the users.
    virtual void go_live() = 0;
    /// The data path stopped (a reset, close(), or the backend left): fail or park what is in
    /// flight with `why`, tell the users. The rings may still be mapped by the backend.
    virtual void go_down(Error why) = 0;
    /// The connection is over (the backend let go, or is gone): close channels, revoke grants
    /// (a grant still in use is leaked, never reused), detach the rings.
    virtual void release() = 0;
    /// Once, when the supervisor stops for good (the device is gone or detached, or it gave up
    /// on it), after the connection was released: free what prepare() allocated, except pages
    /// the backend still maps (they leak, never reused). The object itself stays (callers keep
    /// pointers); its calls fail. Default: nothing.
    virtual void retire() {}
    /// Every FrontendOptions::watchdog_ns while connected (supervised only).
    virtual void watchdog() {}
    /// drain_all_before_suspend(): if requests are in flight, wait (bounded, a second at most)
    /// for the backend's event and take the responses; true while some are still in flight.
    /// Default: nothing worth waiting for (netfront: TCP sends a lost frame again).
    virtual bool drain_step() { return false; }
    /// Log why the device is being reset (default: one line with `why`).
    virtual void report_reset(const char* why);

    // ---- for the driver
    /// From the data path: a response broke the protocol. One more in a row; at
    /// max_consecutive_errors the device is reset.
    void protocol_error() {
        if (++consecutive_errors_ >= options_.max_consecutive_errors) {
            request_reset("too many protocol errors in a row");
        }
    }
    /// From the data path: a response was fine; the run of protocol errors ends.
    void good_response() {
        consecutive_errors_ = 0;
        healthy_ = true;
    }
    /// Stop the data path now (live() turns false: the caller returns an error) and have the
    /// supervisor close and reconnect the device. go_down(fail_with) runs from the loop, not
    /// from inside this call (before release() in any case). No-op unless live().
    void request_reset(const char* why, Error fail_with = Error::closed);
    /// configure(): resources are being set up; from here release_connection() runs release().
    void begin_connection() { connection_ = true; }
    bool has_connection() const { return connection_; }
    /// Stop the data path, then release() if a connection was set up. Idempotent.
    void release_connection();
    /// For the derived destructor, first thing: stop the supervisor and release the
    /// connection without xenbus (the hooks still reach the driver).
    void shutdown();

    xen::XenStore& xs_;
    xen::GrantTable& grants_;
    Platform& platform_;
    const char* const driver_;

private:
    void resumed_in_new_domain();
    Frontend* next_frontend_ = nullptr;  ///< every Frontend alive, for resume_all_in_new_domain()
    Task<void> supervise();
    void stop_data_path(Error why);
    /// Run a go_down() that request_reset() deferred, if one is pending.
    void finish_deferred_down();
    static void on_deferred_down(void* self);
    /// One more reset: true if that makes max_resets within reset_window_ns.
    bool reset_storm();
    void give_up();
    /// The supervisor stops for good (gave up, device gone): the ready waiters are answered,
    /// the connection released and the driver retire()d.
    void stop_supervising();
    void answer_ready_waiters(Error e);

    FrontendOptions options_;
    bool initialised_ = false;
    bool started_ = false;
    bool supervising_ = false;
    bool live_ = false;          ///< the data path may touch the rings
    bool reset_wanted_ = false;  ///< the data path asked for a reset
    bool connection_ = false;    ///< grants and channels are (being) set up
    bool healthy_ = false;       ///< a good response arrived on this connection
    bool down_pending_ = false;  ///< request_reset() stopped the data path; go_down() not run yet
    bool given_up_ = false;
    bool retired_ = false;
    bool resuming_ = false;  ///< resumed in a new domain, not live again yet
    Error down_why_ = Error::closed;
    unsigned window_resets_ = 0;        ///< resets since window_start_
    std::uint64_t window_start_ = 0;
    unsigned consecutive_errors_ = 0;
    unsigned troubles_ = 0;  ///< failed connects / resets in a row (reconnect back-off)
    std::uint64_t connects_ = 0;
    std::uint64_t resets_ = 0;

protected:
    // Declared last: destroyed first (the supervisor's frame may wait on attention_ or inside
    // dev_.connect()).
    XenbusDevice dev_;

private:
    IntrusiveList<ReadyAwaiter> ready_waiters_;
    Event attention_;  ///< set when the connection ended or a reset is wanted
    Wakeup deferred_down_{&on_deferred_down, this};  ///< withdrawn when destroyed
    Task<void> supervisor_;
};

/// What wait_ready() returns. Lives in the waiting task's frame; the Frontend answers it (and
/// unlinks it) when the data path starts, when it stops supervising for good, or when it is
/// destroyed; the task resumes from the loop with the answer alone.
class [[nodiscard]] Frontend::ReadyAwaiter : public ListNode<> {
public:
    ReadyAwaiter(Frontend& f, std::uint64_t deadline_ns) : f_(&f), deadline_(deadline_ns) {}
    ReadyAwaiter(const ReadyAwaiter&) = delete;
    ReadyAwaiter& operator=(const ReadyAwaiter&) = delete;

    bool await_ready() noexcept {
        if (f_->live_) return true;
        if (f_->given_up_ || (f_->started_ && !f_->supervising_)) result_ = Error::closed;
        return result_ != Error::ok;
    }
    void await_suspend(std::coroutine_handle<> h) {
        h_ = h;
        f_->ready_waiters_.push_back(*this);
        if (deadline_ != 0) timer_.start_at(deadline_, [this] { answer(Error::timed_out); });
    }
    Result<void> await_resume() const noexcept {
        if (result_ != Error::ok) return result_;
        return {};
    }

private:
    friend Frontend;
    void answer(Error e) {
        if (linked()) unlink();
        timer_.cancel();
        result_ = e;
        loop().schedule(wakeup_);
    }
    static void resume(void* self) { static_cast<ReadyAwaiter*>(self)->h_.resume(); }

    Frontend* f_;  ///< read before suspending only: the answer may come from its destructor
    std::uint64_t deadline_;
    Error result_ = Error::ok;
    std::coroutine_handle<> h_;
    Timer timer_;
    Wakeup wakeup_{&resume, this};
};

inline Frontend::ReadyAwaiter Frontend::wait_ready(std::uint64_t timeout_ns) {
    if (timeout_ns == 0) return ReadyAwaiter(*this, 0);
    const std::uint64_t now = loop().now();
    return ReadyAwaiter(*this, timeout_ns > ~0ull - now ? ~0ull : now + timeout_ns);
}

}  // namespace keel::xenbus
