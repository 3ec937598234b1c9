// A fake netback for host tests: it plays the backend's side of io/netif.h on the very pages
// netfront shares, reaching them through FakeBackend's grant mapping (refs -> the test's pages)
// that fails the test on a revoked or unknown grant or a write through a read-only one. It runs
// the backend's xenbus column through FakeBackend / FakeXenbusBackend the way Linux's netback
// does (it connects on the frontend's Connected; act_like_netback(false) for the Initialised
// convention), reads the frontend's keys when it connects, and enforces the ring protocol on the frontend: request ids unique,
// slot counts, sizes within the page, tx extra-info (GSO only, only when offered, well-formed,
// after the first request, with NETTXF_csum_blank), the req_event notification rule, and every
// grant revoked once the frontend is Closed. It answers a tx extra-info slot with
// NETIF_RSP_NULL as Linux's netback does, sends GSO frames only to a frontend that wrote
// feature-gso-tcpv4, and can misbehave on demand.
//
// The back rings are driven with Xen's own macros (io/ring.h), not with netfront's FrontRing,
// so the two halves are written independently.
#pragma once

#include <stdint.h>

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <xen/io/netif.h>

#include "fakes/fake_backend.h"
#include "fakes/test_platform.h"
#include "keel/netfront/netfront.h"
#include "keel/xen/event_channel.h"
#include "fakes/fake_xenstored.h"

namespace keel::test {

/// The backend-domain features the toolstack's netback would write.
struct BackendFeatures {
    bool sg = true;
    bool split_event_channels = false;
    int multi_queue_max = 0;  ///< 0: key absent
    bool gso_tcpv4 = true;
    bool no_csum_offload = false;  ///< write feature-no-csum-offload=1
    bool rx_copy = true;           ///< false: remove feature-rx-copy after InitWait
};

class FakeNetback final : public FakeBackend {
public:
    /// What the backend does wrong next.
    enum class Fault {
        none,
        bad_id,          ///< tx: an id never used; rx: the id of another slot
        bad_status,      ///< a status that is neither a length nor NETIF_RSP_* (7 / -7)
        status_error,    ///< NETIF_RSP_ERROR
        status_dropped,  ///< NETIF_RSP_DROPPED
        bad_length,      ///< rx: offset 100, length 4090 (past the page)
        zero_length,     ///< rx: a frame of 0 bytes
        too_many_slots,  ///< rx: the frame spread over 30 slots of 8 bytes
        endless_frame,   ///< rx: every posted buffer gets 8 bytes and NETRXF_more_data
        extra_info,      ///< rx: a well-formed TCPv4 GSO extra-info, whether asked for or not
        extra_unknown,   ///< rx: an extra-info of a type io/netif.h does not define
        gso_zero_size,   ///< rx: a TCPv4 GSO extra-info with size 0
        gso_tcpv6,       ///< rx: a GSO extra-info of type TCPv6 (never offered)
        gso_twice,       ///< rx: two GSO extra-infos (the first with XEN_NETIF_EXTRA_FLAG_MORE)
        gso_late,        ///< rx: a GSO extra-info after the frame's second response, not its first
        null_status,     ///< tx: status NETIF_RSP_NULL, as if answering an extra-info
        duplicate,       ///< tx: the response repeats the previous id (and the real one never comes)
        rsp_prod_jump,   ///< rsp_prod moves 3 ring sizes past the responses
    };

    struct Frame {
        std::vector<std::byte> data;
        std::uint16_t flags;        ///< the first request's NETTXF_*
        std::size_t slots;          ///< data requests (extra-info slots not counted)
        std::uint16_t gso_size = 0; ///< from its GSO extra-info; 0 without one
    };

    static constexpr const char* vif_front = "device/vif/0";
    static constexpr const char* vif_back = "/local/domain/0/backend/vif/7/0";

    FakeNetback(FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants);

    /// The toolstack's nodes (frontend and backend directories, mac) and our features.
    void create(const BackendFeatures& f = {}, const char* mac = "00:16:3e:12:34:56");

    /// The data path alone: tx requests, rx frames, responses. Allocates nothing (unless
    /// record_tx), touches no xenstore.
    void data_step() override;

    // ---- data
    /// Queue a frame for the guest, sent as soon as it has posted enough rx buffers.
    void inject(std::span<const std::byte> frame, std::uint16_t flags = 0);
    /// Queue a TCP/IPv4 GSO super-segment as netback sends one: the first response with
    /// NETRXF_extra_info (and `flags`), the GSO extra-info in the next slot, then the data
    /// filling whole pages. Fails the test if the frontend did not write feature-gso-tcpv4.
    void inject_gso(std::span<const std::byte> frame, std::uint16_t gso_size,
                    std::uint16_t flags = NETRXF_csum_blank | NETRXF_data_validated);
    std::size_t rx_queued() const { return rx_count_; }
    /// rx requests the guest has posted and we have not used.
    std::size_t rx_posted() const;
    std::vector<Frame>& tx_frames() { return tx_frames_; }
    bool record_tx = true;
    std::uint64_t tx_frames_seen = 0, tx_bytes_seen = 0, rx_frames_sent = 0;
    std::uint64_t tx_gso_frames_seen = 0, tx_null_responses = 0;
    std::uint32_t tx_sum = 0;  ///< sum of every transmitted byte (cheap content check)
    /// The page (and offset) the first slot of the last rx frame went to.
    std::byte* last_rx_data = nullptr;
    grant_ref_t last_rx_ref = 0;

    // ---- knobs
    /// Misbehave on the next `times` tx responses, after letting `after` through.
    void misbehave_tx(Fault f, int times = 1, int after = 0) {
        tx_fault_ = f;
        tx_fault_times_ = times;
        tx_fault_after_ = after;
    }
    void misbehave_rx(Fault f, int times = 1) {
        rx_fault_ = f;
        rx_fault_times_ = times;
    }
    bool hold_tx = false;   ///< keep tx responses back until release_tx()
    /// Answer the first `n` held ring slots (all by default), in request order.
    void release_tx(std::size_t n = SIZE_MAX);
    std::size_t tx_held() const { return held_count_; }
    std::uint16_t rx_offset = 0;    ///< where in the page rx data starts
    std::size_t rx_chunk = 4096;    ///< at most this many bytes per rx slot
    std::uint16_t rx_flags = 0;     ///< NETRXF_* added to every frame's first slot
    bool keep_rings_mapped = false; ///< never unmap the rings (the guest's revoke finds them busy)
    bool lose_rx_notify = false;    ///< push rx responses but never fire the rx event (a lost event)
    bool okay_for_null = false;     ///< answer tx extra-info slots with NETIF_RSP_OKAY and the last id, not NULL
    /// Map each rx page it fills (as a hostile backend may, instead of a grant copy) and keep it
    /// mapped until the connection ends: the guest's end of access to it fails meanwhile.
    bool map_rx_pages = false;
    bool keep_rx_mapped = false;  ///< ... and across connections too, until let_go()
    /// Unmap every rx page and ring kept mapped (the backend lets go at last).
    void let_go();
    /// Write `b` over the first byte of the last rx frame through the mapping it kept (the late
    /// write of the XSA-392 class); false if that page is no longer mapped.
    bool late_write(std::byte b);
    /// Publish a tx rsp_prod 3 ring sizes ahead without an event: the guest finds it the next
    /// time it looks (e.g. inside transmit(), when the ring is full).
    void jump_tx_silently();
    std::size_t rx_pages_mapped() const { return rx_mapped_.size(); }

    // ---- for a fuzz target that plays the data path itself (the xenbus column stays ours)
    /// data_step() does nothing: the rings are answered by someone else. Set before create():
    /// the data path's buffers are then never allocated.
    bool passive = false;
    netif_tx_back_ring_t& tx_back() { return tx_; }
    netif_rx_back_ring_t& rx_back() { return rx_; }
    FakeChannel* tx_channel() { return mapped_ ? tx_ch_ : nullptr; }
    FakeChannel* rx_channel() { return mapped_ ? rx_ch_ : nullptr; }
    /// The page behind a reference the frontend gave us (a violation if it is not granted so).
    std::byte* granted_page(grant_ref_t ref, bool write) { return grant_page(ref, write); }
    /// Map a granted rx page and keep it mapped, as map_rx_pages does.
    void map_page(grant_ref_t ref) {
        mark_mapped(ref);
        rx_mapped_.push_back(ref);
    }

    // ---- state
    std::uint32_t tx_port() const { return tx_ch_ ? tx_ch_->port : 0; }
    std::uint32_t rx_port() const { return rx_ch_ ? rx_ch_->port : 0; }

private:
    void map() override;
    void unmap() override;
    void after_xenbus() override;
    void check_notify(bool armed, RING_IDX seen, RING_IDX event, RING_IDX prod, FakeChannel* ch, const char* ring);
    void tx_data();
    void rx_data();
    void emit_tx(std::uint16_t id, std::int16_t status);
    /// The answer to a tx extra-info slot: NETIF_RSP_NULL, nothing else written.
    void emit_null();
    /// Check a tx extra-info of the frame whose first request is `first`; `gso_size` takes
    /// the GSO size (a second GSO extra is a violation).
    void check_tx_extra(const netif_extra_info_t& extra, const netif_tx_request_t& first, std::uint16_t& gso_size);
    Fault take_tx_fault();
    Fault take_rx_fault();
    void jump(RING_IDX* rsp_prod);

    BackendFeatures features_;

    bool jumped_ = false;  // rsp_prod was thrown off: the rings are dead until the next connection
    bool front_gso_ = false;  // the frontend wrote feature-gso-tcpv4 = 1 for this connection
    grant_ref_t tx_ring_ref_ = 0, rx_ring_ref_ = 0;
    netif_tx_back_ring_t tx_{};
    netif_rx_back_ring_t rx_{};
    FakeChannel* tx_ch_ = nullptr;
    FakeChannel* rx_ch_ = nullptr;

    // The notification rule: after going idle on a ring we armed req_event; any request pushed
    // past it must come with a notify.
    bool tx_armed_ = false, rx_armed_ = false;
    RING_IDX tx_seen_ = 0, rx_seen_ = 0;

    std::vector<grant_ref_t> rx_mapped_;  // rx pages mapped (map_rx_pages), not yet let go of
    std::bitset<65536> tx_outstanding_;  // ids of tx requests not yet answered
    std::vector<Frame> tx_frames_;
    std::vector<std::byte> tx_buf_;
    struct Held {
        std::uint16_t id;
        std::int16_t status;  ///< NETIF_RSP_NULL: the answer to an extra-info slot
    };
    std::array<Held, 512> held_{};
    std::size_t held_count_ = 0;
    std::uint16_t last_tx_id_ = 0;

    static constexpr std::size_t rx_queue_size = 16;
    struct RxFrame {
        std::vector<std::byte> data;
        std::uint16_t flags = 0;
        std::uint16_t gso_size = 0;  ///< inject_gso: a GSO extra-info goes with it
    };
    std::array<RxFrame, rx_queue_size> rx_queue_;
    std::size_t rx_head_ = 0, rx_count_ = 0;

    Fault tx_fault_ = Fault::none, rx_fault_ = Fault::none;
    int tx_fault_times_ = 0, rx_fault_times_ = 0;
    int tx_fault_after_ = 0;
};

}  // namespace keel::test
