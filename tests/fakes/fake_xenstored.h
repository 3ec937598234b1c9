// A fake xenstored that plays the daemon's end of the xenstore ring (io/xs_wire.h) for host
// tests. It enforces the wire protocol on the guest (a malformed request fails the test), keeps a
// tree with transactions and watches, and can be told to misbehave.
#pragma once

#include <stdint.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <xen/io/xs_wire.h>

#include "fakes/fake_byte_ring.h"

namespace keel::test {

class FakeXenstored;

/// The guest's end of the xenstore event channel. notify() lets the daemon run (when auto_step
/// is on); wait() always lets it run once, then returns as if the port had fired.
using FakeXsPort = FakeDaemonPort<FakeXenstored>;

class FakeXenstored {
public:
    /// One-shot misbehaviours, applied to the next reply the daemon produces.
    enum class Misbehave {
        none,
        wrong_req_id,            ///< reply carries another req_id (and no real reply follows)
        wrong_req_id_then_real,  ///< a reply with another req_id, then the real one
        wrong_type,              ///< reply type is neither the request's nor XS_ERROR
        len_too_big,             ///< header len > XENSTORE_PAYLOAD_MAX
        garbage,                 ///< 40 bytes of 0xA5 instead of the reply
        rsp_prod_jump,           ///< rsp_prod moves 3 ring sizes ahead, no reply
        error_eacces,            ///< XS_ERROR "EACCES" instead of the result
        bad_ack,                 ///< "KO" where "OK" belongs
        bad_tx_id,               ///< TRANSACTION_START answered with "abc"
        silent,                  ///< the request is consumed and never answered
        req_cons_ahead,          ///< req_cons jumps past req_prod; the daemon stops working
        malformed_watch_event,   ///< a watch event without NULs precedes the real reply
    };

    /// `start_index`: where all four ring indices start (to place messages across the wrap).
    explicit FakeXenstored(unsigned domid = 7, std::uint32_t start_index = 0);
    FakeXenstored(const FakeXenstored&) = delete;
    FakeXenstored& operator=(const FakeXenstored&) = delete;

    volatile xenstore_domain_interface* ring() { return &page_.ring; }
    FakeXsPort& port() { return port_; }

    // ---- knobs
    void misbehave_next_reply(Misbehave m) { misbehave_ = m; }
    void set_req_bytes_per_step(std::size_t n) { req_bytes_per_step_ = n; }  ///< 0: no limit
    void set_rsp_bytes_per_step(std::size_t n) { rsp_bytes_per_step_ = n; }  ///< 0: no limit
    void set_auto_step(bool on) { auto_step_ = on; }
    /// Keep replies in the daemon until released (to make them arrive late).
    void set_hold_replies(bool on) { hold_replies_ = on; }
    /// The next TRANSACTION_END with commit fails with EAGAIN as if another writer had won.
    void force_conflict_once() { force_conflict_ = true; }
    /// Writes, mkdirs and removes below `prefix` fail with EACCES.
    void set_read_only(std::string_view prefix) { read_only_.insert(abs(prefix)); }
    /// Queue raw bytes for the response ring (a message of the caller's making).
    void inject(std::uint32_t type, std::uint32_t req_id, std::string_view payload);

    /// Let the daemon run: consume requests, answer them, publish replies as space allows.
    void step();
    void step_if_auto();  ///< what a guest notify() triggers
    // Called by FakeXsPort.
    void on_notify() { step_if_auto(); }
    void on_wait() { step(); }
    /// Stop holding replies back and publish what was held.
    void release_replies() {
        hold_replies_ = false;
        flush_replies();
    }
    /// What `xl restore` does to the guest's xenstore connection: the toolstack clears the ring
    /// page and introduces the (new) domain to xenstored afresh, so the daemon forgets the old
    /// connection's watches, transactions, unanswered requests and half-read bytes. The tree
    /// is kept (the toolstack writes the new domain's nodes anyway).
    void restart_connection();
    bool guest_pending() const { return guest_pending_; }
    void clear_guest_pending() { guest_pending_ = false; }

    // ---- the tree, as the toolstack sees it (writes fire watches)
    void set(std::string_view path, std::string_view value);
    std::optional<std::string> get(std::string_view path) const;
    void remove(std::string_view path);
    std::string abs(std::string_view path) const;

    // ---- what the guest did
    struct Seen {
        std::uint32_t type, req_id, tx_id;
        std::string payload;
    };
    const std::vector<Seen>& requests() const { return seen_; }
    std::size_t watch_count() const { return watches_.size(); }
    std::size_t open_transactions() const { return txs_.size(); }
    std::uint32_t req_prod_seen() const { return req_.last_prod(); }
    int violations() const { return violations_; }

private:
    using Tree = std::map<std::string, std::string, std::less<>>;  // std::less<>: found by string_view
    struct Watch {
        std::string path;  // as the guest gave it
        std::string abs_path;
        std::string token;
    };
    struct Op {
        enum Kind { write, mkdir, rm } kind;
        std::string path, value;
    };
    struct Transaction {
        Tree view;
        std::uint64_t start_generation;
        std::set<std::string> touched;
        std::vector<Op> ops;
    };

    void violation(const std::string& what);
    void consume_requests();
    void handle(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id, const std::string& payload);
    void reply(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id, std::string payload);
    void error(std::uint32_t req_id, std::uint32_t tx_id, const char* err);
    void push(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id, std::string_view payload);
    void flush_replies();
    void fire(const std::string& abs_path, bool removed);
    void apply(Tree& tree, const Op& op);
    bool valid_path(std::string_view path) const;
    bool is_read_only(const std::string& abs_path) const;
    std::string rel(const std::string& abs_path) const;

    struct alignas(4096) Page {
        xenstore_domain_interface ring;
    } page_{};
    FakeXsPort port_;
    std::string home_;
    mutable std::string lookup_;  // get()'s absolute path, kept for its capacity

    // The daemon's ends of the two rings (its copies of the indices it owns).
    BackendReader<XENSTORE_RING_SIZE> req_;
    BackendWriter<XENSTORE_RING_SIZE> rsp_;
    bool rsp_resync_expected_ = false;
    bool dead_ = false;

    std::string inbox_;   // request bytes consumed, not yet parsed
    std::string outbox_;  // reply bytes not yet in the ring
    std::set<std::uint32_t> unanswered_;
    std::vector<Seen> seen_;

    Tree tree_;
    std::map<std::string, std::uint64_t> modified_;  // generation of the last change per path
    std::uint64_t generation_ = 1;
    std::map<std::uint32_t, Transaction> txs_;
    std::uint32_t next_tx_ = 0x41;
    std::vector<Watch> watches_;
    std::set<std::string> read_only_;

    Misbehave misbehave_ = Misbehave::none;
    std::size_t req_bytes_per_step_ = 0;
    std::size_t rsp_bytes_per_step_ = 0;
    bool auto_step_ = true;
    bool hold_replies_ = false;
    bool force_conflict_ = false;
    bool guest_pending_ = false;
    int violations_ = 0;
};

/// Fails the running test: a guest and a fake that never stop signalling each other.
void report_livelock(const char* who);

/// Let the daemon run and the guest handle its signals, like the event loop would, until neither
/// has anything left to do. Returns
/// the number of rounds; fails the test if the pair never settles.
template <typename OnEvent>
int settle(FakeXenstored& daemon, OnEvent&& on_event, int max_rounds = 10000) {
    int rounds = 0;
    while (rounds < max_rounds) {
        daemon.step_if_auto();  // the daemon runs concurrently, not only when notified
        if (!daemon.guest_pending()) break;
        daemon.clear_guest_pending();
        on_event();
        ++rounds;
    }
    if (rounds == max_rounds) report_livelock("xenstore");
    return rounds;
}

}  // namespace keel::test
