// UdpSocket over lwIP's raw UDP API. The receive callback queues the pbuf (a custom pbuf over
// the link's page while the socket is within its share of them, else a heap copy: see
// budget.h) with its source; recv_from copies it out and frees it.
#include "keel/net/udp.h"

#include <new>

#include "keel/loop.h"
#include "lwip_glue.h"
#include "budget.h"

namespace keel::net {
namespace detail {

struct UdpState {
    struct Item {
        struct pbuf* p;
        Endpoint from;
        std::size_t pins;  // pinned pbufs in p
        std::size_t heap;  // bytes of p on the heap
    };

    ~UdpState() {
        if (pcb != nullptr) {
            LwipCall call;
            udp_recv(pcb, nullptr, nullptr);
            udp_remove(pcb);
        }
        while (count > 0) {
            release(queue[head]);
            head = (head + 1) % UdpSocket::queue_capacity;
            --count;
        }
        if (reader != nullptr) {
            reader->owner = nullptr;
            loop().schedule(reader->wakeup);
        }
    }

    static void on_recv(void* arg, struct udp_pcb*, struct pbuf* p, const ip_addr_t* addr, u16_t port) {
        auto* s = static_cast<UdpState*>(arg);
        if (s->count == UdpSocket::queue_capacity) {
            ++counters().udp_rx_dropped;
            pbuf_free(p);
            return;
        }
        std::size_t pins = count_pinned(p);
        const bool over = s->pinned + pins > UdpSocket::pinned_max || pinned_in_queues() + pins > all_pinned_max;
        if (pins > 0 && over) {
            // Over the socket's share of the link's buffers: a copy, so the page goes back now.
            struct pbuf* copy = may_copy(p->tot_len, s->heap) ? pbuf_clone(PBUF_RAW, PBUF_RAM, p) : nullptr;
            pbuf_free(p);
            if (copy == nullptr) {
                ++counters().udp_rx_dropped;
                return;
            }
            p = copy;
            pins = 0;
        }
        const Item item{p, Endpoint{from_lwip(*addr), port}, pins, heap_bytes(p)};
        s->queue[(s->head + s->count) % UdpSocket::queue_capacity] = item;
        ++s->count;
        s->pinned += pins;
        pinned_in_queues() += pins;
        s->heap += item.heap;
        held_on_heap(static_cast<std::ptrdiff_t>(item.heap));
        ++counters().udp_rx;
        if (s->reader != nullptr) loop().schedule(s->reader->wakeup);
    }

    /// Free a dequeued item's pbuf and give back its share.
    void release(const Item& item) {
        pinned -= item.pins;
        pinned_in_queues() -= item.pins;
        heap -= item.heap;
        held_on_heap(-static_cast<std::ptrdiff_t>(item.heap));
        pbuf_free(item.p);
    }

    struct udp_pcb* pcb = nullptr;
    Item queue[UdpSocket::queue_capacity] = {};
    std::size_t head = 0;
    std::size_t count = 0;
    std::size_t pinned = 0;  // pinned pbufs in the queue
    std::size_t heap = 0;    // bytes of the queue on the heap
    Waiter* reader = nullptr;
};

Waiter*& UdpRecv::slot(UdpState& s) { return s.reader; }

bool UdpRecv::step(UdpState& s, Result<Datagram>& out) {
    if (s.count == 0) return false;
    UdpState::Item item = s.queue[s.head];
    s.queue[s.head] = {};
    s.head = (s.head + 1) % UdpSocket::queue_capacity;
    --s.count;
    Datagram d;
    d.from = item.from;
    d.truncated = item.p->tot_len > buf.size();
    d.size = pbuf_copy_partial(item.p, buf.data(),
                               static_cast<u16_t>(d.truncated ? buf.size() : item.p->tot_len), 0);
    LwipCall call;
    s.release(item);
    out = d;
    return true;
}

}  // namespace detail

using detail::counters;
using detail::LwipCall;
using detail::UdpState;

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
    if (this != &o) {
        delete s_;
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}

UdpSocket::~UdpSocket() { delete s_; }

void UdpSocket::close() { delete std::exchange(s_, nullptr); }

std::uint16_t UdpSocket::port() const { return s_ != nullptr ? s_->pcb->local_port : 0; }
std::size_t UdpSocket::queued() const { return s_ != nullptr ? s_->count : 0; }

Result<UdpSocket> UdpSocket::bind(std::uint16_t port, std::optional<IpAddr> local) {
    if (local && !local->is_v4() && !local->is_v6()) return Error::invalid_argument;
    detail::ensure_init();
    LwipCall call;
    const detail::BindAddr where = detail::bind_addr(local);
    struct udp_pcb* pcb = udp_new_ip_type(where.type);
    if (pcb == nullptr) return Error::no_memory;
    if (const err_t e = udp_bind(pcb, &where.addr, port); e != ERR_OK) {
        udp_remove(pcb);
        return detail::to_error(e);
    }
    auto* s = new (std::nothrow_t{}) UdpState();
    if (s == nullptr) {
        udp_remove(pcb);
        return Error::no_memory;
    }
    s->pcb = pcb;
    udp_recv(pcb, &UdpState::on_recv, s);
    return UdpSocket(s);
}

Result<void> UdpSocket::send_to(const Endpoint& to, std::span<const std::byte> data) {
    if (s_ == nullptr) return Error::closed;
    if (!to.addr.is_v4() && !to.addr.is_v6()) return Error::invalid_argument;
    if (data.size() > 65507) return Error::no_space;
    LwipCall call;
    struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(data.size()), PBUF_RAM);
    if (p == nullptr) return Error::no_memory;
    pbuf_take(p, data.data(), static_cast<u16_t>(data.size()));
    const ip_addr_t dst = detail::to_lwip(to.addr);
    const err_t e = udp_sendto(s_->pcb, p, &dst, to.port);
    pbuf_free(p);
    if (e != ERR_OK) return detail::to_error(e);
    ++counters().udp_tx;
    return {};
}

UdpSocket::RecvAwaiter UdpSocket::recv_from(std::span<std::byte> buf, std::uint64_t timeout_ns) {
    std::uint64_t deadline = 0;
    if (timeout_ns != 0) {
        const std::uint64_t now = loop().now();
        deadline = timeout_ns > ~0ull - now ? ~0ull : now + timeout_ns;
    }
    return RecvAwaiter(s_, deadline, {buf});
}

}  // namespace keel::net
