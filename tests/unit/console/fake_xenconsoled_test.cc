// The fake xenconsoled itself: a guest that keeps to io/console.h passes, and each way of
// breaking the ring rules fails the test. The guest here is the test, writing the page by hand.
#include "fakes/fake_xenconsoled.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace keel::test {
namespace {

constexpr std::uint32_t out_size = sizeof(xencons_interface::out);
constexpr std::uint32_t in_size = sizeof(xencons_interface::in);

// A well-behaved guest: bytes first, then out_prod (io/console.h, producer side).
void guest_write(FakeXenconsoled& d, std::string_view text) {
    volatile xencons_interface* r = d.ring();
    std::uint32_t prod = r->out_prod;
    for (char c : text) r->out[MASK_XENCONS_IDX(prod++, r->out)] = c;
    __atomic_store_n(&r->out_prod, prod, __ATOMIC_RELEASE);
}

// A well-behaved guest: read what in_prod covers, then release it through in_cons.
std::string guest_read(FakeXenconsoled& d) {
    volatile xencons_interface* r = d.ring();
    const std::uint32_t prod = __atomic_load_n(&r->in_prod, __ATOMIC_ACQUIRE);
    std::string got;
    for (std::uint32_t cons = r->in_cons; cons != prod; ++cons) got.push_back(r->in[MASK_XENCONS_IDX(cons, r->in)]);
    __atomic_store_n(&r->in_cons, prod, __ATOMIC_RELEASE);
    return got;
}

TEST(FakeXenconsoledRules, AGuestKeepingToTheRingPassesAcrossTheIndexWrap) {
    FakeXenconsoled d(0xFFFFFFF0u);  // every index wraps through 0 below
    guest_write(d, "hello, ");
    guest_write(d, "backend");
    d.drain();
    EXPECT_EQ(d.output(), "hello, backend");
    d.type("typed input");
    EXPECT_EQ(guest_read(d), "typed input");
    d.type("more");
    EXPECT_EQ(guest_read(d), "more");
    EXPECT_EQ(d.violations(), 0);
}

TEST(FakeXenconsoledRules, AFullOutRingIsStillLegal) {
    FakeXenconsoled d;
    guest_write(d, std::string(out_size, 'x'));
    d.drain();
    EXPECT_EQ(d.output().size(), out_size);
    EXPECT_EQ(d.violations(), 0);
}

TEST(FakeXenconsoledRules, OutProdOneBeyondAFullRingAfterTheWrap) {
    FakeXenconsoled d(0xFFFFFF00u);
    d.ring()->out_prod = 0xFFFFFF00u + out_size + 1;
    EXPECT_NONFATAL_FAILURE(d.drain(), "out_prod points beyond the free space");
    EXPECT_EQ(d.violations(), 1);
    EXPECT_EQ(d.output(), "");  // nothing is read from a ring the guest has overrun
}

TEST(FakeXenconsoledRules, InConsMovingBackwards) {
    FakeXenconsoled d(50);
    d.type("abc");
    EXPECT_EQ(guest_read(d), "abc");
    d.type("d");  // the backend sees in_cons at 53 before producing again
    EXPECT_EQ(guest_read(d), "d");
    d.ring()->in_cons = 52;  // the guest takes back bytes it already released
    EXPECT_NONFATAL_FAILURE(d.type("e"), "in_cons moved backwards");
}

TEST(FakeXenconsoledRules, InConsPassingInProd) {
    FakeXenconsoled d;
    d.type("abc");
    d.ring()->in_cons = 4;  // consumes a byte the backend never produced
    EXPECT_NONFATAL_FAILURE(d.type("d"), "in_cons moved beyond the producer");
}

TEST(FakeXenconsoledRules, GuestWritingTheInputProducer) {
    FakeXenconsoled d;
    d.ring()->in_prod = 3;  // the producer index of the other direction belongs to the backend
    EXPECT_NONFATAL_FAILURE(d.drain(), "guest wrote in_prod");
}

TEST(FakeXenconsoledRules, AnOverfullInRingIsNeverProduced) {
    FakeXenconsoled d;
    d.type(std::string(in_size + 10, 'y'));
    EXPECT_EQ(d.input_backlog(), 10u);  // the rest waits for the guest to make room
    EXPECT_EQ(guest_read(d).size(), in_size);
    d.type("");
    EXPECT_EQ(d.input_backlog(), 0u);
    EXPECT_EQ(d.violations(), 0);
}

}  // namespace
}  // namespace keel::test
