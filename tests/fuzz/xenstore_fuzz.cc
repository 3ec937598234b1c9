// Fuzz target for keel::xen::XenStore, the fuzzer playing xenstored. The input is a script of
// steps against the real client on a shared ring page: the client submits requests and
// registers watches (so replies have something to match), and "xenstored" consumes or
// scribbles the request ring, writes raw or well-formed messages (replies echoing real or
// bogus req_ids and types, XS_ERROR, watch events with real or forged tokens and paths,
// oversize lengths) into the response ring, moves its indices anywhere, and signals. Checked:
// no crash, hang or sanitizer report; every completion runs once at most; a watch callback
// only sees its own path or one below it; replies matched never outnumber requests.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <xen/io/xs_wire.h>

#include "fuzz_port.h"
#include "fuzz_support.h"
#include "keel/xen/xenstore.h"

namespace {

using keel::Error;
using keel::Result;
using keel::xen::XenStore;

using keel::fuzz::Input;
using keel::fuzz::Port;

struct alignas(4096) Page {
    xenstore_domain_interface ring;
};

// What the fuzzer, as xenstored, learns from the requests it reads: the last header, and the
// watches' paths and tokens.
struct Seen {
    std::uint32_t req_id = 0, type = 0;
    std::vector<std::pair<std::string, std::string>> watches;  // path, token
};

class Daemon {
public:
    explicit Daemon(volatile xenstore_domain_interface* r) : r_(r) {}

    bool desynced = false;  // the fuzzer moved req_cons: the request stream is not framed for us

    // Consume everything the guest produced (as a sane daemon would), parsing the stream.
    void consume(Seen& seen) {
        const std::uint32_t prod = r_->req_prod;
        std::uint32_t cons = r_->req_cons;
        for (std::uint32_t n = 0; cons != prod && n < XENSTORE_RING_SIZE; ++n, ++cons)
            stream_.push_back(r_->req[MASK_XENSTORE_IDX(cons)]);
        r_->req_cons = prod;
        while (stream_.size() >= sizeof(xsd_sockmsg)) {
            xsd_sockmsg h;
            std::memcpy(&h, stream_.data(), sizeof h);
            if (h.len > XENSTORE_PAYLOAD_MAX) {
                CHECK(desynced);  // the guest frames its requests; only a moved req_cons breaks that
                stream_.clear();
                return;
            }
            if (stream_.size() < sizeof h + h.len) break;
            const std::string payload = stream_.substr(sizeof h, h.len);
            seen.req_id = h.req_id;
            seen.type = h.type;
            if (h.type == XS_WATCH) {
                const std::size_t nul = payload.find('\0');
                CHECK(desynced || (nul != std::string::npos && payload.back() == '\0'));
                if (nul != std::string::npos && payload.size() >= nul + 2)
                    seen.watches.emplace_back(payload.substr(0, nul), payload.substr(nul + 1, payload.size() - nul - 2));
            }
            stream_.erase(0, sizeof h + h.len);
        }
    }

    // Queue a message for the response ring; published as space allows.
    void message(std::uint32_t type, std::uint32_t req_id, std::uint32_t len, const std::string& payload) {
        xsd_sockmsg h{type, req_id, 0, len};
        out_.append(reinterpret_cast<const char*>(&h), sizeof h);
        out_ += payload;
    }
    void raw(const std::string& bytes) { out_ += bytes; }

    // Publish queued bytes that fit, honouring the guest's rsp_cons (or not, when hostile).
    void publish(bool respect_space) {
        std::uint32_t prod = r_->rsp_prod;
        const std::uint32_t cons = r_->rsp_cons;
        std::size_t n = 0;
        while (n < out_.size() && (!respect_space || prod - cons < XENSTORE_RING_SIZE)) {
            r_->rsp[MASK_XENSTORE_IDX(prod)] = out_[n++];
            ++prod;
            if (!respect_space && n >= XENSTORE_RING_SIZE) break;
        }
        out_.erase(0, n);
        r_->rsp_prod = prod;
    }
    void drop_pending() { out_.clear(); }
    bool idle() const { return out_.empty() && r_->rsp_prod == r_->rsp_cons; }

private:
    volatile xenstore_domain_interface* r_;
    std::string stream_;  // request bytes read, not yet a whole message
    std::string out_;     // response bytes not yet in the ring
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Page page;
    std::memset(&page, 0, sizeof page);
    Input in(data, size);
    // Start anywhere in the 32-bit index space, to test the wrap.
    const std::uint32_t start = in.u32();
    page.ring.req_cons = page.ring.req_prod = page.ring.rsp_cons = page.ring.rsp_prod = start;
    Port port;
    auto* xs = new XenStore(&page.ring, port);
    Daemon daemon(&page.ring);
    Seen seen;

    std::vector<int> calls;  // completions per request, indexed by submission
    auto done = [&calls](std::size_t i) { return [&calls, i](auto&&) { CHECK(++calls[i] == 1); }; };
    std::vector<std::string> watched;
    std::vector<keel::xen::WatchId> ids;
    auto add_watch = [&](std::string path) {
        auto id = xs->watch(path, [path](std::string_view p) {
            CHECK(p == path || (p.size() > path.size() && p.substr(0, path.size()) == path && p[path.size()] == '/'));
        });
        if (id) ids.push_back(*id);
    };
    add_watch("device/vif");
    add_watch("/local/domain/0/backend");

    auto submit = [&](std::uint8_t kind) {
        const std::size_t i = calls.size();
        calls.push_back(0);
        const std::string path = "data/" + std::to_string(kind % 4);
        switch (kind % 8) {
            case 0: xs->read(path, done(i)); break;
            case 1: xs->write(path, std::string(kind, 'v'), done(i)); break;
            case 2: xs->mkdir(path, done(i)); break;
            case 3: xs->remove(path, done(i)); break;
            case 4: xs->directory(path, done(i)); break;
            case 5: xs->transaction_start(done(i)); break;
            case 6: xs->transaction_end(kind, kind & 8, done(i)); break;
            default:
                calls[i] = 1;  // not a request with a completion
                if (kind & 8 && !ids.empty()) {
                    xs->unwatch(ids.back());
                    ids.pop_back();
                } else {
                    add_watch(path);
                }
        }
    };
    submit(0);
    submit(4);

    for (int steps = 0; !in.empty() && steps < 2000; ++steps) {
        const std::uint8_t op = in.u8();
        switch (op % 11) {
            case 0: daemon.consume(seen); break;
            case 1: page.ring.req_cons = in.u32(); daemon.desynced = true; break;  // hostile
            case 2: daemon.raw(in.bytes(in.u8())); break;                    // unframed bytes
            case 3: page.ring.rsp_prod = page.ring.rsp_prod + in.u8() * 8u; break;  // hostile
            case 4: page.ring.rsp_prod = in.u32(); break;                      // hostile
            case 5: {  // a reply: the real req_id and type, or not; an honest length, or not
                const std::uint8_t how = in.u8();
                const std::uint32_t type = how & 1 ? seen.type : how & 2 ? XS_ERROR : in.u8() % (XS_TYPE_COUNT + 2);
                const std::uint32_t req_id = how & 4 ? seen.req_id : in.u32();
                const std::string payload = in.bytes(in.u8() + (how & 8 ? 256u * (in.u8() % 17) : 0u));
                const std::uint32_t len = how & 16 ? in.u32() % (XENSTORE_PAYLOAD_MAX + 64) : payload.size();
                daemon.message(type, req_id, len, payload);
                break;
            }
            case 6: {  // a watch event: a real token (or not), a path (or not) below the watch
                const std::uint8_t how = in.u8();
                std::string path = in.bytes(in.u8() % 32), token = "keel:00:00000001";
                if (!seen.watches.empty()) {
                    const auto& w = seen.watches[how % seen.watches.size()];
                    if (how & 16) path = w.first + (how & 32 ? "/" + path : "");
                    token = w.second;
                }
                if (how & 64) token = in.bytes(16);
                std::string payload = path + '\0' + token;
                if (!(how & 128)) payload += '\0';
                daemon.message(XS_WATCH_EVENT, 0, payload.size(), payload);
                break;
            }
            case 7: daemon.publish(!(op & 0x80)); break;
            case 8: xs->on_event(); break;
            case 9: submit(in.u8()); break;
            default: {  // a sane xenstored answering the current request honestly
                daemon.consume(seen);
                std::string payload = seen.type == XS_READ ? "value" : seen.type == XS_DIRECTORY ? std::string("a\0b\0", 4)
                                      : seen.type == XS_TRANSACTION_START ? std::string("7\0", 2) : std::string("OK\0", 3);
                daemon.message(seen.type, seen.req_id, payload.size(), payload);
                daemon.publish(true);
                xs->on_event();
            }
        }
    }

    // xenstored goes quiet with sane rings: the client settles without a crash.
    daemon.drop_pending();
    page.ring.rsp_prod = page.ring.rsp_cons;
    for (int round = 0; round < 64; ++round) {
        daemon.consume(seen);
        xs->on_event();
    }
    const auto st = xs->stats();
    CHECK(st.replies <= st.requests + 2);
    delete xs;  // pending completions are destroyed, never called
    return 0;
}
