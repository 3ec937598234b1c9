// The fake blkback catches what it is there to catch: a request id reused while the first is in
// flight.
#include <gtest/gtest.h>

#include <xen/io/blkif.h>

#include "fakes/blkfront_rig.h"

namespace keel::test {
namespace {

TEST_F(BlkfrontTest, FakeBlkbackCatchesAnIdReusedWhileInFlight) {
    DiskConfig c;
    c.max_ring_page_order = -1;  // a one-page ring: "ring-ref"
    make_connected(c);
    bb.hold = true;
    std::vector<std::byte> buf(4096);
    std::optional<Result<void>> r;
    spawn(keep_result(bf->read(0, buf), r));
    settle();
    ASSERT_EQ(bb.held(), 1u);
    // A broken frontend: the same request (same id) again while it is in flight.
    push_last_request_again<blkif_sring>(key("ring-ref"));
    expect_violation(bb, [&] { bb.data_step(); }, "reused while in flight");
    bb.hold = false;
    bb.release();
    ASSERT_TRUE(run_until([&] { return r.has_value(); }));
}

}  // namespace
}  // namespace keel::test
