// What every fake PV backend (FakeNetback, FakeBlkback) shares: its xenbus column
// (FakeXenbusBackend), the connection lifecycle (map the frontend's rings once per connection
// when it has published its keys and we are Connected; unmap when either side leaves), a fake
// grant mapping over the TestPlatform's pages that fails the test on a revoked, foreign or
// unknown grant and on a write through a read-only one, and the teardown rule: once the
// frontend says Closed after publishing, nothing it granted us may still be granted.
// A driver's fake derives from it and plays only its ring protocol (map/unmap/data_step).
#pragma once

#include <stdint.h>

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <xen/grant_table.h>
#include <xen/io/ring.h>

// io/ring.h leaves the barriers to the includer (interface version >= 0x00030208); the fakes
// drive their back rings with its macros.
#ifndef xen_mb
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include "fakes/fake_xenbus_backend.h"
#include "fakes/fake_xenstored.h"
#include "fakes/test_platform.h"

namespace keel::test {

class FakeBackend {
public:
    static constexpr xen::DomId domid = 0;
    static constexpr std::size_t page = 4096;

    /// `who` names the frontend in failure messages ("netfront").
    FakeBackend(const char* who, FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants,
                std::string front, std::string back);
    virtual ~FakeBackend() = default;
    FakeBackend(const FakeBackend&) = delete;
    FakeBackend& operator=(const FakeBackend&) = delete;

    FakeXenbusBackend& xenbus() { return xb_; }
    const std::string& front() const { return front_; }

    /// xenbus (call after every daemon step): the xenbus column, unmapping when a side leaves,
    /// the teardown check, mapping once per connection; then the data path.
    void step();
    /// The data path alone. Allocates nothing, touches no xenstore.
    virtual void data_step() = 0;

    /// The backend lets go of everything (as if its domain went away), without xenbus.
    void disconnect() {
        if (mapped_) unmap();
    }

    /// Gone without a word, nodes and all (the old domain's backend after xl restore): it lets
    /// go of everything, its directory leaves xenstore and step() does nothing from now on.
    void vanish() {
        disconnect();
        created_ = false;
        d_.remove(back_);
    }

    bool connected() const { return mapped_; }
    int violations() const { return violations_ + xb_.violations(); }
    /// For the fakes' own tests, after provoking a violation on purpose.
    void forgive_violations() {
        violations_ = 0;
        xb_.forgive_violations();
    }
    int connections() const { return connections_; }

protected:
    /// Fails the test: the frontend broke the protocol.
    void violation(const std::string& what);
    /// Read the frontend's keys, map its rings (mark_mapped), set up the data path. Calls
    /// connected_now() when it succeeded.
    virtual void map() = 0;
    /// Let go of the rings (mark_unmapped unless kept on purpose) and of the data path.
    virtual void unmap() = 0;
    /// Around the xenbus column in step(): publish what a backend publishes at that point.
    virtual void before_xenbus() {}
    virtual void after_xenbus() {}

    /// The page behind `ref`, as Xen's grant copy or map would find it; nullptr + violation if
    /// the grant is out of range, not granted, for another domain, or read-only for a write.
    std::byte* grant_page(grant_ref_t ref, bool write);
    /// Xen's view of a mapping: the grant entry shows it in use (its revoke fails) until unmapped.
    void mark_mapped(grant_ref_t ref, bool write = true);
    void mark_unmapped(grant_ref_t ref);
    /// A grant kept mapped on purpose: the teardown check leaves it alone.
    void keep(grant_ref_t ref) { kept_.push_back(ref); }
    /// Everything was kept mapped on purpose: the guest could not revoke it and leaks it, by
    /// design; no teardown check.
    virtual bool kept_everything() const { return false; }
    /// The teardown check looks only at the references this backend was given (another
    /// backend shares the grant table), not at every grant to our domain.
    bool only_seen_refs = false;
    void connected_now() {
        mapped_ = true;
        ++connections_;
    }
    /// io/ring.h RING_PUSH_RESPONSES_AND_CHECK_NOTIFY over a back ring; fire `ch` if the
    /// frontend asked for an event (rsp_event) in the range just published.
    template <typename BackRing>
    static void push_responses(BackRing& ring, FakeChannel& ch) {
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&ring, notify);
        if (notify) ch.fire();
    }
    /// The frontend's req_prod (acquire: the requests below it are visible), or nullopt and a
    /// violation if it claims more requests than the ring holds (RING_REQUEST_PROD_OVERFLOW).
    template <typename BackRing>
    std::optional<RING_IDX> requests_published(BackRing& ring, const char* which) {
        const RING_IDX prod = __atomic_load_n(&ring.sring->req_prod, __ATOMIC_ACQUIRE);
        if (!RING_REQUEST_PROD_OVERFLOW(&ring, prod)) return prod;
        violation(std::string(which) + "req_prod " + std::to_string(prod) + " beyond the ring");
        return std::nullopt;
    }
    /// Check a value parsed from a frontend key ("ring-ref" = "8").
    static std::optional<unsigned long long> number(const std::optional<std::string>& v);
    std::optional<std::string> key(const std::string& k) const { return d_.get(front_ + "/" + k); }

    FakeXenstored& d_;
    TestPlatform& platform_;
    std::span<grant_entry_v1_t> grants_;
    const std::string front_, back_;
    FakeXenbusBackend xb_;
    bool created_ = false;
    bool mapped_ = false;

private:
    void check_all_revoked();

    const char* who_;
    bool published_ = false;
    bool may_map_ = false;  // the frontend started a connection we have not mapped yet
    std::size_t checked_history_ = 0;
    int connections_ = 0;
    int violations_ = 0;
    std::bitset<65536> seen_refs_;  // references this connection used
    std::vector<grant_ref_t> kept_;
};

}  // namespace keel::test
