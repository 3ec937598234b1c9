// XenStore client against the fake xenstored: requests, transactions, watches, the blocking
// helpers, and a daemon that breaks the protocol in every way the fake knows.
#include "keel/xen/xenstore.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fakes/fake_xenstored.h"

namespace keel::xen {
namespace {

using test::FakeXenstored;
using Misbehave = FakeXenstored::Misbehave;

// A guest XenStore wired to a fake daemon, with synchronous-looking helpers for the tests.
struct Rig {
    explicit Rig(std::uint32_t start_index = 0) : d(7, start_index), xs(d.ring(), d.port()) {
        xs.set_wakeup([this] { ++wakeups; });
    }

    // The event loop: xenstore events, and on_event() posted by the wakeup hook.
    void settle() {
        for (;;) {
            test::settle(d, [this] { xs.on_event(); });
            if (wakeups == handled_wakeups) break;
            handled_wakeups = wakeups;
            xs.on_event();
        }
    }
    int wakeups = 0;
    int handled_wakeups = 0;

    Result<std::string> read(std::string_view path, XenStore::Tx tx = 0) {
        bool called = false;
        Error err = Error::ok;
        std::string value;
        xs.read(
            path,
            [&](Result<std::string_view> r) {
                called = true;
                if (r)
                    value = std::string(*r);
                else
                    err = r.error();
            },
            tx);
        settle();
        EXPECT_TRUE(called);
        if (!called) return Error::timed_out;
        if (err != Error::ok) return err;
        return value;
    }

    Error write(std::string_view path, std::string_view value, XenStore::Tx tx = 0) {
        return finish([&](auto cb) { xs.write(path, value, std::move(cb), tx); });
    }
    Error mkdir(std::string_view path) {
        return finish([&](auto cb) { xs.mkdir(path, std::move(cb)); });
    }
    Error remove(std::string_view path) {
        return finish([&](auto cb) { xs.remove(path, std::move(cb)); });
    }
    Error end(XenStore::Tx tx, bool commit) {
        return finish([&](auto cb) { xs.transaction_end(tx, commit, std::move(cb)); });
    }

    Result<std::vector<std::string>> dir(std::string_view path) {
        bool called = false;
        Error err = Error::ok;
        std::vector<std::string> names;
        xs.directory(path, [&](Result<DirList> r) {
            called = true;
            if (!r) {
                err = r.error();
                return;
            }
            EXPECT_EQ(r->size(), static_cast<std::size_t>(std::distance(r->begin(), r->end())));
            for (std::string_view n : *r) names.emplace_back(n);
        });
        settle();
        EXPECT_TRUE(called);
        if (err != Error::ok) return err;
        return names;
    }

    Result<XenStore::Tx> begin() {
        bool called = false;
        Result<XenStore::Tx> out = Error::timed_out;
        xs.transaction_start([&](Result<XenStore::Tx> r) {
            called = true;
            out = r;
        });
        settle();
        EXPECT_TRUE(called);
        return out;
    }

    template <typename Start>
    Error finish(Start start) {
        bool called = false;
        Error err = Error::timed_out;
        start(Function<void(Result<void>)>([&](Result<void> r) {
            called = true;
            err = r.error();
        }));
        settle();
        EXPECT_TRUE(called);
        return err;
    }

    FakeXenstored d;
    XenStore xs;
};

std::unique_ptr<Rig> rig(std::uint32_t start_index = 0) { return std::make_unique<Rig>(start_index); }

// ---- pure helpers -------------------------------------------------------------------------

TEST(XenStoreErrors, MapsXenstoredErrorStrings) {
    EXPECT_EQ(error_from_xs("ENOENT"), Error::not_found);
    EXPECT_EQ(error_from_xs(std::string_view("ENOENT", 7)), Error::not_found);
    EXPECT_EQ(error_from_xs("EACCES"), Error::permission);
    EXPECT_EQ(error_from_xs("EPERM"), Error::permission);
    EXPECT_EQ(error_from_xs("EROFS"), Error::permission);
    EXPECT_EQ(error_from_xs("EAGAIN"), Error::again);
    EXPECT_EQ(error_from_xs("EEXIST"), Error::exists);
    EXPECT_EQ(error_from_xs("EINVAL"), Error::invalid_argument);
    EXPECT_EQ(error_from_xs("E2BIG"), Error::no_space);
    EXPECT_EQ(error_from_xs("ENOSPC"), Error::no_space);
    EXPECT_EQ(error_from_xs("EBUSY"), Error::busy);
    EXPECT_EQ(error_from_xs("ENOMEM"), Error::no_memory);
    EXPECT_EQ(error_from_xs("EIO"), Error::io);
    EXPECT_EQ(error_from_xs(""), Error::io);
    EXPECT_EQ(error_from_xs("ENOENTX"), Error::io);
}

TEST(DirListParse, ValidatesNamesAndIterates) {
    auto empty = DirList::parse("");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    EXPECT_EQ(empty->begin(), empty->end());

    const std::string raw("vif\0vbd\0console\0", 16);
    auto list = DirList::parse(raw);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->size(), 3u);
    std::vector<std::string> names(list->begin(), list->end());
    EXPECT_EQ(names, (std::vector<std::string>{"vif", "vbd", "console"}));

    EXPECT_EQ(DirList::parse(std::string_view("vif", 3)).error(), Error::protocol);
    EXPECT_EQ(DirList::parse(std::string_view("a\0\0", 3)).error(), Error::protocol);
    EXPECT_EQ(DirList::parse(std::string_view("\0", 1)).error(), Error::protocol);
}

// ---- requests -----------------------------------------------------------------------------

TEST(XenStore, WriteThenReadRelativeAndAbsolute) {
    auto r = rig();
    EXPECT_EQ(r->write("data/greeting", "hello"), Error::ok);
    EXPECT_EQ(r->d.get("/local/domain/7/data/greeting"), "hello");
    EXPECT_EQ(r->read("data/greeting").value(), "hello");
    EXPECT_EQ(r->read("/local/domain/7/data/greeting").value(), "hello");
    EXPECT_EQ(r->write("data/empty", ""), Error::ok);
    EXPECT_EQ(r->read("data/empty").value(), "");
    EXPECT_EQ(r->read("data/missing").error(), Error::not_found);
    EXPECT_EQ(r->xs.stats().errors, 0u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStore, WireFormatMatchesXsWire) {
    auto r = rig();
    ASSERT_EQ(r->write("a", "v"), Error::ok);
    ASSERT_TRUE(r->read("a"));
    ASSERT_TRUE(r->begin());
    const auto& seen = r->d.requests();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].type, static_cast<std::uint32_t>(XS_WRITE));
    EXPECT_EQ(seen[0].payload, std::string("a\0v", 3));  // value without a NUL
    EXPECT_EQ(seen[1].type, static_cast<std::uint32_t>(XS_READ));
    EXPECT_EQ(seen[1].payload, std::string("a\0", 2));
    EXPECT_EQ(seen[2].type, static_cast<std::uint32_t>(XS_TRANSACTION_START));
    EXPECT_EQ(seen[2].payload, std::string("\0", 1));
    EXPECT_NE(seen[0].req_id, seen[1].req_id);
}

TEST(XenStore, MkdirDirectoryRemove) {
    auto r = rig();
    EXPECT_EQ(r->mkdir("device"), Error::ok);
    EXPECT_EQ(r->dir("device").value(), std::vector<std::string>{});
    EXPECT_EQ(r->write("device/vif/0/state", "1"), Error::ok);
    EXPECT_EQ(r->write("device/vbd/768/state", "1"), Error::ok);
    EXPECT_EQ(r->dir("device").value(), (std::vector<std::string>{"vbd", "vif"}));
    EXPECT_EQ(r->remove("device/vif"), Error::ok);
    EXPECT_EQ(r->dir("device").value(), std::vector<std::string>{"vbd"});
    EXPECT_EQ(r->read("device/vif/0/state").error(), Error::not_found);
    EXPECT_EQ(r->dir("nowhere").error(), Error::not_found);
    EXPECT_EQ(r->remove("nowhere/deeper"), Error::not_found);
}

TEST(XenStore, CallbacksRunOnlyFromOnEvent) {
    auto r = rig();
    r->d.set("x", "1");
    bool called = false;
    r->xs.read("x", [&](Result<std::string_view>) { called = true; });
    EXPECT_FALSE(called);  // the fake already answered, but we are still inside no on_event()
    r->settle();
    EXPECT_TRUE(called);

    // Refused at submission (too large): still delivered from on_event(), never from the call.
    called = false;
    Error err = Error::ok;
    const std::string huge(5000, 'v');
    r->xs.write("x", huge, [&](Result<void> res) {
        called = true;
        err = res.error();
    });
    EXPECT_FALSE(called);
    EXPECT_EQ(r->wakeups, 1);  // the owner is asked to run on_event() soon
    r->xs.on_event();
    EXPECT_TRUE(called);
    EXPECT_EQ(err, Error::no_space);
}

TEST(XenStore, OversizedRequestsNeverTouchTheRing) {
    auto r = rig();
    const std::uint32_t before = r->d.ring()->req_prod;
    const std::string path(4096, 'p');  // with its NUL: 4097 > XENSTORE_PAYLOAD_MAX
    Error e1 = Error::ok, e2 = Error::ok, e3 = Error::ok;
    r->xs.read(path, [&](Result<std::string_view> res) { e1 = res.error(); });
    r->xs.write("v", std::string(4094, 'x'),
                [&](Result<void> res) { e2 = res.error(); });  // 2+4094 = 4096: fits
    r->xs.read(std::string_view("a\0b", 3), [&](Result<std::string_view> res) { e3 = res.error(); });
    r->settle();
    EXPECT_EQ(e1, Error::no_space);
    EXPECT_EQ(e2, Error::ok);
    EXPECT_EQ(e3, Error::invalid_argument);
    EXPECT_EQ(r->d.requests().size(), 1u);
    EXPECT_NE(r->d.ring()->req_prod, before);  // only the fitting write went out
    EXPECT_EQ(r->d.get("v")->size(), 4094u);
}

TEST(XenStore, LargeRequestsAndRepliesCrossTheRingInPieces) {
    auto r = rig();
    r->d.set_req_bytes_per_step(100);  // xenstored drains slowly: request written as space frees
    r->d.set_rsp_bytes_per_step(64);   // and answers in dribbles: reply assembled across wraps
    std::string value;
    for (int i = 0; i < 4000; ++i) value.push_back(static_cast<char>('a' + i % 26));
    EXPECT_EQ(r->write("big", value), Error::ok);
    EXPECT_EQ(r->read("big").value(), value);
    EXPECT_EQ(r->d.violations(), 0);
    EXPECT_EQ(r->xs.stats().errors, 0u);
}

TEST(XenStore, IndicesWrapAt32Bits) {
    for (std::uint32_t start : {1020u, 0xfffffff0u, 0xfffffc05u}) {
        SCOPED_TRACE(start);
        auto r = rig(start);
        for (int i = 0; i < 40; ++i) {
            const std::string path = "k/" + std::to_string(i);
            const std::string value(37 * i, static_cast<char>('A' + i % 26));
            ASSERT_EQ(r->write(path, value), Error::ok);
            ASSERT_EQ(r->read(path).value(), value);
        }
        EXPECT_EQ(r->d.violations(), 0);
        EXPECT_EQ(r->xs.stats().errors, 0u);
    }
}

TEST(XenStore, OneRequestInFlightAtATime) {
    auto r = rig();
    r->d.set_auto_step(false);
    std::vector<int> order;
    for (int i = 0; i < 3; ++i) {
        r->xs.write("q/" + std::to_string(i), "v", [&order, i](Result<void> res) {
            EXPECT_TRUE(res.ok());
            order.push_back(i);
        });
    }
    r->d.step();  // only the first request is in the ring
    EXPECT_EQ(r->d.requests().size(), 1u);
    for (int i = 0; i < 10 && order.size() < 3; ++i) {
        r->xs.on_event();
        r->d.step();
    }
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(r->d.requests().size(), 3u);
}

TEST(XenStore, QueueFullIsNoSpaceAndTheRestComplete) {
    auto r = rig();
    r->d.set_auto_step(false);
    int ok = 0;
    Error last = Error::ok;
    for (std::size_t i = 0; i < XenStore::max_queued; ++i) {
        r->xs.write("f", "v", [&](Result<void> res) { ok += res.ok(); });
    }
    r->xs.write("f", "v", [&](Result<void> res) { last = res.error(); });
    EXPECT_EQ(r->xs.stats().requests, XenStore::max_queued);
    r->d.set_auto_step(true);
    r->d.step();
    r->settle();
    EXPECT_EQ(last, Error::no_space);
    EXPECT_EQ(ok, static_cast<int>(XenStore::max_queued));
}

TEST(XenStore, CallbackMayIssueTheNextRequest) {
    auto r = rig();
    r->d.set("chain", "3");
    int depth = 0;
    std::string got;
    r->xs.read("chain", [&](Result<std::string_view> v) {
        got = std::string(v.value());
        r->xs.write("chain", "2", [&](Result<void> w) {
            EXPECT_TRUE(w.ok());
            r->xs.read("chain", [&](Result<std::string_view> v2) {
                got += std::string(v2.value());
                depth = 3;
            });
        });
    });
    r->settle();
    EXPECT_EQ(depth, 3);
    EXPECT_EQ(got, "32");
}

// ---- transactions -------------------------------------------------------------------------

TEST(XenStore, TransactionCommitAbortAndConflict) {
    auto r = rig();
    auto tx = r->begin();
    ASSERT_TRUE(tx);
    EXPECT_NE(*tx, 0u);
    EXPECT_EQ(r->write("t/a", "1", *tx), Error::ok);
    EXPECT_EQ(r->read("t/a", *tx).value(), "1");
    EXPECT_EQ(r->read("t/a").error(), Error::not_found);  // not visible outside yet
    EXPECT_EQ(r->end(*tx, true), Error::ok);
    EXPECT_EQ(r->read("t/a").value(), "1");

    tx = r->begin();
    ASSERT_TRUE(tx);
    EXPECT_EQ(r->write("t/a", "aborted", *tx), Error::ok);
    EXPECT_EQ(r->end(*tx, false), Error::ok);
    EXPECT_EQ(r->read("t/a").value(), "1");

    // Another writer changes what the transaction read: commit fails with again.
    tx = r->begin();
    ASSERT_TRUE(tx);
    EXPECT_EQ(r->read("t/a", *tx).value(), "1");
    r->d.set("t/a", "toolstack");
    EXPECT_EQ(r->write("t/a", "2", *tx), Error::ok);
    EXPECT_EQ(r->end(*tx, true), Error::again);
    EXPECT_EQ(r->read("t/a").value(), "toolstack");
    EXPECT_EQ(r->d.open_transactions(), 0u);
    EXPECT_EQ(r->end(0, true), Error::invalid_argument);
}

// ---- watches ------------------------------------------------------------------------------

TEST(XenStore, WatchFiresInitiallyAndOnChanges) {
    auto r = rig();
    std::vector<std::string> events;
    Error registered = Error::timed_out;
    auto id = r->xs.watch(
        "backend/state", [&](std::string_view p) { events.emplace_back(p); },
        [&](Result<void> res) { registered = res.error(); });
    ASSERT_TRUE(id);
    r->settle();
    EXPECT_EQ(registered, Error::ok);
    EXPECT_EQ(events, std::vector<std::string>{"backend/state"});  // the initial event

    r->d.set("backend/state", "4");
    r->settle();
    r->d.set("backend/state/sub", "x");
    r->settle();
    EXPECT_EQ(r->write("backend/state", "5"), Error::ok);  // our own write fires it too
    EXPECT_EQ(events, (std::vector<std::string>{"backend/state", "backend/state", "backend/state/sub",
                                                "backend/state"}));
    EXPECT_EQ(r->xs.stats().watch_events, 4u);

    r->xs.unwatch(*id);
    r->settle();
    EXPECT_EQ(r->d.watch_count(), 0u);
    r->d.set("backend/state", "6");
    r->settle();
    EXPECT_EQ(events.size(), 4u);
    r->xs.unwatch(*id);  // stale: ignored
    r->settle();
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStore, AbsoluteWatchGetsAbsolutePaths) {
    auto r = rig();
    std::vector<std::string> events;
    auto id = r->xs.watch("/local/domain/0/backend", [&](std::string_view p) { events.emplace_back(p); });
    ASSERT_TRUE(id);
    r->settle();
    r->d.set("/local/domain/0/backend/vif/7/0/state", "2");
    r->settle();
    EXPECT_EQ(events,
              (std::vector<std::string>{"/local/domain/0/backend", "/local/domain/0/backend/vif/7/0/state"}));
}

// A watch event names the watch's token; xenstored only sends paths at or below the watched
// one. An event with our token and any other path is forged: dropped and counted, never handed
// to the callback (which would act on a node it never asked about).
TEST(XenStore, WatchEventForAPathOutsideTheWatchIsDropped) {
    auto r = rig();
    std::vector<std::string> events;
    auto id = r->xs.watch("device/vif", [&](std::string_view p) { events.emplace_back(p); });
    ASSERT_TRUE(id);
    r->settle();
    ASSERT_EQ(events.size(), 1u);
    const std::string token = "keel:00:00000001";
    for (const char* forged : {"control/shutdown", "device/vif2", "device", "/local/domain/7/device/vif"}) {
        r->d.inject(XS_WATCH_EVENT, 0, std::string(forged) + '\0' + token + '\0');
    }
    r->d.inject(XS_WATCH_EVENT, 0, "device/vif/0/state" + std::string(1, '\0') + token + '\0');
    const std::uint64_t errors = r->xs.stats().errors;
    r->settle();
    EXPECT_EQ(events, (std::vector<std::string>{"device/vif", "device/vif/0/state"}));
    EXPECT_EQ(r->xs.stats().errors, errors + 4);
}

TEST(XenStore, WatchCallbackMayUnwatchItself) {
    auto r = rig();
    int calls = 0;
    WatchId id{};
    auto w = r->xs.watch("self", [&](std::string_view) {
        ++calls;
        r->xs.unwatch(id);
    });
    ASSERT_TRUE(w);
    id = *w;
    r->settle();
    r->d.set("self", "1");
    r->settle();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(r->d.watch_count(), 0u);
}

TEST(XenStore, UnwatchBeforeRegistrationCancels) {
    auto r = rig();
    r->d.set_auto_step(false);
    Error registered = Error::ok;
    int events = 0;
    auto id = r->xs.watch(
        "early", [&](std::string_view) { ++events; }, [&](Result<void> res) { registered = res.error(); });
    ASSERT_TRUE(id);
    r->xs.unwatch(*id);
    r->d.set_auto_step(true);
    r->d.step();
    r->settle();
    EXPECT_EQ(registered, Error::cancelled);
    EXPECT_EQ(events, 0);
    EXPECT_EQ(r->d.watch_count(), 0u);
}

TEST(XenStore, WatchSlotsAreBounded) {
    auto r = rig();
    std::vector<WatchId> ids;
    for (std::size_t i = 0; i < XenStore::max_watches; ++i) {
        auto id = r->xs.watch("w/" + std::to_string(i), [](std::string_view) {});
        ASSERT_TRUE(id) << i;
        ids.push_back(*id);
        r->settle();
    }
    EXPECT_EQ(r->xs.watch("w/extra", [](std::string_view) {}).error(), Error::no_space);
    r->xs.unwatch(ids[5]);
    r->settle();
    auto again = r->xs.watch("w/extra", [](std::string_view) {});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->slot, ids[5].slot);
    EXPECT_NE(again->generation, ids[5].generation);
    r->settle();
    EXPECT_EQ(r->d.watch_count(), XenStore::max_watches);
    EXPECT_EQ(r->xs.watch(std::string(XenStore::max_watch_path + 1, 'p'), [](std::string_view) {}).error(),
              Error::no_space);
    EXPECT_EQ(r->xs.watch("", [](std::string_view) {}).error(), Error::invalid_argument);
}

TEST(XenStore, RefusedWatchFreesItsSlot) {
    auto r = rig();
    r->d.misbehave_next_reply(Misbehave::error_eacces);
    Error registered = Error::ok;
    int events = 0;
    auto id = r->xs.watch(
        "denied", [&](std::string_view) { ++events; }, [&](Result<void> res) { registered = res.error(); });
    ASSERT_TRUE(id);
    r->settle();
    EXPECT_EQ(registered, Error::permission);
    EXPECT_EQ(events, 0);
    r->xs.unwatch(*id);  // already gone: ignored, no XS_UNWATCH sent
    r->settle();
    EXPECT_EQ(r->d.requests().back().type, static_cast<std::uint32_t>(XS_WATCH));
}

TEST(XenStore, UnwatchWaitsForQueueSpace) {
    auto r = rig();
    auto id = r->xs.watch("busy", [](std::string_view) {});
    ASSERT_TRUE(id);
    r->settle();
    r->d.set_auto_step(false);
    for (std::size_t i = 0; i < XenStore::max_queued; ++i) r->xs.write("f", "v", nullptr);
    r->xs.unwatch(*id);  // no room: sent later from on_event()
    r->d.set_auto_step(true);
    r->d.step();
    r->settle();
    EXPECT_EQ(r->d.watch_count(), 0u);
    EXPECT_EQ(r->d.requests().back().type, static_cast<std::uint32_t>(XS_UNWATCH));
}

// ---- blocking helpers ---------------------------------------------------------------------

// ---- a new connection after a resume in a new domain (xl restore, migration) ---------------

TEST(XenStoreReconnect, WatchesAreRegisteredAgainOnTheNewConnection) {
    auto r = rig();
    std::vector<std::string> events;
    ASSERT_TRUE(r->xs.watch("control/shutdown", [&](std::string_view p) { events.emplace_back(p); }));
    EXPECT_EQ(r->write("some/node", "1"), Error::ok);  // the indices move away from 0
    r->settle();
    ASSERT_EQ(events.size(), 1u);

    r->d.restart_connection();  // a cleared page, a daemon that knows no watch
    EXPECT_EQ(r->d.watch_count(), 0u);
    r->xs.reconnect();
    r->settle();
    EXPECT_EQ(r->d.watch_count(), 1u);
    EXPECT_EQ(events.size(), 2u);  // xenstored fires a new watch once: the owner looks again
    r->d.set("control/shutdown", "suspend");
    r->settle();
    EXPECT_EQ(events.size(), 3u);
    EXPECT_EQ(r->read("some/node").value(), "1");  // requests flow from the fresh indices
    EXPECT_EQ(r->xs.stats().reconnects, 1u);
    EXPECT_EQ(r->xs.stats().errors, 0u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStoreReconnect, TheRequestInFlightAndTheQueuedOnesGoOutOnTheNewConnection) {
    auto r = rig();
    r->d.set("a", "A");
    r->d.set_hold_replies(true);  // the daemon takes the read, its reply never reaches us
    Error first = Error::timed_out;
    std::string second;
    r->xs.read("a", [&](Result<std::string_view> v) { first = v ? Error::ok : v.error(); });
    r->xs.read("a", [&](Result<std::string_view> v) {
        if (v) second = std::string(*v);
    });
    r->settle();
    ASSERT_EQ(r->d.requests().size(), 1u);  // one in flight, one queued

    r->d.restart_connection();
    r->xs.reconnect();
    r->settle();
    EXPECT_EQ(first, Error::ok);  // sent again: its reply could never come on the old connection
    EXPECT_EQ(second, "A");
    EXPECT_EQ(r->d.requests().size(), 3u);  // the lost one, then both on the new connection
    EXPECT_EQ(r->read("a").value(), "A");
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStoreReconnect, RequestsOfAnOldTransactionFailWithAgain) {
    auto r = rig();
    auto tx = r->begin();
    ASSERT_TRUE(tx);
    r->d.set_auto_step(false);
    Error in_tx = Error::timed_out, outside = Error::timed_out;
    r->xs.write("x", "1", [&](Result<void> w) { in_tx = w.error(); }, *tx);
    r->xs.write("y", "2", [&](Result<void> w) { outside = w.error(); });
    // The write in the transaction is in the ring, unread; the other waits behind it.
    r->d.restart_connection();
    r->d.set_auto_step(true);
    r->xs.reconnect();
    r->settle();
    EXPECT_EQ(in_tx, Error::again);  // the transaction died with the old connection
    EXPECT_EQ(outside, Error::ok);
    EXPECT_EQ(r->d.get("y"), "2");
    EXPECT_EQ(r->d.get("x"), std::nullopt);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStoreReconnect, AnEndOfTransactionThatWentOutFailsClosed) {
    auto r = rig();
    auto tx = r->begin();
    ASSERT_TRUE(tx);
    r->d.set_hold_replies(true);  // the commit is taken, its reply never comes
    Error ended = Error::timed_out;
    r->xs.transaction_end(*tx, true, [&](Result<void> e) { ended = e.error(); });
    r->settle();
    r->d.restart_connection();
    r->xs.reconnect();
    r->settle();
    EXPECT_EQ(ended, Error::closed);  // it may have committed: the owner must look
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStoreReconnect, StaleRepliesInTheOldRingAreNotRead) {
    auto r = rig();
    EXPECT_EQ(r->write("n", "1"), Error::ok);
    // A page the toolstack did not clear: leftover reply bytes past our consumer index.
    r->d.inject(XS_READ, 99, "stale");
    r->xs.reconnect();
    r->settle();
    EXPECT_EQ(r->read("n").value(), "1");
    EXPECT_EQ(r->xs.stats().errors, 0u);
    EXPECT_EQ(r->d.violations(), 0);
}

TEST(XenStoreSync, ReadAndWrite) {
    auto r = rig();
    ASSERT_TRUE(r->xs.write_sync("name", "keel").ok());
    char buf[16];
    auto n = r->xs.read_sync("name", buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string_view(buf, *n), "keel");
    char tiny[2];
    EXPECT_EQ(r->xs.read_sync("name", tiny).error(), Error::no_space);
    EXPECT_EQ(r->xs.read_sync("missing", buf).error(), Error::not_found);
    EXPECT_EQ(r->xs.write_sync("", "x").error(), Error::invalid_argument);
}

TEST(XenStoreSync, RefusedFromACallback) {
    auto r = rig();
    r->d.set("x", "1");
    Error inner = Error::ok;
    r->xs.read("x", [&](Result<std::string_view>) {
        char buf[4];
        inner = r->xs.read_sync("x", buf).error();
    });
    r->settle();
    EXPECT_EQ(inner, Error::busy);
}

TEST(XenStoreSync, SilentDaemonTimesOutAndTheLateReplyIsDropped) {
    auto r = rig();
    r->d.set("x", "1");
    r->d.set_hold_replies(true);
    char buf[8];
    EXPECT_EQ(r->xs.read_sync("x", buf).error(), Error::timed_out);
    EXPECT_EQ(r->d.port().waits, static_cast<int>(XenStore::sync_attempts));
    r->d.release_replies();  // the reply finally arrives: it belongs to nobody now
    r->settle();
    EXPECT_EQ(r->xs.stats().errors, 0u);
    auto n = r->xs.read_sync("x", buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string_view(buf, *n), "1");
}

TEST(XenStoreSync, NeverAnsweredRequestTimesOut) {
    auto r = rig();
    r->d.misbehave_next_reply(Misbehave::silent);
    EXPECT_EQ(r->xs.write_sync("x", "1").error(), Error::timed_out);
    EXPECT_TRUE(r->xs.write_sync("x", "2").ok());
    EXPECT_EQ(r->d.get("x"), "2");
}

// ---- a daemon that breaks the protocol ------------------------------------------------------

struct BadReply {
    Misbehave m;
    Error expected;
    std::uint64_t errors;
};

class XenStoreHostile : public ::testing::TestWithParam<BadReply> {};

TEST_P(XenStoreHostile, FailsTheRequestThenRecovers) {
    const BadReply p = GetParam();
    auto r = rig();
    r->d.set("x", "before");
    r->d.misbehave_next_reply(p.m);
    EXPECT_EQ(r->read("x").error(), p.expected);
    EXPECT_EQ(r->xs.stats().errors, p.errors);
    // The connection is usable again.
    EXPECT_EQ(r->write("x", "after"), Error::ok);
    EXPECT_EQ(r->read("x").value(), "after");
    EXPECT_EQ(r->xs.stats().errors, p.errors);
    EXPECT_EQ(r->d.violations(), 0);
}

INSTANTIATE_TEST_SUITE_P(Misbehaviours, XenStoreHostile,
                         ::testing::Values(BadReply{Misbehave::wrong_req_id, Error::protocol, 1},
                                           BadReply{Misbehave::wrong_req_id_then_real, Error::protocol, 1},
                                           BadReply{Misbehave::wrong_type, Error::protocol, 1},
                                           BadReply{Misbehave::len_too_big, Error::protocol, 1},
                                           BadReply{Misbehave::garbage, Error::protocol, 1},
                                           BadReply{Misbehave::rsp_prod_jump, Error::protocol, 1},
                                           BadReply{Misbehave::error_eacces, Error::permission, 0},
                                           BadReply{Misbehave::malformed_watch_event, Error::ok, 1}));

TEST(XenStoreHostile, BadAckAndBadTransactionId) {
    auto r = rig();
    r->d.misbehave_next_reply(Misbehave::bad_ack);
    EXPECT_EQ(r->write("x", "1"), Error::protocol);
    r->d.misbehave_next_reply(Misbehave::bad_tx_id);
    EXPECT_EQ(r->begin().error(), Error::protocol);
    EXPECT_EQ(r->xs.stats().errors, 2u);
    EXPECT_EQ(r->write("x", "2"), Error::ok);
}

TEST(XenStoreHostile, UnsolicitedReplyWhileIdleIsCountedAndDropped) {
    auto r = rig();
    r->d.inject(XS_READ, 4242, "surprise");
    r->settle();
    EXPECT_EQ(r->xs.stats().errors, 1u);
    EXPECT_EQ(r->write("x", "1"), Error::ok);
}

TEST(XenStoreHostile, ReplySplitAcrossTheWrapIsFine) {
    // Header straddles the end of the ring: legal, must just work.
    for (std::uint32_t start = 1010; start < 1024; ++start) {
        auto r = rig(start);
        r->d.set("x", "split");
        EXPECT_EQ(r->read("x").value(), "split");
        EXPECT_EQ(r->xs.stats().errors, 0u);
    }
}

TEST(XenStoreHostile, ReqConsBeyondReqProdFailsEverythingWithoutHanging) {
    auto r = rig();
    r->d.misbehave_next_reply(Misbehave::req_cons_ahead);
    Error a = Error::ok, b = Error::ok;
    r->xs.write("x", "1", [&](Result<void> res) { a = res.error(); });
    r->xs.write("y", "1", [&](Result<void> res) { b = res.error(); });
    r->settle();
    EXPECT_EQ(a, Error::protocol);
    EXPECT_EQ(b, Error::protocol);
    EXPECT_GE(r->xs.stats().errors, 1u);
    char buf[4];
    EXPECT_EQ(r->xs.read_sync("x", buf).error(), Error::protocol);
}

TEST(XenStoreHostile, RandomResponseBytesNeverCrashOrHang) {
    std::mt19937 rng(1234);
    for (int round = 0; round < 200; ++round) {
        auto r = rig(rng());
        r->d.set("x", "1");
        int done = 0;
        r->xs.read("x", [&](Result<std::string_view>) { ++done; });
        r->d.set_auto_step(false);  // the daemon is the scribbler from here on
        // Scribble on the response ring and its producer index.
        volatile xenstore_domain_interface* ring = r->d.ring();
        for (auto& c : ring->rsp) c = static_cast<char>(rng());
        if (rng() % 2) ring->rsp_prod = ring->rsp_prod + rng() % 2048;
        for (int i = 0; i < 5; ++i) r->xs.on_event();
        EXPECT_EQ(done, 1) << "round " << round;  // answered (well or not), exactly once
    }
}

}  // namespace
}  // namespace keel::xen

// ---- the fake itself: a guest that breaks the protocol fails the test ------------------------

namespace keel::xen {
namespace {

using test::FakeXenstored;

// Put raw request bytes into the ring as a broken guest would, then let the daemon look.
void raw_request(FakeXenstored& d, std::uint32_t type, std::uint32_t len, std::string_view payload) {
    volatile xenstore_domain_interface* ring = d.ring();
    xsd_sockmsg h{type, 1, 0, len};
    std::string bytes(reinterpret_cast<const char*>(&h), sizeof h);
    bytes.append(payload);
    std::uint32_t prod = ring->req_prod;
    for (char c : bytes) ring->req[MASK_XENSTORE_IDX(prod++)] = c;
    ring->req_prod = prod;
    d.step();
}

TEST(FakeXenstoredEnforces, OversizedRequest) {
    FakeXenstored d;
    EXPECT_NONFATAL_FAILURE(raw_request(d, XS_READ, XENSTORE_PAYLOAD_MAX + 1, ""), "XENSTORE_PAYLOAD_MAX");
}

TEST(FakeXenstoredEnforces, UnterminatedArgument) {
    FakeXenstored d;
    EXPECT_NONFATAL_FAILURE(raw_request(d, XS_READ, 3, "abc"), "NUL-terminated");
    FakeXenstored d2;
    EXPECT_NONFATAL_FAILURE(raw_request(d2, XS_WATCH, 3, std::string_view("p\0t", 3)), "<token>");
}

TEST(FakeXenstoredEnforces, ProducerMovingBackwardsOrOverrunning) {
    FakeXenstored d(7, 100);
    d.ring()->req_prod = 90;
    EXPECT_NONFATAL_FAILURE(d.step(), "backwards");
    FakeXenstored d2;
    d2.ring()->req_prod = XENSTORE_RING_SIZE + 1;
    EXPECT_NONFATAL_FAILURE(d2.step(), "beyond");
}

TEST(FakeXenstoredEnforces, GuestWritingDaemonIndices) {
    FakeXenstored d;
    d.ring()->rsp_prod = 5;
    EXPECT_NONFATAL_FAILURE(d.step(), "rsp_prod");
}

}  // namespace
}  // namespace keel::xen
