// A fake xenbus backend (netback/blkback's xenstore side) for host tests: it drives its own
// `state` node by the startup and close diagrams of io/blkif.h and fails the test when the
// frontend steps out of them. It lives in the fake xenstored's tree and acts only from step(),
// which the test calls after every daemon step (the guest sends one request at a time, so every
// value the frontend's state node takes is seen).
#pragma once

#include <ostream>
#include <optional>
#include <string>
#include <vector>

#include "fakes/fake_xenstored.h"
#include "keel/xenbus/xenbus.h"

namespace keel {
/// gtest prints states by name ("Connected").
inline void PrintTo(XenbusState s, std::ostream* os) { *os << to_string(s); }
}  // namespace keel

namespace keel::test {

/// Every value a `state` node took, in order.
using XenbusHistory = std::vector<XenbusState>;
/// What a `state` node holds for `s` (io/xenbus.h: the number, in decimal).
std::string state_value(XenbusState s);

class FakeXenbusBackend {
public:
    enum class Behaviour {
        normal,         ///< InitWait at once; Connected once the frontend is Initialised
        silent,         ///< never leaves Initialising (no backend driver in dom0)
        never_connect,  ///< reaches InitWait, then ignores the frontend's Initialised
        deaf_to_close,  ///< connects normally, then ignores the frontend's Closing and Closed
    };

    /// `frontend` relative to the guest's home ("device/vif/0"); `backend` absolute.
    FakeXenbusBackend(FakeXenstored& daemon, std::string frontend, std::string backend, unsigned backend_id = 0);

    /// The toolstack's part: both directories, linked to each other, both states Initialising.
    void create_nodes();

    void set_behaviour(Behaviour b) { behaviour_ = b; }
    /// Behave like Linux's netback: ignore the frontend's Initialised, connect when the frontend
    /// says Connected (which it may then say straight from Initialising).
    void act_like_netback(bool on) { netback_ = on; }
    /// Keys (relative to the frontend) that must exist when the frontend says Initialised.
    void require_keys(std::vector<std::string> keys) { required_ = std::move(keys); }
    /// Make the next `n` transactions the frontend starts conflict (another writer touches the
    /// frontend's state node right after each starts).
    void conflict_next_transactions(int n) { conflicts_ = n; }
    /// The backend's own move (an unplug: Closing; a crash: remove the node, see remove_state()).
    void set_state(XenbusState s);
    void remove_state();

    /// Observe the frontend and react. Call after every daemon step.
    void step();

    /// Ours; XenbusState::unknown once remove_state() ran.
    XenbusState state() const { return state_; }
    /// The frontend's, as last seen; nullopt once its node is gone or holds garbage.
    std::optional<XenbusState> frontend_state() const { return front_; }
    /// Every value the frontend's state node took, in order (starting from the toolstack's
    /// Initialising).
    const XenbusHistory& frontend_history() const { return history_; }
    int violations() const { return violations_; }
    /// For the fake's own tests, after provoking a violation on purpose.
    void forgive_violations() { violations_ = 0; }

private:
    bool netback_ = false;
    void violation(const std::string& what);
    void react(XenbusState to);
    bool legal(std::optional<XenbusState> from, XenbusState to) const;

    FakeXenstored& d_;
    std::string front_path_, back_path_;
    unsigned backend_id_;
    Behaviour behaviour_ = Behaviour::normal;
    std::vector<std::string> required_;
    int conflicts_ = 0;
    std::size_t requests_seen_ = 0;
    XenbusState state_ = XenbusState::initialising;
    std::optional<XenbusState> front_ = XenbusState::initialising;
    XenbusHistory history_{XenbusState::initialising};
    int violations_ = 0;
};

}  // namespace keel::test
