// FrontRing against a back end written with Xen's own ring macros (io/ring.h), and parse_mac.
#include "keel/xenbus/ring.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include <xen/io/netif.h>

#include "keel/netfront/netfront.h"

#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

namespace keel::netfront {
namespace {

struct RingPair {
    RingPair() : page(static_cast<std::byte*>(std::aligned_alloc(4096, 4096))) {
        std::memset(page, 0xA5, 4096);  // attach() must clear what it needs
        front.attach(page);
        BACK_RING_INIT(&back, reinterpret_cast<netif_tx_sring_t*>(page), 4096);
    }
    ~RingPair() { std::free(page); }

    /// The back end consumes every request and answers each with `status`.
    RING_IDX answer_all(std::int16_t status = NETIF_RSP_OKAY) {
        RING_IDX n = 0;
        const RING_IDX prod = back.sring->req_prod;
        while (back.req_cons != prod) {
            netif_tx_request_t req;
            std::memcpy(&req, RING_GET_REQUEST(&back, back.req_cons), sizeof req);
            ++back.req_cons;
            netif_tx_response_t* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt++);
            rsp->id = req.id;
            rsp->status = status;
            ++n;
        }
        return n;
    }
    bool push_responses() {
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        return notify != 0;
    }
    bool back_idle() {
        int more;
        RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
        return more == 0;
    }

    std::byte* page;
    TxRing front;
    netif_tx_back_ring_t back{};
};

netif_tx_request_t request(std::uint16_t id) {
    netif_tx_request_t r{};
    r.id = id;
    r.size = 60;
    return r;
}

TEST(FrontRing, SizeMatchesXensMacro) {
    EXPECT_EQ(TxRing::size, __CONST_RING_SIZE(netif_tx, 4096));
    EXPECT_EQ(RxRing::size, __CONST_RING_SIZE(netif_rx, 4096));
    RingPair r;
    EXPECT_EQ(RING_SIZE(&r.back), TxRing::size);
}

TEST(FrontRing, AttachInitialisesTheSharedHeader) {
    RingPair r;
    auto* s = reinterpret_cast<netif_tx_sring_t*>(r.page);
    EXPECT_EQ(s->req_prod, 0u);
    EXPECT_EQ(s->rsp_prod, 0u);
    EXPECT_EQ(s->req_event, 1u);
    EXPECT_EQ(s->rsp_event, 1u);
    for (auto b : s->__pad) EXPECT_EQ(b, 0);
    EXPECT_EQ(r.front.free_slots(), TxRing::size);
}

TEST(FrontRing, NotifiesOnlyWhenTheBackendAskedForIt) {
    RingPair r;
    r.front.put(request(1));
    EXPECT_TRUE(r.front.push()) << "req_event starts at 1: the first request needs a kick";
    EXPECT_FALSE(r.front.push()) << "nothing new: no kick";
    // The back end is busy (has not re-armed req_event): more requests need no kick.
    r.front.put(request(2));
    EXPECT_FALSE(r.front.push());
    EXPECT_EQ(r.answer_all(), 2u);
    EXPECT_TRUE(r.back_idle());  // re-arms req_event = req_cons + 1
    r.front.put(request(3));
    r.front.put(request(4));
    EXPECT_TRUE(r.front.push()) << "the back end went idle: kick";
}

TEST(FrontRing, ResponsesAndTheFinalCheck) {
    RingPair r;
    for (std::uint16_t i = 0; i < 5; ++i) r.front.put(request(i));
    (void)r.front.push();
    ASSERT_EQ(r.front.unconsumed().value(), 0u);
    r.answer_all();
    EXPECT_TRUE(r.push_responses()) << "rsp_event starts at 1";
    ASSERT_EQ(r.front.unconsumed().value(), 5u);
    for (RING_IDX i = 0; i < 5; ++i) EXPECT_EQ(r.front.response(i).id, i);
    r.front.consume(5);
    EXPECT_EQ(r.front.outstanding(), 0u);
    EXPECT_FALSE(r.front.final_check());
    auto* s = reinterpret_cast<netif_tx_sring_t*>(r.page);
    EXPECT_EQ(s->rsp_event, 6u) << "armed for the very next response";
    r.front.put(request(9));
    (void)r.front.push();
    r.answer_all();
    EXPECT_TRUE(r.push_responses());
    EXPECT_TRUE(r.front.final_check());
}

TEST(FrontRing, FinalCheckPastAnIncompleteFrame) {
    RingPair r;
    for (std::uint16_t i = 0; i < 3; ++i) r.front.put(request(i));
    (void)r.front.push();
    r.answer_all();
    (void)r.push_responses();
    // Three responses seen but left on the ring: wait for the fourth.
    EXPECT_FALSE(r.front.final_check(3));
    EXPECT_EQ(reinterpret_cast<netif_tx_sring_t*>(r.page)->rsp_event, 4u);
}

TEST(FrontRing, RefusesMoreResponsesThanRequests) {
    RingPair r;
    r.front.put(request(1));
    (void)r.front.push();
    auto* s = reinterpret_cast<netif_tx_sring_t*>(r.page);
    s->rsp_prod = 2;  // one response more than requests
    EXPECT_EQ(r.front.unconsumed().error(), Error::protocol);
    s->rsp_prod = 1 + 3 * 256;
    EXPECT_EQ(r.front.unconsumed().error(), Error::protocol);
    s->rsp_prod = 0xFFFFFFFF;  // backwards
    EXPECT_EQ(r.front.unconsumed().error(), Error::protocol);
    s->rsp_prod = 1;
    EXPECT_EQ(r.front.unconsumed().value(), 1u);
}

TEST(FrontRing, IndicesWrap) {
    RingPair r;
    for (int round = 0; round < 3 * 256 + 7; ++round) {
        r.front.put(request(static_cast<std::uint16_t>(round)));
        (void)r.front.push();
        r.answer_all();
        (void)r.push_responses();
        ASSERT_EQ(r.front.unconsumed().value(), 1u);
        ASSERT_EQ(r.front.response(0).id, static_cast<std::uint16_t>(round));
        r.front.consume(1);
        (void)r.front.final_check();
        (void)r.back_idle();
    }
    EXPECT_EQ(r.front.free_slots(), TxRing::size);
}

TEST(FrontRing, AnExtraInfoOverlaysARequestSlot) {
    RingPair r;
    std::memset(r.page + 64, 0xA5, 3 * sizeof(netif_tx_request_t));  // stale bytes in the slots
    r.front.put(request(1));
    netif_extra_info_t extra{};
    extra.type = XEN_NETIF_EXTRA_TYPE_GSO;
    extra.u.gso.size = 1448;
    extra.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
    r.front.put(extra);
    r.front.put(request(2));
    (void)r.front.push();
    EXPECT_EQ(r.back.sring->req_prod, 3u) << "one slot each";
    netif_extra_info_t seen;
    std::memcpy(&seen, RING_GET_REQUEST(&r.back, 1), sizeof seen);
    EXPECT_EQ(seen.type, XEN_NETIF_EXTRA_TYPE_GSO);
    EXPECT_EQ(seen.flags, 0);
    EXPECT_EQ(seen.u.gso.size, 1448);
    EXPECT_EQ(seen.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    EXPECT_EQ(seen.u.gso.pad, 0);
    EXPECT_EQ(seen.u.gso.features, 0);
    const auto* tail = reinterpret_cast<const unsigned char*>(RING_GET_REQUEST(&r.back, 1)) + sizeof seen;
    for (std::size_t i = 0; i < sizeof(netif_tx_request_t) - sizeof seen; ++i) EXPECT_EQ(tail[i], 0) << i;
    EXPECT_EQ(RING_GET_REQUEST(&r.back, 2)->id, 2);
}

TEST(FrontRing, OurIndicesAreNeverReadBack) {
    RingPair r;
    r.front.put(request(1));
    (void)r.front.push();
    auto* s = reinterpret_cast<netif_tx_sring_t*>(r.page);
    s->req_prod = 200;  // a backend scribbling on our index
    r.front.put(request(2));
    (void)r.front.push();
    EXPECT_EQ(s->req_prod, 2u);
}

TEST(ParseMac, AcceptsTheToolstacksFormat) {
    auto m = parse_mac("00:16:3e:0a:Bc:fF");
    ASSERT_TRUE(m);
    const Mac want{{0x00, 0x16, 0x3e, 0x0a, 0xbc, 0xff}};
    EXPECT_EQ(*m, want);
}

TEST(ParseMac, RejectsEverythingElse) {
    for (const char* bad : {"", "00:16:3e:0a:bc", "00:16:3e:0a:bc:ff:", "00-16-3e-0a-bc-ff", "0:16:3e:0a:bc:ff0",
                            "00:16:3e:0a:bc:fg", " 00:16:3e:0a:bc:f", "00:16:3e:0a:bc:ff\n", "01:16:3e:0a:bc:ff",
                            "ff:ff:ff:ff:ff:ff", "00:16:3e:0a:bc:+f"}) {
        EXPECT_FALSE(parse_mac(bad)) << bad;
    }
    EXPECT_FALSE(parse_mac(std::string_view("00:16:3e:0a:bc:f\0", 17)));
}

}  // namespace
}  // namespace keel::netfront
