// xenbus::Platform for host tests, shared by every frontend's rig: pages from the host heap with
// made-up frame numbers (so v1 grants can name them, and a fake backend can find the page a
// grant names), event channels as FakeChannels the test fires and delivers. It accounts for
// what the driver holds: pages outstanding, channels open (a rig checks both are zero, or the
// expected leak, at the end), and fails the test on a double close, a free of pages it did not
// hand out, or a grant of memory that is not one of its pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "keel/function.h"
#include "keel/xen/event_channel.h"
#include "keel/xenbus/platform.h"

namespace keel::test {

/// One event channel between a frontend and a fake backend.
class FakeChannel final : public xen::EventChannel {
public:
    explicit FakeChannel(std::uint32_t number) : port(number) {}
    void notify() override {
        ++notifies;
        notified = true;
    }
    /// Runs on_wait (the other side runs while the guest polls: a suspend's drain), else
    /// fails the test: a frontend never blocks on its channel otherwise.
    void wait() override;
    void set_handler(Function<void()> h) override { handler = std::move(h); }
    /// The backend's EVTCHNOP_send.
    void fire() {
        pending = true;
        ++fired;
    }

    std::uint32_t port;
    bool open = true;
    bool pending = false;   ///< fired, not yet delivered to the guest
    bool notified = false;  ///< the guest notified since the backend last looked
    int notifies = 0;
    int fired = 0;
    Function<void()> handler;
    Function<void()> on_wait;
};

class TestPlatform final : public xenbus::Platform {
public:
    /// `backend`: the only domain channels may be opened to.
    explicit TestPlatform(xen::DomId backend = 0) : backend_(backend) {}
    ~TestPlatform() override;

    Result<xen::EventChannel*> open_channel(xen::DomId backend, std::uint32_t& port) override;
    void close_channel(xen::EventChannel* channel) override;
    std::byte* alloc_pages(std::size_t n) override;
    void free_pages(std::byte* pages, std::size_t n) override;
    std::uint64_t gfn(const std::byte* page) override;

    /// The page a frame number names, nullptr if none (never allocated, or freed).
    std::byte* page_of(std::uint64_t gfn) const;
    /// The open channel with this port, nullptr if none.
    FakeChannel* channel(std::uint32_t port);
    /// Run the guest's handler of every fired channel; true if any ran.
    bool deliver_events();
    bool events_pending() const;

    std::size_t pages_outstanding() const;
    std::size_t open_channels() const;
    int fail_channel_opens = 0;  ///< the next n open_channel() calls fail with Error::io
    int fail_page_allocs = 0;    ///< the next n alloc_pages() calls return nullptr
    std::size_t page_allocations = 0;

private:
    struct Block {
        std::byte* base;
        std::size_t pages;
        std::uint64_t gfn;
        bool live;
    };
    xen::DomId backend_;
    std::vector<Block> blocks_;
    std::uint64_t next_gfn_ = 0x10000;
    std::vector<std::unique_ptr<FakeChannel>> channels_;
    std::uint32_t next_port_ = 10;
};

}  // namespace keel::test
