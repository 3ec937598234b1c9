// Interface: one lwIP netif over an Ethernet link. Receive hands frames to lwIP as chains of
// custom pbufs over the link's buffers; transmit queues lwIP's frames and, at the end of each
// entry into lwIP, walks their pbuf chains into fragments for the link (which copies them into
// its own pages), merging consecutive TCP segments into super-segments when the link takes
// them, and keeping what the full link refused.
#include "keel/net/interface.h"

#include <cstddef>
#include <cstring>
#include <new>

#include "keel/format.h"
#include "keel/log.h"
#include "keel/panic.h"
#include "gso.h"
#include "lwip_glue.h"

extern "C" {
#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/nd6.h"
#include "lwip/prot/icmp6.h"
#include "lwip/prot/ip6.h"
#include "netif/ethernet.h"
}

namespace keel::net {

namespace detail {

static_assert(sizeof(pbuf_custom) <= sizeof(RxSlot::pbuf_storage), "RxSlot::pbuf_storage too small");
static_assert(alignof(pbuf_custom) <= 8);
static_assert(offsetof(RxSlot, pbuf_storage) == 0, "free_rx finds the slot from the pbuf");

struct InterfaceHooks {
    static Interface& of(struct netif* n) { return *static_cast<Interface*>(n->state); }

    static err_t init(struct netif* n) {
        Interface& self = of(n);
        n->name[0] = 'e';
        n->name[1] = 'n';
        n->hwaddr_len = ETH_HWADDR_LEN;
        std::memcpy(n->hwaddr, self.mac_.data(), ETH_HWADDR_LEN);
        n->mtu = self.mtu_;
        n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
        n->output = etharp_output;
        n->output_ip6 = ethip6_output;
        n->linkoutput = &linkoutput;
        netif_set_hostname(n, "keel");
        NETIF_SET_CHECKSUM_CTRL(n, NETIF_CHECKSUM_ENABLE_ALL);
        return ERR_OK;
    }

    static err_t linkoutput(struct netif* n, struct pbuf* p) {
        Interface& self = of(n);
        if (self.txq_count_ == Interface::tx_queue_capacity) self.pump();
        if (self.txq_count_ == Interface::tx_queue_capacity) {
            ++counters().tx_dropped;
            return ERR_MEM;  // TCP keeps the segment and sends it again later
        }
        pbuf_ref(p);  // lwIP's TCP sees a referenced segment as busy and leaves it alone
        self.txq_[(self.txq_head_ + self.txq_count_) % Interface::tx_queue_capacity] = p;
        ++self.txq_count_;
        return ERR_OK;  // handed to the link at the end of this entry into lwIP (flush_output)
    }

    static void free_rx(struct pbuf* p) {
        auto* slot =
            reinterpret_cast<RxSlot*>(reinterpret_cast<unsigned char*>(p) - offsetof(RxSlot, pbuf_storage));
        slot->release(slot);
    }

    static void on_ext_status(struct netif* n, netif_nsc_reason_t reason, const netif_ext_callback_args_t*) {
        if (n->linkoutput != &linkoutput) return;  // not one of ours
        if (reason &
            (LWIP_NSC_IPV4_SETTINGS_CHANGED | LWIP_NSC_IPV4_ADDRESS_CHANGED | LWIP_NSC_IPV4_GATEWAY_CHANGED |
             LWIP_NSC_IPV4_NETMASK_CHANGED | LWIP_NSC_IPV6_ADDR_STATE_CHANGED | LWIP_NSC_IPV6_SET)) {
            of(n).on_status_change();
        }
    }
};

namespace {
// Context: loop only.
netif_ext_callback_t g_ext_callback;
bool g_ext_registered = false;
Interface* g_interfaces = nullptr;  // every Interface, linked through next_
}  // namespace

void flush_output() {
    for (Interface* i = g_interfaces; i != nullptr; i = i->next_) {
        if (i->txq_count_ > 0 && !i->tx_blocked_) i->pump();
    }
}

}  // namespace detail

using detail::counters;
using detail::InterfaceHooks;
using detail::LwipCall;

Interface::Interface(void* link, LinkOps ops, const MacAddr& mac, std::uint16_t mtu)
    : link_(link), ops_(ops), mac_(mac), mtu_(mtu) {
    detail::ensure_init();
    LwipCall call;
    if (!detail::g_ext_registered) {
        netif_add_ext_callback(&detail::g_ext_callback, &InterfaceHooks::on_ext_status);
        detail::g_ext_registered = true;
    }
    next_ = detail::g_interfaces;
    detail::g_interfaces = this;
    netif_ = new struct netif();
    struct netif* n =
        netif_add(netif_, nullptr, nullptr, nullptr, this, &InterfaceHooks::init, &ethernet_input);
    KASSERT(n != nullptr);  // only fails when init fails or 255 netifs exist
    keel::format(name_, sizeof(name_), "en%u", static_cast<unsigned>(netif_->num));
}

Interface::~Interface() {
    LwipCall call;
    if (netif_dhcp_data(netif_) != nullptr) {
        dhcp_stop(netif_);
        dhcp_cleanup(netif_);
    }
    netif_remove(netif_);  // aborts connections bound to its addresses
    for (Interface** i = &detail::g_interfaces; *i != nullptr; i = &(*i)->next_) {
        if (*i == this) {
            *i = next_;
            break;
        }
    }
    drop_queued();
    delete netif_;
    ready_.reset();
}

void Interface::drop_queued() {
    while (txq_count_ > 0) {
        pbuf_free(txq_[txq_head_]);
        txq_head_ = (txq_head_ + 1) % tx_queue_capacity;
        --txq_count_;
    }
}

void Interface::shut() {
    if (gone_) return;
    LwipCall call;
    gone_ = true;
    configured_ = false;  // on_status_change() stays quiet: the line below says it all
    had_ipv4_ = false;
    ipv6_logged_ = 0;
    if (netif_dhcp_data(netif_) != nullptr) dhcp_stop(netif_);
    netif_set_link_down(netif_);
    netif_set_down(netif_);
    // Aborts the connections bound to them (tcp_netif_ip_addr_changed).
    netif_set_addr(netif_, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4);
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; ++i) netif_ip6_addr_set_state(netif_, i, IP6_ADDR_INVALID);
    netif_set_ip6_autoconfig_enabled(netif_, 0);
    if (netif_default == netif_) {
        // lwIP routes what matches no subnet through the default netif, and drops it when that
        // one is down: hand the default to another interface that is up.
        struct netif* next = nullptr;
        for (Interface* i = detail::g_interfaces; i != nullptr && next == nullptr; i = i->next_) {
            if (i != this && !i->gone_ && netif_is_up(i->netif_)) next = i->netif_;
        }
        netif_set_default(next);
    }
    drop_queued();
    ready_.reset();
    KLOG_INFO("net: %s: its device is gone; interface down, addresses dropped", name_);
}

Result<void> Interface::configure(const Config& cfg) {
    if (gone_) return Error::closed;
    LwipCall call;
    config_ = cfg;
    configured_ = true;
    if (cfg.ipv4) {
        ip4_addr_t addr, mask, gw;
        ip4_addr_set_u32(&addr, lwip_htonl(cfg.ipv4->address.v4_host_order()));
        ip4_addr_set_u32(&mask, lwip_htonl(prefix_mask(cfg.ipv4->prefix)));
        ip4_addr_set_u32(&gw, lwip_htonl(cfg.ipv4->gateway.v4_host_order()));
        netif_set_addr(netif_, &addr, &mask, &gw);
    }
    netif_set_up(netif_);
    if (netif_default == nullptr || !netif_is_up(netif_default)) netif_set_default(netif_);
    if (cfg.dns) {
        const ip_addr_t dns = detail::to_lwip(*cfg.dns);
        dns_setserver(0, &dns);
        KLOG_INFO("net: dns server %s (dns=)", AddrText(*cfg.dns).c_str());
    }
    if (!cfg.ipv4) {
        const err_t e = dhcp_start(netif_);
        if (e != ERR_OK) {
            KLOG_ERROR("net: %s: cannot start DHCP (%s)", name_, to_string(detail::to_error(e)));
            return detail::to_error(e);
        }
        KLOG_INFO("net: %s: DHCP started (MAC %02x:%02x:%02x:%02x:%02x:%02x)", name_, mac_[0], mac_[1],
                  mac_[2], mac_[3], mac_[4], mac_[5]);
    }
    netif_create_ip6_linklocal_address(netif_, 1);
    netif_set_ip6_autoconfig_enabled(netif_, 1);
    on_status_change();
    return {};
}

void Interface::on_status_change() {
    if (!configured_) return;
    const bool has_ipv4 = !ip4_addr_isany_val(*netif_ip4_addr(netif_));
    if (has_ipv4 && !had_ipv4_) {
        const auto v4 = *ipv4();
        char gw[IpAddr::max_text] = "none";
        if (v4.gateway.is_v4() && !v4.gateway.is_unspecified()) v4.gateway.format(gw);
        if (dhcp_supplied_address(netif_)) {
            const struct dhcp* d = netif_dhcp_data(netif_);
            KLOG_INFO("net: %s: ipv4 %s/%u gateway %s (DHCP from %s, lease %lu s)", name_,
                      AddrText(v4.address).c_str(), v4.prefix, gw,
                      AddrText(detail::from_lwip(d->server_ip_addr)).c_str(),
                      static_cast<unsigned long>(d->offered_t0_lease));
            if (config_.dns) {
                // The lease brought its own DNS servers; dns= wins.
                const ip_addr_t dns = detail::to_lwip(*config_.dns);
                dns_setserver(0, &dns);
            } else if (const ip_addr_t* dns = dns_getserver(0); dns != nullptr && !ip_addr_isany(dns)) {
                KLOG_INFO("net: dns server %s (DHCP)", AddrText(detail::from_lwip(*dns)).c_str());
            }
        } else {
            KLOG_INFO("net: %s: ipv4 %s/%u gateway %s (static)", name_, AddrText(v4.address).c_str(),
                      v4.prefix, gw);
        }
        had_ipv4_ = true;
        ready_.set();
    } else if (!has_ipv4 && had_ipv4_) {
        KLOG_WARN("net: %s: ipv4 address lost%s", name_, config_.dhcp() ? " (DHCP lease ended)" : "");
        had_ipv4_ = false;
        ready_.reset();
    }
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; ++i) {
        const auto bit = static_cast<std::uint8_t>(1u << i);
        const bool valid = ip6_addr_isvalid(netif_ip6_addr_state(netif_, i));
        if (valid && !(ipv6_logged_ & bit)) {
            const IpAddr a = detail::from_lwip(*netif_ip_addr6(netif_, i));
            KLOG_INFO("net: %s: ipv6 %s (%s)", name_, AddrText(a).c_str(),
                      a.is_link_local() ? "link-local" : "SLAAC");
            ipv6_logged_ |= bit;
        } else if (!valid && (ipv6_logged_ & bit)) {
            ipv6_logged_ &= static_cast<std::uint8_t>(~bit);
        }
    }
}

bool Interface::is_default() const { return netif_default == netif_; }

std::optional<Ipv4Static> Interface::ipv4() const {
    const ip4_addr_t* a = netif_ip4_addr(netif_);
    if (ip4_addr_isany(a)) return std::nullopt;
    const std::uint32_t mask = lwip_ntohl(ip4_addr_get_u32(netif_ip4_netmask(netif_)));
    const std::uint32_t gw = lwip_ntohl(ip4_addr_get_u32(netif_ip4_gw(netif_)));
    return Ipv4Static{IpAddr::v4(lwip_ntohl(ip4_addr_get_u32(a))),
                      static_cast<std::uint8_t>(__builtin_popcount(mask)),
                      gw == 0 ? IpAddr() : IpAddr::v4(gw)};
}

std::size_t Interface::ipv6_addresses(std::span<IpAddr> out) const {
    std::size_t n = 0;
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES && n < out.size(); ++i) {
        if (ip6_addr_ispreferred(netif_ip6_addr_state(netif_, i)))
            out[n++] = detail::from_lwip(*netif_ip_addr6(netif_, i));
    }
    return n;
}

std::uint8_t Interface::index() const { return netif_get_index(netif_); }

void Interface::input(std::span<detail::RxSegment> segments, bool checksum_ok) {
    std::size_t total = 0;
    for (const auto& seg : segments) total += seg.data.size();
    struct pbuf* head = nullptr;
    for (const auto& seg : segments) {
        auto* pc = new (seg.slot->pbuf_storage) pbuf_custom;
        pc->custom_free_function = &InterfaceHooks::free_rx;
        // A segment longer than pbuf's 16-bit length, or a frame beyond 65535 bytes, is a link
        // bug: the pbufs still take the segments (their frees release the slots) but the frame
        // is dropped.
        const auto len = static_cast<u16_t>(std::min<std::size_t>(seg.data.size(), 0xffff));
        struct pbuf* p = pbuf_alloced_custom(PBUF_RAW, len, PBUF_REF, pc, seg.data.data(), len);
        if (head == nullptr) {
            head = p;
        } else {
            pbuf_cat(head, p);
        }
    }
    if (head == nullptr) return;
    if (total > 0xffff || head->tot_len != total) {
        ++counters().rx_dropped;
        pbuf_free(head);
        return;
    }
    deliver(head, checksum_ok);
}

void Interface::input_copy(std::span<const std::span<const std::byte>> segments, bool checksum_ok) {
    std::size_t total = 0;
    for (const auto& s : segments) total += s.size();
    struct pbuf* p =
        total > 0 && total <= 0xffff ? pbuf_alloc(PBUF_RAW, static_cast<u16_t>(total), PBUF_POOL) : nullptr;
    if (p == nullptr) {
        ++counters().rx_dropped;
        return;
    }
    u16_t at = 0;
    for (const auto& s : segments) {
        pbuf_take_at(p, s.data(), static_cast<u16_t>(s.size()), at);
        at = static_cast<u16_t>(at + s.size());
    }
    ++counters().rx_copied;
    deliver(p, checksum_ok);
}

void Interface::set_link(bool up) {
    if (up && gone_) return;  // the device is gone for good
    LwipCall call;  // its end flushes the queue
    if (up) {
        // A link that comes back (netfront after a reset) starts with an empty ring and owes
        // no tx-ready call for what it refused before: stop waiting for one.
        tx_blocked_ = false;
        netif_set_link_up(netif_);
    } else {
        netif_set_link_down(netif_);
    }
}

namespace {
/// lwIP 2.1.3 reads fixed headers from the first pbuf before checking that they are there
/// (found by the lwip_input fuzzer): etharp_input() the 28-byte ARP packet, ip4_input() the
/// total length at bytes 2-3, and ip6_input() the length byte of each Hop-by-Hop, Routing and
/// Destination Options header (and the next header's type after each). A frame whose first
/// pbuf cannot hold its network header, or an IPv6 extension header's first 8 bytes within the
/// payload length, is dropped here; lwIP drops both anyway, after the read (Ethernet pads
/// frames to 60 bytes; a virtual link need not).
constexpr u16_t eth_header = 14;
constexpr std::size_t ip6_header = 40;

/// `ip6`: the IPv6 packet as far as the first pbuf holds it (`len` bytes, at least the fixed
/// header). True if an extension header lwIP parses is cut short. Otherwise `upper` is the
/// offset of the upper layer's header and `next` its type, or `upper` is 0 where lwIP checks
/// (and drops) what follows itself.
bool ip6_extension_cut_short(const std::uint8_t* ip6, std::size_t len, std::size_t& upper, unsigned& next) {
    const std::size_t payload = (std::size_t{ip6[4]} << 8) | ip6[5];
    if (len > ip6_header + payload) len = ip6_header + payload;  // lwIP trims to the payload length
    next = ip6[6];
    upper = 0;
    std::size_t at = ip6_header;
    for (;;) {
        switch (next) {
            case IP6_NEXTH_HOPBYHOP:
            case IP6_NEXTH_ROUTING:
            case IP6_NEXTH_DESTOPTS:
            case IP6_NEXTH_FRAGMENT: break;
            default:  // the upper layer, or none: lwIP checks those lengths
                upper = at;
                return false;
        }
        if (len - at < 8) return true;
        const bool fragment = next == IP6_NEXTH_FRAGMENT;
        const std::size_t h = fragment ? 8 : 8 * (1 + std::size_t{ip6[at + 1]});
        // A fragment past the first carries no upper-layer header (the first 8 bytes of one
        // can only come from a first fragment: offsets are in units of 8).
        const bool later_fragment = fragment && (((unsigned{ip6[at + 2]} << 8) | ip6[at + 3]) >> 3) != 0;
        next = ip6[at];
        if (h > len - at || later_fragment) return false;  // lwIP checks the rest itself
        at += h;
    }
}

/// An ICMPv6 Packet Too Big that lwIP must not take: lwIP takes any MTU into its destination
/// cache (for the address in the quoted packet, which the sender chooses). One under IPv6's
/// minimum (1280) -- 60 or less gives every TCP connection to that host an MSS of 0, with which
/// tcp_write() cannot make a segment -- or over the link's MTU (larger frames to that host,
/// which the link then drops). RFC 8201: discard the first, never raise the estimate. A
/// fragmented one is caught in its first fragment, the only one that can hold the MTU.
bool ip6_too_big_unfit(const std::uint8_t* ip6, std::size_t len, std::size_t upper, unsigned next,
                       std::uint32_t link_mtu) {
    constexpr std::size_t header = 8;  // type, code, checksum, MTU
    if (upper == 0 || next != IP6_NEXTH_ICMP6 || len < upper + header) return false;
    const std::uint8_t* icmp = ip6 + upper;
    const std::uint32_t mtu = (std::uint32_t{icmp[4]} << 24) | (std::uint32_t{icmp[5]} << 16) |
                              (std::uint32_t{icmp[6]} << 8) | icmp[7];
    return icmp[0] == ICMP6_TYPE_PTB && (mtu < IP6_MIN_MTU_LENGTH || mtu > link_mtu);
}

/// Frames lwIP must not see: cut short, or a Packet Too Big it must not take (above).
bool unfit_for_lwip(const struct pbuf* p, std::uint32_t link_mtu) {
    if (p->len < eth_header) return false;  // ethernet_input() drops it
    const auto* b = static_cast<const std::uint8_t*>(p->payload);
    const unsigned type = (unsigned{b[12]} << 8) | b[13];
    const u16_t need = type == ETHTYPE_ARP ? 28 : type == ETHTYPE_IP ? 20 : type == ETHTYPE_IPV6 ? 40 : 0;
    if (p->len < eth_header + need) return true;
    if (type != ETHTYPE_IPV6) return false;
    std::size_t upper = 0;
    unsigned next = 0;
    const std::size_t len = p->len - eth_header;
    return ip6_extension_cut_short(b + eth_header, len, upper, next) ||
           ip6_too_big_unfit(b + eth_header, len, upper, next, link_mtu);
}
}  // namespace

void Interface::deliver(struct pbuf* p, bool checksum_ok) {
    LwipCall call;
    if (unfit_for_lwip(p, netif_mtu6(netif_))) {
        ++counters().rx_dropped;
        pbuf_free(p);
        return;
    }
    ++counters().rx_frames;
    counters().rx_bytes += p->tot_len;
    // NO_SYS: input runs to completion here, so the per-netif flags act per frame.
    if (checksum_ok) {
        NETIF_SET_CHECKSUM_CTRL(
            netif_, NETIF_CHECKSUM_ENABLE_ALL & ~(NETIF_CHECKSUM_CHECK_TCP | NETIF_CHECKSUM_CHECK_UDP));
    }
    if (netif_->input(p, netif_) != ERR_OK) pbuf_free(p);
    if (checksum_ok) NETIF_SET_CHECKSUM_CTRL(netif_, NETIF_CHECKSUM_ENABLE_ALL);
}

namespace detail {

/// What gather() found at the head of the queue, for send_head().
struct TxRun {
    std::size_t frames = 1;      ///< queued frames in the run (1: no super-segment)
    std::uint16_t gso_size = 0;  ///< with frames > 1: every segment's payload but the last's
    TcpSegment first;            ///< with frames > 1: the first segment's headers
    std::uint8_t last_flags = 0;  ///< with frames > 1: the last segment's TCP flags
    std::size_t payload = 0;      ///< with frames > 1: TCP payload bytes of the whole run
};

}  // namespace detail

void Interface::pump() {
    const bool gso = ops_.tx_gso(link_);
    while (txq_count_ > 0) {
        detail::TxRun run;
        if (gso) gather(run);
        if (!send_head(run)) {
            tx_blocked_ = true;
            counters().tx_deferred += txq_count_ - txq_waited_;
            txq_waited_ = txq_count_;
            return;
        }
        const std::size_t n = run.frames;
        for (std::size_t k = 0; k < n; ++k) {
            pbuf_free(txq_[txq_head_]);
            txq_[txq_head_] = nullptr;
            txq_head_ = (txq_head_ + 1) % tx_queue_capacity;
        }
        txq_count_ -= n;
        txq_waited_ = txq_waited_ > n ? txq_waited_ - n : 0;
    }
}

namespace {

/// The frame's first contiguous bytes (lwIP builds a TCP segment's headers in its first pbuf).
std::span<const std::byte> head_of(const struct pbuf* p) { return {static_cast<const std::byte*>(p->payload), p->len}; }

}  // namespace

void Interface::gather(detail::TxRun& run) const {
    const struct pbuf* first = txq_[txq_head_];
    const auto seg = detail::parse_tcp_segment(head_of(first), first->tot_len);
    if (!seg) return;
    const std::uint16_t gso_size = seg->payload;
    std::size_t payload = seg->payload;
    std::size_t pieces = 1 + pbuf_clen(first);
    const struct pbuf* prev = first;
    detail::TcpSegment prev_seg = *seg;
    std::size_t n = 1;
    for (; n < txq_count_; ++n) {
        const struct pbuf* next = txq_[(txq_head_ + n) % tx_queue_capacity];
        const auto next_seg = detail::parse_tcp_segment(head_of(next), next->tot_len);
        if (!next_seg || !detail::continues(head_of(prev), prev_seg, head_of(next), *next_seg, gso_size)) break;
        if (seg->header_len + payload + next_seg->payload > max_gso_frame ||
            pieces + pbuf_clen(next) > max_gso_fragments)
            break;
        payload += next_seg->payload;
        pieces += pbuf_clen(next);
        prev = next;
        prev_seg = *next_seg;
    }
    if (n == 1) return;
    run = {n, gso_size, *seg, prev_seg.flags, payload};
}

bool Interface::send_head(const detail::TxRun& run) {
    struct pbuf* first = txq_[txq_head_];
    if (run.frames == 1) return send_now(first);
    // The super-segment: the first segment's headers, fixed up, then every segment's payload.
    const std::size_t header_len = run.first.header_len;
    Fragment frags[max_gso_fragments];
    std::size_t k = 1;
    for (std::size_t i = 0; i < run.frames; ++i) {
        std::size_t skip = header_len;
        for (const struct pbuf* q = txq_[(txq_head_ + i) % tx_queue_capacity]; q != nullptr; q = q->next) {
            if (skip >= q->len) {
                skip -= q->len;
                continue;
            }
            frags[k++] = Fragment(static_cast<const std::byte*>(q->payload) + skip, q->len - skip);
            skip = 0;
        }
    }
    std::byte header[14 + 60 + 60];
    detail::make_super_header(std::span<std::byte>(header, header_len), head_of(first), run.first, run.payload,
                              run.last_flags);
    frags[0] = Fragment(header, header_len);
    const Result<void> r = ops_.transmit(link_, std::span<const Fragment>(frags, k), run.gso_size);
    if (r.ok()) {
        ++counters().tx_frames;
        ++counters().tx_gso;
        counters().tx_gso_segments += run.frames;
        counters().tx_bytes += header_len + run.payload;
        return true;
    }
    if (r.error() == Error::again) return false;
    counters().tx_dropped += run.frames;
    return true;
}

bool Interface::send_now(struct pbuf* p) {
    Fragment frags[max_fragments];
    std::size_t n = 0;
    struct pbuf* copy = nullptr;
    for (struct pbuf* q = p; q != nullptr; q = q->next) {
        if (q->len == 0) continue;
        if (n == max_fragments) {
            n = 0;
            break;
        }
        frags[n++] = Fragment(static_cast<const std::byte*>(q->payload), q->len);
    }
    if (n == 0 && p->tot_len > 0) {  // a long chain: one copy
        copy = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
        if (copy == nullptr) {
            ++counters().tx_dropped;
            return true;
        }
        frags[n++] = Fragment(static_cast<const std::byte*>(copy->payload), copy->len);
    }
    const Result<void> r = ops_.transmit(link_, std::span<const Fragment>(frags, n), 0);
    if (copy != nullptr) pbuf_free(copy);
    if (r.ok()) {
        ++counters().tx_frames;
        counters().tx_bytes += p->tot_len;
        return true;
    }
    if (r.error() == Error::again) return false;
    ++counters().tx_dropped;
    return true;
}

void Interface::tx_ready() {
    LwipCall call;
    tx_blocked_ = false;
    pump();
}

}  // namespace keel::net
