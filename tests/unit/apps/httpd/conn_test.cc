// serve_connection over lwIP (two interfaces back to back, virtual time): the request deadline
// runs from the request's first byte and is not restarted by later bytes; the idle deadline
// closes a keep-alive connection that sends nothing; each is counted.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>

#include "conn.h"
#include "fakes/fake_link.h"
#include "fakes/no_gso.h"
#include "keel/net/serve.h"


namespace keel::http {
namespace {

using net::TcpListener;
using net::TcpStream;
using namespace std::literals;

constexpr Page pages[] = {{"/index.html", "text/plain", "hello\n"}};
constexpr std::uint16_t port = 8080;

// A client that sends `text` one byte every `gap_ns`, then reads until the server closes.
Task<void> trickle(TcpStream& c, std::string text, std::uint64_t gap_ns, std::string& reply, bool& done) {
    for (char ch : text) {
        const std::byte b{static_cast<unsigned char>(ch)};
        if (!(co_await c.write(std::span<const std::byte>(&b, 1))).ok()) break;
        co_await sleep_for(gap_ns);
    }
    std::byte buf[512];
    for (;;) {
        auto r = co_await c.read(buf);
        if (!r.ok() || r.value() == 0) break;
        reply.append(reinterpret_cast<const char*>(buf), r.value());
    }
    done = true;
}

class Conn : public net::test::TwoHosts<> {
protected:
    void SetUp() override {
        auto l = TcpListener::listen(port);
        ASSERT_TRUE(l.ok());
        listener = std::move(l.value());
        options.stats = &stats;
        start(net::serve(listener, 4, conns, "test", [this](TcpStream s) {
            return serve_connection(std::move(s), router, options, limits);
        }));
    }
    void TearDown() override { listener.close(); }

    TcpStream connect() {
        auto c = run(TcpStream::connect(net::test::addr_b, port, s(5)));
        EXPECT_TRUE(c && c->ok());
        return c && c->ok() ? std::move(c->value()) : TcpStream();
    }

    Router router{pages};
    Stats stats{};
    SessionOptions options;
    ConnLimits limits{s(10), s(15), s(30)};
    net::ServeCounters conns;
    TcpListener listener;
};

// Each byte comes well inside the limit, but the whole request takes 34 bytes * 4 s: the
// request deadline (10 s from its first byte) answers 408 long before the last byte.
TEST_F(Conn, TricklingRequestGets408AtTheWholeRequestDeadline) {
    TcpStream c = connect();
    std::string reply;
    bool done = false;
    start(trickle(c, "GET /index.html HTTP/1.1\r\nHost: k\r\n\r\n", s(4), reply, done));
    ASSERT_TRUE(run_until([&] { return done; }, s(300)));
    EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 408") << reply;
    EXPECT_EQ(stats.request_timeouts, 1u);
    EXPECT_EQ(stats.requests, 0u);
}

// A request that completes inside the deadline is served, then the connection idles out.
TEST_F(Conn, IdleKeepAliveConnectionIsClosedAtTheIdleDeadline) {
    TcpStream c = connect();
    std::string reply;
    bool done = false;
    start(trickle(c, "GET /index.html HTTP/1.1\r\nHost: k\r\n\r\n", ms(100), reply, done));
    ASSERT_TRUE(run_until([&] { return done; }, s(300)));
    EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 200") << reply;
    EXPECT_EQ(reply.find("408"), std::string::npos) << "no 408 for a connection without a request";
    EXPECT_EQ(stats.requests, 1u);
    EXPECT_EQ(stats.idle_timeouts, 1u);
    EXPECT_EQ(stats.request_timeouts, 0u);
}

// A short response is one segment: the head and the body together, and the FIN with them when
// the connection closes after it (HTTP/1.0), so the client gets it in one frame.
TEST_F(Conn, AShortResponseIsOneSegmentWithItsFin) {
    for (const bool close : {false, true}) {
        TcpStream c = connect();
        dev_b.captured.clear();
        dev_b.capture = true;
        std::string reply;
        bool done = false;
        start(trickle(c, close ? "GET /index.html HTTP/1.0\r\n\r\n" : "GET /index.html HTTP/1.1\r\nHost: k\r\n\r\n", 0,
                      reply, done));
        ASSERT_TRUE(run_until([&] { return reply.ends_with("hello\n"); }, s(5))) << reply;
        const auto segs = net::test::data_segments(dev_b.captured);
        ASSERT_EQ(segs.size(), 1u) << "close " << close;
        EXPECT_EQ(segs[0].bytes, reply.size());
        EXPECT_EQ(segs[0].fin, close);
        dev_b.capture = false;
        c.abort();
        ASSERT_TRUE(run_until([&] { return done; }, s(60)));
    }
}

// A metrics page larger than the session's 4 KiB scratch (every component's families make one)
// is served whole, from the buffer the connection allocates for it, twice on one connection
// (the buffer is kept), and freed when the connection ends (ASan would report a leak).
TEST_F(Conn, AMetricsPageLargerThanTheScratchIsServedWhole) {
    router.set_metrics("/metrics", [](MetricsWriter& w) {
        w.family("keel_test_big_total", "Big.", MetricType::counter);
        for (int i = 0; i < 1000; ++i) w.sample("i", std::to_string(i), i);
    });
    TcpStream c = connect();
    std::string reply;
    bool done = false;
    start(trickle(c,
                  "GET /metrics HTTP/1.1\r\nHost: k\r\n\r\n"
                  "GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n",
                  0, reply, done));
    ASSERT_TRUE(run_until([&] { return done; }, s(60)));
    const std::size_t second = reply.find("HTTP/1.1 200", 1);
    ASSERT_EQ(reply.substr(0, 12), "HTTP/1.1 200") << reply.substr(0, 200);
    ASSERT_NE(second, std::string::npos) << reply.substr(0, 200);
    const std::string first = reply.substr(0, second);
    EXPECT_GT(first.size(), 8192u);
    EXPECT_NE(first.find("keel_test_big_total{i=\"999\"} 999\n"), std::string::npos);
    EXPECT_TRUE(reply.ends_with("keel_test_big_total{i=\"999\"} 999\n"));
    EXPECT_EQ(stats.responses_2xx, 2u);
    EXPECT_EQ(stats.responses_5xx, 0u);
}

}  // namespace
}  // namespace keel::http
