// TcpStream and TcpListener over lwIP's raw TCP API.
//
// A TcpConn is the connection as keel tracks it: the pcb (while lwIP has one), the received
// data not yet read (the pbufs lwIP handed over, possibly custom pbufs over the link's pages:
// read() copies straight out of them) and the operations waiting on it. lwIP's callbacks
// (recv, sent, err, connected, accept, poll) only record what happened and schedule the
// waiters' wakeups; the waiting awaiters then make progress from the loop. Before a pcb is
// closed or aborted by us, its arg and callbacks are cleared, so lwIP can never call into a
// connection that is gone.
#include "keel/net/tcp.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>

#include "keel/heap.h"
#include "keel/log.h"
#include "keel/panic.h"
#include "lwip_glue.h"
#include "budget.h"

extern "C" {
#include "keel_lwip_hooks.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/ip6.h"
}

namespace keel::net {
namespace detail {

namespace {
constexpr std::uint64_t deadline_after(std::uint64_t now, std::uint64_t timeout) {
    return timeout > ~0ull - now ? ~0ull : now + timeout;
}
constexpr u8_t poll_interval = 2;  // TCP coarse ticks (500 ms): wakes writers stuck on ERR_MEM

// Received data waits in a connection's queue until the service reads it; what it may hold of
// the link's buffers and of the heap is bounded (budget.h): a connection keeps at most
// conn_pinned_max pinned pbufs, beyond that its data is copied into its own heap buffers
// (coalesced, so tiny segments cost bytes, not pages). When the copies have no share of the
// heap left, the segment is refused (lwIP keeps that one and drops further data, which the
// peer sends again later): the connection's window is closed, not the link, and the heap is
// left to everything else.
// New connections are refused once this many PCBs hold connections that are not in TIME_WAIT
// (those lwIP recycles harmlessly): a SYN then never makes lwIP kill a live connection. The
// rest (pcbs_for_connecting) stay for the service's own outgoing connections. The PCBs scale
// with the guest's memory (pools.cc).
std::size_t pcbs_for_listeners() { return tcp_pcb_limit() - pcbs_for_connecting; }  // limit >= 32

// A PCB for one more connection: one kept or taken from the heap (pools.cc), or a connection in
// TIME_WAIT, which lwIP's tcp_alloc() recycles, harmlessly, when the pool has none. Without
// either, lwIP would make room by killing a connection in LAST_ACK or CLOSING, or an active one.
bool pcb_at_hand() { return stock_tcp_pcb() || tcp_tw_pcbs != nullptr; }

std::size_t pcbs_in_use() {
    std::size_t n = 0;
    for (const struct tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) ++n;
    for (const struct tcp_pcb* p = tcp_bound_pcbs; p != nullptr; p = p->next) ++n;
    return n;
}

err_t refuse_syn(struct tcp_pcb* pcb, struct tcp_hdr* hdr) {
    ++counters().tcp_refused;
    // tcp_input() has turned the header into host order already.
    tcp_rst(pcb, 0, hdr->seqno + 1, ip_current_dest_addr(), ip_current_src_addr(), hdr->dest, hdr->src);
    return ERR_ABRT;
}

// A connection the service has closed (no owner) whose peer holds it open: in FIN_WAIT_1/2,
// CLOSING or LAST_ACK, with everything sent acknowledged but perhaps our FIN (a peer that never
// acknowledges the FIN keeps it for minutes). Resetting it costs the peer nothing it was owed.
bool orphan(const struct tcp_pcb* p) {
    if (p->callback_arg != nullptr) return false;
    if (p->state != FIN_WAIT_1 && p->state != FIN_WAIT_2 && p->state != CLOSING && p->state != LAST_ACK) return false;
    return p->unsent == nullptr && p->snd_nxt - p->lastack <= 1;
}

// Reset the orphan that has waited longest; false if there is none.
bool reclaim_orphan() {
    struct tcp_pcb* oldest = nullptr;
    for (struct tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
        if (!orphan(p)) continue;
        if (oldest == nullptr || tcp_ticks - p->tmr > tcp_ticks - oldest->tmr) oldest = p;
    }
    if (oldest == nullptr) return false;
    ++counters().tcp_orphans_reclaimed;
    tcp_abort(oldest);
    return true;
}

// A SYN for a connection lwIP holds in TIME_WAIT. We close first (a server answering
// "Connection: close", httpd's linger), so TIME_WAIT is ours, for 2 MSL (2 min); the client
// knows nothing of it and may pick the same source port again within that time (Linux walks its
// ephemeral ports in small steps: a few thousand connections wrap them). lwIP answers such a SYN
// with an ACK (or an RST), never with a connection: the client retransmits its SYN until our
// TIME_WAIT ends, and connect() times out (seen nested: 6 of 100 requests after an ab run). As
// RFC 1122 4.2.2.13 and RFC 6191 allow, and as Linux does, the old connection then gives way:
// it is dropped and the SYN goes through lwIP again, to the listener, from the loop (lwIP is
// inside tcp_input() here). Only a SYN past the old connection's sequence numbers, and our new
// ISN past the old one's, so its stray segments cannot land in the new one.
class Reopen {
public:
    /// Takes the SYN in `hdr` (host order, options in two parts, data in `p`) for `pcb`, in
    /// TIME_WAIT: false leaves it to lwIP (no listener on the port, data with the SYN, an odd
    /// IP header). The TIME_WAIT connection is gone when this returns true; the SYN reaches
    /// the listener shortly, or, out of memory or queue, is dropped (the client sends it again
    /// in a second and finds no TIME_WAIT then).
    static bool take(struct tcp_pcb* pcb, const struct tcp_hdr* hdr, u16_t optlen, u16_t opt1len, const u8_t* opt2,
                     const struct pbuf* p) {
        // RFC 1122 4.2.2.13: only a SYN past the old connection's last sequence number (an
        // old duplicate of its SYN, or a blind guess, gets lwIP's answer). Clients' RFC 6528
        // ISNs grow with time, so a real client's new SYN is past it.
        if (!TCP_SEQ_GT(hdr->seqno, pcb->rcv_nxt)) return false;
        if (p->tot_len != 0 || !listening(hdr->dest)) return false;
        if (optlen > opt1len && opt2 == nullptr) return false;
        if (!header_is_the_segments(static_cast<u16_t>(TCP_HLEN + optlen))) return false;
        const u16_t ip_len = ip_current_header_tot_len();
        ++counters().tcp_time_wait_reopened;
        const u8_t netif = netif_get_index(ip_current_input_netif());
        // Our ISN for the new connection starts past everything the old one sent (as Linux
        // does: the RFC 6528 clock alone lags behind a connection that sent fast).
        const u32_t isn_floor = pcb->snd_nxt + 0xffff + 2;
        tcp_abort(pcb);  // in TIME_WAIT: freed, nothing sent
        struct pbuf* q = count_ < capacity ? pbuf_alloc(PBUF_RAW, static_cast<u16_t>(ip_len + TCP_HLEN + optlen), PBUF_RAM)
                                           : nullptr;
        if (q == nullptr) return true;
        auto* out = static_cast<u8_t*>(q->payload);  // one pbuf: PBUF_RAM is contiguous
        const void* ip = ip_current_is_v6() ? static_cast<const void*>(ip6_current_header())
                                            : static_cast<const void*>(ip4_current_header());
        std::memcpy(out, ip, ip_len);
        auto* th = reinterpret_cast<struct tcp_hdr*>(out + ip_len);
        std::memcpy(th, hdr, TCP_HLEN);
        th->src = lwip_htons(hdr->src);  // back to the wire's order, as tcp_input() reads it
        th->dest = lwip_htons(hdr->dest);
        th->seqno = lwip_htonl(hdr->seqno);
        th->ackno = lwip_htonl(hdr->ackno);
        th->wnd = lwip_htons(hdr->wnd);
        std::memcpy(out + ip_len + TCP_HLEN, reinterpret_cast<const u8_t*>(hdr) + TCP_HLEN, opt1len);
        if (optlen > opt1len) std::memcpy(out + ip_len + TCP_HLEN + opt1len, opt2, optlen - opt1len);
        queue_[count_++] = Item{q, netif, hdr->dest, hdr->src, isn_floor};
        loop().schedule(wakeup_);
        return true;
    }

    /// The ISN for the new connection from `remote_port` to `local_port`, given the one
    /// RFC 6528 gives: past what the connection it replaces sent, while its SYN is fed again.
    static u32_t isn(u16_t local_port, u16_t remote_port, u32_t isn) {
        if (feeding_ == nullptr || feeding_->local_port != local_port || feeding_->remote_port != remote_port) {
            return isn;
        }
        return TCP_SEQ_LT(isn, feeding_->isn_floor) ? feeding_->isn_floor : isn;
    }

private:
    struct Item {
        struct pbuf* p;
        u8_t netif;
        u16_t local_port, remote_port;
        u32_t isn_floor;
    };
    static constexpr std::size_t capacity = 16;

    // The IP header lwIP points at is the one of this segment alone: its protocol is TCP and
    // its length `tcp_len` (IPv6 reassembly leaves lwIP pointing at the last fragment's).
    static bool header_is_the_segments(u16_t tcp_len) {
        if (ip_current_is_v6()) {
            const struct ip6_hdr* h = ip6_current_header();
            return ip_current_header_tot_len() == IP6_HLEN && IP6H_NEXTH(h) == IP6_NEXTH_TCP && IP6H_PLEN(h) == tcp_len;
        }
        const struct ip_hdr* h = ip4_current_header();
        const u16_t hl = IPH_HL_BYTES(h);
        return ip_current_header_tot_len() == hl && IPH_PROTO(h) == IP_PROTO_TCP &&
               lwip_ntohs(IPH_LEN(h)) == hl + tcp_len && (lwip_ntohs(IPH_OFFSET(h)) & (IP_MF | IP_OFFMASK)) == 0;
    }

    static bool listening(u16_t port) {
        for (const struct tcp_pcb_listen* l = tcp_listen_pcbs.listen_pcbs; l != nullptr; l = l->next) {
            if (l->local_port == port) return true;
        }
        return false;
    }

    // Feeds the queued SYNs to lwIP, as if they had just arrived (their checksums were checked
    // the first time; only the header's byte order changed since).
    static void run(void*) {
        LwipCall call;
        const std::size_t n = count_;
        Item items[capacity];
        std::copy(queue_, queue_ + n, items);
        count_ = 0;
        for (std::size_t i = 0; i < n; ++i) {
            struct netif* nif = netif_get_by_index(items[i].netif);
            if (nif == nullptr || !netif_is_up(nif)) {
                pbuf_free(items[i].p);
                continue;
            }
            NETIF_SET_CHECKSUM_CTRL(nif, NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_CHECK_TCP);
            feeding_ = &items[i];
            if (ip_input(items[i].p, nif) != ERR_OK) pbuf_free(items[i].p);
            feeding_ = nullptr;
            NETIF_SET_CHECKSUM_CTRL(nif, NETIF_CHECKSUM_ENABLE_ALL);
        }
    }

    static inline const Item* feeding_ = nullptr;  // the SYN inside ip_input() now
    static inline Item queue_[capacity] = {};
    static inline std::size_t count_ = 0;
    static inline Wakeup wakeup_{&run, nullptr};
};

}  // namespace

u32_t reopened_isn(u16_t local_port, u16_t remote_port, u32_t isn) { return Reopen::isn(local_port, remote_port, isn); }

// lwIP 2.1.3's persist timer (tcp_slowtmr) has three gaps a remote peer can reach, each an
// lwIP assertion, which is a panic here; all are closed before lwIP's timers run.
// - It starts a connection's persist timer when its unsent data does not fit the peer's window,
//   and stops it only in tcp_output(). An ACK that covers the unsent queue some other way (found
//   by the lwip_input fuzz target: a peer that closes its window, then acknowledges) empties
//   that queue with the timer still running, and the next tick asserts "persist ticking with
//   empty send buffer". Nothing is waiting for the window then: the timer is stopped.
// - When it fires with a window that is not zero, it splits the first unsent segment at
//   `(u16_t)snd_wnd`. With window scaling (lwipopts.h) the peer's window can be 64 KiB or any
//   multiple of it, which that cast makes 0, and the split asserts "Can't split segment into
//   length 0". The timer keeps running with such a window when the congestion window is
//   smaller than the segment (a peer that sent an MSS option of 1 on its handshake ACK, a zero
//   window, then a window of 512 << 7). A window over 0xffff is taken as 0xffff while the timer
//   runs: no segment is longer, so the split does nothing, as it would have with the real
//   window, and the next window update the peer sends restores it.
// - The split also asserts "split <= mss" when the window falls between the MSS and the first
//   segment's length: a peer that lowers the MSS with an option on a later segment, after
//   longer segments were queued (found by the lwip_input fuzz target). The window is then
//   taken as the MSS: the split leaves a segment of the MSS, within the real window, which
//   goes when the congestion window allows.
// Taking a window as smaller than the peer's only ever sends less than it allowed. Tests:
// tests/unit/net/tcp_window_test.cc.
void tame_persist_timers() {
    for (struct tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
        if (p->persist_backoff == 0) continue;
        if (p->unsent == nullptr) {
            p->persist_backoff = 0;
            p->persist_cnt = 0;
            p->persist_probe = 0;
        } else if (p->snd_wnd > 0xffff) {
            p->snd_wnd = 0xffff;
        } else if (p->snd_wnd > p->mss && p->snd_wnd < p->unsent->len) {
            p->snd_wnd = p->mss;
        }
    }
}

namespace {

// The longest segment tcp_write() makes now: tcp_write()'s own computation (no
// LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH is set). At least 1: an MSS of 0 is kept out (an ICMPv6
// Packet Too Big under IPv6's minimum MTU is dropped before lwIP, interface.cc); send_pbufs()
// divides by it.
std::size_t write_segment_bound(const struct tcp_pcb* pcb) {
    const u16_t bound = LWIP_MIN(pcb->mss, TCPWND_MIN16(pcb->snd_wnd_max / 2));
    return std::max<std::size_t>(bound == 0 ? pcb->mss : bound, 1);
}

// lwIP 2.1.3's tcp_write() fills the last unsent segment up to a bound it computes anew on each
// call: the MSS, at most half the largest window the peer ever offered -- the MSS while that is
// still 0. It asserts that the last segment is within the bound ("mss_local is too small",
// tcp_out.c), but the peer can bring the bound below a segment already queued: open with a zero
// window, so 536-byte segments are queued, then offer 600 bytes, a bound of 300 (found by the
// netfront_stack fuzz target); or send an MSS option on a later segment (lwIP parses the
// options of every segment). A remote client could panic the guest. A write waits instead
// until that segment has left (the sent callback or the poll timer wakes it). Tests:
// tests/unit/net/tcp_window_test.cc.
// The same lowered bound can leave the room tcp_write() allocated past the last unsent segment
// (TCP_OVERSIZE, when more was to come) beyond it: tcp_write() then asserts "inconsistent
// oversize vs. space" (found by the lwip_input fuzz target once the heap could hold writes
// back, which leaves such room more often). That room only saves an allocation, and lwIP drops
// it too whenever the segment leaves, so it is dropped here.
bool last_unsent_fits(struct tcp_pcb* pcb) {
    struct tcp_seg* last = pcb->unsent;
    if (last == nullptr) return true;
    while (last->next != nullptr) last = last->next;
    const std::size_t bound = write_segment_bound(pcb);
    const std::size_t used = std::size_t{last->len} + LWIP_TCP_OPT_LENGTH(last->flags);
    if (bound < used) return false;
    if (pcb->unsent_oversize > bound - used) {
        pcb->unsent_oversize = 0;
#if TCP_OVERSIZE_DBGCHECK
        last->oversize_left = 0;  // lwIP's debug copy, asserted equal
#endif
    }
    return true;
}
#ifdef LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH
#error "last_unsent_fits() computes the option length without the hook"
#endif

// The send queues are bounded like the receive copies (budget.h), counted in pbufs. A client
// that never reads keeps a connection's whole TCP_SND_BUF queued, and all connections' queues
// together were bounded only by lwIP's segment pool: more heap than serve_heap_reserve, and
// the pool itself, which a connection that reads then found empty. Each pbuf of a send queue
// takes at most tx_pbuf_heap of heap and one segment of the pool; the queues together hold at
// most half of what is left of either (share_left), plus tx_floor_pbufs per connection while
// the heap keeps heap_floor and the pool tx_floor_segments. A write beyond its share queues
// what fits and waits as for acknowledgements (the sent callback or the poll timer wakes it).
// Connections we closed, which lwIP still sends for, count too.
//
// A send queue's pbuf (tcp_write with TCP_WRITE_FLAG_COPY, tcp_enqueue_flags, the split in
// tcp_split_unsent_seg) is one heap block: struct pbuf, room for the link, IP and TCP headers,
// and at most an MSS of data and options. tcp_pbuf_prealloc() allocates a whole MSS when more
// is to come, and lwIP's trims give nothing back to malloc, so count the whole MSS: a block of
// keel's largest slab class, two to a page (kernel/src/heap.cc). Its tcp_seg is a second, small
// block. That is what the pbuf takes while its slab pages are shared; one left alone in a page
// keeps the whole page, so in the worst case the queues hold up to twice what is counted
// (about two thirds of the heap instead of half). Frames the link has not taken yet hold
// references to acknowledged pbufs too (Interface's tx queue, at most 128 frames): not counted.
constexpr std::size_t tx_pbuf_heap = Heap::page_size / 2 + 64;
static_assert(LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf) + PBUF_TRANSPORT) + LWIP_MEM_ALIGN_SIZE(TCP_MSS) <=
              Heap::max_small);
static_assert(sizeof(struct tcp_seg) <= 48);  // a block of 48 bytes at most
constexpr std::size_t tx_floor_pbufs = 8;       // about socket_heap_floor
constexpr std::size_t tx_floor_segments = 32;

// Pbufs that queueing `n` bytes adds, at most, in segments of at most `seg` bytes: one chained
// to the last unsent segment, one per segment after it, one more for a partial segment.
std::size_t send_pbufs(std::size_t n, std::size_t seg) { return n / seg + 2; }
// The most bytes whose send_pbufs is at most `k`.
std::size_t send_fits(std::size_t k, std::size_t seg) { return k < 2 ? 0 : (k - 1) * seg - 1; }

std::size_t send_queue_pbufs() {
    std::size_t n = 0;
    for (const struct tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) n += p->snd_queuelen;
    return n;
}

// How many of `want` more pbufs `pcb`'s send queue may take; `held`, every queue's pbufs, is
// counted on first need (the floor usually answers).
std::size_t tx_pbufs_allowed(const struct tcp_pcb* pcb, std::size_t want, std::optional<std::size_t>& held) {
    const std::size_t own = pcb->snd_queuelen;
    const std::size_t free_segments = tcp_segments_free();
    const std::size_t floor =
        own < tx_floor_pbufs && free_segments > tx_floor_segments
            ? std::min({tx_floor_pbufs - own, heap_above_floor() / tx_pbuf_heap, free_segments - tx_floor_segments})
            : 0;
    if (floor >= want) return want;
    if (!held) held = send_queue_pbufs();
    const std::size_t heap_share = share_left(*held * tx_pbuf_heap, heap_headroom(), kind_heap_max) / tx_pbuf_heap;
    const std::size_t pool_share = share_left(*held, free_segments, SIZE_MAX);
    return std::min(want, std::max(floor, std::min(heap_share, pool_share)));
}

}  // namespace

std::size_t send_queues_heap() { return send_queue_pbufs() * tx_pbuf_heap; }

namespace {
constexpr std::size_t conn_pinned_max = 32;
constexpr std::size_t coalesce_size = 2048;  // smallest heap buffer a copy starts
}  // namespace

struct TcpConn {
    TcpConn() { ++counters().tcp_open; }
    ~TcpConn();
    TcpConn(const TcpConn&) = delete;
    TcpConn& operator=(const TcpConn&) = delete;

    struct tcp_pcb* pcb = nullptr;
    Endpoint peer;
    Endpoint local;
    struct pbuf* rx_head = nullptr;  // unread data: pbufs linked through ->next
    struct pbuf* rx_tail = nullptr;
    std::size_t rx_off = 0;    // bytes of rx_head already read
    std::size_t rx_bytes = 0;  // unread bytes in the queue
    std::size_t rx_pinned = 0;     // pbufs of the queue in shared receive buffers (see above)
    std::size_t rx_heap = 0;       // unread bytes of the queue in heap pbufs
    std::size_t rx_tail_room = 0;  // free bytes after rx_tail when it is our copy buffer
    bool fin = false;          // the peer closed its side
    bool wr_shut = false;      // we queued our FIN (shutdown_write or close)
    bool connected = false;
    Error error = Error::ok;  // why the pcb went away under us
    Waiter* reader = nullptr;
    Waiter* writer = nullptr;            // write, connect or close
    TcpListenState* listener = nullptr;  // while waiting in a listener's queue
    TcpConn* next_queued = nullptr;

    void attach(struct tcp_pcb* p);
    /// Clear lwIP's pointers to us; the pcb is then the caller's to close or abort.
    struct tcp_pcb* detach();
    /// Graceful close now (FIN, or RST if lwIP cannot queue it); the pcb is gone afterwards.
    void close_now();
    void abort_now();
    void fill_endpoints();
    std::size_t consume(std::span<std::byte> out);
    /// Queue the chain `p` lwIP delivered: as it is, or copied when over the pinned bounds.
    /// False: no memory for the copy (nothing taken).
    bool take(struct pbuf* p);
    void append(struct pbuf* p);
    /// Why the connection can make no more progress: its error, Error::closed once lwIP took
    /// the pcb back, Error::ok while it lives.
    Error failure() const { return error != Error::ok ? error : pcb == nullptr ? Error::closed : Error::ok; }

    static void wake(Waiter* w) {
        if (w != nullptr) loop().schedule(w->wakeup);
    }

    static err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err);
    static err_t on_sent(void* arg, struct tcp_pcb* pcb, u16_t len);
    static err_t on_poll(void* arg, struct tcp_pcb* pcb);
    static void on_err(void* arg, err_t err);
    static err_t on_connected(void* arg, struct tcp_pcb* pcb, err_t err);
};

struct TcpListenState {
    explicit TcpListenState(unsigned cap) : capacity(cap) {}
    ~TcpListenState();

    struct tcp_pcb* pcb = nullptr;
    std::uint16_t port = 0;
    unsigned capacity;
    TcpConn* head = nullptr;  // completed connections waiting for accept()
    TcpConn* tail = nullptr;
    unsigned count = 0;
    Waiter* acceptor = nullptr;

    void push(TcpConn* c);
    TcpConn* pop();
    static err_t on_accept(void* arg, struct tcp_pcb* pcb, err_t err);
};

// ---- TcpConn --------------------------------------------------------------------------------

void TcpConn::attach(struct tcp_pcb* p) {
    pcb = p;
    tcp_arg(p, this);
    tcp_recv(p, &on_recv);
    tcp_sent(p, &on_sent);
    tcp_err(p, &on_err);
    tcp_poll(p, &on_poll, poll_interval);
    tcp_nagle_disable(p);
}

struct tcp_pcb* TcpConn::detach() {
    struct tcp_pcb* p = std::exchange(pcb, nullptr);
    if (p != nullptr) {
        tcp_arg(p, nullptr);
        tcp_recv(p, nullptr);
        tcp_sent(p, nullptr);
        tcp_err(p, nullptr);
        tcp_poll(p, nullptr, 0);
    }
    return p;
}

void TcpConn::close_now() {
    struct tcp_pcb* p = detach();
    if (p == nullptr) return;
    LwipCall call;
    if (tcp_close(p) == ERR_OK) {
        ++counters().tcp_closed;
    } else {
        tcp_abort(p);  // lwIP had no memory to queue the FIN
        ++counters().tcp_aborted;
    }
}

void TcpConn::abort_now() {
    struct tcp_pcb* p = detach();
    if (p == nullptr) return;
    LwipCall call;
    tcp_abort(p);
    ++counters().tcp_aborted;
}

TcpConn::~TcpConn() {
    close_now();
    for (Waiter* w : {reader, writer}) {
        if (w == nullptr) continue;
        w->owner = nullptr;  // the awaiter finishes with Error::cancelled
        loop().schedule(w->wakeup);
    }
    if (rx_head != nullptr) pbuf_free(rx_head);  // the queue is one chain of single references
    pinned_in_queues() -= rx_pinned;
    held_on_heap(-static_cast<std::ptrdiff_t>(rx_heap));
    --counters().tcp_open;
}

void TcpConn::fill_endpoints() {
    if (pcb == nullptr) return;
    peer = Endpoint{from_lwip(pcb->remote_ip), pcb->remote_port};
    local = Endpoint{from_lwip(pcb->local_ip), pcb->local_port};
}

std::size_t TcpConn::consume(std::span<std::byte> out) {
    std::size_t n = 0;
    while (n < out.size() && rx_head != nullptr) {
        struct pbuf* h = rx_head;
        const std::size_t take = std::min<std::size_t>(h->len - rx_off, out.size() - n);
        std::memcpy(out.data() + n, static_cast<const std::byte*>(h->payload) + rx_off, take);
        if (!pinned(h)) {
            rx_heap -= take;
            held_on_heap(-static_cast<std::ptrdiff_t>(take));
        }
        n += take;
        rx_off += take;
        if (rx_off == h->len) {
            // Unlink the head: its reference to the next pbuf becomes the queue's.
            rx_head = h->next;
            if (rx_head == nullptr) {
                rx_tail = nullptr;
                rx_tail_room = 0;
            }
            h->next = nullptr;
            if (pinned(h)) {
                --rx_pinned;
                --pinned_in_queues();
            }
            pbuf_free(h);  // a custom pbuf returns its page to the link here
            rx_off = 0;
        }
    }
    rx_bytes -= n;
    counters().tcp_rx_bytes += n;
    if (pcb != nullptr && n > 0) {
        LwipCall call;
        // The window opens as the application reads: this is TCP's back-pressure to the peer.
        for (std::size_t left = n; left > 0;) {
            const auto chunk = static_cast<u16_t>(std::min<std::size_t>(left, 0xffff));
            tcp_recved(pcb, chunk);
            left -= chunk;
        }
    }
    return n;
}

err_t TcpConn::on_recv(void* arg, struct tcp_pcb*, struct pbuf* p, err_t err) {
    auto* c = static_cast<TcpConn*>(arg);
    if (p == nullptr) {
        c->fin = true;
        // Both directions are finished: give the pcb back to lwIP now. It may sit in TIME_WAIT,
        // where lwIP frees it later without telling us, so we must not keep pointing at it.
        if (c->wr_shut) {
            c->close_now();
            wake(c->writer);  // a close() waiting for acknowledgements is done
        }
    } else {
        if (err != ERR_OK) {  // lwIP 2.1 passes ERR_OK with data; be safe
            pbuf_free(p);
            return ERR_OK;
        }
        if (!c->take(p)) return ERR_MEM;  // lwIP keeps p and offers it again later
    }
    wake(c->reader);
    return ERR_OK;
}

void TcpConn::append(struct pbuf* p) {
    // Only ->len and ->next of queued pbufs are used, so tot_len of earlier pbufs need not
    // cover later chains.
    if (rx_tail == nullptr) {
        rx_head = p;
    } else {
        rx_tail->next = p;
    }
    struct pbuf* t = p;
    while (t->next != nullptr) t = t->next;
    rx_tail = t;
    rx_tail_room = 0;
}

bool TcpConn::take(struct pbuf* p) {
    const std::size_t n = p->tot_len;
    const std::size_t pins = count_pinned(p);
    if (pins == 0 || (rx_pinned + pins <= conn_pinned_max && pinned_in_queues() + pins <= all_pinned_max)) {
        append(p);
        const std::size_t heap = heap_bytes(p);  // lwIP's own copies (reassembly, a link short of buffers)
        rx_pinned += pins;
        pinned_in_queues() += pins;
        rx_heap += heap;
        held_on_heap(static_cast<std::ptrdiff_t>(heap));
        rx_bytes += n;
        return true;
    }
    // Copy: first into the room left in our last copy buffer, the rest into a new one. The
    // allocation comes first, so a failure leaves everything as it was.
    if (!may_copy(n, rx_heap)) {
        ++counters().tcp_rx_refused;
        return false;
    }
    const std::size_t into_tail = std::min(rx_tail_room, n);
    struct pbuf* fresh = nullptr;
    std::size_t cap = 0;
    if (n > into_tail) {
        cap = std::max(n - into_tail, coalesce_size);
        fresh = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(cap), PBUF_RAM);
        if (fresh == nullptr) {
            ++counters().tcp_rx_refused;
            return false;
        }
    }
    if (into_tail > 0) {
        pbuf_copy_partial(p, static_cast<std::byte*>(rx_tail->payload) + rx_tail->len, static_cast<u16_t>(into_tail), 0);
        rx_tail->len = static_cast<u16_t>(rx_tail->len + into_tail);
        rx_tail->tot_len = rx_tail->len;
        rx_tail_room -= into_tail;
    }
    if (fresh != nullptr) {
        const std::size_t rest = n - into_tail;
        pbuf_copy_partial(p, fresh->payload, static_cast<u16_t>(rest), static_cast<u16_t>(into_tail));
        fresh->len = fresh->tot_len = static_cast<u16_t>(rest);
        append(fresh);
        rx_tail_room = cap - rest;
    }
    rx_bytes += n;
    rx_heap += n;
    held_on_heap(static_cast<std::ptrdiff_t>(n));
    ++counters().tcp_rx_copied;
    pbuf_free(p);  // the link's buffers go back now
    return true;
}

err_t TcpConn::on_sent(void* arg, struct tcp_pcb*, u16_t) {
    wake(static_cast<TcpConn*>(arg)->writer);
    return ERR_OK;
}

err_t TcpConn::on_poll(void* arg, struct tcp_pcb*) {
    wake(static_cast<TcpConn*>(arg)->writer);
    return ERR_OK;
}

void TcpConn::on_err(void* arg, err_t err) {
    // lwIP has freed the pcb already.
    auto* c = static_cast<TcpConn*>(arg);
    c->pcb = nullptr;
    if (err == ERR_CLSD && c->wr_shut) {
        // LAST_ACK ended: the peer closed first and has acknowledged our FIN. A clean close.
        c->fin = true;
        ++counters().tcp_closed;
    } else {
        c->error = err == ERR_ABRT || err == ERR_RST || err == ERR_CLSD ? Error::closed : to_error(err);
        ++counters().tcp_reset;
    }
    wake(c->reader);
    wake(c->writer);
}

err_t TcpConn::on_connected(void* arg, struct tcp_pcb*, err_t) {
    auto* c = static_cast<TcpConn*>(arg);
    c->connected = true;
    c->fill_endpoints();
    wake(c->writer);
    return ERR_OK;
}

// ---- TcpListenState -------------------------------------------------------------------------

void TcpListenState::push(TcpConn* c) {
    c->listener = this;
    c->next_queued = nullptr;
    if (tail == nullptr) {
        head = c;
    } else {
        tail->next_queued = c;
    }
    tail = c;
    ++count;
}

TcpConn* TcpListenState::pop() {
    TcpConn* c = head;
    if (c == nullptr) return nullptr;
    head = c->next_queued;
    if (head == nullptr) tail = nullptr;
    c->next_queued = nullptr;
    c->listener = nullptr;
    --count;
    return c;
}

TcpListenState::~TcpListenState() {
    if (pcb != nullptr) {
        LwipCall call;
        tcp_arg(pcb, nullptr);
        tcp_accept(pcb, nullptr);
        tcp_close(pcb);  // a listening pcb is freed at once
        pcb = nullptr;
    }
    while (TcpConn* c = pop()) {
        c->abort_now();
        delete c;
    }
    if (acceptor != nullptr) {
        acceptor->owner = nullptr;
        loop().schedule(acceptor->wakeup);
    }
}

err_t TcpListenState::on_accept(void* arg, struct tcp_pcb* newpcb, err_t err) {
    auto* l = static_cast<TcpListenState*>(arg);
    if (err != ERR_OK || newpcb == nullptr) return ERR_VAL;
    if (l->count >= l->capacity) {
        ++counters().tcp_backlog_full;
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    auto* c = new (std::nothrow_t{}) TcpConn();
    if (c == nullptr) {
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    c->attach(newpcb);
    // Above lwIP's SYN_RCVD connections (the listener's priority, TCP_PRIO_MIN) and outgoing
    // ones: tcp_alloc() only ever kills lower priorities.
    tcp_setprio(newpcb, TCP_PRIO_MAX);
    c->connected = true;
    c->fill_endpoints();
    tcp_backlog_delayed(newpcb);  // counts against the listen backlog until accept() takes it
    l->push(c);
    TcpConn::wake(l->acceptor);
    return ERR_OK;
}

// ---- What the operations wait for (the awaiter is Pending, in waiter.h) ----------------------

Waiter*& TcpRead::slot(TcpConn& c) { return c.reader; }

bool TcpRead::step(TcpConn& c, Result<std::size_t>& out) {
    if (c.rx_bytes > 0) {
        out = c.consume(buf);
    } else if (c.fin) {
        out = std::size_t{0};
    } else if (const Error e = c.failure(); e != Error::ok) {
        out = e;
    } else {
        return false;
    }
    return true;
}

Waiter*& TcpWrite::slot(TcpConn& c) { return c.writer; }

Result<void> shutdown_conn(TcpConn* c);

bool TcpWrite::step(TcpConn& c, Result<std::size_t>& out) {
    if (const Error e = c.failure(); e != Error::ok) {
        out = e;
        return true;
    }
    LwipCall call;
    struct tcp_pcb* pcb = c.pcb;
    bool wrote = false;
    bool held_back = false;
    std::optional<std::size_t> held;  // every send queue's pbufs, once counted (tx_pbufs_allowed)
    while (done < data.size()) {
        if (!last_unsent_fits(pcb)) break;  // wait for it to leave (see last_unsent_fits)
        std::size_t room = tcp_sndbuf(pcb);
        if (tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN) room = 0;
        const std::size_t want = std::min({room, data.size() - done, std::size_t{0xffff}});
        if (want == 0) break;
        const std::size_t seg = write_segment_bound(pcb);
        const std::size_t pbufs_before = pcb->snd_queuelen;
        std::size_t chunk = std::min(want, send_fits(tx_pbufs_allowed(pcb, send_pbufs(want, seg), held), seg));
        held_back = held_back || chunk < want;  // no share of the heap or the pool: wait
        if (chunk == 0) break;
        err_t e;
        for (;;) {
            const u8_t flags = TCP_WRITE_FLAG_COPY | (done + chunk < data.size() ? TCP_WRITE_FLAG_MORE : 0);
            e = tcp_write(pcb, data.data() + done, static_cast<u16_t>(chunk), flags);
            // Out of segments or buffer memory: try a smaller piece before waiting.
            if (e != ERR_MEM || chunk <= std::max<std::size_t>(tcp_mss(pcb), 1)) break;
            chunk /= 2;
        }
        if (held && pcb->snd_queuelen > pbufs_before) *held += pcb->snd_queuelen - pbufs_before;
        if (e == ERR_MEM) break;  // wait for acknowledgements (sent) or the poll timer
        if (e != ERR_OK) {
            out = to_error(e);
            return true;
        }
        done += chunk;
        counters().tcp_tx_bytes += chunk;
        wrote = true;
    }
    if (held_back) ++counters().tcp_tx_held_back;
    if (done < data.size()) {
        // Also when nothing fit this time: an earlier write held back by WriteEnd::more may be
        // all that is unsent, with nothing in flight whose ACK would send it.
        if (wrote || pcb->unsent != nullptr) tcp_output(pcb);
        return false;
    }
    // All queued. shutdown_conn() queues the FIN on the last segment and sends (tcp_shutdown
    // ends in tcp_output); if it cannot, the data goes out on its own.
    const bool fin = end == WriteEnd::shutdown && shutdown_conn(&c).ok();
    if (!fin && end != WriteEnd::more) tcp_output(pcb);
    out = done;
    return true;
}

Waiter*& TcpAccept::slot(TcpListenState& l) { return l.acceptor; }

bool TcpAccept::step(TcpListenState& l, Result<TcpStream>& out) {
    while (TcpConn* c = l.pop()) {
        if (c->pcb == nullptr && c->rx_bytes == 0) {
            delete c;  // reset before anyone accepted it
            continue;
        }
        if (c->pcb != nullptr) {
            LwipCall call;
            tcp_backlog_accepted(c->pcb);
        }
        ++counters().tcp_accepted;
        out = TcpStream(c);
        return true;
    }
    return false;
}

/// connect() and close(): wait on the writer slot until `done(conn)` holds, the connection
/// fails, or the deadline (always armed).
template <typename Done>
struct ConnDone {
    using Owner = TcpConn;
    using Value = void;
    static constexpr bool always_timed = true;
    static Waiter*& slot(TcpConn& c) { return c.writer; }
    bool step(TcpConn& c, Result<void>& out) {
        if (done(c)) {
            out = Result<void>();
        } else if (const Error e = c.failure(); e != Error::ok) {
            out = e;
        } else {
            return false;
        }
        return true;
    }
    Done done;
};

template <typename Done>
Pending<ConnDone<Done>> wait_until(TcpConn* c, std::uint64_t deadline, Done done) {
    return Pending<ConnDone<Done>>(c, deadline, ConnDone<Done>{done});
}

Result<void> shutdown_conn(TcpConn* c) {
    if (c == nullptr) return Error::closed;
    if (c->error != Error::ok) return c->error;
    if (c->wr_shut) return {};
    if (c->pcb == nullptr) return Error::closed;
    LwipCall call;
    // lwIP queues the FIN behind the data already written and sends it with them.
    if (err_t e = tcp_shutdown(c->pcb, 0, 1); e != ERR_OK) return to_error(e);
    c->wr_shut = true;
    return {};
}

Task<Result<void>> close_conn(TcpConn* c, std::uint64_t deadline) {
    if (c == nullptr) co_return Error::closed;
    struct Owner {
        TcpConn* c;
        ~Owner() { delete c; }  // closes (or has closed) the pcb
    } owner{c};
    if (c->error != Error::ok) co_return c->error;
    // FIN now, behind everything written; then wait until the peer acknowledged all the data
    // (nothing unsent, nothing unacknowledged but the FIN itself, whose ACK raises no lwIP
    // event), or both sides finished and lwIP took the pcb back. lwIP's sent callback wakes us
    // as acknowledgements arrive.
    if (Result<void> r = shutdown_conn(c); !r.ok()) {
        c->abort_now();
        co_return r.error();
    }
    auto r = co_await wait_until(c, deadline, [](TcpConn& x) {
        if (x.pcb == nullptr) return x.fin && x.error == Error::ok;
        return x.pcb->unsent == nullptr && x.pcb->snd_nxt - x.pcb->lastack <= 1;
    });
    if (!r.ok()) {
        c->abort_now();
        co_return r.error();
    }
    c->close_now();
    co_return Result<void>();
}

}  // namespace detail

using detail::counters;
using detail::LwipCall;
using detail::TcpConn;
using detail::TcpListenState;

// ---- TcpStream ------------------------------------------------------------------------------

TcpStream& TcpStream::operator=(TcpStream&& o) noexcept {
    if (this != &o) {
        delete c_;
        c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
}

TcpStream::~TcpStream() { delete c_; }

Task<Result<TcpStream>> TcpStream::connect(IpAddr addr, std::uint16_t port, std::uint64_t timeout_ns,
                                           std::optional<IpAddr> local) {
    if (!addr.is_v4() && !addr.is_v6()) co_return Error::invalid_argument;
    detail::ensure_init();
    const std::uint64_t deadline = detail::deadline_after(loop().now(), timeout_ns);
    auto* c = new (std::nothrow_t{}) TcpConn();
    if (c == nullptr) co_return Error::no_memory;
    TcpStream s(c);
    {
        LwipCall call;
        if (!detail::pcb_at_hand()) co_return Error::no_memory;  // else lwIP kills one for room
        struct tcp_pcb* pcb = tcp_new_ip_type(addr.is_v6() ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
        if (pcb == nullptr) co_return Error::no_memory;
        c->attach(pcb);
        if (local) {
            const ip_addr_t l = detail::to_lwip(*local);
            if (const err_t e = tcp_bind(pcb, &l, 0); e != ERR_OK) co_return detail::to_error(e);
        }
        const ip_addr_t remote = detail::to_lwip(addr);
        if (const err_t e = tcp_connect(pcb, &remote, port, &TcpConn::on_connected); e != ERR_OK) {
            ++counters().tcp_connect_failed;
            co_return detail::to_error(e);
        }
    }
    auto r = co_await detail::wait_until(c, deadline, [](TcpConn& x) { return x.connected; });
    if (!r.ok()) {
        ++counters().tcp_connect_failed;
        s.abort();
        co_return r.error();
    }
    ++counters().tcp_connected;
    co_return std::move(s);
}

TcpStream::ReadAwaiter TcpStream::read(std::span<std::byte> buf) { return ReadAwaiter(c_, 0, {buf}); }

TcpStream::ReadAwaiter TcpStream::read_for(std::span<std::byte> buf, std::uint64_t timeout_ns) {
    return ReadAwaiter(c_, detail::deadline_after(loop().now(), timeout_ns), {buf});
}

TcpStream::WriteAwaiter TcpStream::write(std::span<const std::byte> data, WriteEnd end) {
    return WriteAwaiter(c_, 0, {data, 0, end});
}

TcpStream::WriteAwaiter TcpStream::write_for(std::span<const std::byte> data, std::uint64_t timeout_ns,
                                             WriteEnd end) {
    return WriteAwaiter(c_, detail::deadline_after(loop().now(), timeout_ns), {data, 0, end});
}

Task<Result<void>> TcpStream::close(std::uint64_t timeout_ns) {
    return detail::close_conn(std::exchange(c_, nullptr), detail::deadline_after(loop().now(), timeout_ns));
}

Result<void> TcpStream::shutdown_write() { return detail::shutdown_conn(c_); }

void TcpStream::abort() {
    if (c_ == nullptr) return;
    c_->abort_now();
    delete std::exchange(c_, nullptr);
}

void TcpStream::set_nodelay(bool on) {
    if (c_ == nullptr || c_->pcb == nullptr) return;
    if (on) {
        tcp_nagle_disable(c_->pcb);
    } else {
        tcp_nagle_enable(c_->pcb);
    }
}

bool TcpStream::is_open() const { return c_ != nullptr && c_->pcb != nullptr && c_->error == Error::ok; }
Endpoint TcpStream::peer() const { return c_ != nullptr ? c_->peer : Endpoint{}; }
Endpoint TcpStream::local() const { return c_ != nullptr ? c_->local : Endpoint{}; }
std::size_t TcpStream::buffered() const { return c_ != nullptr ? c_->rx_bytes : 0; }

// ---- TcpListener ----------------------------------------------------------------------------

TcpListener& TcpListener::operator=(TcpListener&& o) noexcept {
    if (this != &o) {
        delete l_;
        l_ = std::exchange(o.l_, nullptr);
    }
    return *this;
}

TcpListener::~TcpListener() { delete l_; }

void TcpListener::close() { delete std::exchange(l_, nullptr); }

Result<TcpListener> TcpListener::listen(std::uint16_t port, unsigned backlog, std::optional<IpAddr> local) {
    if (backlog < 1 || backlog > 255) return Error::invalid_argument;
    if (local && !local->is_v4() && !local->is_v6()) return Error::invalid_argument;
    detail::ensure_init();
    LwipCall call;
    const detail::BindAddr where = detail::bind_addr(local);
    if (!detail::pcb_at_hand()) return Error::no_memory;  // else lwIP kills one for room
    struct tcp_pcb* pcb = tcp_new_ip_type(where.type);
    if (pcb == nullptr) return Error::no_memory;
    ip_set_option(pcb, SOF_REUSEADDR);
    tcp_setprio(pcb, TCP_PRIO_MIN);  // inherited by its half-open connections (see on_accept)
    if (const err_t e = tcp_bind(pcb, &where.addr, port); e != ERR_OK) {
        tcp_close(pcb);
        return detail::to_error(e);
    }
    err_t e = ERR_OK;
    struct tcp_pcb* lpcb = tcp_listen_with_backlog_and_err(pcb, static_cast<u8_t>(backlog), &e);
    if (lpcb == nullptr) {
        tcp_close(pcb);
        return e == ERR_OK ? Error::no_memory : detail::to_error(e);
    }
    auto* l = new (std::nothrow_t{}) TcpListenState(backlog);
    if (l == nullptr) {
        tcp_close(lpcb);
        return Error::no_memory;
    }
    l->pcb = lpcb;
    l->port = lpcb->local_port;
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, &TcpListenState::on_accept);
    return TcpListener(l);
}

TcpListener::AcceptAwaiter TcpListener::accept() { return AcceptAwaiter(l_, 0, {}); }

TcpListener::AcceptAwaiter TcpListener::accept_for(std::uint64_t timeout_ns) {
    return AcceptAwaiter(l_, detail::deadline_after(loop().now(), timeout_ns), {});
}

}  // namespace keel::net

namespace {

// Segments lwIP 2.1.3 would take and then assert on; each is dropped here instead (Tests:
// tests/unit/net/tcp_window_test.cc; both found by the netfront_stack fuzz target):
// - out of order, ending past the receive window's right edge. lwIP trims a segment to the edge
//   when it is in order or goes at the end of the out-of-order queue, but not when it is the
//   first one queued out of order (nor when it goes in front): when the data before it arrives,
//   the window has shrunk by that much and lwIP asserts "tcp_receive: ooseq tcplen > rcv_wnd"
//   (a 64 KB GSO segment 5 bytes ahead did it). The edge (rcv_nxt + rcv_wnd) never moves left,
//   so every queued segment then fits when its turn comes.
// - data past a FIN already queued out of order. When in-order data covers that FIN, lwIP sets
//   the FIN on it: with data up to the window's edge the segment is one longer than the window
//   and lwIP asserts "tcp_receive: tcplen > rcv_wnd". No peer may send past its FIN.
// A correct sender sends neither; what it sent within the rules it sends again.
bool beyond_what_the_peer_may_send(const struct tcp_pcb* pcb, const struct tcp_hdr* hdr, const struct pbuf* p) {
    if (pcb->state == CLOSED || pcb->state == LISTEN || pcb->state == SYN_SENT || pcb->state == TIME_WAIT) {
        return false;  // (a listening pcb has only the common fields)
    }
    const u32_t seqno = hdr->seqno;  // tcp_input() converted it to host order before the hook
    // The data after the header (p's payload starts there).
    const u32_t data_end = seqno + p->tot_len;
    for (const struct tcp_seg* s = pcb->ooseq; s != nullptr; s = s->next) {
        if ((TCPH_FLAGS(s->tcphdr) & TCP_FIN) != 0 && TCP_SEQ_GT(data_end, s->tcphdr->seqno + s->len)) return true;
    }
    const u32_t edge = pcb->rcv_nxt + pcb->rcv_wnd;
    if (!TCP_SEQ_BETWEEN(seqno, pcb->rcv_nxt + 1, edge)) return false;  // in order, or lwIP drops it
    // Plus one for SYN or FIN (TCP_TCPLEN).
    const u32_t end = data_end + ((TCPH_FLAGS(hdr) & (TCP_SYN | TCP_FIN)) != 0 ? 1u : 0u);
    return TCP_SEQ_GT(end, edge);
}

}  // namespace

extern "C" err_t keel_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, u16_t optlen, u16_t opt1len,
                                        u8_t* opt2, struct pbuf* p) {
    using namespace keel::net::detail;
    if (beyond_what_the_peer_may_send(pcb, hdr, p)) return ERR_ABRT;  // dropped (see there)
    if ((TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) return ERR_OK;
    if (pcb->state == TIME_WAIT) return Reopen::take(pcb, hdr, optlen, opt1len, opt2, p) ? ERR_ABRT : ERR_OK;
    if (pcb->state != LISTEN) return ERR_OK;
    // A full backlog makes lwIP drop the SYN without a word, and the client then waits for its
    // SYN retransmission (1, 3, 7, 15, 31 s): refuse at once instead, so it can retry now.
    const auto* l = reinterpret_cast<const struct tcp_pcb_listen*>(pcb);
    if (l->accepts_pending >= l->backlog) return refuse_syn(pcb, hdr);
    // At the limit, a connection the service has closed and the peer holds open (an orphan)
    // gives way to the newcomer; one still served never does.
    if (pcbs_in_use() >= pcbs_for_listeners() && !reclaim_orphan()) return refuse_syn(pcb, hdr);
    if (!pcb_at_hand()) return refuse_syn(pcb, hdr);  // the heap is short: never a kill for room
    return ERR_OK;
}


namespace keel::net {

std::uint16_t TcpListener::port() const { return l_ != nullptr ? l_->port : 0; }
std::size_t TcpListener::pending() const { return l_ != nullptr ? l_->count : 0; }

}  // namespace keel::net
