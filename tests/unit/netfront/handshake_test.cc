// Netfront's init and xenbus handshake against the fake netback (and its xenbus column).
#include <gtest/gtest.h>

#include "fakes/netfront_rig.h"

namespace keel::test {
namespace {

using S = XenbusState;

using netfront::Netfront;

TEST_F(NetfrontTest, InitReadsMacAndDefaultMtu) {
    Netfront& n = make();
    EXPECT_EQ(n.mac(), (netfront::Mac{{0x00, 0x16, 0x3e, 0x12, 0x34, 0x56}}));
    EXPECT_EQ(n.mtu(), 1500);
    EXPECT_EQ(n.max_frame(), 1518u);
    EXPECT_FALSE(n.link_up());
    EXPECT_EQ(platform.pages_outstanding(), 2u + 256 + 256);
    auto again = run(n.init());
    EXPECT_EQ(again->error(), Error::busy);
}

TEST_F(NetfrontTest, InitRefusesABadMac) {
    construct();
    d.set(std::string(FakeNetback::vif_front) + "/mac", "00:16:3e:12:34");
    auto r = run(nf->init());
    EXPECT_EQ(r->error(), Error::bad_input);
    EXPECT_TRUE(logged("rejected mac"));
    EXPECT_EQ(platform.pages_outstanding(), 0u);
}

TEST_F(NetfrontTest, InitRefusesAMissingMac) {
    construct();
    d.remove(std::string(FakeNetback::vif_front) + "/mac");
    auto r = run(nf->init());
    EXPECT_EQ(r->error(), Error::not_found);
}

TEST_F(NetfrontTest, InitReadsAndValidatesTheMtu) {
    construct();
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
    auto r = run(nf->init());
    ASSERT_TRUE(r->ok());
    EXPECT_EQ(nf->mtu(), 9000);
    EXPECT_EQ(nf->max_frame(), 9018u);
}

TEST_F(NetfrontTest, InitRefusesAnAbsurdMtu) {
    for (const char* bad : {"12", "65518", "1500x", "-1"}) {
        nf.reset();
        construct();
        d.set(std::string(FakeNetback::vif_front) + "/mtu", bad);
        auto r = run(nf->init());
        EXPECT_EQ(r->error(), Error::bad_input) << bad;
    }
}

TEST_F(NetfrontTest, InitRefusesAnMtuTheTxPoolCannotCarry) {
    netfront::Options o;
    o.tx_buffers = 2;
    construct({}, o);
    d.set(std::string(FakeNetback::vif_front) + "/mtu", "9000");
    auto r = run(nf->init());
    EXPECT_EQ(r->error(), Error::invalid_argument);
}

TEST_F(NetfrontTest, BufferCountsAreClamped) {
    netfront::Options o;
    o.rx_buffers = 0;      // at least 1
    o.tx_buffers = 1000;   // at most the ring
    make({}, o);
    EXPECT_EQ(platform.pages_outstanding(), 2u + 1 + 256);
    connect();
    EXPECT_EQ(nb.rx_posted(), 1u);
}

TEST_F(NetfrontTest, HandshakeWritesTheKeysAndConnects) {
    make_connected();
    EXPECT_EQ(key("state"), state_value(S::connected));
    EXPECT_EQ(nb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::connected}));
    EXPECT_EQ(key("request-rx-copy"), "1");
    EXPECT_EQ(key("feature-rx-notify"), "1");
    EXPECT_EQ(key("feature-sg"), "1");
    EXPECT_EQ(key("feature-no-csum-offload"), "0");
    EXPECT_EQ(key("event-channel"), std::to_string(nb.tx_port()));
    EXPECT_FALSE(key("event-channel-tx"));
    EXPECT_FALSE(key("event-channel-rx"));
    EXPECT_FALSE(key("multi-queue-num-queues")) << "the backend offered no queues";
    EXPECT_EQ(key("feature-gso-tcpv4"), "1") << "we take GSO frames";
    EXPECT_FALSE(key("feature-gso-tcpv6"));
    // The ring references name read/write grants of two distinct pages, to the backend.
    const auto tx_ref = std::stoul(*key("tx-ring-ref"));
    const auto rx_ref = std::stoul(*key("rx-ring-ref"));
    EXPECT_NE(tx_ref, rx_ref);
    EXPECT_EQ(entries[tx_ref].flags & GTF_readonly, 0);
    EXPECT_EQ(entries[rx_ref].domid, FakeNetback::domid);
    // Every rx page posted; every buffer granted: 2 rings + 256 rx + 256 tx.
    EXPECT_EQ(nb.rx_posted(), 256u);
    EXPECT_EQ(grants.stats().in_use, 2u + 256 + 256);
    const auto& f = nf->features();
    EXPECT_TRUE(f.sg);
    EXPECT_TRUE(f.tx_checksum_offload);
    EXPECT_FALSE(f.split_event_channels);
    EXPECT_FALSE(f.multi_queue);
    EXPECT_TRUE(f.tx_gso_tcpv4);
    EXPECT_TRUE(f.rx_gso_tcpv4);
    EXPECT_EQ(nf->stats().connects, 1u);
    EXPECT_TRUE(logged("gso tx on rx on"));
}

TEST_F(NetfrontTest, ConnectsToABackendThatWantsInitialised) {
    nb.xenbus().act_like_netback(false);  // blkback's convention: connect on Initialised
    netfront::Options o;
    o.frontend.xenbus.publish_connected = false;
    make_connected({}, o);
    EXPECT_EQ(nb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::initialised, S::connected}));
    EXPECT_EQ(nb.rx_posted(), 256u);
    (void)run(nf->close());
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u);
}

TEST_F(NetfrontTest, SplitChannelsAndOneQueueWhenOffered) {
    BackendFeatures f;
    f.split_event_channels = true;
    f.multi_queue_max = 4;
    make_connected(f);
    EXPECT_EQ(key("multi-queue-num-queues"), "1");
    EXPECT_FALSE(key("queue-0/tx-ring-ref")) << "one queue: keys at the top level";
    EXPECT_TRUE(key("tx-ring-ref"));
    EXPECT_EQ(key("event-channel-tx"), std::to_string(nb.tx_port()));
    EXPECT_EQ(key("event-channel-rx"), std::to_string(nb.rx_port()));
    EXPECT_NE(nb.tx_port(), nb.rx_port());
    EXPECT_FALSE(key("event-channel"));
    EXPECT_TRUE(nf->features().split_event_channels);
    EXPECT_TRUE(nf->features().multi_queue);
    EXPECT_EQ(platform.open_channels(), 2u);
}

TEST_F(NetfrontTest, BackendWithoutRxCopyIsRefused) {
    BackendFeatures f;
    f.rx_copy = false;
    make(f);
    auto r = run(nf->connect());
    EXPECT_EQ(r->error(), Error::not_supported);
    settle();
    EXPECT_FALSE(nf->link_up());
    EXPECT_EQ(grants.stats().in_use, 0u) << "nothing stays granted";
    EXPECT_EQ(platform.open_channels(), 0u);
    EXPECT_EQ(key("state"), state_value(S::closed));
}

TEST_F(NetfrontTest, NoCsumOffloadFromTheBackendIsHonoured) {
    BackendFeatures f;
    f.no_csum_offload = true;
    make_connected(f);
    EXPECT_FALSE(nf->features().tx_checksum_offload);
}

TEST_F(NetfrontTest, RxGsoOffIsNotAdvertised) {
    netfront::Options o;
    o.rx_gso = false;
    make_connected({}, o);
    EXPECT_FALSE(key("feature-gso-tcpv4"));
    EXPECT_FALSE(nf->features().rx_gso_tcpv4);
    EXPECT_TRUE(nf->features().tx_gso_tcpv4) << "sending GSO frames does not depend on taking them";
    EXPECT_TRUE(logged("gso tx on rx off"));
}

TEST_F(NetfrontTest, RxGsoNeedsAnRxPoolThatHoldsA64KiBFrame) {
    netfront::Options o;
    o.rx_buffers = XEN_NETIF_NR_SLOTS_MIN;  // one short: 18 data slots + the extra-info
    make_connected({}, o);
    EXPECT_FALSE(key("feature-gso-tcpv4"));
    EXPECT_FALSE(nf->features().rx_gso_tcpv4);
    EXPECT_TRUE(logged("cannot hold a GSO frame"));
}

TEST(NetfrontOptions, PoolsScaleWithTheDomainsMemory) {
    constexpr std::uint64_t mib = 1 << 20;
    struct Case {
        std::uint64_t ram;
        std::uint16_t pages;
    };
    for (Case c : {Case{1 * mib, 32}, Case{2 * mib, 32}, Case{4 * mib, 64}, Case{8 * mib, 128},
                   Case{16 * mib, 256}, Case{64 * mib, 256}, Case{std::uint64_t{1} << 40, 256}}) {
        const netfront::Options o = netfront::options_for_memory(c.ram);
        EXPECT_EQ(o.rx_buffers, c.pages) << c.ram / mib << " MiB";
        EXPECT_EQ(o.tx_buffers, c.pages) << c.ram / mib << " MiB";
    }
}

TEST_F(NetfrontTest, TheSmallestMemorysPoolsStillTakeGsoFrames) {
    make_connected({}, netfront::options_for_memory(1 << 20));
    EXPECT_EQ(key("feature-gso-tcpv4"), "1");
    EXPECT_TRUE(nf->features().rx_gso_tcpv4);
}

struct TxGsoCase {
    const char* missing;
    BackendFeatures features;
};

class TxGsoNeeds : public NetfrontTest, public ::testing::WithParamInterface<TxGsoCase> {};

TEST_P(TxGsoNeeds, AllThreeBackendFeatures) {
    make_connected(GetParam().features);
    EXPECT_FALSE(nf->features().tx_gso_tcpv4) << "backend without " << GetParam().missing;
    EXPECT_TRUE(nf->features().rx_gso_tcpv4) << "our own offer stands";
    EXPECT_EQ(key("feature-gso-tcpv4"), "1");
}

INSTANTIATE_TEST_SUITE_P(Missing, TxGsoNeeds,
                         ::testing::Values(TxGsoCase{"feature-gso-tcpv4", {.gso_tcpv4 = false}},
                                           TxGsoCase{"feature-sg", {.sg = false}},
                                           TxGsoCase{"checksum offload", {.no_csum_offload = true}}));

TEST_F(NetfrontTest, ChannelFailureUndoesTheSetup) {
    make();
    platform.fail_channel_opens = 1;
    auto r = run(nf->connect());
    EXPECT_EQ(r->error(), Error::io);
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(key("state"), state_value(S::closed));
    // A second attempt works.
    connect();
}

TEST_F(NetfrontTest, PublishingThatKeepsConflictingFailsCleanly) {
    make();
    nb.xenbus().conflict_next_transactions(8);  // XenbusDevice tries 8 times
    auto r = run(nf->connect());
    EXPECT_EQ(r->error(), Error::again);
    settle();
    // Released right after XenbusDevice wrote Closed (it runs no teardown for a configuration
    // it never published); the backend never learnt the references.
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(platform.open_channels(), 0u);
    connect();
}

TEST_F(NetfrontTest, BackendThatNeverAnswersTimesOut) {
    make();
    nb.xenbus().set_behaviour(FakeXenbusBackend::Behaviour::never_connect);
    auto r = run(nf->connect());
    EXPECT_EQ(r->error(), Error::timed_out);
    settle();
    EXPECT_EQ(grants.stats().in_use, 0u) << "the teardown revoked everything";
    EXPECT_EQ(platform.open_channels(), 0u);
}

TEST_F(NetfrontTest, CloseRevokesEverything) {
    make_connected();
    std::vector<bool> link;
    nf->set_link_handler([&link](bool up) { link.push_back(up); });
    auto r = run(nf->close());
    EXPECT_TRUE(r->ok());
    settle();
    EXPECT_FALSE(nf->link_up());
    EXPECT_EQ(link, std::vector<bool>{false});
    EXPECT_EQ(grants.stats().in_use, 0u);
    EXPECT_EQ(platform.open_channels(), 0u);
    EXPECT_EQ(nb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::connected, S::closing, S::closed}));
    // And it connects again.
    connect();
    EXPECT_EQ(nb.connections(), 2);
    EXPECT_EQ(nf->stats().connects, 2u);
}

TEST_F(NetfrontTest, BackendHoldingTheRingsHoldsThemNotReusesThem) {
    make_connected();
    nb.keep_rings_mapped = true;
    (void)run(nf->close());
    settle();
    EXPECT_EQ(grants.stats().leaked, 0u) << "kept with their grants, not leaked";
    EXPECT_EQ(nf->stats().held_pages, 2u);
    EXPECT_TRUE(logged("backend still maps the rings after closing; held until it lets go"));
    nb.keep_rings_mapped = false;
    connect();  // on fresh ring pages
    EXPECT_EQ(nf->stats().held_pages, 2u);
    nb.let_go();
    (void)run(nf->close());
    connect();  // the held pair is freed now
    EXPECT_EQ(nf->stats().held_pages, 0u);
}

TEST_F(NetfrontTest, SupervisorConnectsAndReconnectsAfterTheBackendLeaves) {
    make();
    std::vector<bool> link;
    nf->set_link_handler([&link](bool up) { link.push_back(up); });
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    nb.xenbus().set_state(S::closing);  // the backend goes away (e.g. its driver domain restarts)
    ASSERT_TRUE(run_until([&] { return !nf->link_up(); }));
    ASSERT_TRUE(run_until([&] { return nf->link_up() && nf->stats().connects == 2; }));
    EXPECT_EQ(link, (std::vector<bool>{true, false, true}));
    EXPECT_EQ(nf->stats().resets, 0u);
    EXPECT_EQ(nb.xenbus().frontend_history(), (XenbusHistory{S::initialising, S::connected, S::closing, S::closed, S::initialising, S::connected}));
}

TEST_F(NetfrontTest, SupervisorStopsWhenTheDeviceIsRemoved) {
    make();
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    nb.xenbus().set_state(S::closing);
    d.remove(std::string(FakeNetback::vif_front) + "/backend");
    ASSERT_TRUE(run_until([&] { return logged("device gone"); }));
    settle();
    EXPECT_FALSE(nf->link_up());
}

// xl network-detach: the device is retired and gives back its 514 pages (before, a detached vif
// kept them for the guest's life: 2 MiB per detach at full rings). The rx pool waits for the
// frame the stack still holds.
TEST_F(NetfrontTest, ADetachedDeviceGivesBackItsPagesOnceTheStackLetsGo) {
    make();
    collect();
    int gone = 0;
    std::size_t pages_when_gone = 0;
    nf->set_gone_handler([&] {
        ++gone;
        pages_when_gone = platform.pages_outstanding();
    });
    nf->start();
    ASSERT_TRUE(run_until([&] { return nf->link_up(); }));
    nb.inject(make_frame(200, 7));
    pump_data();
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(platform.pages_outstanding(), 2u + 256 + 256);
    d.set(std::string(FakeNetback::vif_back) + "/online", "0");  // libxl's detach
    nb.xenbus().set_state(S::closing);
    ASSERT_TRUE(run_until([&] { return nf->retired(); }));
    settle();
    EXPECT_FALSE(nf->supervising());
    EXPECT_EQ(platform.pages_outstanding(), 256u) << "the rx pool, one of whose pages the stack holds";
    EXPECT_EQ(gone, 1) << "the net layer was not told the device is gone";
    EXPECT_EQ(pages_when_gone, 256u) << "told before the pages were given back";
    int late = 0;
    nf->set_gone_handler([&] { ++late; });
    EXPECT_EQ(late, 1) << "a handler set after the device went is not told";
    rx.clear();  // the stack lets go of the frame
    EXPECT_EQ(platform.pages_outstanding(), 0u);
    auto again = run(nf->connect());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->error(), Error::closed) << "a retired device has no pages to connect with";
    const auto f = make_frame(60, 8);
    const std::span<const std::byte> parts[] = {std::span<const std::byte>(f)};
    EXPECT_EQ(nf->transmit(parts).error(), Error::closed);
}

TEST_F(NetfrontTest, SupervisorGivesUpAfterRepeatedFailures) {
    BackendFeatures f;
    f.rx_copy = false;
    netfront::Options o;
    o.frontend.max_connect_failures = 3;
    make(f, o);
    nf->start();
    ASSERT_TRUE(run_until([&] { return logged("giving up after 3 failed handshakes"); }));
    EXPECT_TRUE(nf->retired());
    EXPECT_EQ(platform.pages_outstanding(), 0u) << "a device given up on keeps no pages";
}

}  // namespace
}  // namespace keel::test
