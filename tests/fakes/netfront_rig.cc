// The netfront test rig.
#include "fakes/netfront_rig.h"

namespace keel::test {

std::vector<std::byte> make_frame(std::size_t n, unsigned seed) {
    std::vector<std::byte> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<std::byte>((i * 7 + seed * 13 + (i >> 8)) & 0xFF);
    return f;
}

std::vector<std::byte> flatten(const netfront::RxBuffer& b) {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < b.segment_count(); ++i) {
        auto s = b.segment(i);
        out.insert(out.end(), s.begin(), s.end());
    }
    return out;
}

NetfrontTest::NetfrontTest() : FrontendRig(2), nb(d, platform, entries) { add_backend(nb); }

NetfrontTest::~NetfrontTest() {
    rx.clear();
    nb.disconnect();  // so the device's destructor finds every grant free to revoke
    nf.reset();
    finish();
}

netfront::Netfront& NetfrontTest::construct(const BackendFeatures& f, netfront::Options o) {
    nb.create(f);
    auto node = run(XenbusDevice::probe(xs, FakeNetback::vif_front));
    EXPECT_TRUE(node && node->ok());
    nf.emplace(xs, node && node->ok() ? node->value() : XenbusNode{}, grants, platform, o);
    return *nf;
}

netfront::Netfront& NetfrontTest::make(const BackendFeatures& f, netfront::Options o) {
    construct(f, o);
    auto r = run(nf->init());
    EXPECT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    return *nf;
}

void NetfrontTest::connect() {
    auto r = run(nf->connect());
    ASSERT_TRUE(r && r->ok()) << (r ? to_string(r->error()) : "did not finish");
    settle();
    ASSERT_TRUE(nf->link_up());
    ASSERT_TRUE(nb.connected());
}

void NetfrontTest::collect() {
    nf->set_receive_handler([this](netfront::RxBuffer b) { rx.push_back(std::move(b)); });
}

}  // namespace keel::test
