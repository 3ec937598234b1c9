// The fake netback catches what it is there to catch: a tx request id reused while the first is
// in flight, and a grant to the backend still valid once the frontend says Closed.
#include <gtest/gtest.h>

#include <xen/io/netif.h>

#include "fakes/netfront_rig.h"

namespace keel::test {
namespace {

TEST_F(NetfrontTest, FakeNetbackCatchesATxIdReusedWhileInFlight) {
    make_connected();
    nb.hold_tx = true;
    const auto f = make_frame(60, 1);
    const std::span<const std::byte> parts[] = {f};
    ASSERT_TRUE(nf->transmit(parts).ok());
    pump_data();
    ASSERT_EQ(nb.tx_held(), 1u);
    // A broken frontend: the same request (same id) again while it is in flight.
    push_last_request_again<netif_tx_sring>(key("tx-ring-ref"));
    expect_violation(nb, [&] { nb.data_step(); }, "reused while in flight");
    nb.hold_tx = false;
    nb.release_tx();
    pump_data();
}

TEST_F(NetfrontTest, FakeNetbackCatchesAGrantLeftAtTeardown) {
    make_connected();
    // Play a broken frontend: one more page granted to the backend and never revoked.
    std::byte* page = platform.alloc_pages(1);
    auto g = xen::Grant::create(grants, FakeNetback::domid, platform.gfn(page), false);
    ASSERT_TRUE(g.ok());
    expect_violation(nb, [&] { ASSERT_TRUE(run(nf->close())); }, "still valid after the frontend said Closed");
    EXPECT_TRUE(g->revoke());
    g->reset();
    platform.free_pages(page, 1);
}

}  // namespace
}  // namespace keel::test
