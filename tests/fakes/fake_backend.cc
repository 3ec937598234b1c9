// The part every fake backend shares: xenbus lifecycle, grant mapping, teardown check.
#include "fakes/fake_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace keel::test {

using S = XenbusState;

FakeBackend::FakeBackend(const char* who, FakeXenstored& d, TestPlatform& platform,
                         std::span<grant_entry_v1_t> grants, std::string front, std::string back)
    : d_(d), platform_(platform), grants_(grants), front_(std::move(front)), back_(std::move(back)),
      xb_(d, front_, back_, domid), who_(who) {}

void FakeBackend::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << who_ << " broke the protocol (" << front_ << "): " << what;
}

std::optional<unsigned long long> FakeBackend::number(const std::optional<std::string>& v) {
    if (!v || v->empty() || v->size() > 20) return std::nullopt;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v->c_str(), &end, 10);
    if (*end != '\0') return std::nullopt;
    return n;
}

void FakeBackend::step() {
    if (!created_) return;
    before_xenbus();
    xb_.step();
    after_xenbus();
    const auto fs = xb_.frontend_state();
    if (mapped_ && (xb_.state() != S::connected || fs == S::closing || fs == S::closed)) unmap();
    // Once the frontend says Closed after publishing its keys, nothing may stay granted to us.
    // (A connection that never published cannot have told us any reference.)
    const auto& h = xb_.frontend_history();
    for (; checked_history_ < h.size(); ++checked_history_) {
        const S s = h[checked_history_];
        if (s == S::initialising) published_ = false;
        if (s == S::initialised || s == S::connected) published_ = true;
        if (s == S::closed && published_) check_all_revoked();
        if (s == S::initialising) may_map_ = true;  // a new connection starts
    }
    // The backend connects (and maps) once per connection, when the frontend has published its
    // keys: on its Connected like Linux's netback, or on its Initialised like blkback.
    if (!mapped_ && may_map_ && xb_.state() == S::connected && (fs == S::initialised || fs == S::connected)) {
        may_map_ = false;
        map();
    }
    data_step();
}

void FakeBackend::check_all_revoked() {
    if (kept_everything()) return;
    for (std::size_t r = GNTTAB_NR_RESERVED_ENTRIES; r < grants_.size(); ++r) {
        if (only_seen_refs && !seen_refs_.test(r)) continue;
        const grant_entry_v1_t& e = grants_[r];
        if ((e.flags & GTF_type_mask) != GTF_permit_access || e.domid != domid) continue;
        if (std::find(kept_.begin(), kept_.end(), r) != kept_.end()) continue;
        violation("grant " + std::to_string(r) + " still valid after the frontend said Closed");
        return;
    }
    seen_refs_.reset();
}

std::byte* FakeBackend::grant_page(grant_ref_t ref, bool write) {
    if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= grants_.size()) {
        violation("grant reference " + std::to_string(ref) + " out of range");
        return nullptr;
    }
    const grant_entry_v1_t e = grants_[ref];
    if ((e.flags & GTF_type_mask) != GTF_permit_access) {
        violation("grant " + std::to_string(ref) + " used but not granted (revoked?)");
        return nullptr;
    }
    if (e.domid != domid) {
        violation("grant " + std::to_string(ref) + " is for domain " + std::to_string(e.domid));
        return nullptr;
    }
    if (write && (e.flags & GTF_readonly)) {
        violation("write through read-only grant " + std::to_string(ref));
        return nullptr;
    }
    std::byte* p = platform_.page_of(e.frame);
    if (!p) violation("grant " + std::to_string(ref) + " names frame " + std::to_string(e.frame) + ", not a page");
    seen_refs_.set(ref);
    return p;
}

void FakeBackend::mark_mapped(grant_ref_t ref, bool write) {
    __atomic_or_fetch(&grants_[ref].flags, static_cast<std::uint16_t>(GTF_reading | (write ? GTF_writing : 0)),
                      __ATOMIC_SEQ_CST);
}

void FakeBackend::mark_unmapped(grant_ref_t ref) {
    __atomic_and_fetch(&grants_[ref].flags, static_cast<std::uint16_t>(~(GTF_reading | GTF_writing)),
                       __ATOMIC_SEQ_CST);
}

}  // namespace keel::test
