// The shared fakes catch what they are there to catch: the fake xenbus backend fails the test on
// an illegal frontend transition, the test platform on a channel closed twice or pages it never
// handed out; the allocation counter sees allocations.
#include <gtest/gtest.h>

#include "fakes/allocation_counter.h"
#include "fakes/failure_capture.h"
#include "fakes/fake_xenbus_backend.h"
#include "fakes/fake_xenstored.h"
#include "fakes/test_platform.h"

namespace keel::test {
namespace {

using S = XenbusState;

constexpr const char* front = "device/vif/0";
constexpr const char* back = "/local/domain/0/backend/vif/7/0";

TEST(FakeXenbusBackend, FailsTheTestOnAnIllegalFrontendTransition) {
    FakeXenstored d;
    FakeXenbusBackend backend(d, front, back);
    backend.create_nodes();
    backend.step();
    ASSERT_EQ(backend.state(), S::init_wait);
    // io/blkif.h: a frontend goes Initialising -> Initialised; never straight to Closing.
    d.set(std::string(front) + "/state", state_value(S::closing));
    const auto failures = failures_of([&] { backend.step(); });
    EXPECT_TRUE(mentions(failures, "frontend went Initialising -> Closing")) << ::testing::PrintToString(failures);
    EXPECT_EQ(backend.violations(), 1);
    EXPECT_EQ(backend.frontend_history(), (XenbusHistory{S::initialising, S::closing}));
}

TEST(FakeXenbusBackend, FailsTheTestOnAStateThatIsNotOne) {
    FakeXenstored d;
    FakeXenbusBackend backend(d, front, back);
    backend.create_nodes();
    backend.step();
    d.set(std::string(front) + "/state", "connected");
    const auto failures = failures_of([&] { backend.step(); });
    EXPECT_TRUE(mentions(failures, "frontend wrote state \"connected\""));
    EXPECT_EQ(backend.violations(), 1);
}

TEST(FakeXenbusBackend, AConnectedFrontendWithoutItsKeysIsCaught) {
    FakeXenstored d;
    FakeXenbusBackend backend(d, front, back);
    backend.require_keys({"ring-ref"});
    backend.create_nodes();
    backend.step();
    d.set(std::string(front) + "/state", state_value(S::initialised));
    const auto failures = failures_of([&] { backend.step(); });
    EXPECT_TRUE(mentions(failures, "frontend Initialised without ring-ref"));
}

TEST(TestPlatform, FailsTheTestOnAChannelClosedTwice) {
    TestPlatform platform;
    std::uint32_t port = 0;
    auto ch = platform.open_channel(0, port);
    ASSERT_TRUE(ch.ok());
    platform.close_channel(*ch);
    const auto failures = failures_of([&] { platform.close_channel(*ch); });
    EXPECT_TRUE(mentions(failures, "closed twice"));
    EXPECT_EQ(platform.open_channels(), 0u);
}

TEST(TestPlatform, AccountsForPagesAndRefusesForeignOnes) {
    TestPlatform platform;
    std::byte* p = platform.alloc_pages(3);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(platform.pages_outstanding(), 3u);
    EXPECT_EQ(platform.page_of(platform.gfn(p + 2 * 4096)), p + 2 * 4096);
    std::byte stack_page[16];
    EXPECT_TRUE(mentions(failures_of([&] { (void)platform.gfn(stack_page); }), "did not hand out"));
    EXPECT_TRUE(mentions(failures_of([&] { platform.free_pages(stack_page, 1); }), "not allocated"));
    platform.free_pages(p, 3);
    EXPECT_EQ(platform.pages_outstanding(), 0u);
    platform.fail_page_allocs = 1;
    EXPECT_EQ(platform.alloc_pages(1), nullptr);
}

TEST(AllocationCounter, SeesAllocations) {
    AllocationCounter counter;
    static int* volatile sink;
    sink = new int(3);
    delete sink;
    EXPECT_EQ(counter.count(), 1u);
}

}  // namespace
}  // namespace keel::test
