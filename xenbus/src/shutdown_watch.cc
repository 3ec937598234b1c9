// control/shutdown handling: advertise, watch, read + acknowledge in a transaction, dispatch.
#include "keel/xenbus/shutdown_watch.h"

#include "keel/log.h"

namespace keel {

namespace {

constexpr std::string_view shutdown_node = "control/shutdown";

struct Name {
    std::string_view text;
    ShutdownRequest kind;
};
constexpr Name names[] = {
    {"poweroff", ShutdownRequest::poweroff}, {"reboot", ShutdownRequest::reboot},
    {"halt", ShutdownRequest::halt},         {"crash", ShutdownRequest::crash},
    {"suspend", ShutdownRequest::suspend},
};

// Logging untrusted text: print at most this much of it.
constexpr int max_logged_value = 32;

}  // namespace

const char* to_string(ShutdownRequest kind) {
    for (const Name& n : names) {
        if (n.kind == kind) return n.text.data();  // literals: NUL-terminated
    }
    return "?";
}

std::optional<ShutdownRequest> parse_shutdown_request(std::string_view value) {
    for (const Name& n : names) {
        if (n.text == value) return n.kind;
    }
    return std::nullopt;
}

ShutdownWatch::ShutdownWatch(xen::XenStore& xs, Function<void(ShutdownRequest)> on_request, bool suspend)
    : xs_(xs), on_request_(std::move(on_request)), suspend_(suspend) {}

ShutdownWatch::~ShutdownWatch() {
    if (started_) xs_.unwatch(watch_);
}

void ShutdownWatch::advertise() {
    auto feature_written = [](Result<void> r) {
        if (!r) KLOG_WARN("shutdown: cannot advertise a control feature: %s", to_string(r.error()));
    };
    xs_.write("control/feature-poweroff", "1", feature_written);
    xs_.write("control/feature-reboot", "1", feature_written);
    if (suspend_) xs_.write("control/feature-suspend", "1", feature_written);
}

void ShutdownWatch::resumed() {
    if (!started_) return;
    // The toolstack built the new domain's control/ afresh; the watch itself is XenStore's to
    // register again (reconnect()).
    advertise();
}

Result<void> ShutdownWatch::start() {
    if (started_) return Error::busy;
    advertise();
    watch_ = TRY(xs_.watch(
        shutdown_node, [this](std::string_view) { changed(); },
        [](Result<void> r) {
            if (!r) KLOG_ERROR("shutdown: cannot watch control/shutdown: %s", to_string(r.error()));
        }));
    started_ = true;
    return {};
}

void ShutdownWatch::changed() {
    if (busy_) {
        recheck_ = true;
        return;
    }
    busy_ = true;
    retries_ = 0;
    begin();
}

void ShutdownWatch::begin() {
    xs_.transaction_start([this](Result<xen::XenStore::Tx> tx) {
        if (!tx) {
            KLOG_WARN("shutdown: cannot start a transaction: %s", to_string(tx.error()));
            return finish();
        }
        const xen::XenStore::Tx t = *tx;
        xs_.read(
            shutdown_node, [this, t](Result<std::string_view> v) { on_value(t, std::move(v)); }, t);
    });
}

void ShutdownWatch::on_value(xen::XenStore::Tx tx, Result<std::string_view> value) {
    // Missing or empty: nothing requested (the watch also fires on our own acknowledgement).
    if (!value || value->empty()) {
        if (!value && value.error() != Error::not_found) {
            KLOG_WARN("shutdown: cannot read control/shutdown: %s", to_string(value.error()));
        }
        return abort(tx);
    }
    const auto kind = parse_shutdown_request(*value);
    if (!kind) {
        const int len = value->size() > max_logged_value ? max_logged_value : static_cast<int>(value->size());
        KLOG_WARN("shutdown: rejected unknown request \"%.*s\"", len, value->data());
        return abort(tx);
    }
    const ShutdownRequest k = *kind;
    xs_.write(
        shutdown_node, "", [this, tx, k](Result<void> w) { on_acked(tx, k, w); }, tx);
}

void ShutdownWatch::on_acked(xen::XenStore::Tx tx, ShutdownRequest kind, Result<void> written) {
    if (!written) {
        // Cannot acknowledge; the toolstack asked all the same, so honour it.
        KLOG_WARN("shutdown: cannot acknowledge %s: %s", to_string(kind), to_string(written.error()));
        xs_.transaction_end(tx, false, [this, kind](Result<void>) { deliver(kind); });
        return;
    }
    xs_.transaction_end(tx, true, [this, kind](Result<void> c) { on_committed(kind, c); });
}

void ShutdownWatch::on_committed(ShutdownRequest kind, Result<void> committed) {
    if (!committed && committed.error() == Error::again && ++retries_ <= max_retries) {
        return begin();  // someone wrote meanwhile: read again
    }
    if (!committed) {
        KLOG_WARN("shutdown: acknowledging %s failed: %s", to_string(kind), to_string(committed.error()));
    }
    deliver(kind);
}

void ShutdownWatch::deliver(ShutdownRequest kind) {
    KLOG_INFO("shutdown: %s requested", to_string(kind));
    busy_ = false;
    // An event seen meanwhile may be our own acknowledgement or a newer request: look again
    // after the callback (which may well not return: the domain is going away).
    const bool again = recheck_;
    recheck_ = false;
    on_request_(kind);
    if (again) changed();
}

void ShutdownWatch::abort(xen::XenStore::Tx tx) {
    xs_.transaction_end(tx, false, [this](Result<void>) { finish(); });
}

void ShutdownWatch::finish() {
    busy_ = false;
    if (recheck_) {
        recheck_ = false;
        changed();
    }
}

}  // namespace keel
