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

void FakeXenbusBackend::create_nodes() {
    d_.set(front_path_ + "/backend", back_path_);
    d_.set(front_path_ + "/backend-id", std::to_string(backend_id_));
    d_.set(front_path_ + "/state", "1");
    d_.set(back_path_ + "/frontend", d_.abs(front_path_));
    d_.set(back_path_ + "/state", "1");
}

void FakeXenbusBackend::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << "xenbus violation by the frontend: " << what;
}

void FakeXenbusBackend::set_state(int s) {
    state_ = s;
    d_.set(back_path_ + "/state", std::to_string(s));
}

void FakeXenbusBackend::remove_state() {
    state_ = 0;
    d_.remove(back_path_ + "/state");
}

bool FakeXenbusBackend::legal(int from, int to) const {
    // The frontend's column of io/blkif.h "STATE DIAGRAMS", plus the close sequence every Xen
    // frontend follows (Closing, then Closed) and reconnecting from Closed.
    switch (to) {
        case 1: return from == 6;
        case 3: return from == 1;
        case 4: return from == 3 || (netback_ && from == 1);
        case 5: return from == 3 || from == 4;
        case 6: return from == 1 || from == 5;
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
    int now = -1;
    if (!v) {
        if (front_ != -1) violation("frontend removed its state node");
    } else if (v->size() != 1 || (*v)[0] < '0' || (*v)[0] > '8') {
        violation("frontend wrote state \"" + *v + "\"");
    } else {
        now = (*v)[0] - '0';
    }
    if (now != -1 && now != front_) {
        const int from = front_;
        front_ = now;
        history_.push_back(now);
        if (!legal(from, now)) {
            violation("frontend went " + std::to_string(from) + " -> " + std::to_string(now));
        }
        react(from, now);
    }

    // Hotplug done: publish our features and wait for the frontend (io/blkif.h: InitWait).
    if (behaviour_ != Behaviour::silent && state_ == 1 && front_ == 1) {
        d_.set(back_path_ + "/feature-rx-copy", "1");
        set_state(2);
    }
}

void FakeXenbusBackend::react(int from, int to) {
    (void)from;
    if (behaviour_ == Behaviour::deaf_to_close && (to == 5 || to == 6)) return;
    switch (to) {
        case 1:  // reconnect: a backend left Closed prepares again
            if (state_ == 6 && behaviour_ != Behaviour::silent) set_state(2);
            break;
        case 3:
            if (netback_) break;   // Linux netback: nothing to do on Initialised
            if (state_ != 2 && state_ != 3 && state_ != 4) {
                violation("frontend Initialised while the backend is " + std::to_string(state_));
            }
            for (const auto& k : required_) {
                if (!d_.get(front_path_ + "/" + k)) violation("frontend Initialised without " + k);
            }
            if (behaviour_ != Behaviour::never_connect && state_ == 2) set_state(4);
            break;
        case 4:
            if (netback_ && state_ == 2) {
                for (const auto& k : required_) {
                    if (!d_.get(front_path_ + "/" + k)) violation("frontend Connected without " + k);
                }
                if (behaviour_ != Behaviour::never_connect) set_state(4);
                break;
            }
            if (state_ != 4) violation("frontend Connected while the backend is " + std::to_string(state_));
            break;
        case 5:  // the frontend is going: disconnect (unmap its grants), then say so
            if (state_ != 5 && state_ != 6 && state_ != 0) set_state(5);
            break;
        case 6:
            if (state_ != 6 && state_ != 0) set_state(6);
            break;
        default:
            break;
    }
}

}  // namespace keel::test
