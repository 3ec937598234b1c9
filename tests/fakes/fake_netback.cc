// The fake netback: the backend's half of io/netif.h with Xen's ring macros, plus the checks it
// makes on the frontend.
#include "fakes/fake_netback.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace keel::test {

namespace {
constexpr std::size_t page = FakeBackend::page;

/// io/ring.h's RING_COPY_REQUEST does not compile as C++ (a volatile struct cannot be copied
/// by assignment); the same local copy with memcpy.
template <typename Ring, typename Req>
void copy_request(Ring* ring, RING_IDX idx, Req* out) {
    std::memcpy(out, RING_GET_REQUEST(ring, idx), sizeof *out);
}

}  // namespace

// ---- FakeNetback: xenbus ------------------------------------------------------------------------

FakeNetback::FakeNetback(FakeXenstored& d, TestPlatform& platform, std::span<grant_entry_v1_t> grants)
    : FakeBackend("netfront", d, platform, grants, vif_front, vif_back) {
    xb_.act_like_netback(true);
}

void FakeNetback::create(const BackendFeatures& f, const char* mac) {
    features_ = f;
    created_ = true;
    if (!passive) {  // the data path's buffers, so that it allocates nothing
        tx_buf_.reserve(70000);
        for (auto& q : rx_queue_) q.data.reserve(70000);
    }
    xb_.create_nodes();
    d_.set(front_ + "/mac", mac);
    d_.set(front_ + "/handle", "0");
    const std::string& b = back_;
    if (f.sg) d_.set(b + "/feature-sg", "1");
    if (f.gso_tcpv4) d_.set(b + "/feature-gso-tcpv4", "1");
    d_.set(b + "/feature-split-event-channels", f.split_event_channels ? "1" : "0");
    if (f.multi_queue_max > 0) d_.set(b + "/multi-queue-max-queues", std::to_string(f.multi_queue_max));
    if (f.no_csum_offload) d_.set(b + "/feature-no-csum-offload", "1");
}

void FakeNetback::after_xenbus() {
    if (!features_.rx_copy && d_.get(back_ + "/feature-rx-copy")) d_.remove(back_ + "/feature-rx-copy");
}

void FakeNetback::map() {
    if (key("request-rx-copy") != "1") violation("request-rx-copy is not 1");
    if (key("feature-rx-notify") != "1") violation("feature-rx-notify is not 1");
    // io/netif.h: feature-gso-tcpv4 is a flag; netback sends GSO frames only when it is there.
    const auto gso = key("feature-gso-tcpv4");
    if (gso && *gso != "1" && *gso != "0") violation("feature-gso-tcpv4 is \"" + *gso + "\"");
    if (key("feature-gso-tcpv6")) violation("feature-gso-tcpv6 written (netfront has no IPv6 offloads)");
    front_gso_ = gso == "1";
    const auto tx_ref = number(key("tx-ring-ref"));
    const auto rx_ref = number(key("rx-ring-ref"));
    if (!tx_ref || !rx_ref) return violation("ring references missing or malformed");
    std::optional<unsigned long long> tx_port, rx_port;
    if (key("event-channel-tx")) {
        if (!features_.split_event_channels) violation("split event channels used without the feature");
        if (key("event-channel")) violation("both event-channel and event-channel-tx written");
        tx_port = number(key("event-channel-tx"));
        rx_port = number(key("event-channel-rx"));
    } else {
        tx_port = rx_port = number(key("event-channel"));
    }
    if (!tx_port || !rx_port) return violation("event channels missing or malformed");
    tx_ch_ = platform_.channel(static_cast<std::uint32_t>(*tx_port));
    rx_ch_ = platform_.channel(static_cast<std::uint32_t>(*rx_port));
    if (!tx_ch_ || !rx_ch_) return violation("event channel not open");

    // Xen maps ring pages for as long as the backend holds them: the entries show it in use.
    std::byte* tx_page = grant_page(static_cast<grant_ref_t>(*tx_ref), true);
    std::byte* rx_page = grant_page(static_cast<grant_ref_t>(*rx_ref), true);
    if (!tx_page || !rx_page) return;
    tx_ring_ref_ = static_cast<grant_ref_t>(*tx_ref);
    rx_ring_ref_ = static_cast<grant_ref_t>(*rx_ref);
    mark_mapped(tx_ring_ref_);
    mark_mapped(rx_ring_ref_);
    auto* tx_s = reinterpret_cast<netif_tx_sring_t*>(tx_page);
    auto* rx_s = reinterpret_cast<netif_rx_sring_t*>(rx_page);
    // The frontend initialised the shared rings (io/ring.h, SHARED_RING_INIT) before publishing.
    if (tx_s->rsp_prod != 0 || tx_s->rsp_event != 1 || tx_s->req_prod != 0) {
        violation("tx ring not initialised");
    }
    if (rx_s->rsp_prod != 0 || rx_s->rsp_event != 1) violation("rx ring not initialised");
    BACK_RING_INIT(&tx_, tx_s, page);
    BACK_RING_INIT(&rx_, rx_s, page);
    tx_armed_ = rx_armed_ = false;
    jumped_ = false;
    tx_outstanding_.reset();
    held_count_ = 0;
    connected_now();
}

void FakeNetback::unmap() {
    mapped_ = false;
    for (grant_ref_t r : {tx_ring_ref_, rx_ring_ref_}) {
        if (keep_rings_mapped) {
            keep(r);
            rx_mapped_.push_back(r);  // let_go() lets go of them too
        } else {
            mark_unmapped(r);
        }
    }
    tx_ch_ = rx_ch_ = nullptr;
    held_count_ = 0;
    if (keep_rx_mapped || keep_rings_mapped) {
        for (grant_ref_t r : rx_mapped_) keep(r);
    } else {
        let_go();
    }
}

void FakeNetback::let_go() {
    for (grant_ref_t r : rx_mapped_) mark_unmapped(r);
    rx_mapped_.clear();
}

bool FakeNetback::late_write(std::byte b) {
    if (!last_rx_data || std::find(rx_mapped_.begin(), rx_mapped_.end(), last_rx_ref) == rx_mapped_.end()) {
        return false;
    }
    *last_rx_data = b;
    return true;
}

void FakeNetback::jump_tx_silently() {
    if (mapped_ && !jumped_) jump(&tx_.sring->rsp_prod);
}

// ---- FakeNetback: the data path -----------------------------------------------------------------

void FakeNetback::data_step() {
    if (!mapped_ || jumped_ || passive) return;
    // The notification rule (io/ring.h, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY): checked for both
    // rings before either is re-armed, since one channel may serve both.
    check_notify(tx_armed_, tx_seen_, tx_.sring->req_event, tx_.sring->req_prod, tx_ch_, "tx");
    check_notify(rx_armed_, rx_seen_, rx_.sring->req_event, rx_.sring->req_prod, rx_ch_, "rx");
    if (tx_.sring->req_prod != tx_seen_) tx_armed_ = false;  // checked; re-armed when idle again
    if (rx_.sring->req_prod != rx_seen_) rx_armed_ = false;
    tx_ch_->notified = false;
    rx_ch_->notified = false;
    tx_data();
    if (mapped_) rx_data();
}

void FakeNetback::check_notify(bool armed, RING_IDX seen, RING_IDX event, RING_IDX prod, FakeChannel* ch,
                               const char* ring) {
    if (!armed || prod == seen) return;
    if (static_cast<RING_IDX>(prod - event) < static_cast<RING_IDX>(prod - seen) && !ch->notified) {
        violation(std::string(ring) + " requests pushed past req_event without a notification");
    }
}

FakeNetback::Fault FakeNetback::take_tx_fault() {
    if (tx_fault_times_ == 0) return Fault::none;
    if (tx_fault_after_ > 0) {
        --tx_fault_after_;
        return Fault::none;
    }
    if (--tx_fault_times_ == 0) {
        const Fault f = tx_fault_;
        tx_fault_ = Fault::none;
        return f;
    }
    return tx_fault_;
}

FakeNetback::Fault FakeNetback::take_rx_fault() {
    if (rx_fault_times_ == 0) return Fault::none;
    if (--rx_fault_times_ == 0) {
        const Fault f = rx_fault_;
        rx_fault_ = Fault::none;
        return f;
    }
    return rx_fault_;
}

void FakeNetback::jump(RING_IDX* rsp_prod) {
    __atomic_store_n(rsp_prod, *rsp_prod + 3 * 256, __ATOMIC_RELEASE);
    jumped_ = true;
}

void FakeNetback::emit_tx(std::uint16_t id, std::int16_t status) {
    tx_outstanding_.reset(id);
    const Fault f = take_tx_fault();
    switch (f) {
    case Fault::bad_id: id = 0x7123; break;
    case Fault::bad_status: status = 7; break;
    case Fault::status_error: status = NETIF_RSP_ERROR; break;
    case Fault::status_dropped: status = NETIF_RSP_DROPPED; break;
    case Fault::duplicate: id = last_tx_id_; break;
    case Fault::null_status: status = NETIF_RSP_NULL; break;
    default: break;
    }
    netif_tx_response_t* rsp = RING_GET_RESPONSE(&tx_, tx_.rsp_prod_pvt);
    rsp->id = id;
    rsp->status = status;
    ++tx_.rsp_prod_pvt;
    last_tx_id_ = id;
    if (f == Fault::rsp_prod_jump) {
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&tx_, notify);
        (void)notify;  // the jump is signalled regardless
        jump(&tx_.sring->rsp_prod);
        tx_ch_->fire();
    }
}

void FakeNetback::emit_null() {
    // Linux's netback (make_tx_response) writes only `status = XEN_NETIF_RSP_NULL` in each slot
    // after the first request's response: the id keeps whatever the slot held -- here the
    // first bytes of the frontend's extra-info (type and flags).
    netif_tx_response_t* rsp = RING_GET_RESPONSE(&tx_, tx_.rsp_prod_pvt);
    rsp->status = NETIF_RSP_NULL;
    if (okay_for_null) {
        rsp->id = last_tx_id_;
        rsp->status = NETIF_RSP_OKAY;
    }
    ++tx_.rsp_prod_pvt;
    ++tx_null_responses;
}

void FakeNetback::release_tx(std::size_t count) {
    if (!mapped_ || jumped_) return;
    const std::size_t n = std::min(count, held_count_);
    std::array<Held, 512> held = held_;
    held_count_ -= n;
    std::copy(held.begin() + static_cast<std::ptrdiff_t>(n),
              held.begin() + static_cast<std::ptrdiff_t>(n + held_count_), held_.begin());
    for (std::size_t i = 0; i < n; ++i) {
        if (held[i].status == NETIF_RSP_NULL) {
            emit_null();
            continue;
        }
        emit_tx(held[i].id, held[i].status);
        if (jumped_) return;
    }
    push_responses(tx_, *tx_ch_);
}

void FakeNetback::tx_data() {
    bool pushed = false;
    for (;;) {
        const std::optional<RING_IDX> prod = requests_published(tx_, "tx ");
        if (!prod) {
            mapped_ = false;
            return;
        }
        while (tx_.req_cons != *prod) {
            // io/netif.h, "Guest transmit": fragment 1 carries the total size; extra-info slots
            // follow it while NETTXF_extra_info / XEN_NETIF_EXTRA_FLAG_MORE say so; more
            // fragments follow while NETTXF_more_data is set. The whole frame must be there.
            netif_tx_request_t reqs[XEN_NETIF_NR_SLOTS_MIN];
            RING_IDX n = 0, k = 0, extras = 0;  // ring slots, data requests, extra-info slots
            std::uint16_t gso_size = 0;
            bool more = true, extra_next = false;
            while ((more || extra_next) && tx_.req_cons + n != *prod) {
                if (extra_next) {
                    netif_extra_info_t extra;
                    std::memcpy(&extra, RING_GET_REQUEST(&tx_, tx_.req_cons + n), sizeof extra);
                    ++n;
                    ++extras;
                    check_tx_extra(extra, reqs[0], gso_size);
                    extra_next = (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE) != 0;
                    continue;
                }
                if (k == XEN_NETIF_NR_SLOTS_MIN) {
                    violation("a tx frame of more than XEN_NETIF_NR_SLOTS_MIN slots");
                    mapped_ = false;
                    return;
                }
                copy_request(&tx_, tx_.req_cons + n, &reqs[k]);
                ++n;
                const netif_tx_request_t& r = reqs[k++];
                if (r.flags & NETTXF_extra_info) {
                    if (k == 1) {
                        extra_next = true;
                    } else {
                        violation("NETTXF_extra_info on a tx request other than the frame's first");
                    }
                }
                more = (r.flags & NETTXF_more_data) != 0;
            }
            if (more || extra_next) {
                violation("a tx frame pushed in part (NETTXF_more_data or an extra-info due on the last request)");
                mapped_ = false;
                return;
            }
            if ((reqs[0].flags & NETTXF_extra_info) && gso_size == 0) {
                violation("a tx frame with extra-info but no GSO extra-info");
            }
            std::size_t rest = 0;
            for (RING_IDX j = 1; j < k; ++j) rest += reqs[j].size;
            if (reqs[0].size < rest) violation("tx frame size smaller than its fragments");
            if (k > 1 && !features_.sg) violation("multi-slot tx frame without feature-sg");
            tx_buf_.clear();
            for (RING_IDX j = 0; j < k; ++j) {
                const netif_tx_request_t& r = reqs[j];
                if (tx_outstanding_.test(r.id)) violation("tx request id " + std::to_string(r.id) + " reused while in flight");
                tx_outstanding_.set(r.id);
                const std::size_t size = j == 0 ? r.size - rest : r.size;
                if (r.offset + size > page) violation("tx request crosses its page");
                const grant_entry_v1_t e = grants_[std::min<std::size_t>(r.gref, grants_.size() - 1)];
                if (!(e.flags & GTF_readonly)) violation("tx page granted writable");
                std::byte* p = grant_page(r.gref, false);
                if (p && r.offset + size <= page) tx_buf_.insert(tx_buf_.end(), p + r.offset, p + r.offset + size);
            }
            tx_.req_cons += n;
            ++tx_frames_seen;
            if (gso_size > 0) ++tx_gso_frames_seen;
            tx_bytes_seen += tx_buf_.size();
            for (std::byte b : tx_buf_) tx_sum += static_cast<std::uint8_t>(b);
            if (record_tx) tx_frames_.push_back({tx_buf_, reqs[0].flags, k, gso_size});
            // As Linux's netback: the first request's response, then NETIF_RSP_NULL in the slot
            // of each extra-info, then the other requests' responses.
            for (RING_IDX j = 0; j < k; ++j) {
                const RING_IDX nulls = j == 0 ? extras : 0;
                if (hold_tx) {
                    if (held_count_ + 1 + nulls > held_.size()) {
                        violation("more tx requests held than the ring has");
                        continue;
                    }
                    held_[held_count_++] = {reqs[j].id, NETIF_RSP_OKAY};
                    for (RING_IDX x = 0; x < nulls; ++x) held_[held_count_++] = {0, NETIF_RSP_NULL};
                } else {
                    emit_tx(reqs[j].id, NETIF_RSP_OKAY);
                    if (jumped_) return;
                    for (RING_IDX x = 0; x < nulls; ++x) emit_null();
                    pushed = true;
                }
            }
            if (!mapped_) return;
        }
        int more;
        RING_FINAL_CHECK_FOR_REQUESTS(&tx_, more);
        if (!more) break;
    }
    tx_armed_ = true;
    tx_seen_ = tx_.req_cons;
    if (pushed) push_responses(tx_, *tx_ch_);
}

void FakeNetback::check_tx_extra(const netif_extra_info_t& extra, const netif_tx_request_t& first,
                                 std::uint16_t& gso_size) {
    // We offer GSO (feature-gso-tcpv4) only with BackendFeatures::gso_tcpv4; nothing else that
    // makes a frontend send extra-info (multicast control) is offered at all.
    if (!features_.gso_tcpv4) violation("tx extra-info while the backend offered no feature-gso-tcpv4");
    if (extra.type != XEN_NETIF_EXTRA_TYPE_GSO) {
        violation("tx extra-info of type " + std::to_string(extra.type));
        return;
    }
    if (gso_size != 0) violation("two GSO extra-infos in one tx frame");
    if (extra.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4) {
        violation("tx GSO type " + std::to_string(extra.u.gso.type) + " (only TCPv4 is offered)");
    }
    // Linux's netback: "GSO size must not be zero" (a fatal error for the vif).
    if (extra.u.gso.size == 0) violation("tx GSO extra-info with size 0");
    if (extra.u.gso.pad != 0 || extra.u.gso.features != 0) violation("tx GSO extra-info with pad or features set");
    if (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE) violation("tx extra-info chained beyond the GSO one");
    // The backend segments the frame and fills each segment's checksum: it must be blank.
    if (!(first.flags & NETTXF_csum_blank)) violation("tx GSO frame without NETTXF_csum_blank");
    gso_size = extra.u.gso.size == 0 ? 1 : extra.u.gso.size;
}

void FakeNetback::inject(std::span<const std::byte> frame, std::uint16_t flags) {
    ASSERT_LT(rx_count_, rx_queue_size) << "too many frames queued in the fake netback";
    RxFrame& f = rx_queue_[(rx_head_ + rx_count_++) % rx_queue_size];
    f.data.assign(frame.begin(), frame.end());
    f.flags = flags;
    f.gso_size = 0;
}

void FakeNetback::inject_gso(std::span<const std::byte> frame, std::uint16_t gso_size, std::uint16_t flags) {
    ASSERT_GT(gso_size, 0u);
    inject(frame, flags);
    rx_queue_[(rx_head_ + rx_count_ - 1) % rx_queue_size].gso_size = gso_size;
}

std::size_t FakeNetback::rx_posted() const {
    if (!mapped_) return 0;
    return rx_.sring->req_prod - rx_.req_cons;
}

void FakeNetback::rx_data() {
    const RING_IDX prod = __atomic_load_n(&rx_.sring->req_prod, __ATOMIC_ACQUIRE);
    if (RING_REQUEST_PROD_OVERFLOW(&rx_, prod)) {
        violation("rx req_prod " + std::to_string(prod) + " beyond the ring");
        mapped_ = false;
        return;
    }
    // Every posted request: a unique id and a unique writable page.
    {
        std::bitset<65536> ids;
        std::bitset<65536> refs;
        for (RING_IDX i = rx_.req_cons; i != prod; ++i) {
            netif_rx_request_t r;
            copy_request(&rx_, i, &r);
            if (ids.test(r.id)) violation("rx request id " + std::to_string(r.id) + " posted twice");
            if (refs.test(r.gref & 0xFFFF)) violation("rx page " + std::to_string(r.gref) + " posted twice");
            ids.set(r.id);
            refs.set(r.gref & 0xFFFF);
        }
    }
    bool pushed = false;
    while (rx_count_ > 0) {
        RxFrame& f = rx_queue_[rx_head_];
        if (f.gso_size > 0 && !front_gso_) {
            ADD_FAILURE() << "the test sent a GSO frame to a frontend that did not write feature-gso-tcpv4";
            rx_head_ = (rx_head_ + 1) % rx_queue_size;
            --rx_count_;
            continue;
        }
        const Fault fault = take_rx_fault();
        const std::size_t chunk = fault == Fault::too_many_slots ? 8 : fault == Fault::gso_late ? 200 : rx_chunk;
        const std::size_t len = fault == Fault::zero_length ? 0 : f.data.size();
        // Slots: the first holds min(chunk, page - offset) bytes, the rest min(chunk, page).
        const std::size_t first = std::min({chunk, page - rx_offset, len});
        const std::size_t data_slots =
            1 + (len > first ? (len - first + std::min(chunk, page) - 1) / std::min(chunk, page) : 0);
        // Extra-info slots, after data slot `extra_after` (netback: after the first).
        netif_extra_info_t extras[2]{};
        std::size_t extra_count = 0, extra_after = 0;
        auto gso_extra = [&](std::uint16_t size, std::uint8_t type) {
            netif_extra_info_t& e = extras[extra_count++];
            e.type = XEN_NETIF_EXTRA_TYPE_GSO;
            e.u.gso.size = size;
            e.u.gso.type = type;
        };
        switch (fault) {
        case Fault::extra_info: gso_extra(1448, XEN_NETIF_GSO_TYPE_TCPV4); break;
        case Fault::gso_zero_size: gso_extra(0, XEN_NETIF_GSO_TYPE_TCPV4); break;
        case Fault::gso_tcpv6: gso_extra(1448, XEN_NETIF_GSO_TYPE_TCPV6); break;
        case Fault::gso_twice:
            gso_extra(1448, XEN_NETIF_GSO_TYPE_TCPV4);
            gso_extra(1448, XEN_NETIF_GSO_TYPE_TCPV4);
            break;
        case Fault::gso_late:
            gso_extra(1448, XEN_NETIF_GSO_TYPE_TCPV4);
            extra_after = 1;
            break;
        case Fault::extra_unknown:
            extras[extra_count++].type = XEN_NETIF_EXTRA_TYPE_MAX;
            break;
        default:
            if (f.gso_size > 0) gso_extra(f.gso_size, XEN_NETIF_GSO_TYPE_TCPV4);
            break;
        }
        for (std::size_t x = 0; x + 1 < extra_count; ++x) extras[x].flags = XEN_NETIF_EXTRA_FLAG_MORE;
        const std::size_t slots = data_slots + extra_count;
        if (fault == Fault::endless_frame) {
            // Use up every posted buffer without ever finishing the frame.
            const RING_IDX posted = prod - rx_.req_cons;
            for (RING_IDX s = 0; s < posted; ++s) {
                netif_rx_request_t req;
                copy_request(&rx_, rx_.req_cons, &req);
                netif_rx_response_t* rsp = RING_GET_RESPONSE(&rx_, rx_.rsp_prod_pvt);
                ++rx_.req_cons;
                ++rx_.rsp_prod_pvt;
                std::byte* p = grant_page(req.gref, true);
                if (p) std::memset(p, 0xEE, 8);
                rsp->id = req.id;
                rsp->offset = 0;
                rsp->flags = NETRXF_more_data;
                rsp->status = 8;
            }
            rx_head_ = (rx_head_ + 1) % rx_queue_size;
            --rx_count_;
            pushed = posted > 0;
            continue;
        }
        if (prod - rx_.req_cons < slots) {
            // Out of buffers: ask to be told when more are posted (feature-rx-notify).
            rx_.sring->req_event = prod + 1;
            xen_mb();
            rx_armed_ = true;
            rx_seen_ = prod;
            if (fault != Fault::none) {  // try again with the same fault
                rx_fault_ = fault;
                ++rx_fault_times_;
            }
            break;
        }
        std::size_t done = 0, d = 0, x = 0;  // bytes sent, data slots sent, extra slots sent
        for (std::size_t s = 0; s < slots; ++s) {
            netif_rx_request_t req;
            copy_request(&rx_, rx_.req_cons, &req);
            // io/netif.h: the response goes in the slot of the request it consumed.
            netif_rx_response_t* rsp = RING_GET_RESPONSE(&rx_, rx_.rsp_prod_pvt);
            ++rx_.req_cons;
            ++rx_.rsp_prod_pvt;
            if (x < extra_count && d == extra_after + 1) {
                // io/netif.h, "Extra Info": it overlays the response; the request's page is
                // left unused.
                std::memcpy(rsp, &extras[x++], sizeof(netif_extra_info_t));
                continue;
            }
            const std::size_t offset = d == 0 ? rx_offset : 0;
            const std::size_t n = d == 0 ? first : std::min({chunk, page, len - done});
            std::byte* p = grant_page(req.gref, true);
            if (p && n > 0) std::memcpy(p + offset, f.data.data() + done, n);
            if (p && map_rx_pages) {
                mark_mapped(req.gref);
                rx_mapped_.push_back(req.gref);
            }
            if (d == 0) {
                last_rx_data = p ? p + offset : nullptr;
                last_rx_ref = req.gref;
            }
            done += n;
            std::uint16_t flags = 0;
            if (d == 0) flags |= f.flags | rx_flags;
            if (done < len) flags |= NETRXF_more_data;
            if (extra_count > 0 && d == extra_after) flags |= NETRXF_extra_info;
            rsp->id = req.id;
            rsp->offset = static_cast<std::uint16_t>(offset);
            rsp->flags = flags;
            rsp->status = static_cast<std::int16_t>(n);
            if (d == 0) {
                switch (fault) {
                case Fault::bad_id: rsp->id = static_cast<std::uint16_t>(req.id + 1); break;
                case Fault::bad_status: rsp->status = -7; break;
                case Fault::status_error: rsp->status = NETIF_RSP_ERROR; break;
                case Fault::status_dropped: rsp->status = NETIF_RSP_DROPPED; break;
                case Fault::bad_length:
                    rsp->offset = 100;
                    rsp->status = 4090;
                    break;
                default: break;
                }
            }
            ++d;
        }
        rx_head_ = (rx_head_ + 1) % rx_queue_size;
        --rx_count_;
        ++rx_frames_sent;
        pushed = true;
        if (fault == Fault::rsp_prod_jump) {
            int notify;
            RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&rx_, notify);
            (void)notify;
            jump(&rx_.sring->rsp_prod);
            rx_ch_->fire();
            return;
        }
    }
    if (pushed) {
        int notify;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&rx_, notify);
        if (notify && !lose_rx_notify) rx_ch_->fire();
    }
}

}  // namespace keel::test
