// The test platform: pages and event channels with accounting.
#include "fakes/test_platform.h"

#include <gtest/gtest.h>
#include <sanitizer/asan_interface.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace keel::test {

namespace {
constexpr std::size_t page = 4096;

// Freed blocks are kept for the next alloc_pages() of the same size, poisoned meanwhile (so a
// use after free still fails under ASan): a fuzz target builds a rig per input, and fresh
// page-aligned heap blocks (mmap, page faults) would cost more than the rest of the input.
struct Spare {
    std::byte* base;
    std::size_t pages;
};
constexpr std::size_t max_spare_pages = 8192;  // 32 MiB
// Never destroyed: the blocks stay reachable for LeakSanitizer at exit.
std::vector<Spare>& spares = *new std::vector<Spare>;
std::size_t spare_pages = 0;

std::byte* take_spare(std::size_t n) {
    for (std::size_t i = spares.size(); i-- > 0;) {
        if (spares[i].pages != n) continue;
        std::byte* p = spares[i].base;
        spares.erase(spares.begin() + static_cast<std::ptrdiff_t>(i));
        spare_pages -= n;
        ASAN_UNPOISON_MEMORY_REGION(p, n * page);
        return p;
    }
    return static_cast<std::byte*>(std::aligned_alloc(page, n * page));
}

void give_back(std::byte* p, std::size_t n) {
    if (spare_pages + n > max_spare_pages) {
        std::free(p);
        return;
    }
    ASAN_POISON_MEMORY_REGION(p, n * page);
    spares.push_back({p, n});
    spare_pages += n;
}
}  // namespace

void FakeChannel::wait() {
    if (on_wait) return on_wait();
    ADD_FAILURE() << "a frontend must never block on an event channel";
}

TestPlatform::~TestPlatform() {
    for (auto& b : blocks_) {
        if (b.live) give_back(b.base, b.pages);
    }
}

Result<xen::EventChannel*> TestPlatform::open_channel(xen::DomId backend, std::uint32_t& port) {
    EXPECT_EQ(backend, backend_);
    if (fail_channel_opens > 0) {
        --fail_channel_opens;
        return Error::io;
    }
    channels_.push_back(std::make_unique<FakeChannel>(next_port_++));
    port = channels_.back()->port;
    return channels_.back().get();
}

void TestPlatform::close_channel(xen::EventChannel* channel) {
    for (auto& c : channels_) {
        if (c.get() != channel) continue;
        EXPECT_TRUE(c->open) << "port " << c->port << " closed twice";
        c->open = false;
        c->pending = false;
        c->handler.reset();
        return;
    }
    ADD_FAILURE() << "closing a channel that was never opened";
}

std::byte* TestPlatform::alloc_pages(std::size_t n) {
    ++page_allocations;
    if (fail_page_allocs > 0) {
        --fail_page_allocs;
        return nullptr;
    }
    std::byte* p = take_spare(n);
    std::memset(p, 0, n * page);
    blocks_.push_back({p, n, next_gfn_, true});
    next_gfn_ += n + 1;  // a gap, so a frame one past a block names nothing
    return p;
}

void TestPlatform::free_pages(std::byte* pages, std::size_t n) {
    for (auto& b : blocks_) {
        if (b.base != pages || !b.live) continue;
        EXPECT_EQ(b.pages, n);
        b.live = false;
        give_back(b.base, b.pages);
        return;
    }
    ADD_FAILURE() << "freeing pages that were not allocated";
}

std::uint64_t TestPlatform::gfn(const std::byte* p) {
    for (const auto& b : blocks_) {
        if (b.live && p >= b.base && p < b.base + b.pages * page) {
            EXPECT_EQ((p - b.base) % page, 0u) << "granting a pointer that is not a page";
            return b.gfn + static_cast<std::uint64_t>(p - b.base) / page;
        }
    }
    ADD_FAILURE() << "granting memory the platform did not hand out";
    return 0;
}

std::byte* TestPlatform::page_of(std::uint64_t gfn) const {
    for (const auto& b : blocks_) {
        if (b.live && gfn >= b.gfn && gfn < b.gfn + b.pages) return b.base + (gfn - b.gfn) * page;
    }
    return nullptr;
}

FakeChannel* TestPlatform::channel(std::uint32_t port) {
    for (auto& c : channels_) {
        if (c->port == port && c->open) return c.get();
    }
    return nullptr;
}

bool TestPlatform::deliver_events() {
    bool any = false;
    for (std::size_t i = 0; i < channels_.size(); ++i) {
        FakeChannel& c = *channels_[i];
        if (!c.open || !c.pending) continue;
        c.pending = false;
        if (c.handler) {
            c.handler();
            any = true;
        }
    }
    return any;
}

bool TestPlatform::events_pending() const {
    for (const auto& c : channels_) {
        if (c->open && c->pending && c->handler) return true;
    }
    return false;
}

std::size_t TestPlatform::pages_outstanding() const {
    std::size_t n = 0;
    for (const auto& b : blocks_) n += b.live ? b.pages : 0;
    return n;
}

std::size_t TestPlatform::open_channels() const {
    std::size_t n = 0;
    for (const auto& c : channels_) n += c->open;
    return n;
}

}  // namespace keel::test
