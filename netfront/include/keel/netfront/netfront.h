// The Xen PV network frontend (io/netif.h): one vif, its xenbus handshake, and the data path
// over a tx and an rx ring. The net layer's view of a network card. Namespace keel::netfront.
//
//   netfront::Netfront& nic = *netfront::netfront_devices()[0];
//   nic.set_receive_handler([](netfront::RxBuffer frame) { /* wrap in a pbuf, hand to lwIP */ });
//   nic.set_tx_ready_handler([] { /* retry what transmit() refused with Error::again */ });
//   nic.set_link_handler([](bool up) { /* netif_set_link_up / _down */ });
//   std::span<const std::byte> parts[] = {header, payload};
//   Result<void> r = nic.transmit(parts, netfront::TxFlags::checksum_blank);
//   // A TCP/IPv4 super-segment of up to 64 KiB, cut into 1448-byte segments by the backend:
//   if (nic.features().tx_gso_tcpv4) r = nic.transmit(parts, netfront::TxFlags::checksum_blank, 1448);
//
// Context: everything runs in the event loop of the one vCPU: the methods, the handlers (run
// from the event-channel handlers or the supervisor, never from inside transmit() or an
// RxBuffer's destruction), and the connection supervisor's Task. Nothing here allocates per
// packet.
#pragma once

#include <stdint.h>  // Xen's headers expect the fixed-width types first

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <xen/io/netif.h>

#include "keel/function.h"
#include "keel/result.h"
#include "keel/task.h"
#include "keel/xen/event_channel.h"
#include "keel/xen/grant_table.h"
#include "keel/xenbus/frontend.h"
#include "keel/xenbus/platform.h"
#include "keel/xenbus/ring.h"
#include "keel/xenbus/xenbus.h"

namespace keel::netfront {

using xenbus::page_size;
using TxRing = xenbus::FrontRing<netif_tx_sring>;
using RxRing = xenbus::FrontRing<netif_rx_sring>;

/// An Ethernet address.
struct Mac {
    std::array<std::uint8_t, 6> bytes{};
    bool operator==(const Mac&) const = default;
};
/// The `mac` node's format (docs/misc/xenstore-paths: device/vif/<id>/mac): six two-digit hex
/// bytes separated by ':', nothing else (upper or lower case). A multicast address (low bit of
/// the first byte) is refused too: it cannot be a station address.
std::optional<Mac> parse_mac(std::string_view text);

/// How transmit() should mark a frame.
enum class TxFlags : std::uint8_t {
    none = 0,
    /// The stack left the L4 (TCP/UDP over IPv4) checksum blank, with the pseudo-header sum in
    /// the field: the backend completes it (NETTXF_csum_blank | NETTXF_data_validated). Only
    /// when features().tx_checksum_offload.
    checksum_blank = 1,
};

/// What the backend says about a received frame's checksum (io/netif.h NETRXF_*).
struct RxFlags {
    /// NETRXF_data_validated: the checksum was verified (or the frame never left this host); the
    /// stack may skip verifying it.
    bool data_validated = false;
    /// NETRXF_csum_blank: the L4 checksum field holds only the pseudo-header sum (the sender
    /// offloaded it and the frame never left the host): the stack must not verify it, and must
    /// fill it in if it forwards the frame.
    bool checksum_blank = false;
    /// Nonzero when the backend sent an XEN_NETIF_EXTRA_TYPE_GSO extra-info of type
    /// XEN_NETIF_GSO_TYPE_TCPV4 with the frame (only if features().rx_gso_tcpv4): the frame is a
    /// TCP/IPv4 super-segment (up to 64 KiB, many segments) whose sender used this MSS. Its L4
    /// checksum is then normally blank (checksum_blank).
    std::uint16_t gso_size = 0;
};

class Netfront;

/// One received frame, in the driver's pages: no copy. Move-only; destroying it (or reset())
/// gives the pages back to the rx ring. A frame larger than a page (with an MTU above ~4000,
/// which the toolstack must set, or a GSO super-segment: RxFlags::gso_size) spans several
/// segments.
///
/// The backend can no longer change the data: each page's grant is ended (the backend's
/// access revoked) before the frame is handed up, and the page is granted afresh when it goes
/// back into the ring (the XSA-392 class: a header must not change between two reads of it).
/// A backend that still maps a page it answered gets its frame dropped and the device reset.
/// Context: loop only. The Netfront must outlive every RxBuffer it handed out.
class RxBuffer {
public:
    RxBuffer() = default;
    RxBuffer(RxBuffer&& o) noexcept;
    RxBuffer& operator=(RxBuffer&& o) noexcept;
    RxBuffer(const RxBuffer&) = delete;
    RxBuffer& operator=(const RxBuffer&) = delete;
    ~RxBuffer() { reset(); }

    bool valid() const { return owner_ != nullptr; }
    /// Bytes in the frame (all segments).
    std::size_t size() const { return size_; }
    std::size_t segment_count() const { return segments_; }
    /// Segment `i` (< segment_count()), writable: lwIP edits some frames in place (ICMP echo).
    std::span<std::byte> segment(std::size_t i) const;
    /// The first (for frames up to a page: the only) segment.
    std::span<std::byte> data() const { return segment(0); }
    RxFlags flags() const { return flags_; }
    /// Give the pages back now.
    void reset();

private:
    friend class Netfront;
    RxBuffer(Netfront* owner, std::uint16_t head, std::uint16_t segments, std::uint32_t size, RxFlags flags)
        : owner_(owner), head_(head), segments_(segments), size_(size), flags_(flags) {}
    Netfront* owner_ = nullptr;
    std::uint16_t head_ = 0;
    std::uint16_t segments_ = 0;
    std::uint32_t size_ = 0;
    RxFlags flags_{};
};

/// Counters for one direction. A frame counts in exactly one of packets or dropped; the
/// per-kind counters say why frames were dropped (a frame with several problems counts once,
/// under the first found).
struct DirectionStats {
    std::uint64_t packets = 0;  ///< frames delivered to the stack (rx) / acknowledged OK (tx)
    std::uint64_t bytes = 0;    ///< their bytes
    std::uint64_t dropped = 0;  ///< frames lost, for any of the reasons below
    // Reported by the backend (legitimate statuses, not protocol errors).
    std::uint64_t backend_error = 0;    ///< NETIF_RSP_ERROR
    std::uint64_t backend_dropped = 0;  ///< NETIF_RSP_DROPPED
    // Protocol errors by the backend (each counts towards the reset threshold).
    std::uint64_t bad_id = 0;          ///< unknown, duplicate or misplaced response id
    std::uint64_t bad_status = 0;      ///< a status that is neither a length nor NETIF_RSP_*
    std::uint64_t bad_length = 0;      ///< offset + length beyond the page, or an empty frame
    std::uint64_t too_many_slots = 0;  ///< a frame spanning more slots than the protocol allows
    std::uint64_t bad_extra = 0;       ///< an extra-info slot we did not ask for or cannot parse
    std::uint64_t ring_overrun = 0;    ///< rsp_prod beyond the requests we made (resets at once)
    std::uint64_t still_mapped = 0;    ///< rx: the backend kept a page it answered mapped (resets at once)
    // Our side.
    std::uint64_t no_handler = 0;  ///< rx: delivered while no receive handler was set
    std::uint64_t aborted = 0;     ///< tx: unanswered when the connection ended
    /// Frames sent or received as GSO super-segments (each is counted in packets too).
    std::uint64_t gso = 0;
};

struct Stats {
    DirectionStats rx, tx;
    std::uint64_t tx_busy = 0;       ///< transmit() calls answered Error::again
    std::uint64_t connects = 0;      ///< handshakes that reached Connected
    std::uint64_t resets = 0;        ///< connections ended by us because the backend misbehaved
    std::uint64_t given_up = 0;      ///< 1 once the supervisor gave up on the device
    /// Pages the backend still maps (their grants could not be ended): out of use, retried at
    /// every connect and reused (or freed) once it lets go. At most the pools plus
    /// max_held_rings ring pairs: with every pair held, connecting fails (Error::no_space).
    std::uint64_t held_pages = 0;
    std::uint64_t rx_missed_events = 0;  ///< rx responses found by the watchdog, not by an event
    std::uint64_t rx_ring_empty = 0;     ///< watchdog ticks that found no rx request posted
};

/// What the handshake settled on (valid while connected; kept after a disconnect).
struct Features {
    bool split_event_channels = false;  ///< separate tx and rx event channels
    bool sg = false;                    ///< backend takes multi-slot tx frames (feature-sg)
    bool tx_checksum_offload = false;   ///< TxFlags::checksum_blank allowed
    bool multi_queue = false;           ///< backend offered multi-queue; we asked for 1 queue
    /// transmit() takes GSO frames (gso_size > 0): the backend offers feature-gso-tcpv4, and
    /// feature-sg and checksum offload too, without which it cannot take one.
    bool tx_gso_tcpv4 = false;
    /// We wrote feature-gso-tcpv4 on this connection (Options::rx_gso, and an rx pool that can
    /// hold a 64 KiB frame): the backend may send GSO frames (RxFlags::gso_size).
    bool rx_gso_tcpv4 = false;
};

struct Options {
    /// Receive pages (each granted read/write, each in the rx ring or with the stack).
    std::uint16_t rx_buffers = RxRing::size;
    /// Transmit pages (each granted read-only; one per tx ring slot in flight).
    std::uint16_t tx_buffers = TxRing::size;
    /// Write feature-gso-tcpv4 = 1, so the backend may hand us TCP/IPv4 super-segments of up to
    /// 64 KiB (RxFlags::gso_size). Not written (whatever this says) when rx_buffers cannot hold
    /// such a frame: XEN_NETIF_NR_SLOTS_MIN pages plus the extra-info slot.
    bool rx_gso = true;
    /// Supervision: the rx ring is looked at every second while connected (Netfront::check_rx);
    /// Linux's netback ignores a frontend's Initialised and connects when the frontend says
    /// Connected, so the keys are published together with state = Connected.
    xenbus::FrontendOptions frontend{
        .max_consecutive_errors = 16,
        .watchdog_ns = s(1),
        .xenbus = {.publish_connected = true},
    };
};

/// Options whose page pools fit a domain of `ram_bytes`: full rings (256 rx + 256 tx pages,
/// 2 MiB) from 16 MiB up, and below that a sixteenth of RAM each way, never fewer than 32
/// pages each (enough for a 64 KiB GSO frame). So httpd serves in 4 MiB (64 + 64 pages).
Options options_for_memory(std::uint64_t ram_bytes);

/// One vif.
///
/// Lifecycle: construct (pinned: not movable), init() once (reads mac and mtu, allocates the
/// page pools), then either start() (a supervisor Task that connects, and reconnects after a
/// reset or a backend restart) or connect()/close() by hand (tests).
///
/// Untrusted backend: every response is copied out of the ring and validated (id, status,
/// offset + length within the page, slot counts, extra-info types and GSO parameters, tx
/// NETIF_RSP_NULL only for extra-info slots we sent, rsp_prod within the requests made). A bad
/// response drops its frame and is counted by kind; `max_consecutive_errors` protocol errors in
/// a row, or one that leaves the ring unusable (rsp_prod overrun, tx pages lost), take the link
/// down and ask the supervisor to reset the device: close through xenbus (teardown revokes
/// every grant) and connect again. Nothing a backend sends can crash the guest or make the
/// driver assert.
class Netfront final : public xenbus::Frontend {
public:
    Netfront(xen::XenStore& xs, const XenbusNode& node, xen::GrantTable& grants, xenbus::Platform& platform,
             Options options = {});
    /// Stops the supervisor, tears down any connection without xenbus (grants revoked, channels
    /// closed) and frees the pages. Every RxBuffer must be gone (panics otherwise: our bug).
    ~Netfront() override;

    // Frontend::init(): read and validate `mac` (required) and `mtu` (optional, 1500 if absent;
    // 68..65517) from the frontend directory, allocate and zero the pages. Error::bad_input for
    // a malformed value, Error::no_memory, xenstore errors; Error::busy if called twice.
    // Frontend::connect(): negotiate features, grant rings and buffers, bind event channels,
    // post the rx buffers, commit the keys in one transaction with our state (Connected by
    // default, see Options::frontend), wait for the backend's Connected; then the link is up.
    // Errors from XenbusDevice::connect, plus not_supported (backend without feature-rx-copy),
    // no_memory (grants or event channels). On error nothing stays granted.
    // Frontend::close(): take the link down and close through xenbus (teardown revokes the
    // grants). Frontend::start(): the supervisor (see the class comment).

    const Mac& mac() const { return mac_; }
    /// Largest IP packet (the `mtu` node, else 1500).
    std::uint16_t mtu() const { return mtu_; }
    /// Largest frame transmit() takes: mtu + 18 (Ethernet header and one VLAN tag).
    std::size_t max_frame() const { return static_cast<std::size_t>(mtu_) + 18; }
    /// Largest GSO frame transmit() takes: the first tx request's size field has 16 bits
    /// (io/netif.h, XEN_NETIF_MAX_TX_SIZE). 16 pages, within XEN_NETIF_NR_SLOTS_MIN.
    static constexpr std::size_t max_gso_frame = XEN_NETIF_MAX_TX_SIZE;
    /// Ring pairs the backend kept mapped at a teardown that we still wait for: the next
    /// connection uses fresh ring pages. With this many held, connect() fails.
    static constexpr std::size_t max_held_rings = 4;
    /// True while the data path runs (Connected and not being reset).
    bool link_up() const { return live(); }
    const Features& features() const { return features_; }

    /// Copy the frame (the concatenation of `fragments`) into free pre-granted tx pages and
    /// queue it. Errors: closed (link down), again (not enough free slots: the tx-ready
    /// handler runs once space frees), invalid_argument (frame shorter than an Ethernet header,
    /// longer than max_frame(), or longer than a page when the backend lacks feature-sg),
    /// not_supported (checksum_blank without features().tx_checksum_offload).
    ///
    /// `gso_size` > 0 sends the frame as a TCP/IPv4 GSO super-segment: the backend cuts it into
    /// segments of `gso_size` payload bytes (the MSS) and completes their checksums. Then the
    /// frame may be up to max_gso_frame bytes; flags must be TxFlags::checksum_blank (else
    /// invalid_argument), and features().tx_gso_tcpv4 must be set (else not_supported); a frame
    /// needing more pages than Options::tx_buffers is invalid_argument. It takes one ring slot
    /// more than its pages (the XEN_NETIF_EXTRA_TYPE_GSO extra-info).
    /// Never runs a handler.
    Result<void> transmit(std::span<const std::span<const std::byte>> fragments, TxFlags flags = TxFlags::none,
                          std::uint16_t gso_size = 0);

    /// Gets each received frame, from the rx event handler. Frames arriving while no handler is
    /// set are dropped (counted). The handler may replace or clear itself and may transmit.
    void set_receive_handler(Function<void(RxBuffer)> handler);
    /// Runs once after transmit() returned Error::again, when a frame of that size fits again:
    /// from an event handler (the tx event asked for then, or an rx event) or the watchdog. It
    /// may call transmit().
    void set_tx_ready_handler(Function<void()> handler);
    /// Runs with true when the data path starts (Connected) and false when it stops
    /// (disconnect, reset). From the supervisor or from an event handler; it must not replace
    /// itself from inside. Not called from the destructor.
    void set_link_handler(Function<void(bool up)> handler);
    /// Runs once, from the supervisor, when the device is gone for good (detached, removed,
    /// or given up on; Frontend::retired()): its link stays down. At once if it is gone
    /// already. Not called from the destructor.
    void set_gone_handler(Function<void()> handler) {
        on_gone_ = std::move(handler);
        if (on_gone_ && retired()) on_gone_();
    }

    /// The counters. Answered transmit pages are taken back first (reap_tx() asks for no
    /// event on them while no sender waits), so the tx counters cover every answered frame --
    /// except while a sender waits for room: then the event asked for takes them, so that
    /// taking them here cannot swallow the event that wakes the sender. A bad response found
    /// here resets the device as it would from an event (the link handler runs later, from the
    /// loop); no handler runs inside.
    Stats stats();

    /// Event-channel entry points (connect() installs them as the channels' handlers; public
    /// for tests that dispatch events themselves).
    void on_tx_event();
    void on_rx_event();
    /// The supervisor's periodic look at the rx ring (public for tests): responses that waited
    /// a whole period without their event are consumed now (counted, logged once per
    /// connection), and an rx ring left without a single request is reported with where the
    /// pages are. Either means frames are being lost upstream.
    void check_rx();

private:
    friend class RxBuffer;

    /// Why a response was refused (which counter it goes to).
    enum class Fault : std::uint8_t {
        none, backend_error, backend_dropped, bad_id, bad_status, bad_length, too_many_slots, bad_extra,
        still_mapped,
    };
    /// held: the backend kept it mapped when its grant was to end; out of use (grant kept)
    /// until reclaim_held() manages to end it.
    enum class RxState : std::uint8_t { free, posted, with_stack, held };
    enum class TxState : std::uint8_t { free, in_flight, held };

    struct RxPage {
        std::byte* page = nullptr;
        xen::Grant grant;  ///< while posted (or held) only: ended before the stack sees the page
        std::uint16_t next = 0;    ///< next segment of the frame (with_stack)
        std::uint16_t offset = 0;  ///< data within the page (with_stack)
        std::uint16_t length = 0;
        RxState state = RxState::free;
    };
    struct TxPage {
        std::byte* page = nullptr;
        xen::Grant grant;
        std::uint16_t head = 0;     ///< first page of the frame this slot belongs to
        std::uint16_t pending = 0;  ///< head only: slots of the frame not yet answered
        std::uint32_t bytes = 0;    ///< head only: frame length
        TxState state = TxState::free;
        bool answered = false;  ///< head only: its own response came (it is freed with the frame)
        bool gso = false;       ///< head only: sent as a GSO super-segment
        Fault fault{};          ///< head only: the first fault among the frame's responses
    };

    // Connection (netfront.cc): the Frontend hooks.
    Task<Result<void>> prepare() override;
    Task<Result<void>> configure(XenbusConfig& cfg) override;
    void go_live() override;
    void go_down(Error why) override;
    void release() override;
    /// Detached or given up: free the pools and the rings, except pages the backend still
    /// maps; the rx pool waits for the stack's last RxBuffer (release_rx()).
    void retire() override;
    void free_pools();
    /// Also takes back answered transmit pages (and so sees a bad tx response) when nothing
    /// else has since the last look.
    void watchdog() override {
        check_rx();
        poll_tx();
    }
    void report_reset(const char* why) override;
    Task<Result<void>> read_features();
    Result<void> setup_connection();
    void write_keys(XenbusConfig& cfg) const;
    /// A frame is dropped for `fault`: count it (dropped + the kind).
    static void count_fault(DirectionStats& dir, Fault fault);
    void link_changed(bool up);
    /// Retry ending the grants the backend held (pages, ring pairs); free what it let go of.
    void reclaim_held();
    /// Keep the ring pair the backend still maps out of use, in a free held_rings_ slot.
    void hold_rings();
    /// End the backend's access to rx page `i` (posted, answered); false if it still maps the
    /// page (then it is held).
    bool end_rx_access(std::uint16_t i);

    // Receive (rx.cc).
    void poll_rx();
    /// Handle the frame at rsp_cons, `avail` responses being there; returns the slots consumed,
    /// 0 if the frame is not complete yet.
    RING_IDX take_rx_frame(RING_IDX avail);
    /// Consume `n` responses and free the pages posted in their slots.
    void drop_rx_slots(RING_IDX n);
    void deliver(RxBuffer frame);
    void release_rx(std::uint16_t head);
    /// post_rx() if the data path runs.
    void refill_rx();
    /// Post every free granted page into free rx ring slots; notify by the req_event rule.
    void post_rx();
    void free_rx_page(std::uint16_t i);

    // Transmit (tx.cc).
    /// reap_tx(), then the tx-ready handler if a refused frame fits now.
    void poll_tx();
    /// Consume tx responses and free their pages; while tx_blocked_, ask for an event on the
    /// next response (otherwise none is asked for). Runs no handler. `judge` false: at
    /// teardown, count what was answered but leave the error run, health and resets alone.
    void reap_tx(bool judge = true);
    /// `pages` free tx pages and `ring_slots` (pages + extra-info slots) free in the ring.
    bool tx_room(std::size_t pages, std::size_t ring_slots) const;
    /// Take one tx response; false if it broke the protocol (a bad id or status).
    bool complete_tx_slot(std::uint16_t id, std::int16_t status);
    void abort_tx();
    void reset_tx_free_list();
    void push_tx_free(std::uint16_t i);
    std::uint16_t pop_tx_free();

    Options options_;

    Mac mac_{};
    std::uint16_t mtu_ = 1500;
    Features features_{};

    // Shared pages: two ring pages, then the pools (allocated by init()).
    std::byte* ring_pages_ = nullptr;
    std::byte* rx_block_ = nullptr;
    std::byte* tx_block_ = nullptr;
    xen::Grant tx_ring_grant_, rx_ring_grant_;
    struct HeldRings {
        std::byte* pages = nullptr;  ///< nullptr: the entry is free
        xen::Grant tx, rx;
    };
    HeldRings held_rings_[max_held_rings];
    TxRing tx_ring_;
    RxRing rx_ring_;
    xen::EventChannel* tx_channel_ = nullptr;
    xen::EventChannel* rx_channel_ = nullptr;  ///< == tx_channel_ without split channels
    std::uint32_t tx_port_ = 0, rx_port_ = 0;

    // Receive pool.
    RxPage rx_[RxRing::size];
    std::uint16_t rx_free_[RxRing::size];   ///< stack of free page indices
    std::uint16_t rx_free_count_ = 0;
    std::uint16_t rx_posted_[RxRing::size];  ///< page posted in each ring slot
    bool rx_polling_ = false;                ///< inside poll_rx: refill at the end, not per release
    bool rx_skipping_ = false;               ///< discarding the rest of an over-long frame
    std::uint32_t rx_with_stack_ = 0;        ///< pages held by RxBuffers
    RING_IDX rx_watch_prod_ = 0;             ///< responses published at the last check_rx()
    bool rx_watch_logged_ = false;           ///< check_rx() has logged on this connection

    // Transmit pool.
    TxPage tx_[TxRing::size];
    std::uint16_t tx_free_[TxRing::size];  ///< FIFO of free page indices (a reused id comes late)
    std::uint16_t tx_free_head_ = 0;
    std::uint16_t tx_free_count_ = 0;
    std::uint32_t tx_in_flight_ = 0;
    std::uint32_t tx_extras_in_flight_ = 0;  ///< extra-info slots sent, their NETIF_RSP_NULL not seen
    bool tx_blocked_ = false;
    std::size_t tx_blocked_pages_ = 0;       ///< what the largest refused frame needs
    std::size_t tx_blocked_ring_slots_ = 0;

    Function<void(RxBuffer)> on_receive_;
    std::uint32_t receive_generation_ = 0;
    Function<void()> on_tx_ready_;
    std::uint32_t tx_ready_generation_ = 0;
    Function<void(bool)> on_link_;
    Function<void()> on_gone_;

    Stats stats_{};
};

/// Devices the guest found and initialised, in the order found: at boot in xenstore order
/// (device/vif/<id>), then hot-plugged ones (`xl network-attach`), for the net layer. Valid
/// after netfront_discovered() is set; the devices live forever (a detached one stays, its
/// link down and its pages given back: Frontend::retired()).
std::span<Netfront* const> netfront_devices();
/// Set once boot-time discovery has finished (with or without devices).
Event& netfront_discovered();
/// Guest only (netfront/guest/init.cc): set each time a device was added, at boot or
/// hot-plugged; its one waiter (the net layer) resets it and looks at netfront_devices() again.
Event& netfront_added();
/// For the discovery code: add a device (Error::no_space beyond max_attached, detached ones
/// included).
using xenbus::max_attached;
using xenbus::max_devices;
Result<void> register_device(Netfront& device);
/// Forget every registered device (tests).
void clear_devices();

}  // namespace keel::netfront
