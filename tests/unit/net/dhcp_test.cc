// DHCP on the host: A asks, the test answers with hand-made frames (RFC 2131) injected into
// A's device, and A logs the lease.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "keel/log.h"
#include "fakes/fake_link.h"

namespace keel::net::test {
namespace {

constexpr std::size_t eth = 14, ip = 20, udp = 8;
constexpr std::size_t bootp = eth + ip + udp;  // where the DHCP message starts

class Dhcp : public TwoHosts<> {
protected:
    Dhcp() : TwoHosts<>(true) {
        set_log_sink(&sink);
        dev_a.on_wire = [this](std::vector<std::byte>& f) {
            // UDP to port 67 from A: a client message. Option 53 follows the magic cookie.
            if (f.size() > bootp + 243 && f[23] == std::byte{17} && f[36] == std::byte{0} &&
                f[37] == std::byte{67}) {
                client_messages.push_back(f);
                return true;  // the server is us, not B
            }
            return false;
        };
    }
    ~Dhcp() override {
        set_log_sink(nullptr);
        dev_a.on_wire = nullptr;  // it points into this object, which is going
    }

    static std::uint8_t message_type(const std::vector<std::byte>& f) {
        for (std::size_t i = bootp + 240; i + 2 < f.size();) {
            const auto code = static_cast<std::uint8_t>(f[i]);
            if (code == 255) break;
            if (code == 0) {
                ++i;
                continue;
            }
            const auto len = static_cast<std::size_t>(f[i + 1]);
            if (code == 53) return static_cast<std::uint8_t>(f[i + 2]);
            i += 2 + len;
        }
        return 0;
    }

    /// A server reply (2 = OFFER, 5 = ACK) to the client message `req`, as a broadcast frame.
    std::vector<std::byte> reply(const std::vector<std::byte>& req, std::uint8_t type) {
        std::vector<std::uint8_t> m(240, 0);
        m[0] = 2;  // BOOTREPLY
        m[1] = 1;
        m[2] = 6;
        for (int i = 0; i < 4; ++i) m[4 + i] = static_cast<std::uint8_t>(req[bootp + 4 + i]);  // xid
        const std::uint8_t yiaddr[] = {10, 0, 0, 50};
        std::memcpy(&m[16], yiaddr, 4);
        for (int i = 0; i < 16; ++i) m[28 + i] = static_cast<std::uint8_t>(req[bootp + 28 + i]);  // chaddr
        const std::uint8_t cookie[] = {99, 130, 83, 99};
        std::memcpy(&m[236], cookie, 4);
        const std::uint8_t opts[] = {53, 1, type,                   // message type
                                     54, 4, 10,   0,   0,    2,     // server identifier
                                     51, 4, 0,    0,   0x0e, 0x10,  // lease 3600 s
                                     1,  4, 255,  255, 255,  0,     // subnet mask
                                     3,  4, 10,   0,   0,    2,     // router
                                     6,  4, 10,   0,   0,    2,     // DNS server
                                     255};
        m.insert(m.end(), opts, opts + sizeof(opts));
        while (m.size() < 300) m.push_back(0);

        std::vector<std::uint8_t> f(bootp + m.size(), 0);
        std::memset(&f[0], 0xff, 6);                      // to: broadcast
        std::memcpy(&f[6], dev_b.mac().bytes.data(), 6);  // from: B's MAC
        f[12] = 0x08;                                     // IPv4
        f[14] = 0x45;
        const std::size_t ip_len = ip + udp + m.size();
        f[16] = static_cast<std::uint8_t>(ip_len >> 8);
        f[17] = static_cast<std::uint8_t>(ip_len);
        f[22] = 64;  // TTL
        f[23] = 17;  // UDP
        const std::uint8_t src[] = {10, 0, 0, 2};
        std::memcpy(&f[26], src, 4);
        std::memset(&f[30], 0xff, 4);
        std::uint32_t sum = 0;
        for (std::size_t i = eth; i < eth + ip; i += 2)
            sum += static_cast<std::uint32_t>(f[i] << 8 | f[i + 1]);
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        f[24] = static_cast<std::uint8_t>(~sum >> 8);
        f[25] = static_cast<std::uint8_t>(~sum);
        f[35] = 67;  // source port
        f[37] = 68;  // destination port
        const std::size_t udp_len = udp + m.size();
        f[38] = static_cast<std::uint8_t>(udp_len >> 8);
        f[39] = static_cast<std::uint8_t>(udp_len);  // checksum 0: none (IPv4)
        std::memcpy(&f[bootp], m.data(), m.size());
        std::vector<std::byte> out(f.size());
        std::memcpy(out.data(), f.data(), f.size());
        return out;
    }

    keel::test::CaptureSink sink;
    std::vector<std::vector<std::byte>> client_messages;
};

TEST_F(Dhcp, LeaseIsAppliedAndLogged) {
    EXPECT_FALSE(a().ready().is_set());
    ASSERT_TRUE(run_until([&] { return !client_messages.empty(); }, s(10)));
    ASSERT_EQ(message_type(client_messages.back()), 1);  // DISCOVER
    ASSERT_TRUE(dev_a.receive(reply(client_messages.back(), 2)));

    ASSERT_TRUE(run_until([&] { return message_type(client_messages.back()) == 3; }, s(10)));  // REQUEST
    ASSERT_TRUE(dev_a.receive(reply(client_messages.back(), 5)));

    // lwIP probes the address with ARP (nobody answers) before it binds.
    ASSERT_TRUE(run_until([&] { return a().ready().is_set(); }, s(10)));
    auto v4 = a().ipv4();
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->address, IpAddr::v4(10, 0, 0, 50));
    EXPECT_EQ(v4->prefix, 24);
    EXPECT_EQ(v4->gateway, addr_b);
    std::string all;
    for (auto& l : sink.lines) all += l;
    EXPECT_NE(all.find("ipv4 10.0.0.50/24 gateway 10.0.0.2 (DHCP from 10.0.0.2, lease 3600 s)"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("dns server 10.0.0.2 (DHCP)"), std::string::npos) << all;

    // The leased address works: B reaches A over UDP.
    auto sock = UdpSocket::bind(6100);
    auto peer = UdpSocket::bind(0, addr_b);
    ASSERT_TRUE(peer->send_to({IpAddr::v4(10, 0, 0, 50), 6100}, as_bytes("hi")).ok());
    ASSERT_TRUE(run_until([&] { return sock->queued() == 1; }));
}

TEST_F(Dhcp, NoServerMeansNoAddress) {
    ASSERT_TRUE(run_until([&] { return client_messages.size() >= 2; }, s(30)));  // it retries
    EXPECT_FALSE(a().ready().is_set());
    EXPECT_FALSE(a().ipv4());
}

}  // namespace
}  // namespace keel::net::test
