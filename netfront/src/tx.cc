// Netfront's transmit path: copy frames into pre-granted pages, queue one request per page
// (plus a GSO extra-info slot for a super-segment), and take the responses back (validated, by
// id; NETIF_RSP_NULL for the extra-info slots).
#include <algorithm>
#include <cstring>

#include "keel/netfront/netfront.h"
#include "keel/panic.h"

namespace keel::netfront {

namespace {
constexpr std::size_t ethernet_header = 14;
// io/netif.h: a frame may take XEN_NETIF_NR_SLOTS_MIN data slots; a GSO frame of
// max_gso_frame bytes from offset 0 takes 16 pages.
static_assert((Netfront::max_gso_frame + page_size - 1) / page_size <= XEN_NETIF_NR_SLOTS_MIN);
}  // namespace

bool Netfront::tx_room(std::size_t pages, std::size_t ring_slots) const {
    return tx_free_count_ >= pages && tx_ring_.free_slots() >= ring_slots;
}

Result<void> Netfront::transmit(std::span<const std::span<const std::byte>> fragments, TxFlags flags,
                                std::uint16_t gso_size) {
    if (!live()) return Error::closed;
    const bool blank = flags == TxFlags::checksum_blank;
    const bool gso = gso_size > 0;
    if (gso) {
        // The backend segments the frame and fills in each segment's checksum: it must be told
        // the checksum is blank (NETTXF_csum_blank), and have offered all it takes.
        if (!blank) return Error::invalid_argument;
        if (!features_.tx_gso_tcpv4) return Error::not_supported;
    }
    std::size_t total = 0;
    for (const auto& f : fragments) total += f.size();
    if (total < ethernet_header || total > (gso ? max_gso_frame : max_frame())) return Error::invalid_argument;
    const std::size_t slots = (total + page_size - 1) / page_size;
    // Without feature-sg the backend takes single-slot frames only; and a frame needing more
    // pages than the pool has could never go.
    if (slots > 1 && !features_.sg) return Error::invalid_argument;
    if (slots > options_.tx_buffers) return Error::invalid_argument;
    if (blank && !features_.tx_checksum_offload) return Error::not_supported;
    // io/netif.h, "Extra Info": the GSO extra-info takes a ring slot of its own (no page, no id).
    const std::size_t ring_slots = slots + (gso ? 1 : 0);

    if (!tx_room(slots, ring_slots)) {
        reap_tx();
        if (!live()) return Error::closed;
        if (!tx_room(slots, ring_slots)) {
            // Blocked, then reap once more: now reap_tx() asks for an event on the next
            // response and looks again after asking, so room that comes later wakes us.
            const bool was_blocked = tx_blocked_;
            tx_blocked_ = true;
            reap_tx();
            if (!live()) return Error::closed;
            if (tx_room(slots, ring_slots)) {
                tx_blocked_ = was_blocked;  // an earlier refused sender still waits for poll_tx()
            } else {
                tx_blocked_pages_ = std::max(tx_blocked_pages_, slots);
                tx_blocked_ring_slots_ = std::max(tx_blocked_ring_slots_, ring_slots);
                ++stats_.tx_busy;
                return Error::again;
            }
        }
    }

    std::size_t frag = 0, frag_at = 0;  // where the copy stands in `fragments`
    std::uint16_t head = 0;
    for (std::size_t s = 0; s < slots; ++s) {
        const std::uint16_t p = pop_tx_free();
        TxPage& page = tx_[p];
        KASSERT(page.state == TxState::free && page.grant.valid());
        const std::size_t chunk = std::min(page_size, total - s * page_size);
        for (std::size_t done = 0; done < chunk;) {
            while (frag_at == fragments[frag].size()) {
                ++frag;
                frag_at = 0;
            }
            const std::size_t n = std::min(chunk - done, fragments[frag].size() - frag_at);
            std::memcpy(page.page + done, fragments[frag].data() + frag_at, n);
            done += n;
            frag_at += n;
        }
        if (s == 0) {
            head = p;
            page.pending = static_cast<std::uint16_t>(slots);
            page.bytes = static_cast<std::uint32_t>(total);
            page.answered = false;
            page.gso = gso;
            page.fault = Fault::none;
        }
        page.head = head;
        page.state = TxState::in_flight;

        // io/netif.h, "Guest transmit": fragment 1 carries the flags and the total size, each
        // further fragment its own size; all but the last have NETTXF_more_data. Our pages are
        // used from offset 0, so no request crosses a page.
        netif_tx_request_t req{};
        req.gref = page.grant.ref();
        req.offset = 0;
        req.id = p;
        req.size = static_cast<std::uint16_t>(s == 0 ? total : chunk);
        std::uint16_t f = s + 1 < slots ? NETTXF_more_data : 0;
        // io/netif.h: NETTXF_csum_blank "Protocol checksum field is blank", with
        // NETTXF_data_validated: the backend must not check it, only complete it.
        if (s == 0 && blank) f |= NETTXF_csum_blank | NETTXF_data_validated;
        // io/netif.h, "Guest transmit": "[Extra 1: netif_extra_info_t] - (only if fragment 1
        // flags include NETTXF_extra_info)", right after fragment 1.
        if (s == 0 && gso) f |= NETTXF_extra_info;
        req.flags = f;
        tx_ring_.put(req);
        if (s == 0 && gso) {
            // io/netif.h, XEN_NETIF_EXTRA_TYPE_GSO: "size: Maximum payload size of each
            // segment. For example, for TCP this is just the path MSS"; no further extra
            // (flags 0), no GSO features (ECN etc.). It overlays a request slot; the backend
            // answers it with NETIF_RSP_NULL.
            netif_extra_info_t extra{};
            extra.type = XEN_NETIF_EXTRA_TYPE_GSO;
            extra.flags = 0;
            extra.u.gso.size = gso_size;
            extra.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
            extra.u.gso.pad = 0;
            extra.u.gso.features = 0;
            tx_ring_.put(extra);
            ++tx_extras_in_flight_;
        }
    }
    tx_in_flight_ += static_cast<std::uint32_t>(slots);
    if (tx_ring_.push()) tx_channel_->notify();
    return {};
}

void Netfront::on_tx_event() { poll_tx(); }

void Netfront::poll_tx() {
    if (!live()) return;
    reap_tx();
    if (!live() || !tx_blocked_ || !tx_room(tx_blocked_pages_, tx_blocked_ring_slots_)) return;
    tx_blocked_ = false;
    tx_blocked_pages_ = tx_blocked_ring_slots_ = 0;
    if (!on_tx_ready_) return;
    const std::uint32_t generation = tx_ready_generation_;
    auto handler = std::move(on_tx_ready_);
    handler();
    if (tx_ready_generation_ == generation) on_tx_ready_ = std::move(handler);
}

void Netfront::reap_tx(bool judge) {
    for (;;) {
        const Result<RING_IDX> avail = tx_ring_.unconsumed();
        if (!avail) {
            if (!judge) return;  // at teardown: the reset that found it counted it already
            ++stats_.tx.ring_overrun;
            request_reset("tx rsp_prod beyond the requests made");
            return;
        }
        for (RING_IDX i = 0; i < *avail; ++i) {
            const netif_tx_response_t rsp = tx_ring_.response(i);
            if (rsp.status == NETIF_RSP_NULL) {
                // io/netif.h: NETIF_RSP_NULL, "No response: used for auxiliary requests (e.g.,
                // netif_extra_info_t)". It answers the slot of an extra-info we sent; it carries
                // no id (Linux's netback writes only the status, over our extra), so none is
                // looked at. One per extra sent; any other is a protocol error.
                if (tx_extras_in_flight_ > 0) {
                    --tx_extras_in_flight_;
                } else {
                    ++stats_.tx.bad_status;
                    if (judge) protocol_error();
                }
                continue;
            }
            const bool good = complete_tx_slot(rsp.id, rsp.status);
            if (!judge) continue;
            if (good) {
                good_response();
            } else {
                protocol_error();
            }
        }
        tx_ring_.consume(*avail);
        if (!live()) break;
        // An event per transmit response costs the backend a notification (a hypercall in
        // dom0) and us a wake-up, for pages nobody waits for. So one is asked for only while a
        // sender waits for room. Otherwise rsp_event stays where it was, behind rsp_prod, and
        // the backend's RING_PUSH_RESPONSES_AND_CHECK_NOTIFY (io/ring.h) finds no reason to
        // notify -- but for one stray event after a sender was served (rsp_event was left one
        // ahead) and one each time the indices wrap (modulo 2^32). Answered pages are taken
        // back by the next transmit that runs short, at every rx event (the channel handlers),
        // by the watchdog and by stats(). Not judged (teardown), good responses do not mark the
        // connection healthy: one whose only good answers were never taken back before it
        // closed counts as trouble to the supervisor (rare: it takes a send-only connection
        // closed within the watchdog's first period).
        const bool more = tx_blocked_ ? tx_ring_.final_check() : *avail > 0;
        if (!more) break;
    }
    // Every request has its response, yet pages are still in flight (or extra-info slots
    // unanswered): responses with a wrong id or status took their places. Those pages would
    // never come back, and the extra-info count would stay off.
    if (live() && tx_ring_.outstanding() == 0 && (tx_in_flight_ > 0 || tx_extras_in_flight_ > 0)) {
        request_reset("tx responses lost (answered under other ids or statuses)");
    }
}

bool Netfront::complete_tx_slot(std::uint16_t id, std::int16_t status) {
    // io/netif.h: "id: reflects id in transmit request" -- one of ours, in flight, once.
    if (id >= options_.tx_buffers || tx_[id].state != TxState::in_flight) {
        ++stats_.tx.bad_id;
        return false;
    }
    Fault fault = Fault::none;
    switch (status) {
    case NETIF_RSP_OKAY: break;
    case NETIF_RSP_ERROR: fault = Fault::backend_error; break;
    case NETIF_RSP_DROPPED: fault = Fault::backend_dropped; break;
    default: fault = Fault::bad_status; break;  // NETIF_RSP_NULL is reap_tx's
    }

    TxPage& page = tx_[id];
    const std::uint16_t head = page.head;
    TxPage& h = tx_[head];
    if (id == head && h.answered) {
        // A second response for a frame's first slot (its page stays in flight with the
        // frame's bookkeeping until the whole frame is answered).
        ++stats_.tx.bad_id;
        return false;
    }
    --tx_in_flight_;
    if (id == head) {
        h.answered = true;  // the head keeps the frame's bookkeeping: freed with the frame
    } else {
        page.state = TxState::free;
        push_tx_free(id);
    }
    if (fault != Fault::none && h.fault == Fault::none) h.fault = fault;
    if (--h.pending != 0) return fault != Fault::bad_status;
    if (h.fault == Fault::none) {
        ++stats_.tx.packets;
        stats_.tx.bytes += h.bytes;
        if (h.gso) ++stats_.tx.gso;
    } else {
        count_fault(stats_.tx, h.fault);
    }
    // Each slot of the frame answered exactly once, so the head has been too.
    h.state = TxState::free;
    push_tx_free(head);
    return fault != Fault::bad_status;
}

void Netfront::abort_tx() {
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) {
        TxPage& p = tx_[i];
        if (p.state != TxState::in_flight) continue;
        if (p.head == i) {
            ++stats_.tx.aborted;
            ++stats_.tx.dropped;
        }
        p.state = TxState::free;
    }
    tx_in_flight_ = 0;
    tx_extras_in_flight_ = 0;
}

void Netfront::set_tx_ready_handler(Function<void()> handler) {
    on_tx_ready_ = std::move(handler);
    ++tx_ready_generation_;
}

void Netfront::set_link_handler(Function<void(bool)> handler) { on_link_ = std::move(handler); }

// ---- the free list: FIFO, so an id comes back into use as late as possible -------------------

void Netfront::reset_tx_free_list() {
    tx_free_head_ = 0;
    tx_free_count_ = 0;
    for (std::uint16_t i = 0; i < options_.tx_buffers; ++i) {
        if (tx_[i].state == TxState::free && tx_[i].grant.valid()) push_tx_free(i);
    }
}

void Netfront::push_tx_free(std::uint16_t i) {
    tx_free_[(tx_free_head_ + tx_free_count_) % TxRing::size] = i;
    ++tx_free_count_;
}

std::uint16_t Netfront::pop_tx_free() {
    const std::uint16_t i = tx_free_[tx_free_head_];
    tx_free_head_ = static_cast<std::uint16_t>((tx_free_head_ + 1) % TxRing::size);
    --tx_free_count_;
    return i;
}

}  // namespace keel::netfront
