// The 2-level pending scan over fake shared_info bitmaps.
#include "keel/xen/evtchn_scan.h"

#include <gtest/gtest.h>

#include <vector>

namespace keel::xen {
namespace {

static_assert(evtchn_2l_ports == 4096);

class EvtchnScanTest : public ::testing::Test {
protected:
    // What Xen does when it raises a port (xen.h: set pending, then the selector, then upcall).
    void raise(std::uint32_t port) {
        // Plain read-modify-write: the fixture is single-threaded (and C++20 deprecates |= on
        // volatile).
        pending[port / 64] = pending[port / 64] | (1ull << (port % 64));
        sel = sel | (1ull << (port / 64));
        upcall = 1;
    }
    bool is_pending(std::uint32_t port) const { return pending[port / 64] & (1ull << (port % 64)); }
    void set_mask(std::uint32_t port) { mask[port / 64] = mask[port / 64] | (1ull << (port % 64)); }

    std::size_t scan() {
        return scan_pending(upcall, sel, pending, mask, [this](std::uint32_t port) { seen.push_back(port); });
    }

    volatile std::uint8_t upcall = 0;
    volatile xen_ulong_t sel = 0;
    volatile xen_ulong_t pending[64] = {};
    volatile xen_ulong_t mask[64] = {};
    std::vector<std::uint32_t> seen;
};

TEST_F(EvtchnScanTest, DispatchesPortsInSeveralWords) {
    for (std::uint32_t p : {4095u, 64u, 1u, 2000u, 63u, 130u}) raise(p);
    EXPECT_EQ(scan(), 6u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{1, 63, 64, 130, 2000, 4095}));
    EXPECT_EQ(int{upcall}, 0);
    EXPECT_EQ(xen_ulong_t{sel}, 0u);
    for (const auto& w : pending) EXPECT_EQ(xen_ulong_t{w}, 0u);
}

TEST_F(EvtchnScanTest, EdgePorts) {
    raise(0);
    raise(4095);
    EXPECT_EQ(scan(), 2u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{0, 4095}));
    EXPECT_FALSE(is_pending(0));
    EXPECT_FALSE(is_pending(4095));
}

TEST_F(EvtchnScanTest, MaskedPortsStayPending) {
    raise(5);
    raise(6);
    raise(4095);
    set_mask(5);
    set_mask(4095);
    EXPECT_EQ(scan(), 1u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{6}));
    EXPECT_TRUE(is_pending(5));
    EXPECT_TRUE(is_pending(4095));
    EXPECT_FALSE(is_pending(6));
    EXPECT_EQ(xen_ulong_t{sel}, 0u);  // Xen sets the selector again when the port is unmasked

    seen.clear();
    mask[0] = 0;
    sel = 1;  // as EVTCHNOP_unmask would
    EXPECT_EQ(scan(), 1u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{5}));
}

TEST_F(EvtchnScanTest, OnlySelectedWordsAreScanned) {
    pending[3] = 0x10;  // pending, but its selector bit is not set
    raise(70);
    EXPECT_EQ(scan(), 1u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{70}));
    EXPECT_EQ(xen_ulong_t{pending[3]}, 0x10u);
}

TEST_F(EvtchnScanTest, SelectorWithNothingPending) {
    sel = 0x8000000000000001ull;
    upcall = 1;
    EXPECT_EQ(scan(), 0u);
    EXPECT_TRUE(seen.empty());
    EXPECT_EQ(xen_ulong_t{sel}, 0u);
    EXPECT_EQ(int{upcall}, 0);
}

TEST_F(EvtchnScanTest, EventsArrivingDuringTheScanAreKept) {
    raise(3);
    // Xen raises port 9 (same word) and 200 while port 3 is being handled.
    std::size_t n = scan_pending(upcall, sel, pending, mask, [this](std::uint32_t port) {
        seen.push_back(port);
        if (port == 3) {
            raise(9);
            raise(200);
        }
    });
    EXPECT_EQ(n, 1u);
    EXPECT_TRUE(is_pending(9));
    EXPECT_TRUE(is_pending(200));
    EXPECT_EQ(int{upcall}, 1);  // set again, so the caller scans once more
    seen.clear();
    EXPECT_EQ(scan(), 2u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{9, 200}));
}

TEST_F(EvtchnScanTest, AllPortsOnce) {
    for (std::uint32_t p = 0; p < evtchn_2l_ports; ++p) raise(p);
    EXPECT_EQ(scan(), evtchn_2l_ports);
    ASSERT_EQ(seen.size(), evtchn_2l_ports);
    for (std::uint32_t p = 0; p < evtchn_2l_ports; ++p) EXPECT_EQ(seen[p], p);
}

// Polled delivery: masked ports with a handler are found by their pending bits alone.
TEST_F(EvtchnScanTest, WatchedPortsAreTakenMaskedOrNot) {
    xen_ulong_t watched[4] = {};
    for (std::uint32_t p : {3u, 64u, 255u}) watched[p / 64] |= 1ull << (p % 64);
    for (std::uint32_t p : {3u, 5u, 64u, 255u, 256u}) {
        set_mask(p);  // masked: Xen sets only the pending bit (no selector, no upcall)
        pending[p / 64] = pending[p / 64] | (1ull << (p % 64));
    }
    EXPECT_TRUE(any_watched_pending(pending, watched, 4));
    EXPECT_EQ(scan_watched(pending, watched, 4, [this](std::uint32_t port) { seen.push_back(port); }), 3u);
    EXPECT_EQ(seen, (std::vector<std::uint32_t>{3, 64, 255}));
    EXPECT_TRUE(is_pending(5));    // not watched: left alone
    EXPECT_TRUE(is_pending(256));  // beyond the bitmap's words
    EXPECT_FALSE(is_pending(3));
    EXPECT_FALSE(any_watched_pending(pending, watched, 4));
    seen.clear();
    EXPECT_EQ(scan_watched(pending, watched, 4, [this](std::uint32_t port) { seen.push_back(port); }), 0u);
    EXPECT_TRUE(seen.empty());
}

TEST_F(EvtchnScanTest, WatchedPortRaisedDuringItsHandlerIsKept) {
    xen_ulong_t watched[1] = {(1ull << 7) | (1ull << 9)};
    pending[0] = pending[0] | (1ull << 7);
    std::size_t n = scan_watched(pending, watched, 1, [this](std::uint32_t port) {
        seen.push_back(port);
        pending[0] = pending[0] | (1ull << 7) | (1ull << 9);  // Xen raises both again meanwhile
    });
    EXPECT_EQ(n, 1u);
    EXPECT_TRUE(is_pending(7));
    EXPECT_TRUE(is_pending(9));
    EXPECT_TRUE(any_watched_pending(pending, watched, 1));
}

}  // namespace
}  // namespace keel::xen
