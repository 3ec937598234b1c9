// BlkRing (the front half of io/blkif.h's ring, one or more pages) against a back end written
// with Xen's own io/ring.h macros.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "keel/blkfront/blkfront.h"

#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

namespace keel::test {
namespace {

using blkfront::BlkRing;
using blkfront::page_size;

struct Pages {
    explicit Pages(unsigned order) : size(page_size << order) {
        mem = static_cast<std::byte*>(std::aligned_alloc(page_size, size));
        std::memset(mem, 0xA5, size);  // attach() must clear it all
    }
    ~Pages() { std::free(mem); }
    std::size_t size;
    std::byte* mem;
};

/// Pages with a BlkRing attached, and the shared ring as the back end sees it.
struct Attached {
    explicit Attached(unsigned order) : p(order), s(reinterpret_cast<blkif_sring_t*>(p.mem)) {
        ring.attach(p.mem, order);
    }
    Pages p;
    BlkRing ring;
    blkif_sring_t* s;
};

blkif_request_t read_request(std::uint64_t id) {
    blkif_request_t r{};
    r.operation = BLKIF_OP_READ;
    r.nr_segments = 1;
    r.id = id;
    r.sector_number = id * 8;
    r.seg[0].gref = 100;
    r.seg[0].last_sect = 7;
    return r;
}

class BlkRingOrder : public ::testing::TestWithParam<unsigned> {};

TEST_P(BlkRingOrder, SizeMatchesTheMacros) {
    const unsigned order = GetParam();
    Attached a(order);
    auto& [p, ring, s] = a;
    EXPECT_EQ(ring.slots(), __RING_SIZE(s, page_size << order));
    EXPECT_EQ(ring.slots(), 32u << order);
    EXPECT_EQ(s->req_event, 1u);
    EXPECT_EQ(s->rsp_event, 1u);
    EXPECT_EQ(s->req_prod, 0u);
    EXPECT_EQ(s->rsp_prod, 0u);
    EXPECT_EQ(std::to_integer<int>(p.mem[p.size - 1]), 0) << "the last page is cleared too";
}

TEST_P(BlkRingOrder, RequestsAndResponsesWrapAcrossThePages) {
    const unsigned order = GetParam();
    Attached a(order);
    auto& [p, ring, s] = a;
    blkif_back_ring_t back;
    BACK_RING_INIT(&back, s, page_size << order);

    std::uint64_t next = 1, expected = 1;
    for (int round = 0; round < 5; ++round) {
        // Fill the ring, the back end answers everything in order.
        while (ring.free_slots() > 0) ring.put(read_request(next++));
        (void)ring.push();
        EXPECT_EQ(ring.outstanding(), ring.slots());
        while (back.req_cons != s->req_prod) {
            blkif_request_t req;
            std::memcpy(&req, RING_GET_REQUEST(&back, back.req_cons), sizeof req);
            ++back.req_cons;
            EXPECT_EQ(req.sector_number, req.id * 8);
            blkif_response_t* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
            rsp->id = req.id;
            rsp->operation = req.operation;
            rsp->status = BLKIF_RSP_OKAY;
            ++back.rsp_prod_pvt;
        }
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        EXPECT_TRUE(notify) << "rsp_event armed (at first by attach, then by final_check)";
        auto avail = ring.unconsumed();
        ASSERT_TRUE(avail.ok());
        ASSERT_EQ(*avail, ring.slots());
        for (RING_IDX i = 0; i < *avail; ++i) EXPECT_EQ(ring.response(i).id, expected++);
        ring.consume(*avail);
        EXPECT_FALSE(ring.final_check());
        EXPECT_EQ(s->rsp_event, ring.rsp_cons() + 1);
    }
}

INSTANTIATE_TEST_SUITE_P(Orders, BlkRingOrder, ::testing::Values(0u, 1u, 2u, 3u, 4u));

TEST(BlkRing, PutZeroesTheRestOfTheEntry) {
    Attached a(0);
    auto& [p, ring, s] = a;
    blkif_request_discard_t d{};
    d.operation = BLKIF_OP_DISCARD;
    d.id = 9;
    d.sector_number = 16;
    d.nr_sectors = 8;
    std::memset(&s->ring[0], 0xEE, sizeof s->ring[0]);
    ring.put(d);
    const auto* bytes = reinterpret_cast<const unsigned char*>(&s->ring[0]);
    for (std::size_t i = sizeof d; i < sizeof s->ring[0]; ++i) ASSERT_EQ(bytes[i], 0) << i;
    blkif_request_discard_t back;
    std::memcpy(&back, &s->ring[0], sizeof back);
    EXPECT_EQ(back.nr_sectors, 8u);
    EXPECT_EQ(back.sector_number, 16u);
}

TEST(BlkRing, NotifiesOnlyWhenReqEventIsCrossed) {
    Attached a(0);
    auto& [p, ring, s] = a;
    ring.put(read_request(1));
    EXPECT_TRUE(ring.push()) << "req_event starts at 1";
    EXPECT_FALSE(ring.push()) << "nothing new";
    s->req_event = 10;  // the back end is busy until request 10
    ring.put(read_request(2));
    EXPECT_FALSE(ring.push());
    for (int i = 0; i < 8; ++i) ring.put(read_request(3 + i));
    EXPECT_TRUE(ring.push()) << "requests 3..10 cross req_event";
}

TEST(BlkRing, RefusesARspProdBeyondTheRequests) {
    Attached a(1);
    auto& [p, ring, s] = a;
    ring.put(read_request(1));
    ring.put(read_request(2));
    (void)ring.push();
    s->rsp_prod = 2;
    EXPECT_EQ(*ring.unconsumed(), 2u);
    s->rsp_prod = 3;
    EXPECT_EQ(ring.unconsumed().error(), Error::protocol);
    s->rsp_prod = 0xFFFFFFF0u;  // "negative": also far beyond
    EXPECT_EQ(ring.unconsumed().error(), Error::protocol);
}

TEST(BlkRing, FinalCheckSeesAResponsePublishedMeanwhile) {
    Attached a(0);
    auto& [p, ring, s] = a;
    ring.put(read_request(1));
    (void)ring.push();
    EXPECT_FALSE(ring.final_check());
    EXPECT_EQ(s->rsp_event, 1u);
    s->ring[0].rsp.id = 1;
    s->rsp_prod = 1;
    EXPECT_TRUE(ring.final_check());
}

}  // namespace
}  // namespace keel::test
