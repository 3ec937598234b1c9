// The frontend half of a xenbus handshake, shared by netfront and blkfront: find the devices the
// toolstack gave us, read where their backends live, and move the frontend's `state` node
// through the states of io/xenbus.h while the backend moves its own. See docs/xenbus.md.
//
//   std::uint32_t ids[8];
//   Result<std::size_t> n = co_await list_xenbus_devices(xs, "vif", ids);   // device/vif/<id>
//   Result<XenbusNode> node = co_await XenbusDevice::probe(xs, "device/vif/0");
//   XenbusDevice dev(xs, *node);                       // pinned: lives as long as the driver
//   dev.set_teardown([this] { revoke_grants(); });     // called when a connection ends
//   Result<void> r = co_await dev.connect([this](XenbusConfig& cfg) -> Task<Result<void>> {
//       Result<std::uint64_t> split = co_await dev_.read_backend_uint("feature-split-event-channels");
//       cfg.write_uint("tx-ring-ref", tx_ref_);        // staged; committed in one transaction
//       cfg.write_uint("event-channel", port_);
//       co_return Result<void>{};
//   });
//
// Everything the backend or the toolstack wrote is untrusted: paths, ids and states are
// validated, malformed ones are refused with an error value and a log line naming the device.
// Context: event loop only (XenStore callbacks, Timers, Tasks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "keel/function.h"
#include "keel/result.h"
#include "keel/task.h"
#include "keel/timer.h"
#include "keel/xen/xenstore.h"

namespace keel {

/// io/xenbus.h, enum xenbus_state: the values of a `state` node.
enum class XenbusState : std::uint8_t {
    unknown = 0,
    initialising = 1,
    init_wait = 2,
    initialised = 3,
    connected = 4,
    closing = 5,
    closed = 6,
    reconfiguring = 7,
    reconfigured = 8,
};

/// "Unknown", "Initialising", "InitWait", ... as io/xenbus.h names them.
const char* to_string(XenbusState s);
/// A `state` node's value: one decimal digit 0..8 and nothing else.
std::optional<XenbusState> parse_xenbus_state(std::string_view value);
/// A decimal number as the toolstack writes them: 1..20 digits, no sign, no spaces, no overflow.
std::optional<std::uint64_t> parse_xenstore_uint(std::string_view value);

/// Device ids under `device/<type>` (e.g. "vif", "vbd") of our domain's xenstore home: the
/// children whose names are decimal numbers below 2^32, in xenstored's order. Other names are
/// logged and skipped. A missing directory means no devices (0). At most out.size() ids are
/// written (the rest are logged as ignored); at most max_listed are looked at.
/// Error::invalid_argument for a type that is not [a-z0-9]+; xenstore errors as they come.
inline constexpr std::size_t max_listed_devices = 64;
Task<Result<std::size_t>> list_xenbus_devices(xen::XenStore& xs, std::string_view type,
                                              std::span<std::uint32_t> out);

/// Where a frontend device lives and where its backend is: what probe() validated.
struct XenbusNode {
    static constexpr std::size_t max_path = 128;  ///< bytes, without the NUL

    char nodename[max_path + 1] = {};  ///< as given to probe(), e.g. "device/vif/0"
    char backend[max_path + 1] = {};   ///< absolute, e.g. "/local/domain/0/backend/vif/7/0"
    std::uint16_t backend_id = 0;      ///< the backend's domain, <= 0x7FEF

    std::string_view nodename_view() const { return nodename; }
    std::string_view backend_view() const { return backend; }
};

/// What a driver writes into its frontend directory to connect: ring references, event
/// channels, features. Writes are staged here (keys relative to the device's nodename, e.g.
/// "tx-ring-ref" or "queue-0/event-channel") and committed by connect() in one transaction
/// together with state = Initialised, so the backend sees all of them or none.
/// The first bad write makes status() fail; later writes are ignored.
class XenbusConfig {
public:
    static constexpr std::size_t max_entries = 32;
    static constexpr std::size_t max_bytes = 2048;  ///< keys + values
    static constexpr std::size_t max_key = 64;

    /// Error::invalid_argument: key not [A-Za-z0-9_-] components joined by '/', longer than
    /// max_key, or "state" (the device's own); value containing a NUL.
    /// Error::no_space: more than max_entries writes or max_bytes.
    void write(std::string_view key, std::string_view value);
    void write_uint(std::string_view key, std::uint64_t value);

    Result<void> status() const { return error_; }
    std::size_t size() const { return count_; }
    std::string_view key(std::size_t i) const { return {bytes_ + slots_[i].key_at, slots_[i].key_len}; }
    std::string_view value(std::size_t i) const { return {bytes_ + slots_[i].value_at, slots_[i].value_len}; }

private:
    struct Slot {
        std::uint16_t key_at, key_len, value_at, value_len;
    };
    Slot slots_[max_entries] = {};
    char bytes_[max_bytes] = {};
    std::size_t used_ = 0;
    std::size_t count_ = 0;
    Error error_ = Error::ok;
};

/// One frontend device and its handshake with the backend.
///
/// The frontend's state machine (docs/xenbus.md has the diagram; io/blkif.h "STATE DIAGRAMS"
/// is the protocol):
///
///   Initialising --connect()--> [backend InitWait] --config + Initialised, one transaction-->
///   Initialised --[backend Connected]--> Connected --[backend leaves Connected] or close()-->
///   Closing --teardown--> Closed --connect()--> Initialising ...
///
/// State mirrors what this device last wrote to its `state` node. Every wait for the backend
/// is bounded (Options); a connect() that fails or times out leaves the device Closed (via
/// Closing if the backend could have seen our configuration) and returns the error.
///
/// The teardown callback runs exactly once for each connection that got as far as publishing
/// its configuration (Initialised), when that connection ends: the backend left Connected, the
/// driver called close(), or connect() failed after publishing. It runs after the frontend
/// wrote Closing and before it writes Closed: revoke grants, unbind event channels there.
///
/// Pinned: not copyable or movable (watches and running tasks point at it). Destroy the tasks
/// running connect() or close() before the device.
class XenbusDevice {
public:
    struct Options {
        std::uint64_t backend_timeout_ns = s(10);  ///< each wait for the backend in connect()
        std::uint64_t close_timeout_ns = s(10);    ///< close(): wait for the backend to close
        unsigned max_tx_attempts = 8;              ///< transactions tried on EAGAIN
        /// Publish the configuration with state = Connected instead of Initialised. Linux's
        /// netback (the one Xen admins run) does nothing on a frontend's Initialised and only
        /// connects once the frontend says Connected, as netfronts have always done; blkback
        /// connects on Initialised.
        bool publish_connected = false;
    };

    enum class State : std::uint8_t { initialising, initialised, connected, closing, closed };

    /// Read `<nodename>/backend` and `<nodename>/backend-id` and validate them: backend
    /// non-empty, absolute, a well-formed xenstore path of at most max_path bytes; backend-id a
    /// decimal domid <= 0x7FEF. Error::bad_input (logged) if not; Error::not_found if either
    /// node is missing; Error::invalid_argument for a malformed `nodename`.
    static Task<Result<XenbusNode>> probe(xen::XenStore& xs, std::string_view nodename);

    XenbusDevice(xen::XenStore& xs, const XenbusNode& node, Options options);
    XenbusDevice(xen::XenStore& xs, const XenbusNode& node) : XenbusDevice(xs, node, Options{}) {}
    ~XenbusDevice();
    XenbusDevice(const XenbusDevice&) = delete;
    XenbusDevice& operator=(const XenbusDevice&) = delete;

    std::string_view nodename() const { return node_.nodename_view(); }
    std::string_view backend_path() const { return node_.backend_view(); }
    std::uint16_t backend_id() const { return node_.backend_id; }
    State state() const { return state_; }
    /// The backend's state as last read (Unknown before the first read or if its node is gone).
    XenbusState backend_state() const { return backend_; }

    /// See the class comment. Replaces any earlier callback. It runs from the loop inside the
    /// device's own close sequence, so it must not destroy the device.
    void set_teardown(Function<void()> teardown) { teardown_ = std::move(teardown); }

    /// Run the handshake to Connected. `configure` is called once the backend is ready for our
    /// parameters (InitWait, or Initialised/Connected if it skipped InitWait); it may read the
    /// backend's features (read_backend*) and stages the frontend's writes in the XenbusConfig.
    /// Those are committed with state = Initialised in one transaction, retried from the start
    /// on a conflict (EAGAIN) up to Options::max_tx_attempts times without calling `configure`
    /// again. Then waits for the backend's Connected and writes Connected.
    /// Only from Initialising or Closed (a reconnect); else Error::busy.
    /// Errors: timed_out (a backend wait ran out), closed (the backend left while we waited
    /// for Connected), again (every transaction conflicted), what `configure` returned, or the
    /// xenstore error of a failed write.
    Task<Result<void>> connect(Function<Task<Result<void>>(XenbusConfig&)> configure);

    /// Close from our side: write Closing, wait (bounded) for the backend to reach Closing or
    /// Closed -- it stops using our grants first -- run the teardown, write Closed. Returns
    /// Error::timed_out if the backend did not answer (the device is Closed all the same).
    /// If a close is already in progress, waits for it. Error::busy while connect() runs.
    Task<Result<void>> close();

    /// The device's backend is now `node` (same nodename; what probe() reads after a resume in
    /// a new domain, where the backend path carries the new domid). Only while Closed or
    /// Initialising and no connect()/close() runs (else Error::busy); Error::invalid_argument
    /// for another nodename. Drops the watch on the old backend's state, so the next connect()
    /// watches the new one. Returns whether anything changed.
    Result<bool> retarget(const XenbusNode& node);

    /// After a resume in a new domain: the connection is gone with the old domain (its backend,
    /// grants and channels), and the toolstack made our nodes afresh. Become Closed without
    /// writing anything (the teardown runs if a configuration was published) and stop watching
    /// the old backend. Error::busy while connect() or close() runs (they end on their own, by
    /// their bounded waits).
    Result<void> forget_connection();
    /// The device is done with for good (its supervisor stopped): drop the watch on the
    /// backend's state, so that a dead device does not hold a watch (xenstored limits them per
    /// domain) nor read on every event of a backend that reuses its path.
    void stop_watching();

    /// Completes when the device is Closed (at once if it is).
    Event::WaitAwaiter wait_closed() { return closed_.wait(); }

    /// Read `<backend>/<key>` / `<nodename>/<key>` into `out` (no NUL added); returns the
    /// length. Error::no_space if it does not fit, not_found if missing, invalid_argument for a
    /// malformed key. The *_uint forms parse a decimal value (Error::bad_input if malformed).
    Task<Result<std::size_t>> read_backend(std::string_view key, std::span<char> out);
    Task<Result<std::uint64_t>> read_backend_uint(std::string_view key);
    Task<Result<std::size_t>> read_frontend(std::string_view key, std::span<char> out);
    Task<Result<std::uint64_t>> read_frontend_uint(std::string_view key);

private:
    Task<Result<void>> run_connect(Function<Task<Result<void>>(XenbusConfig&)>& configure);
    Task<Result<void>> publish(const XenbusConfig& cfg);
    Task<Result<void>> publish_once(const XenbusConfig& cfg);
    Task<Result<void>> wait_backend(bool (*ready)(XenbusState), bool fail_if_gone, const char* want,
                                    std::uint64_t timeout_ns);
    /// Write `next` to our state node; state_ follows only if the write succeeded.
    Task<Result<void>> enter(State next);
    /// Closing (if the backend may have seen our configuration), optionally a bounded wait for
    /// the backend to let go, teardown, Closed. Always ends Closed; returns the wait's result.
    Task<Result<void>> shut_down(std::uint64_t wait_backend_ns);
    Task<void> backend_left();
    Task<void> refresh_backend_state();
    Task<Result<std::size_t>> read_under(std::string_view dir, std::string_view key, std::span<char> out);
    Task<Result<std::uint64_t>> read_uint_under(std::string_view dir, std::string_view key);
    void on_backend_event();

    xen::XenStore& xs_;
    XenbusNode node_;
    Options options_;
    State state_ = State::initialising;
    XenbusState backend_ = XenbusState::unknown;
    bool backend_known_ = false;  // backend_ was read at least once
    bool busy_ = false;           // connect() or close() is running
    bool refreshing_ = false;     // refresh_ is running
    bool refresh_again_ = false;  // the watch fired while refresh_ ran
    bool watching_ = false;
    xen::WatchId watch_{};
    Function<void()> teardown_;
    // Events before tasks: members are destroyed in reverse order, and a task frame waiting on
    // an Event must go before the Event.
    Event backend_changed_;
    Event closed_;
    Task<void> refresh_;   // reads the backend's state after each watch event
    Task<void> shutdown_;  // the teardown sequence after the backend left Connected
};

/// "Initialising", "Initialised", "Connected", "Closing", "Closed".
const char* to_string(XenbusDevice::State s);

}  // namespace keel
