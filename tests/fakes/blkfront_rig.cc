// The blkfront test rig.
#include "fakes/blkfront_rig.h"

namespace keel::test {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i)
        f[i] = static_cast<std::byte>((i * 7 + seed * 13 + (i >> 9) * 5) & 0xFF);
    return f;
}

BlkfrontTest::BlkfrontTest()
    : FrontendRig(4),
      bb(d, platform, entries),
      bb2(d, platform, entries, "device/vbd/51728", "/local/domain/0/backend/vbd/7/51728") {
    loop_platform.record_timers = false;  // allocation-counting tests run the loop
    add_backend(bb);
    add_backend(bb2);
}

BlkfrontTest::~BlkfrontTest() {
    data_only = false;
    bb.disconnect();  // so the devices' destructors find every grant free to revoke
    if (bb_moved) bb_moved->disconnect();
    bb2.disconnect();
    bf.reset();
    bf2.reset();
    blkfront::clear_devices();
    finish();
}

blkfront::Blkfront& BlkfrontTest::make_on(FakeBlkback& b, std::optional<blkfront::Blkfront>& dev,
                                          const DiskConfig& c, blkfront::Options o) {
    b.create(c);
    if (&b == &bb) config_ = c;
    auto node = run(XenbusDevice::probe(xs, b.front()));
    EXPECT_TRUE(node && node->ok());
    dev.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
    auto r = run(dev->init());
    EXPECT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    return *dev;
}

FakeBlkback& BlkfrontTest::move_to_new_domain(bool answering) {
    const std::vector<std::byte> contents = bb.disk();
    bb.vanish();
    bb_moved.emplace(d, platform, entries, bb.front(), "/local/domain/0/backend/vbd/8/51712");
    if (answering) add_backend(*bb_moved);
    bb_moved->create(config_);
    bb_moved->disk() = contents;
    return *bb_moved;
}

void BlkfrontTest::connect(blkfront::Blkfront& b) {
    auto r = run(b.connect());
    ASSERT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    settle();
    ASSERT_TRUE(b.connected());
}

}  // namespace keel::test
