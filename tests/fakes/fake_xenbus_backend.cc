// The fake xenbus backend: the backend's column of the io/blkif.h state diagrams.
#include "fakes/fake_xenbus_backend.h"

#include <gtest/gtest.h>

#include <xen/io/xs_wire.h>

// unit_kernel is built from tests/unit/kernel/*.cc only; the fake xenstored it needs is compiled
// into this executable here (unit_platform compiles its own copy from tests/unit/platform).


namespace keel::test {

FakeXenbusBackend::FakeXenbusBackend(FakeXenstored& daemon, std::string frontend, std::string backend,
                                     unsigned backend_id)
    : d_(daemon), front_path_(std::move(frontend)), back_path_(std::move(backend)), backend_id_(backend_id) {}

using S = XenbusState;

std::string state_value(XenbusState s) { return std::to_string(static_cast<int>(s)); }

void FakeXenbusBackend::create_nodes() {
    d_.set(front_path_ + "/backend", back_path_);
    d_.set(front_path_ + "/backend-id", std::to_string(backend_id_));
    d_.set(front_path_ + "/state", state_value(S::initialising));
    d_.set(back_path_ + "/frontend", d_.abs(front_path_));
    d_.set(back_path_ + "/state", state_value(S::initialising));
}

void FakeXenbusBackend::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << "xenbus violation by the frontend: " << what;
}

void FakeXenbusBackend::set_state(XenbusState s) {
    state_ = s;
    d_.set(back_path_ + "/state", state_value(s));
}

void FakeXenbusBackend::remove_state() {
    state_ = S::unknown;
    d_.remove(back_path_ + "/state");
}

bool FakeXenbusBackend::legal(std::optional<XenbusState> from, XenbusState to) const {
    // The frontend's column of io/blkif.h "STATE DIAGRAMS", plus the close sequence every Xen
    // frontend follows (Closing, then Closed) and reconnecting from Closed.
    switch (to) {
        case S::initialising: return from == S::closed;
        case S::initialised: return from == S::initialising;
        case S::connected: return from == S::initialised || (netback_ && from == S::initialising);
        case S::closing: return from == S::initialised || from == S::connected;
        case S::closed: return from == S::initialising || from == S::closing;
        default: return false;  // InitWait, Reconfiguring...: not a frontend's to take
    }
}

void FakeXenbusBackend::step() {
    // Conflicts: touch what the frontend's transaction will write, right after it starts.
    const auto& reqs = d_.requests();
    for (; requests_seen_ < reqs.size(); ++requests_seen_) {
        if (reqs[requests_seen_].type != XS_TRANSACTION_START || conflicts_ == 0) continue;
        --conflicts_;
        d_.set(front_path_ + "/state", d_.get(front_path_ + "/state").value_or(""));
    }

    const auto v = d_.get(front_path_ + "/state");
    std::optional<XenbusState> now;
    if (!v) {
        if (front_) violation("frontend removed its state node");
    } else if (!(now = parse_xenbus_state(*v))) {
        violation("frontend wrote state \"" + *v + "\"");
    }
    if (now && now != front_) {
        const std::optional<XenbusState> from = front_;
        front_ = now;
        history_.push_back(*now);
        if (!legal(from, *now)) {
            violation(std::string("frontend went ") + (from ? to_string(*from) : "nowhere") + " -> " +
                      to_string(*now));
        }
        react(*now);
    }

    // Hotplug done: publish our features and wait for the frontend (io/blkif.h: InitWait).
    if (behaviour_ != Behaviour::silent && state_ == S::initialising && front_ == S::initialising) {
        d_.set(back_path_ + "/feature-rx-copy", "1");
        set_state(S::init_wait);
    }
}

void FakeXenbusBackend::react(XenbusState to) {
    if (behaviour_ == Behaviour::deaf_to_close && (to == S::closing || to == S::closed)) return;
    switch (to) {
        case S::initialising:  // reconnect: a backend left Closed prepares again
            if (state_ == S::closed && behaviour_ != Behaviour::silent) set_state(S::init_wait);
            break;
        case S::initialised:
            if (netback_) break;  // Linux netback: nothing to do on Initialised
            if (state_ != S::init_wait && state_ != S::initialised && state_ != S::connected) {
                violation(std::string("frontend Initialised while the backend is ") + to_string(state_));
            }
            for (const auto& k : required_) {
                if (!d_.get(front_path_ + "/" + k)) violation("frontend Initialised without " + k);
            }
            if (behaviour_ != Behaviour::never_connect && state_ == S::init_wait) set_state(S::connected);
            break;
        case S::connected:
            if (netback_ && state_ == S::init_wait) {
                for (const auto& k : required_) {
                    if (!d_.get(front_path_ + "/" + k)) violation("frontend Connected without " + k);
                }
                if (behaviour_ != Behaviour::never_connect) set_state(S::connected);
                break;
            }
            if (state_ != S::connected) {
                violation(std::string("frontend Connected while the backend is ") + to_string(state_));
            }
            break;
        case S::closing:  // the frontend is going: disconnect (unmap its grants), then say so
            if (state_ != S::closing && state_ != S::closed && state_ != S::unknown) set_state(S::closing);
            break;
        case S::closed:
            if (state_ != S::closed && state_ != S::unknown) set_state(S::closed);
            break;
        default:
            break;
    }
}

}  // namespace keel::test
