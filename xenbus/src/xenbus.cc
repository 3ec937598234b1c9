// The xenbus frontend handshake: device discovery, backend validation, and the frontend state
// machine of keel/xenbus.h over the callback XenStore client, written as Tasks.
#include "keel/xenbus/xenbus.h"

#include <cstring>

#include "keel/format.h"
#include "keel/log.h"

namespace keel {

namespace {

using Tx = xen::XenStore::Tx;

constexpr std::size_t max_value = 256;   // the longest value this module reads
constexpr std::size_t max_logged = 32;   // untrusted text in a log line: at most this much
constexpr std::uint64_t max_domid = 0x7FEF;  // xen.h: DOMID_FIRST_RESERVED - 1

/// Untrusted text made fit for a log line: cut to max_logged bytes, non-printables as '?'.
class Printable {
public:
    explicit Printable(std::string_view s) {
        std::size_t n = 0;
        for (char c : s) {
            if (n == max_logged) {
                std::memcpy(buf_ + n, "...", 3);
                n += 3;
                break;
            }
            buf_[n++] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
        buf_[n] = '\0';
    }
    const char* c_str() const { return buf_; }

private:
    char buf_[max_logged + 4];
};

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/// Components of [A-Za-z0-9_-@] joined by single '/', no empty component (xenstored's path
/// characters, docs/misc/xenstore.txt). `absolute`: must start with '/', else must not.
bool valid_path(std::string_view p, bool absolute, std::size_t max_len) {
    if (p.empty() || p.size() > max_len) return false;
    if ((p.front() == '/') != absolute) return false;
    if (absolute) p.remove_prefix(1);
    if (p.empty() || p.back() == '/') return false;
    char prev = '/';
    for (char c : p) {
        if (c == '/') {
            if (prev == '/') return false;
        } else if (!is_alnum(c) && c != '_' && c != '-' && c != '@') {
            return false;
        }
        prev = c;
    }
    return true;
}

bool valid_key(std::string_view key) { return valid_path(key, false, XenbusConfig::max_key); }

/// "<dir>/<leaf>", for paths built from validated parts (so it always fits).
class Path {
public:
    Path(std::string_view dir, std::string_view leaf) {
        KASSERT(dir.size() + 1 + leaf.size() <= sizeof buf_);
        std::memcpy(buf_, dir.data(), dir.size());
        buf_[dir.size()] = '/';
        std::memcpy(buf_ + dir.size() + 1, leaf.data(), leaf.size());
        len_ = dir.size() + 1 + leaf.size();
    }
    std::string_view view() const { return {buf_, len_}; }

private:
    char buf_[XenbusNode::max_path + 1 + XenbusConfig::max_key + 8];
    std::size_t len_;
};

std::string_view state_value(XenbusState s) {
    static constexpr char digits[] = "012345678";
    return {&digits[static_cast<unsigned>(s)], 1};
}

XenbusState wire_state(XenbusDevice::State s) {
    switch (s) {
    case XenbusDevice::State::initialising: return XenbusState::initialising;
    case XenbusDevice::State::initialised: return XenbusState::initialised;
    case XenbusDevice::State::connected: return XenbusState::connected;
    case XenbusDevice::State::closing: return XenbusState::closing;
    case XenbusDevice::State::closed: return XenbusState::closed;
    }
    return XenbusState::unknown;
}

/// The frontend's legal moves (a wrong one is our bug). io/blkif.h, "STATE DIAGRAMS".
bool legal(XenbusDevice::State from, XenbusDevice::State to) {
    using S = XenbusDevice::State;
    switch (to) {
    case S::initialising: return from == S::initialising || from == S::closed;
    case S::initialised: return from == S::initialising;
    case S::connected: return from == S::initialised;
    case S::closing: return from == S::initialised || from == S::connected;
    case S::closed: return from == S::initialising || from == S::closing;
    }
    return false;
}

bool ready_for_config(XenbusState s) {
    // io/blkif.h: a backend may skip InitWait and go straight to Initialised (or on).
    return s == XenbusState::init_wait || s == XenbusState::initialised || s == XenbusState::connected;
}
bool is_connected(XenbusState s) { return s == XenbusState::connected; }
bool has_let_go(XenbusState s) {
    return s == XenbusState::closing || s == XenbusState::closed || s == XenbusState::unknown;
}

// ---- XenStore's callbacks as awaitables ------------------------------------------------------

struct ReadReply {
    Error error = Error::ok;
    std::size_t len = 0;
    char data[max_value];
};

/// XS_READ into `out`. The value handed to XenStore's callback dies with the callback, so it is
/// copied into the completion's own state (which outlives this task if the task is destroyed).
Task<Result<std::size_t>> xs_read(xen::XenStore& xs, std::string_view path, std::span<char> out) {
    ReadReply reply = co_await await_callback<ReadReply>([&](Completion<ReadReply> done) {
        // The completion is too big to ride inside XenStore's callback: box it. The box lives
        // until xenstored answers (XenStore always completes a request).
        auto* box = new Completion<ReadReply>(std::move(done));
        xs.read(path, [box](Result<std::string_view> v) {
            ReadReply r;
            if (!v) {
                r.error = v.error();
            } else if (v->size() > sizeof r.data) {
                r.error = Error::no_space;
            } else {
                std::memcpy(r.data, v->data(), v->size());
                r.len = v->size();
            }
            (*box)(std::move(r));
            delete box;
        });
    });
    if (reply.error != Error::ok) co_return reply.error;
    if (reply.len > out.size()) co_return Error::no_space;
    std::memcpy(out.data(), reply.data, reply.len);
    co_return reply.len;
}

Task<Result<void>> xs_write(xen::XenStore& xs, std::string_view path, std::string_view value, Tx tx) {
    co_return co_await await_callback<Result<void>>(
        [&](Completion<Result<void>> done) { xs.write(path, value, std::move(done), tx); });
}

Task<Result<Tx>> xs_transaction_start(xen::XenStore& xs) {
    co_return co_await await_callback<Result<Tx>>(
        [&](Completion<Result<Tx>> done) { xs.transaction_start(std::move(done)); });
}

Task<Result<void>> xs_transaction_end(xen::XenStore& xs, Tx tx, bool commit) {
    co_return co_await await_callback<Result<void>>(
        [&](Completion<Result<void>> done) { xs.transaction_end(tx, commit, std::move(done)); });
}

struct DirReply {
    Error error = Error::ok;
    std::size_t count = 0;    // ids in `ids`
    std::size_t dropped = 0;  // valid ids beyond max_listed_devices
    std::size_t skipped = 0;  // names that are not ids
    char first_skipped[max_logged + 4] = {};
    std::uint32_t ids[max_listed_devices];
};

Task<DirReply> xs_device_ids(xen::XenStore& xs, std::string_view path) {
    co_return co_await await_callback<DirReply>([&](Completion<DirReply> done) {
        auto* box = new Completion<DirReply>(std::move(done));
        xs.directory(path, [box](Result<xen::DirList> list) {
            DirReply r;
            if (!list) {
                r.error = list.error();
            } else {
                for (std::string_view name : *list) {
                    const auto id = parse_xenstore_uint(name);
                    if (!id || *id > 0xFFFF'FFFFull) {
                        if (r.skipped++ == 0) {
                            Printable p(name);
                            std::memcpy(r.first_skipped, p.c_str(), std::strlen(p.c_str()) + 1);
                        }
                    } else if (r.count < max_listed_devices) {
                        r.ids[r.count++] = static_cast<std::uint32_t>(*id);
                    } else {
                        ++r.dropped;
                    }
                }
            }
            (*box)(std::move(r));
            delete box;
        });
    });
}

/// Frees `busy` when the coroutine frame holding it ends or is destroyed.
class BusyGuard {
public:
    explicit BusyGuard(bool& busy) : busy_(busy) { busy_ = true; }
    ~BusyGuard() { busy_ = false; }
    BusyGuard(const BusyGuard&) = delete;
    BusyGuard& operator=(const BusyGuard&) = delete;

private:
    bool& busy_;
};

}  // namespace

// ---- vocabulary -----------------------------------------------------------------------------

const char* to_string(XenbusState s) {
    switch (s) {
    case XenbusState::unknown: return "Unknown";
    case XenbusState::initialising: return "Initialising";
    case XenbusState::init_wait: return "InitWait";
    case XenbusState::initialised: return "Initialised";
    case XenbusState::connected: return "Connected";
    case XenbusState::closing: return "Closing";
    case XenbusState::closed: return "Closed";
    case XenbusState::reconfiguring: return "Reconfiguring";
    case XenbusState::reconfigured: return "Reconfigured";
    }
    return "?";
}

const char* to_string(XenbusDevice::State s) { return to_string(wire_state(s)); }

std::optional<XenbusState> parse_xenbus_state(std::string_view value) {
    if (value.size() != 1 || value[0] < '0' || value[0] > '8') return std::nullopt;
    return static_cast<XenbusState>(value[0] - '0');
}

std::optional<std::uint64_t> parse_xenstore_uint(std::string_view value) {
    if (value.empty() || value.size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        const unsigned d = static_cast<unsigned>(c - '0');
        if (v > (~0ull - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

// ---- discovery ------------------------------------------------------------------------------

Task<Result<std::size_t>> list_xenbus_devices(xen::XenStore& xs, std::string_view type,
                                              std::span<std::uint32_t> out) {
    bool type_ok = !type.empty() && type.size() <= 16;
    for (char c : type) type_ok = type_ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
    if (!type_ok) co_return Error::invalid_argument;

    const Path dir("device", type);
    const int tlen = static_cast<int>(type.size());
    DirReply r = co_await xs_device_ids(xs, dir.view());
    if (r.error == Error::not_found) co_return std::size_t{0};
    if (r.error != Error::ok) {
        KLOG_WARN("xenbus: cannot list device/%.*s: %s", tlen, type.data(), to_string(r.error));
        co_return r.error;
    }
    if (r.skipped != 0) {
        KLOG_WARN("xenbus: device/%.*s: ignored %zu entries that are not device ids (first \"%s\")", tlen,
                  type.data(), r.skipped, r.first_skipped);
    }
    const std::size_t n = r.count < out.size() ? r.count : out.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = r.ids[i];
    if (r.count + r.dropped > n) {
        KLOG_WARN("xenbus: device/%.*s: %zu devices beyond the first %zu ignored", tlen, type.data(),
                  r.count + r.dropped - n, n);
    }
    co_return n;
}

// ---- XenbusConfig ---------------------------------------------------------------------------

void XenbusConfig::write(std::string_view key, std::string_view value) {
    if (error_ != Error::ok) return;
    if (!valid_key(key) || key == "state" || value.find('\0') != std::string_view::npos) {
        error_ = Error::invalid_argument;
        return;
    }
    if (count_ == max_entries || key.size() + value.size() > max_bytes - used_) {
        error_ = Error::no_space;
        return;
    }
    Slot& s = slots_[count_++];
    s.key_at = static_cast<std::uint16_t>(used_);
    s.key_len = static_cast<std::uint16_t>(key.size());
    std::memcpy(bytes_ + used_, key.data(), key.size());
    used_ += key.size();
    s.value_at = static_cast<std::uint16_t>(used_);
    s.value_len = static_cast<std::uint16_t>(value.size());
    std::memcpy(bytes_ + used_, value.data(), value.size());
    used_ += value.size();
}

void XenbusConfig::write_uint(std::string_view key, std::uint64_t value) {
    char buf[24];
    const int n = format(buf, sizeof buf, "%llu", static_cast<unsigned long long>(value));
    write(key, std::string_view(buf, static_cast<std::size_t>(n)));
}

// ---- XenbusDevice: probe --------------------------------------------------------------------

Task<Result<XenbusNode>> XenbusDevice::probe(xen::XenStore& xs, std::string_view nodename) {
    if (!valid_path(nodename, false, XenbusNode::max_path) && !valid_path(nodename, true, XenbusNode::max_path)) {
        KLOG_ERROR("xenbus: \"%s\" is not a device node", Printable(nodename).c_str());
        co_return Error::invalid_argument;
    }
    XenbusNode node;
    std::memcpy(node.nodename, nodename.data(), nodename.size());
    const char* name = node.nodename;

    char value[XenbusNode::max_path + 1];
    const Path backend_key(nodename, "backend");
    Result<std::size_t> b = co_await xs_read(xs, backend_key.view(), value);
    if (!b && b.error() != Error::no_space) {
        KLOG_ERROR("xenbus: %s: cannot read backend: %s", name, to_string(b.error()));
        co_return b.error();
    }
    // io/xenbus.h leaves the rest to the toolstack: an absolute xenstore path.
    const std::string_view backend(value, b ? *b : 0);
    if (!b || !valid_path(backend, true, XenbusNode::max_path)) {
        KLOG_ERROR("xenbus: %s: rejected backend path \"%s\"%s", name, Printable(backend).c_str(),
                   b ? "" : " (too long)");
        co_return Error::bad_input;
    }
    std::memcpy(node.backend, backend.data(), backend.size());

    char id[24];
    const Path id_key(nodename, "backend-id");
    Result<std::size_t> i = co_await xs_read(xs, id_key.view(), id);
    if (!i && i.error() != Error::no_space) {
        KLOG_ERROR("xenbus: %s: cannot read backend-id: %s", name, to_string(i.error()));
        co_return i.error();
    }
    const std::string_view id_text(id, i ? *i : 0);
    const auto domid = parse_xenstore_uint(id_text);
    if (!i || !domid || *domid > max_domid) {
        KLOG_ERROR("xenbus: %s: rejected backend-id \"%s\" (want a domid 0..%llu)", name,
                   Printable(id_text).c_str(), static_cast<unsigned long long>(max_domid));
        co_return Error::bad_input;
    }
    node.backend_id = static_cast<std::uint16_t>(*domid);
    KLOG_DEBUG("xenbus: %s: backend %s in domain %u", name, node.backend, node.backend_id);
    co_return node;
}

// ---- XenbusDevice: lifetime and reads -------------------------------------------------------

XenbusDevice::XenbusDevice(xen::XenStore& xs, const XenbusNode& node, Options options)
    : xs_(xs), node_(node), options_(options) {
    if (options_.max_tx_attempts == 0) options_.max_tx_attempts = 1;
}

XenbusDevice::~XenbusDevice() { stop_watching(); }

Result<bool> XenbusDevice::retarget(const XenbusNode& node) {
    if (node.nodename_view() != node_.nodename_view()) return Error::invalid_argument;
    if (busy_ || (state_ != State::initialising && state_ != State::closed)) return Error::busy;
    if (node.backend_view() == node_.backend_view() && node.backend_id == node_.backend_id) return false;
    KLOG_INFO("xenbus: %s: backend moved from %s to %s (domain %u)", node_.nodename, node_.backend, node.backend,
              node.backend_id);
    stop_watching();
    backend_ = XenbusState::unknown;
    backend_known_ = false;
    node_ = node;
    return true;
}

void XenbusDevice::stop_watching() {
    if (watching_) xs_.unwatch(watch_);
    watching_ = false;
}

Result<void> XenbusDevice::forget_connection() {
    if (busy_ || (shutdown_.valid() && !shutdown_.done())) return Error::busy;
    stop_watching();
    backend_ = XenbusState::unknown;
    backend_known_ = false;
    const bool published = state_ == State::initialised || state_ == State::connected || state_ == State::closing;
    state_ = State::closed;
    if (published && teardown_) teardown_();
    KLOG_INFO("xenbus: %s: connection left behind with the old domain", node_.nodename);
    closed_.set();
    return {};
}

Task<Result<std::size_t>> XenbusDevice::read_under(std::string_view dir, std::string_view key,
                                                   std::span<char> out) {
    if (!valid_key(key)) co_return Error::invalid_argument;
    const Path p(dir, key);
    co_return co_await xs_read(xs_, p.view(), out);
}

Task<Result<std::uint64_t>> XenbusDevice::read_uint_under(std::string_view dir, std::string_view key) {
    char buf[24];
    Result<std::size_t> n = co_await read_under(dir, key, buf);
    if (!n) co_return n.error() == Error::no_space ? Error::bad_input : n.error();
    const std::string_view text(buf, *n);
    const auto v = parse_xenstore_uint(text);
    if (!v) {
        KLOG_WARN("xenbus: %s: %.*s/%.*s is \"%s\", not a number", node_.nodename, static_cast<int>(dir.size()),
                  dir.data(), static_cast<int>(key.size()), key.data(), Printable(text).c_str());
        co_return Error::bad_input;
    }
    co_return *v;
}

Task<Result<std::size_t>> XenbusDevice::read_backend(std::string_view key, std::span<char> out) {
    return read_under(backend_path(), key, out);
}

Task<Result<std::uint64_t>> XenbusDevice::read_backend_uint(std::string_view key) {
    return read_uint_under(backend_path(), key);
}

Task<Result<std::size_t>> XenbusDevice::read_frontend(std::string_view key, std::span<char> out) {
    return read_under(nodename(), key, out);
}

Task<Result<std::uint64_t>> XenbusDevice::read_frontend_uint(std::string_view key) {
    return read_uint_under(nodename(), key);
}

// ---- XenbusDevice: the state machine --------------------------------------------------------

Task<Result<void>> XenbusDevice::enter(State next) {
    KASSERT(legal(state_, next));
    const Path p(nodename(), "state");
    Result<void> r = co_await xs_write(xs_, p.view(), state_value(wire_state(next)), 0);
    if (!r) {
        KLOG_ERROR("xenbus: %s: cannot write state %s (now %s): %s", node_.nodename, to_string(next),
                   to_string(state_), to_string(r.error()));
        co_return r;
    }
    if (next != state_) KLOG_DEBUG("xenbus: %s: %s -> %s", node_.nodename, to_string(state_), to_string(next));
    state_ = next;
    co_return r;
}

Task<Result<void>> XenbusDevice::connect(Function<Task<Result<void>>(XenbusConfig&)> configure) {
    if (busy_ || (state_ != State::initialising && state_ != State::closed)) {
        KLOG_ERROR("xenbus: %s: connect() while %s%s", node_.nodename, to_string(state_),
                   busy_ ? " and busy" : "");
        co_return Error::busy;
    }
    BusyGuard guard(busy_);
    co_return co_await run_connect(configure);
}

Task<Result<void>> XenbusDevice::run_connect(Function<Task<Result<void>>(XenbusConfig&)>& configure) {
    closed_.reset();
    if (!watching_) {
        const Path p(backend_path(), "state");
        // The `registered` callback may come after this device is gone (unwatch cancels it
        // later), so it must not touch `this`.
        Result<xen::WatchId> w = xs_.watch(
            p.view(), [this](std::string_view) { on_backend_event(); },
            [](Result<void> r) {
                if (!r && r.error() != Error::cancelled) {
                    KLOG_ERROR("xenbus: cannot watch a backend's state: %s", to_string(r.error()));
                }
            });
        if (!w) {
            KLOG_ERROR("xenbus: %s: cannot watch %s/state: %s", node_.nodename, node_.backend,
                       to_string(w.error()));
            co_return w.error();
        }
        watch_ = *w;
        watching_ = true;
    }

    // Announce (again) that we are starting: a backend left Closed by an earlier connection
    // takes this as the signal to prepare for a reconnect.
    Result<void> r = co_await enter(State::initialising);
    if (r) r = co_await wait_backend(ready_for_config, false, "InitWait", options_.backend_timeout_ns);
    if (!r) {
        (void)co_await shut_down(0);
        co_return r;
    }

    XenbusConfig cfg;
    r = co_await configure(cfg);
    if (r) r = cfg.status();
    if (!r) {
        KLOG_ERROR("xenbus: %s: the driver's configuration failed: %s", node_.nodename, to_string(r.error()));
        (void)co_await shut_down(0);
        co_return r;
    }
    r = co_await publish(cfg);
    if (r) r = co_await wait_backend(is_connected, true, "Connected", options_.backend_timeout_ns);
    if (r) r = co_await enter(State::connected);
    if (r && backend_ != XenbusState::connected) {
        // The backend left while we wrote Connected.
        KLOG_WARN("xenbus: %s: backend went %s as we connected", node_.nodename, to_string(backend_));
        r = Error::closed;
    }
    if (!r) {
        (void)co_await shut_down(0);
        co_return r;
    }
    KLOG_INFO("xenbus: %s: connected to %s (domain %u)", node_.nodename, node_.backend, node_.backend_id);
    co_return r;
}

Task<Result<void>> XenbusDevice::publish(const XenbusConfig& cfg) {
    for (unsigned attempt = 1;; ++attempt) {
        Result<void> r = co_await publish_once(cfg);
        if (r) {
            KLOG_DEBUG("xenbus: %s: Initialising -> Initialised (%zu keys)", node_.nodename, cfg.size());
            state_ = State::initialised;
            co_return r;
        }
        if (r.error() != Error::again) {
            KLOG_ERROR("xenbus: %s: publishing the configuration failed: %s", node_.nodename, to_string(r.error()));
            co_return r;
        }
        if (attempt >= options_.max_tx_attempts) {
            KLOG_ERROR("xenbus: %s: gave up publishing the configuration after %u conflicting transactions",
                       node_.nodename, attempt);
            co_return r;
        }
        KLOG_DEBUG("xenbus: %s: transaction conflict (attempt %u), retrying", node_.nodename, attempt);
    }
}

Task<Result<void>> XenbusDevice::publish_once(const XenbusConfig& cfg) {
    KASSERT(legal(state_, State::initialised));
    Result<Tx> tx = co_await xs_transaction_start(xs_);
    if (!tx) co_return tx.error();
    for (std::size_t i = 0; i <= cfg.size(); ++i) {
        // The configuration, then (last, same transaction) state = Initialised.
        const bool last = i == cfg.size();
        const Path p(nodename(), last ? std::string_view("state") : cfg.key(i));
        const XenbusState published = options_.publish_connected ? XenbusState::connected : XenbusState::initialised;
        const std::string_view value = last ? state_value(published) : cfg.value(i);
        Result<void> w = co_await xs_write(xs_, p.view(), value, *tx);
        if (!w) {
            (void)co_await xs_transaction_end(xs_, *tx, false);
            co_return w;
        }
    }
    co_return co_await xs_transaction_end(xs_, *tx, true);
}

Task<Result<void>> XenbusDevice::wait_backend(bool (*ready)(XenbusState), bool fail_if_gone, const char* want,
                                              std::uint64_t timeout_ns) {
    const std::uint64_t start = loop().now();
    const std::uint64_t deadline = timeout_ns > ~0ull - start ? ~0ull : start + timeout_ns;
    for (;;) {
        backend_changed_.reset();
        if (backend_known_) {
            if (ready(backend_)) co_return Result<void>{};
            if (fail_if_gone && has_let_go(backend_)) {
                KLOG_ERROR("xenbus: %s: backend %s went %s while we waited for %s (frontend %s)", node_.nodename,
                           node_.backend, to_string(backend_), want, to_string(state_));
                co_return Error::closed;
            }
        }
        const std::uint64_t now = loop().now();
        if (now >= deadline) {
            KLOG_ERROR("xenbus: %s: timed out after %llu ms waiting for backend %s to reach %s (it is %s; frontend %s)",
                       node_.nodename, static_cast<unsigned long long>((now - start) / 1'000'000), node_.backend,
                       want, backend_known_ ? to_string(backend_) : "unread", to_string(state_));
            co_return Error::timed_out;
        }
        (void)co_await backend_changed_.wait_for(deadline - now);
    }
}

Task<Result<void>> XenbusDevice::shut_down(std::uint64_t wait_ns) {
    Result<void> result;
    const bool published = state_ == State::initialised || state_ == State::connected || state_ == State::closing;
    if (published) {
        // The backend may have seen our ring references: say we are going, let the driver take
        // its grants back, then say we are gone.
        if (state_ != State::closing && !(co_await enter(State::closing))) state_ = State::closing;
        if (wait_ns != 0) result = co_await wait_backend(has_let_go, false, "Closing", wait_ns);
        if (teardown_) teardown_();
    }
    if (state_ != State::closed && !(co_await enter(State::closed))) state_ = State::closed;
    KLOG_INFO("xenbus: %s: closed", node_.nodename);
    closed_.set();
    co_return result;
}

Task<Result<void>> XenbusDevice::close() {
    if (state_ == State::closed) co_return Result<void>{};
    if (shutdown_.valid() && !shutdown_.done()) {
        co_await closed_.wait();  // the backend started it; it is on its way
        co_return Result<void>{};
    }
    if (busy_) {
        KLOG_ERROR("xenbus: %s: close() while connect() or close() runs", node_.nodename);
        co_return Error::busy;
    }
    BusyGuard guard(busy_);
    co_return co_await shut_down(options_.close_timeout_ns);
}

Task<void> XenbusDevice::backend_left() {
    KLOG_WARN("xenbus: %s: backend %s is %s while we are Connected: tearing down", node_.nodename, node_.backend,
              to_string(backend_));
    (void)co_await shut_down(0);
}

void XenbusDevice::on_backend_event() {
    if (refreshing_) {
        refresh_again_ = true;
        return;
    }
    refreshing_ = true;
    refresh_ = refresh_backend_state();  // the previous one has finished
    refresh_.start();
}

Task<void> XenbusDevice::refresh_backend_state() {
    do {
        refresh_again_ = false;
        char buf[max_logged];  // room to show a malformed value
        const Path p(backend_path(), "state");
        Result<std::size_t> n = co_await xs_read(xs_, p.view(), buf);
        XenbusState s = XenbusState::unknown;
        if (n) {
            const std::string_view text(buf, *n);
            if (auto parsed = parse_xenbus_state(text)) {
                s = *parsed;
            } else {
                KLOG_WARN("xenbus: %s: backend wrote state \"%s\"; taking it as Unknown", node_.nodename,
                          Printable(text).c_str());
            }
        } else if (n.error() == Error::no_space) {
            KLOG_WARN("xenbus: %s: backend wrote an overlong state; taking it as Unknown", node_.nodename);
        } else if (n.error() != Error::not_found) {  // not_found: the backend is gone
            KLOG_WARN("xenbus: %s: cannot read the backend's state: %s", node_.nodename, to_string(n.error()));
            continue;  // keep what we knew
        }
        if (!backend_known_ || s != backend_) {
            KLOG_DEBUG("xenbus: %s: backend is %s", node_.nodename, to_string(s));
        }
        backend_ = s;
        backend_known_ = true;
        backend_changed_.set();
        const bool shutting_down = shutdown_.valid() && !shutdown_.done();
        if (state_ == State::connected && !busy_ && !shutting_down && s != XenbusState::connected) {
            shutdown_ = backend_left();
            shutdown_.start();
        }
    } while (refresh_again_);
    refreshing_ = false;
}

}  // namespace keel
