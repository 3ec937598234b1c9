// Netfront's receive path: parse and validate rx responses (GSO extra-info included), hand
// frames up without a copy (RxBuffer), and keep the rx ring stocked with the pages that come
// back.
#include <utility>

#include "keel/netfront/netfront.h"
#include "keel/log.h"
#include "keel/panic.h"

namespace keel::netfront {

namespace {

// io/netif.h: XEN_NETIF_NR_SLOTS_MIN (18) is what a frame may take; a frame is followed by at
// most one extra-info slot of each type (XEN_NETIF_EXTRA_TYPE_MAX - 1 of them).
constexpr RING_IDX max_data_slots = XEN_NETIF_NR_SLOTS_MIN;
constexpr RING_IDX max_frame_slots = max_data_slots + XEN_NETIF_EXTRA_TYPE_MAX - 1;

}  // namespace

// ---- RxBuffer --------------------------------------------------------------------------------

RxBuffer::RxBuffer(RxBuffer&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), head_(o.head_), segments_(o.segments_), size_(o.size_),
      flags_(o.flags_) {}

RxBuffer& RxBuffer::operator=(RxBuffer&& o) noexcept {
    if (this != &o) {
        reset();
        owner_ = std::exchange(o.owner_, nullptr);
        head_ = o.head_;
        segments_ = o.segments_;
        size_ = o.size_;
        flags_ = o.flags_;
    }
    return *this;
}

std::span<std::byte> RxBuffer::segment(std::size_t i) const {
    KASSERT(owner_ != nullptr && i < segments_);
    std::uint16_t p = head_;
    while (i-- > 0) p = owner_->rx_[p].next;
    const auto& page = owner_->rx_[p];
    return {page.page + page.offset, page.length};
}

void RxBuffer::reset() {
    if (owner_ == nullptr) return;
    Netfront* owner = std::exchange(owner_, nullptr);
    std::uint16_t p = head_;
    for (std::uint16_t k = 0; k < segments_; ++k) {
        const std::uint16_t next = owner->rx_[p].next;
        owner->release_rx(p);
        p = next;
    }
    if (!owner->rx_polling_) owner->refill_rx();
}

// ---- the ring --------------------------------------------------------------------------------

void Netfront::on_rx_event() { poll_rx(); }

void Netfront::check_rx() {
    if (!live() || rx_polling_) return;
    const char* name = dev_.nodename().data();
    const Result<RING_IDX> avail = rx_ring_.unconsumed();
    const RING_IDX before = rx_ring_.rsp_cons();
    // Responses that were already published at the last check and are still unconsumed waited
    // a whole period: their event never came (a bad rsp_prod is poll_rx's to report).
    const auto behind = static_cast<RING_IDX>(rx_watch_prod_ - before);
    if (!avail || (behind > 0 && behind <= RxRing::size)) {
        poll_rx();
        if (live() && rx_ring_.rsp_cons() != before) {
            ++stats_.rx_missed_events;
            if (!rx_watch_logged_) {
                rx_watch_logged_ = true;
                KLOG_WARN("netfront: %s: %u rx responses waited without an event; polled (counted from now on)",
                          name, static_cast<unsigned>(rx_ring_.rsp_cons() - before));
            }
        }
    }
    if (!live()) return;
    if (rx_ring_.outstanding() == 0) {
        ++stats_.rx_ring_empty;
        if (!rx_watch_logged_) {
            rx_watch_logged_ = true;
            KLOG_WARN("netfront: %s: no rx buffer posted: %u with the stack, %u free (counted from now on)", name,
                      static_cast<unsigned>(rx_with_stack_), static_cast<unsigned>(rx_free_count_));
        }
    }
    const Result<RING_IDX> now = rx_ring_.unconsumed();
    rx_watch_prod_ = rx_ring_.rsp_cons() + (now ? *now : 0);
}

void Netfront::poll_rx() {
    if (!live()) return;
    rx_polling_ = true;
    while (live()) {
        const Result<RING_IDX> avail = rx_ring_.unconsumed();
        if (!avail) {
            ++stats_.rx.ring_overrun;
            request_reset("rx rsp_prod beyond the requests made");
            break;
        }
        RING_IDX left = *avail;
        while (live() && left > 0) {
            const RING_IDX used = take_rx_frame(left);
            if (used == 0) break;  // the rest of the frame is not there yet
            left -= used;
        }
        // io/ring.h, RING_FINAL_CHECK_FOR_RESPONSES, asking for the event after the responses
        // of an incomplete frame we leave on the ring.
        if (!live() || !rx_ring_.final_check(left)) break;
    }
    rx_polling_ = false;
    refill_rx();
}

RING_IDX Netfront::take_rx_frame(RING_IDX avail) {
    if (rx_skipping_) {
        // The tail of a frame that ran past max_frame_slots: drop through its last fragment.
        RING_IDX i = 0;
        while (i < avail) {
            const auto rsp = rx_ring_.response(i++);
            if (!(rsp.flags & NETRXF_more_data)) {
                rx_skipping_ = false;
                break;
            }
        }
        drop_rx_slots(i);
        return i;
    }

    // Pass 1: find the frame's slots and validate each one, on copies of the responses.
    struct Slot {
        bool data;
        std::uint16_t offset, length;
    };
    Slot slots[max_frame_slots];
    Fault fault = Fault::none;
    auto note = [&fault](Fault f) {
        if (fault == Fault::none) fault = f;
    };
    RxFlags flags;
    std::uint32_t total = 0;
    RING_IDX i = 0, data_slots = 0;
    bool more = true, extra_next = false;
    while (more || extra_next) {
        if (i == max_frame_slots || (data_slots == max_data_slots && more && !extra_next)) {
            // io/netif.h: a frame takes at most XEN_NETIF_NR_SLOTS_MIN slots (+ extras).
            count_fault(stats_.rx, Fault::too_many_slots);
            protocol_error();
            rx_skipping_ = true;
            drop_rx_slots(i);
            return i;
        }
        if (i == avail) {
            // Wait for the rest, unless it can never come: every posted buffer is already in
            // this frame and none is left to post.
            if (avail != rx_ring_.outstanding() || rx_free_count_ > 0) return 0;
            count_fault(stats_.rx, Fault::too_many_slots);
            protocol_error();
            rx_skipping_ = true;
            drop_rx_slots(i);
            return i;
        }
        const RING_IDX idx = rx_ring_.rsp_cons() + i;
        if (extra_next) {
            // io/netif.h, "Extra Info": it overlays the response in the slot of a request we
            // made, so that request's page is simply unused.
            const auto extra = rx_ring_.response_as<netif_extra_info_t>(i);
            slots[i++] = {false, 0, 0};
            // GSO is the only extra we take: once per frame, right after its first response
            // (extras follow "fragment 1" only), and only if we wrote feature-gso-tcpv4.
            // io/netif.h, XEN_NETIF_EXTRA_TYPE_GSO: "size: Maximum payload size of each
            // segment" -- 0 cannot be; "type: XEN_NETIF_GSO_TYPE_*" -- TCPV4, the one we
            // offered. Its features (XEN_NETIF_GSO_FEAT_*) need nothing from us. MCAST_* go the
            // other way; HASH needs a control ring we lack.
            if (features_.rx_gso_tcpv4 && data_slots == 1 && flags.gso_size == 0 &&
                extra.type == XEN_NETIF_EXTRA_TYPE_GSO && extra.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4 &&
                extra.u.gso.size > 0) {
                flags.gso_size = extra.u.gso.size;
            } else {
                note(Fault::bad_extra);
            }
            extra_next = (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE) != 0;
            continue;
        }
        const netif_rx_response_t rsp = rx_ring_.response(i);
        slots[i++] = {true, rsp.offset, 0};
        ++data_slots;
        more = (rsp.flags & NETRXF_more_data) != 0;
        extra_next = (rsp.flags & NETRXF_extra_info) != 0;
        if (data_slots == 1) {
            flags.data_validated = (rsp.flags & NETRXF_data_validated) != 0;
            flags.checksum_blank = (rsp.flags & NETRXF_csum_blank) != 0;
        }
        // io/netif.h: "Historically ... responses always appear in the same ring slot as their
        // corresponding request": our request id is the slot, so the id must match it.
        if (rsp.id != rx_ring_.slot(idx)) {
            note(Fault::bad_id);
            continue;
        }
        // io/netif.h: "status: -ve: NETIF_RSP_*; +ve: Rx'ed pkt size".
        if (rsp.status < 0) {
            note(rsp.status == NETIF_RSP_ERROR     ? Fault::backend_error
                 : rsp.status == NETIF_RSP_DROPPED ? Fault::backend_dropped
                                                   : Fault::bad_status);
            continue;
        }
        if (static_cast<std::uint32_t>(rsp.offset) + static_cast<std::uint16_t>(rsp.status) > page_size) {
            note(Fault::bad_length);
            continue;
        }
        slots[i - 1].length = static_cast<std::uint16_t>(rsp.status);
        total += static_cast<std::uint16_t>(rsp.status);
    }
    if (total == 0) note(Fault::bad_length);

    if (fault != Fault::none) {
        count_fault(stats_.rx, fault);
        // NETIF_RSP_ERROR / _DROPPED are well-formed answers; everything else broke the protocol.
        if (fault == Fault::backend_error || fault == Fault::backend_dropped) {
            good_response();
        } else {
            protocol_error();
        }
        drop_rx_slots(i);
        return i;
    }

    // Pass 2: the backend's access to every page of the frame ends before anyone reads it (the
    // XSA-392 class: the data must not change under the parser). A page it still maps is held
    // and the device reset: nothing of the frame goes up.
    bool mapped = false;
    for (RING_IDX k = 0; k < i; ++k) {
        if (!end_rx_access(rx_posted_[rx_ring_.slot(rx_ring_.rsp_cons() + k)])) mapped = true;
    }
    if (mapped) {
        count_fault(stats_.rx, Fault::still_mapped);
        drop_rx_slots(i);
        request_reset("the backend still maps an rx page it answered");
        return i;
    }

    // Pass 3: the data pages become the frame, in order; extra-info slots' pages go back.
    std::uint16_t head = 0, tail = 0, segments = 0;
    for (RING_IDX k = 0; k < i; ++k) {
        const std::uint16_t p = rx_posted_[rx_ring_.slot(rx_ring_.rsp_cons() + k)];
        RxPage& page = rx_[p];
        KASSERT(page.state == RxState::posted);
        if (!slots[k].data) {
            free_rx_page(p);
            continue;
        }
        page.state = RxState::with_stack;
        page.offset = slots[k].offset;
        page.length = slots[k].length;
        ++rx_with_stack_;
        if (segments++ == 0) {
            head = p;
        } else {
            rx_[tail].next = p;
        }
        tail = p;
    }
    rx_ring_.consume(i);
    good_response();
    deliver(RxBuffer(this, head, segments, total, flags));
    return i;
}

void Netfront::drop_rx_slots(RING_IDX n) {
    bool mapped = false;
    for (RING_IDX k = 0; k < n; ++k) {
        const std::uint16_t p = rx_posted_[rx_ring_.slot(rx_ring_.rsp_cons() + k)];
        if (rx_[p].state == RxState::held) continue;  // take_rx_frame found it still mapped
        KASSERT(rx_[p].state == RxState::posted);
        if (end_rx_access(p)) {
            free_rx_page(p);
        } else {
            mapped = true;
        }
    }
    rx_ring_.consume(n);
    if (mapped) {
        ++stats_.rx.still_mapped;
        request_reset("the backend still maps an rx page it answered");
    }
}

bool Netfront::end_rx_access(std::uint16_t i) {
    RxPage& p = rx_[i];
    if (p.state != RxState::posted || !p.grant.valid()) return p.state != RxState::held;
    if (p.grant.revoke()) return true;
    // grant_table.h: GTF_reading/GTF_writing still set -- the backend maps the page (a copying
    // backend never does past its copy). Keep the grant; reclaim_held() retries it later.
    p.state = RxState::held;
    return false;
}

void Netfront::deliver(RxBuffer frame) {
    if (!on_receive_) {
        ++stats_.rx.no_handler;
        ++stats_.rx.dropped;
        return;  // `frame` gives its pages back
    }
    ++stats_.rx.packets;
    stats_.rx.bytes += frame.size();
    if (frame.flags().gso_size > 0) ++stats_.rx.gso;
    // Run a moved-out copy, so the handler may replace or clear itself.
    const std::uint32_t generation = receive_generation_;
    auto handler = std::move(on_receive_);
    handler(std::move(frame));
    if (receive_generation_ == generation) on_receive_ = std::move(handler);
}

void Netfront::set_receive_handler(Function<void(RxBuffer)> handler) {
    on_receive_ = std::move(handler);
    ++receive_generation_;
}

// ---- the pool --------------------------------------------------------------------------------

void Netfront::free_rx_page(std::uint16_t i) {
    rx_[i].state = RxState::free;
    rx_free_[rx_free_count_++] = i;
}

void Netfront::release_rx(std::uint16_t i) {
    RxPage& p = rx_[i];
    KASSERT(p.state == RxState::with_stack);
    --rx_with_stack_;
    free_rx_page(i);
    if (rx_with_stack_ == 0 && retired()) free_pools();  // the pool waited for this buffer
}

void Netfront::refill_rx() {
    // After a reset request the rings are left alone until the teardown.
    if (live()) post_rx();
}

void Netfront::post_rx() {
    bool posted = false;
    while (rx_free_count_ > 0 && rx_ring_.free_slots() > 0) {
        const std::uint16_t p = rx_free_[rx_free_count_ - 1];
        // Granted for as long as it is posted: end_rx_access() ends it when it comes back.
        auto g = xen::Grant::create(grants_, dev_.backend_id(), platform_.gfn(rx_[p].page), false);
        if (!g) break;  // the grant table is full: post the rest when a page comes back
        rx_[p].grant = std::move(*g);
        --rx_free_count_;
        const RING_IDX idx = rx_ring_.req_prod_pvt();
        rx_[p].state = RxState::posted;
        rx_posted_[rx_ring_.slot(idx)] = p;
        netif_rx_request_t req{};
        req.id = static_cast<std::uint16_t>(rx_ring_.slot(idx));  // see take_rx_frame: id = slot
        req.gref = rx_[p].grant.ref();
        rx_ring_.put(req);
        posted = true;
    }
    // io/netif.h: notifications "should be conditional on the appropriate req_event"
    // (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY); before go_live() the backend is not listening.
    if (posted && rx_ring_.push() && live()) rx_channel_->notify();
}

}  // namespace keel::netfront
