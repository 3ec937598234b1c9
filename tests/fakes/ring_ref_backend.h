// The smallest protocol, both sides: the frontend grants one page per connection and publishes
// it as "ring-ref"; the backend maps the page it names while connected. For the tests of the
// protocol-independent frontend code (Frontend, discovery), whose drivers have a control path
// only.
#pragma once

#include <span>
#include <string>

#include "fakes/fake_backend.h"
#include "keel/task.h"
#include "keel/xen/grant_table.h"
#include "keel/xenbus/frontend.h"

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

/// The driver side: one page (prepare()), granted to the backend on each connection and
/// written as "ring-ref" (configure()), revoked in release(). Test drivers derive from it for
/// what they count or break.
class RingRefFrontend : public xenbus::Frontend {
protected:
    RingRefFrontend(const char* driver, xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants,
                    xenbus::Platform& platform, const xenbus::FrontendOptions& options)
        : Frontend(driver, xs, node, grants, platform, options) {}
    ~RingRefFrontend() override {
        shutdown();
        if (page_) platform_.free_pages(page_, 1);
    }

    Task<Result<void>> prepare() override {
        page_ = platform_.alloc_pages(1);
        if (!page_) co_return Error::no_memory;
        co_return Result<void>{};
    }
    Task<Result<void>> configure(XenbusConfig& cfg) override {
        begin_connection();
        auto g = xen::Grant::create(grants_, dev_.backend_id(), platform_.gfn(page_), false);
        if (!g) {
            release_connection();
            co_return g.error();
        }
        grant_ = std::move(*g);
        cfg.write_uint("ring-ref", grant_.ref());
        co_return Result<void>{};
    }
    void go_live() override {}
    void go_down(Error) override {}
    void release() override {
        if (grant_.valid()) (void)grant_.revoke();
        grant_.reset();
    }

private:
    std::byte* page_ = nullptr;
    xen::Grant grant_;
};

}  // namespace keel::test
