// Netfront's control path, as xenbus::Frontend hooks: init (mac, mtu, pages), the handshake's
// part that is netif's (features, grants, event channels, keys), going live and down, teardown;
// and the device registry. The supervisor is Frontend's; the data path is in rx.cc and tx.cc.
#include "keel/netfront/netfront.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "keel/log.h"
#include "keel/panic.h"
#include "keel/registry.h"

namespace keel::netfront {

Options options_for_memory(std::uint64_t ram_bytes) {
    const std::uint64_t sixteenth = ram_bytes / 16 / page_size;
    const std::uint64_t min_pages = 32;
    Options o;
    o.rx_buffers = static_cast<std::uint16_t>(std::clamp<std::uint64_t>(sixteenth, min_pages, RxRing::size));
    o.tx_buffers = static_cast<std::uint16_t>(std::clamp<std::uint64_t>(sixteenth, min_pages, TxRing::size));
    return o;
}

namespace {

constexpr std::uint64_t min_mtu = 68;      // the smallest IPv4 MTU (RFC 791)
constexpr std::uint64_t max_mtu = 65517;   // max_frame() = XEN_NETIF_MAX_TX_SIZE (io/netif.h)
static_assert(max_mtu + 18 == XEN_NETIF_MAX_TX_SIZE);

// The rings take one page each (io/netif.h: DEFINE_RING_TYPES over a 4096-byte page).
static_assert(sizeof(netif_tx_request_t) == 12 && sizeof(netif_tx_response_t) == 4);
static_assert(sizeof(netif_rx_request_t) == 8 && sizeof(netif_rx_response_t) == 8);
static_assert(sizeof(netif_extra_info_t) == 8);
static_assert(offsetof(netif_tx_sring, ring) == 64 && offsetof(netif_rx_sring, ring) == 64);
static_assert(TxRing::size == 256 && RxRing::size == 256);

}  // namespace

Netfront::Netfront(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform,
                   Options options)
    : Frontend("netfront", xs, node, grants, platform, options.frontend), options_(options) {
    options_.rx_buffers = std::clamp<std::uint16_t>(options_.rx_buffers, 1, RxRing::size);
    options_.tx_buffers = std::clamp<std::uint16_t>(options_.tx_buffers, 1, TxRing::size);
}

Netfront::~Netfront() {
    // Nobody is told about a device going away with its owner.
    on_link_ = nullptr;
    on_receive_ = nullptr;
    on_tx_ready_ = nullptr;
    on_gone_ = nullptr;
    shutdown();  // the supervisor stops, the connection is released without xenbus
    KASSERT(rx_with_stack_ == 0);  // an RxBuffer outlived its device: the owner's bug
    free_pools();
}

void Netfront::retire() {
    free_pools();
    if (on_gone_) on_gone_();
}

void Netfront::free_pools() {
    // Between connections only (the destructor, retire(), the stack's last RxBuffer of a
    // retired device). Memory the backend still maps is never freed (it could still write
    // it): its grants and pages leak, once, with the device.
    reclaim_held();
    bool rx_held = rx_with_stack_ > 0, tx_held = false;
    for (RxPage& p : rx_) rx_held = rx_held || p.state == RxState::held;
    for (TxPage& p : tx_) tx_held = tx_held || p.state == TxState::held;
    if (rx_block_ && !rx_held) {
        platform_.free_pages(rx_block_, options_.rx_buffers);
        rx_block_ = nullptr;
        for (RxPage& p : rx_) p.page = nullptr;
    }
    if (tx_block_ && !tx_held) {
        platform_.free_pages(tx_block_, options_.tx_buffers);
        tx_block_ = nullptr;
        for (TxPage& p : tx_) p.page = nullptr;
    }
    if (ring_pages_) platform_.free_pages(ring_pages_, 2);
    ring_pages_ = nullptr;
}

// ---- init ----------------------------------------------------------------------------------

Task<Result<void>> Netfront::prepare() {
    const char* name = dev_.nodename().data();  // XenbusNode keeps it NUL-terminated

    // docs/misc/xenstore-paths: device/vif/<id>/mac, written by the toolstack.
    char text[24];
    Result<std::size_t> n = co_await dev_.read_frontend("mac", text);
    if (!n) {
        KLOG_ERROR("netfront: %s: cannot read mac: %s", name, to_string(n.error()));
        co_return n.error() == Error::no_space ? Error::bad_input : n.error();
    }
    const auto mac = parse_mac(std::string_view(text, *n));
    if (!mac) {
        KLOG_ERROR("netfront: %s: rejected mac \"%.*s\"", name, static_cast<int>(*n), text);
        co_return Error::bad_input;
    }
    mac_ = *mac;

    // io/netif.h, "MTU": device/vif/<id>/mtu if the toolstack set one, else 1500.
    Result<std::uint64_t> mtu = co_await dev_.read_frontend_uint("mtu");
    if (mtu) {
        if (*mtu < min_mtu || *mtu > max_mtu) {
            KLOG_ERROR("netfront: %s: rejected mtu %llu (want %llu..%llu)", name,
                       static_cast<unsigned long long>(*mtu), static_cast<unsigned long long>(min_mtu),
                       static_cast<unsigned long long>(max_mtu));
            co_return Error::bad_input;
        }
        mtu_ = static_cast<std::uint16_t>(*mtu);
    } else if (mtu.error() != Error::not_found) {
        co_return mtu.error();
    }
    // A frame of max_frame() bytes must fit in the tx pool, or transmit() could never take it.
    if ((max_frame() + page_size - 1) / page_size > options_.tx_buffers) {
        KLOG_ERROR("netfront: %s: mtu %u needs more than the %u tx pages configured", name, mtu_,
                   options_.tx_buffers);
        co_return Error::invalid_argument;
    }

    ring_pages_ = platform_.alloc_pages(2);
    rx_block_ = platform_.alloc_pages(options_.rx_buffers);
    tx_block_ = platform_.alloc_pages(options_.tx_buffers);
    if (!ring_pages_ || !rx_block_ || !tx_block_) {
        KLOG_ERROR("netfront: %s: out of memory for %u pages", name, 2u + options_.rx_buffers + options_.tx_buffers);
        if (ring_pages_) platform_.free_pages(ring_pages_, 2);
        if (rx_block_) platform_.free_pages(rx_block_, options_.rx_buffers);
        if (tx_block_) platform_.free_pages(tx_block_, options_.tx_buffers);
        ring_pages_ = rx_block_ = tx_block_ = nullptr;
        co_return Error::no_memory;
    }
    for (std::uint16_t i = 0; i < options_.rx_buffers; ++i) rx_[i].page = rx_block_ + i * page_size;
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) tx_[i].page = tx_block_ + i * page_size;
    KLOG_INFO("netfront: %s: mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u, %u rx + %u tx pages", name,
              mac_.bytes[0], mac_.bytes[1], mac_.bytes[2], mac_.bytes[3], mac_.bytes[4], mac_.bytes[5], mtu_,
              options_.rx_buffers, options_.tx_buffers);
    co_return Result<void>{};
}

// ---- handshake -------------------------------------------------------------------------------

Task<Result<void>> Netfront::configure(XenbusConfig& cfg) {
    Result<void> r = co_await read_features();
    if (r) r = setup_connection();
    if (r) {
        write_keys(cfg);
    } else {
        release_connection();  // before XenbusDevice writes Closed: nothing stays granted
    }
    co_return r;
}

namespace {

/// A backend feature flag: absent means off; a value that is not a number is logged (by
/// XenbusDevice) and taken as off too, the safe reading. Other xenstore errors are errors.
Result<bool> flag_value(Result<std::uint64_t> v) {
    if (v) return *v != 0;
    if (v.error() == Error::not_found || v.error() == Error::bad_input) return false;
    return v.error();
}

}  // namespace

Task<Result<void>> Netfront::read_features() {
    const char* name = dev_.nodename().data();
    Features f;

    // The copying receiver is the only rx mode we implement (the backend grant-copies into our
    // pages). Not spelled out in io/netif.h; every netback since Xen 3.1 offers feature-rx-copy.
    Result<bool> rx_copy = flag_value(co_await dev_.read_backend_uint("feature-rx-copy"));
    if (!rx_copy) co_return rx_copy.error();
    if (!*rx_copy) {
        KLOG_ERROR("netfront: %s: backend does not offer feature-rx-copy", name);
        co_return Error::not_supported;
    }
    Result<bool> sg = flag_value(co_await dev_.read_backend_uint("feature-sg"));
    if (!sg) co_return sg.error();
    f.sg = *sg;
    // io/netif.h: "feature-split-event-channels" ... "advertises it via xenstore as 0 or 1".
    Result<bool> split = flag_value(co_await dev_.read_backend_uint("feature-split-event-channels"));
    if (!split) co_return split.error();
    f.split_event_channels = *split;
    // io/netif.h: feature-no-csum-offload missing means checksum offload is on. A backend that
    // writes it as 1 gets no frames with a blank checksum from us.
    Result<bool> no_csum = flag_value(co_await dev_.read_backend_uint("feature-no-csum-offload"));
    if (!no_csum) co_return no_csum.error();
    f.tx_checksum_offload = !*no_csum;
    // io/netif.h: "feature-gso-tcpv4" advertises the capability to handle large TCP packets;
    // "Neither frontends nor backends are assumed to be capable unless the flags are present".
    // A GSO frame spans several pages (feature-sg) and leaves the checksum to the backend
    // (NETTXF_csum_blank): all three are needed before we send one.
    Result<bool> gso = flag_value(co_await dev_.read_backend_uint("feature-gso-tcpv4"));
    if (!gso) co_return gso.error();
    f.tx_gso_tcpv4 = *gso && f.sg && f.tx_checksum_offload;
    // Our own offer (written by write_keys). A 64 KiB GSO frame takes up to
    // XEN_NETIF_NR_SLOTS_MIN pages plus its extra-info slot: with fewer rx pages the backend
    // would wait for room that never comes.
    f.rx_gso_tcpv4 = options_.rx_gso && options_.rx_buffers >= XEN_NETIF_NR_SLOTS_MIN + 1;
    if (options_.rx_gso && !f.rx_gso_tcpv4) {
        KLOG_WARN("netfront: %s: %u rx pages cannot hold a GSO frame; not offering feature-gso-tcpv4", name,
                  options_.rx_buffers);
    }
    // io/netif.h, "Multiple transmit and receive queues": multi-queue-max-queues, if supported.
    Result<std::uint64_t> queues = co_await dev_.read_backend_uint("multi-queue-max-queues");
    if (queues) {
        f.multi_queue = *queues >= 1;
    } else if (queues.error() != Error::not_found && queues.error() != Error::bad_input) {
        co_return queues.error();
    }
    features_ = f;
    co_return Result<void>{};
}

Result<void> Netfront::setup_connection() {
    const xen::DomId backend = dev_.backend_id();
    reclaim_held();
    // A teardown may hold this connection's rings too: a slot must be free for them, so that
    // what a backend can pin stays bounded (then the handshake fails; the supervisor backs off
    // and gives up in the end).
    if (std::none_of(std::begin(held_rings_), std::end(held_rings_), [](const HeldRings& h) { return !h.pages; })) {
        KLOG_ERROR("netfront: %s: backend still maps %zu old ring pairs; not connecting", dev_.nodename().data(),
                   max_held_rings);
        return Error::no_space;
    }
    if (!ring_pages_) {
        // The backend kept the old ring pages mapped (hold_rings): take fresh ones.
        ring_pages_ = platform_.alloc_pages(2);
        if (!ring_pages_) return Error::no_memory;
    }
    // io/ring.h: the front end initialises the shared rings before it publishes them.
    tx_ring_.attach(ring_pages_);
    rx_ring_.attach(ring_pages_ + page_size);
    begin_connection();  // from here on release_connection() undoes what was done

    auto tx_ring = xen::Grant::create(grants_, backend, platform_.gfn(ring_pages_), false);
    if (!tx_ring) return tx_ring.error();
    tx_ring_grant_ = std::move(*tx_ring);
    auto rx_ring = xen::Grant::create(grants_, backend, platform_.gfn(ring_pages_ + page_size), false);
    if (!rx_ring) return rx_ring.error();
    rx_ring_grant_ = std::move(*rx_ring);

    // Tx pages are granted read-only once per connection (the backend only reads frames). Rx
    // pages are granted read/write each time they are posted (post_rx) and the grant ends when
    // the backend answers (take_rx_frame), so nothing the stack reads is writable by it.
    rx_free_count_ = 0;
    for (std::uint16_t i = 0; i < options_.rx_buffers; ++i) {
        if (rx_[i].state == RxState::free) rx_free_[rx_free_count_++] = i;
    }
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) {
        TxPage& p = tx_[i];
        if (p.state == TxState::held) continue;
        auto g = xen::Grant::create(grants_, backend, platform_.gfn(p.page), true);
        if (!g) return g.error();
        p.grant = std::move(*g);
    }
    reset_tx_free_list();

    auto tx_channel = platform_.open_channel(backend, tx_port_);
    if (!tx_channel) return tx_channel.error();
    tx_channel_ = *tx_channel;
    // A receive event takes back answered transmit pages too: transmit events are asked for
    // only while a sender waits for room (reap_tx()).
    auto rx_and_tx = [this] {
        on_rx_event();
        on_tx_event();
    };
    if (features_.split_event_channels) {
        auto rx_channel = platform_.open_channel(backend, rx_port_);
        if (!rx_channel) return rx_channel.error();
        rx_channel_ = *rx_channel;
        tx_channel_->set_handler([this] { on_tx_event(); });
        rx_channel_->set_handler(rx_and_tx);
    } else {
        rx_channel_ = tx_channel_;
        rx_port_ = tx_port_;
        tx_channel_->set_handler(rx_and_tx);
    }

    // Post the receive buffers now, so the backend finds them when it connects. No notification
    // yet: the backend has not bound the channel (go_live() kicks it).
    post_rx();
    return {};
}

void Netfront::write_keys(XenbusConfig& cfg) const {
    // io/netif.h, "Multiple transmit and receive queues": a frontend using one queue writes the
    // ring and event-channel keys at the top level, as a frontend unaware of queues would. We
    // use one queue (one vCPU); if the backend offers queues we say so explicitly.
    if (features_.multi_queue) cfg.write_uint("multi-queue-num-queues", 1);
    cfg.write_uint("tx-ring-ref", tx_ring_grant_.ref());
    cfg.write_uint("rx-ring-ref", rx_ring_grant_.ref());
    if (features_.split_event_channels) {
        // io/netif.h: "advertise them to backend as event-channel-tx and event-channel-rx".
        cfg.write_uint("event-channel-tx", tx_port_);
        cfg.write_uint("event-channel-rx", rx_port_);
    } else {
        cfg.write_uint("event-channel", tx_port_);
    }
    cfg.write("request-rx-copy", "1");
    // io/netif.h: "If the client sends notification for rx requests then it should specify
    // feature 'feature-rx-notify'" -- we do (refill_rx notifies by the req_event rule).
    cfg.write("feature-rx-notify", "1");
    // We take multi-slot rx frames (NETRXF_more_data).
    cfg.write("feature-sg", "1");
    // io/netif.h: feature-no-csum-offload turns checksum offload off or on; we take frames with
    // a blank checksum (reported as RxFlags::checksum_blank).
    cfg.write("feature-no-csum-offload", "0");
    // io/netif.h: "feature-gso-tcpv4" -- we take TCP/IPv4 super-segments, announced by an
    // XEN_NETIF_EXTRA_TYPE_GSO extra-info after the frame's first response (take_rx_frame).
    if (features_.rx_gso_tcpv4) cfg.write("feature-gso-tcpv4", "1");
    // Not written: feature-gso-tcpv6 (no IPv6 offloads), feature-ipv6-csum-offload,
    // request-multicast-control, ctrl-ring-ref.
}

void Netfront::go_live() {
    KLOG_INFO("netfront: %s: link up (%s event channel%s, sg %s, tx csum offload %s, gso tx %s rx %s)",
              dev_.nodename().data(), features_.split_event_channels ? "split" : "one",
              features_.split_event_channels ? "s" : "", features_.sg ? "on" : "off",
              features_.tx_checksum_offload ? "on" : "off", features_.tx_gso_tcpv4 ? "on" : "off",
              features_.rx_gso_tcpv4 ? "on" : "off");
    // The backend now listens: tell it about the rx buffers posted before it connected.
    tx_channel_->notify();
    if (rx_channel_ != tx_channel_) rx_channel_->notify();
    link_changed(true);
    // Anything it answered meanwhile.
    poll_rx();
    poll_tx();
    // The watchdog (check_rx) starts counting on this connection now.
    rx_watch_prod_ = rx_ring_.rsp_cons();
    rx_watch_logged_ = false;
}

void Netfront::go_down(Error) { link_changed(false); }

// ---- teardown --------------------------------------------------------------------------------

void Netfront::link_changed(bool up) {
    if (on_link_) on_link_(up);
}

void Netfront::release() {
    if (tx_channel_) {
        tx_channel_->set_handler(nullptr);
        if (rx_channel_ && rx_channel_ != tx_channel_) {
            rx_channel_->set_handler(nullptr);
            platform_.close_channel(rx_channel_);
        }
        platform_.close_channel(tx_channel_);
    }
    tx_channel_ = rx_channel_ = nullptr;

    // Frames the backend answered that nothing took back yet (no tx event is asked for them)
    // were sent: count them so, and only the rest as aborted.
    if (tx_ring_.attached()) reap_tx(false);
    abort_tx();
    rx_skipping_ = false;

    // The backend has let go (XenbusDevice waited for its Closing/Closed, or it is gone). A
    // grant still in use means it has not: that page is held, out of use, until it does.
    std::size_t held = 0;
    for (std::uint16_t i = 0; i < options_.rx_buffers; ++i) {
        RxPage& p = rx_[i];
        if (p.state == RxState::posted) p.state = RxState::free;
        if (p.grant.valid()) p.state = p.grant.revoke() ? RxState::free : RxState::held;
        if (p.state == RxState::held) ++held;
    }
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) {
        TxPage& p = tx_[i];
        if (p.grant.valid()) p.state = p.grant.revoke() ? TxState::free : TxState::held;  // abort_tx freed the rest
        if (p.state == TxState::held) ++held;
    }
    const bool tx_ring_held = tx_ring_grant_.valid() && !tx_ring_grant_.revoke();
    const bool rx_ring_held = rx_ring_grant_.valid() && !rx_ring_grant_.revoke();
    tx_ring_.detach();
    rx_ring_.detach();
    if (tx_ring_held || rx_ring_held) hold_rings();
    if (held > 0) {
        KLOG_ERROR("netfront: %s: backend still maps %zu buffer page%s after closing; held until it lets go",
                   dev_.nodename().data(), held, held == 1 ? "" : "s");
    }

    rx_free_count_ = 0;
    for (std::uint16_t i = 0; i < options_.rx_buffers; ++i) {
        if (rx_[i].state == RxState::free) rx_free_[rx_free_count_++] = i;
    }
    reset_tx_free_list();
    tx_blocked_ = false;
    tx_blocked_pages_ = tx_blocked_ring_slots_ = 0;
}

void Netfront::hold_rings() {
    // setup_connection() made sure a slot is free.
    for (HeldRings& h : held_rings_) {
        if (h.pages) continue;
        h.pages = std::exchange(ring_pages_, nullptr);
        h.tx = std::move(tx_ring_grant_);
        h.rx = std::move(rx_ring_grant_);
        break;
    }
    KLOG_ERROR("netfront: %s: backend still maps the rings after closing; held until it lets go",
               dev_.nodename().data());
}

void Netfront::reclaim_held() {
    for (HeldRings& h : held_rings_) {
        if (!h.pages) continue;
        if (h.tx.valid()) (void)h.tx.revoke();
        if (h.rx.valid()) (void)h.rx.revoke();
        if (h.tx.valid() || h.rx.valid()) continue;
        platform_.free_pages(h.pages, 2);
        h.pages = nullptr;
    }
    for (std::uint16_t i = 0; i < options_.rx_buffers; ++i) {
        RxPage& p = rx_[i];
        // Called between connections only: setup_connection() rebuilds the free list.
        if (p.state == RxState::held && (!p.grant.valid() || p.grant.revoke())) p.state = RxState::free;
    }
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) {
        TxPage& p = tx_[i];
        if (p.state == TxState::held && (!p.grant.valid() || p.grant.revoke())) p.state = TxState::free;
    }
}

Stats Netfront::stats() {
    if (live() && !tx_blocked_) reap_tx();
    Stats s = with_connection_counts(stats_);
    for (const RxPage& p : rx_) s.held_pages += p.state == RxState::held ? 1 : 0;
    for (const TxPage& p : tx_) s.held_pages += p.state == TxState::held ? 1 : 0;
    for (const HeldRings& h : held_rings_) s.held_pages += h.pages ? 2 : 0;
    return s;
}

// ---- errors and resets -----------------------------------------------------------------------

void Netfront::count_fault(DirectionStats& dir, Fault fault) {
    ++dir.dropped;
    switch (fault) {
    case Fault::none: break;
    case Fault::backend_error: ++dir.backend_error; break;
    case Fault::backend_dropped: ++dir.backend_dropped; break;
    case Fault::bad_id: ++dir.bad_id; break;
    case Fault::bad_status: ++dir.bad_status; break;
    case Fault::bad_length: ++dir.bad_length; break;
    case Fault::too_many_slots: ++dir.too_many_slots; break;
    case Fault::bad_extra: ++dir.bad_extra; break;
    case Fault::still_mapped: ++dir.still_mapped; break;
    }
}

void Netfront::report_reset(const char* why) {
    KLOG_ERROR("netfront: %s: resetting the device: %s (rx: %llu bad id, %llu bad length; tx: %llu bad id)",
               dev_.nodename().data(), why, static_cast<unsigned long long>(stats_.rx.bad_id),
               static_cast<unsigned long long>(stats_.rx.bad_length), static_cast<unsigned long long>(stats_.tx.bad_id));
}

// ---- registry --------------------------------------------------------------------------------

namespace {
Registry<Netfront, max_attached> g_registry;
}  // namespace

std::span<Netfront* const> netfront_devices() { return g_registry.devices(); }

Event& netfront_discovered() {
    static Event discovered;
    return discovered;
}

Result<void> register_device(Netfront& device) { return g_registry.add(device); }

void clear_devices() { g_registry.clear(); }

}  // namespace keel::netfront
