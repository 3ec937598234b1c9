// The smallest fake backend: it wants one key, "ring-ref", and maps the page it names while
// connected. For the tests of the protocol-independent frontend code (Frontend, discovery),
// whose drivers have a control path only.
#pragma once

#include <span>
#include <string>

#include "fakes/fake_backend.h"

namespace keel::test {

class RingRefBackend final : public FakeBackend {
public:
    RingRefBackend(const char* who, FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants,
                   std::string front, std::string back)
        : FakeBackend(who, d, platform, grants, std::move(front), std::move(back)) {
        xb_.require_keys({"ring-ref"});
    }
    /// The teardown check looks only at the references this backend was given (set when
    /// several devices share the grant table).
    void share_grant_table() { only_seen_refs = true; }
    void create() {
        created_ = true;
        xb_.create_nodes();
    }
    void data_step() override {}

private:
    void map() override {
        const auto ref = number(key("ring-ref"));
        if (!ref) return violation("ring-ref missing");
        if (!grant_page(static_cast<grant_ref_t>(*ref), true)) return;
        ref_ = static_cast<grant_ref_t>(*ref);
        mark_mapped(ref_);
        connected_now();
    }
    void unmap() override {
        mapped_ = false;
        mark_unmapped(ref_);
    }
    grant_ref_t ref_ = 0;
};

}  // namespace keel::test
