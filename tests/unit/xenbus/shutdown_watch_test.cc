// ShutdownWatch against the fake xenstored playing the toolstack's side of control/shutdown.
#include "keel/xenbus/shutdown_watch.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "fakes/fake_xenstored.h"
#include "keel/log.h"

namespace keel {
namespace {

using test::FakeXenstored;

struct CaptureLog : LogSink {
    void write(std::string_view line) override { lines.emplace_back(line); }
    bool contains(std::string_view needle) const {
        for (const auto& l : lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }
    std::vector<std::string> lines;
};

struct ShutdownRig {
    explicit ShutdownRig(bool suspend = false)
        : xs(d.ring(), d.port()), watch(xs, [this](ShutdownRequest k) {
              got.push_back(k);
              // The acknowledgement is committed before we hear of the request.
              ack_seen_first.push_back(d.get("control/shutdown") == "");
          }, suspend) {
        set_log_sink(&log);
    }
    ~ShutdownRig() { set_log_sink(nullptr); }
    void settle() {
        test::settle(d, [this] { xs.on_event(); });
    }
    std::size_t tx_starts() const {
        std::size_t n = 0;
        for (const auto& r : d.requests()) n += r.type == XS_TRANSACTION_START;
        return n;
    }

    CaptureLog log;
    FakeXenstored d;
    xen::XenStore xs;
    std::vector<ShutdownRequest> got;
    std::vector<bool> ack_seen_first;
    ShutdownWatch watch;
};

TEST(ShutdownRequestNames, ParseIsExact) {
    const std::pair<std::string_view, std::optional<ShutdownRequest>> cases[] = {
        {"poweroff", ShutdownRequest::poweroff}, {"reboot", ShutdownRequest::reboot},
        {"halt", ShutdownRequest::halt},         {"crash", ShutdownRequest::crash},
        {"suspend", ShutdownRequest::suspend},   {"", std::nullopt},
        {"POWEROFF", std::nullopt},              {"reboot\n", std::nullopt},
        {std::string_view("halt\0", 5), std::nullopt}};
    for (const auto& [text, want] : cases) EXPECT_EQ(parse_shutdown_request(text), want) << text;
    EXPECT_STREQ(to_string(ShutdownRequest::suspend), "suspend");
}

TEST(ShutdownWatch, AdvertisesFeaturesAndWaitsQuietly) {
    auto r = std::make_unique<ShutdownRig>();
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    EXPECT_EQ(r->d.get("control/feature-poweroff"), "1");
    EXPECT_EQ(r->d.get("control/feature-reboot"), "1");
    EXPECT_EQ(r->d.get("control/feature-halt"), std::nullopt);  // only what we advertise
    EXPECT_EQ(r->d.watch_count(), 1u);
    EXPECT_TRUE(r->got.empty());  // the initial event finds no request
    EXPECT_EQ(r->watch.start().error(), Error::busy);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(ShutdownWatch, AdvertisesSuspendOnlyWhenTheOwnerHonoursIt) {
    auto s = std::make_unique<ShutdownRig>(/*suspend=*/true);
    ASSERT_TRUE(s->watch.start().ok());
    s->settle();
    EXPECT_EQ(s->d.get("control/feature-suspend"), "1");
    s->d.set("control/shutdown", "suspend");
    s->settle();
    EXPECT_EQ(s->got, std::vector<ShutdownRequest>{ShutdownRequest::suspend});
    EXPECT_EQ(s->d.get("control/shutdown"), "");  // acknowledged: what libxl waits for

    auto r = std::make_unique<ShutdownRig>();  // the default: not advertised
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    EXPECT_EQ(r->d.get("control/feature-suspend"), std::nullopt);
}

TEST(ShutdownWatch, AfterANewDomainFeaturesAreAdvertisedAgainAndRequestsStillArrive) {
    auto r = std::make_unique<ShutdownRig>(/*suspend=*/true);
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();

    // xl restore: a new connection, and a control/ directory the toolstack made afresh.
    r->d.restart_connection();
    r->d.remove("control");
    r->xs.reconnect();
    r->watch.resumed();
    r->settle();
    r->xs.on_event();  // what the wakeup hook posts
    r->settle();
    EXPECT_EQ(r->d.get("control/feature-poweroff"), "1");
    EXPECT_EQ(r->d.get("control/feature-suspend"), "1");
    r->d.set("control/shutdown", "poweroff");
    r->settle();
    EXPECT_EQ(r->got, std::vector<ShutdownRequest>{ShutdownRequest::poweroff});
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(ShutdownWatch, EveryKnownRequestIsAcknowledgedThenDelivered) {
    auto r = std::make_unique<ShutdownRig>();
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    const std::pair<const char*, ShutdownRequest> cases[] = {
        {"poweroff", ShutdownRequest::poweroff}, {"reboot", ShutdownRequest::reboot},
        {"halt", ShutdownRequest::halt},         {"crash", ShutdownRequest::crash},
        {"suspend", ShutdownRequest::suspend},
    };
    for (const auto& [text, kind] : cases) {
        SCOPED_TRACE(text);
        r->got.clear();
        r->d.set("control/shutdown", text);  // what `xl shutdown` / `xl reboot` do
        r->settle();
        ASSERT_EQ(r->got.size(), 1u);
        EXPECT_EQ(r->got[0], kind);
        EXPECT_EQ(r->d.get("control/shutdown"), "");
        EXPECT_TRUE(r->ack_seen_first.back());
    }
    EXPECT_EQ(r->d.open_transactions(), 0u);
    EXPECT_TRUE(r->log.contains("reboot requested"));
}

TEST(ShutdownWatch, UnknownRequestIsRejectedAndLeftUnacknowledged) {
    auto r = std::make_unique<ShutdownRig>();
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    r->d.set("control/shutdown", "dance");
    r->settle();
    EXPECT_TRUE(r->got.empty());
    EXPECT_EQ(r->d.get("control/shutdown"), "dance");
    EXPECT_TRUE(r->log.contains("rejected unknown request \"dance\""));
    EXPECT_EQ(r->d.open_transactions(), 0u);

    // A long hostile value is cut in the log, and a later real request still works.
    r->d.set("control/shutdown", std::string(200, 'z'));
    r->settle();
    EXPECT_TRUE(r->got.empty());
    r->d.set("control/shutdown", "poweroff");
    r->settle();
    ASSERT_EQ(r->got.size(), 1u);
    EXPECT_EQ(r->got[0], ShutdownRequest::poweroff);
}

TEST(ShutdownWatch, ConflictingAcknowledgementIsRetried) {
    auto r = std::make_unique<ShutdownRig>();
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    const std::size_t before = r->tx_starts();
    r->d.force_conflict_once();
    r->d.set("control/shutdown", "reboot");
    r->settle();
    ASSERT_EQ(r->got.size(), 1u);
    EXPECT_EQ(r->got[0], ShutdownRequest::reboot);
    // The conflict, the retry, then one more look after our own acknowledgement fired the watch.
    EXPECT_EQ(r->tx_starts() - before, 3u);
    EXPECT_EQ(r->d.get("control/shutdown"), "");
}

TEST(ShutdownWatch, UnwritableControlStillDelivers) {
    auto r = std::make_unique<ShutdownRig>();
    r->d.set_read_only("control");
    ASSERT_TRUE(r->watch.start().ok());
    r->settle();
    EXPECT_TRUE(r->log.contains("cannot advertise"));
    r->d.set("control/shutdown", "poweroff");  // the toolstack can write; we cannot
    r->settle();
    ASSERT_EQ(r->got.size(), 1u);
    EXPECT_EQ(r->got[0], ShutdownRequest::poweroff);
    EXPECT_TRUE(r->log.contains("cannot acknowledge poweroff"));
    EXPECT_EQ(r->d.open_transactions(), 0u);
}

TEST(ShutdownWatch, DestructionUnwatches) {
    FakeXenstored d;
    xen::XenStore xs(d.ring(), d.port());
    {
        ShutdownWatch w(xs, [](ShutdownRequest) {});
        ASSERT_TRUE(w.start().ok());
        test::settle(d, [&] { xs.on_event(); });
        EXPECT_EQ(d.watch_count(), 1u);
    }
    test::settle(d, [&] { xs.on_event(); });
    EXPECT_EQ(d.watch_count(), 0u);
}

}  // namespace
}  // namespace keel
