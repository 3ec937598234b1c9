// The fake xenstored: daemon side of io/xs_wire.h, with the checks a strict daemon would make.
#include "fakes/fake_xenstored.h"

#include <gtest/gtest.h>

#include <cstring>

namespace keel::test {

namespace {

std::uint32_t load_acquire(const volatile std::uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(volatile std::uint32_t* p, std::uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

std::string child_prefix(const std::string& abs_path) {
    return abs_path == "/" ? std::string("/") : abs_path + "/";
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

std::size_t count_nuls(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\0';
    return n;
}

}  // namespace

void report_livelock(const char* who) {
    ADD_FAILURE() << who << ": guest and fake backend kept signalling each other";
}

void FakeXsPort::notify() {
    ++notifies;
    daemon_.step_if_auto();
}

void FakeXsPort::wait() {
    ++waits;
    daemon_.step();
    daemon_.clear_guest_pending();  // wait() consumes the pending bit
}

FakeXenstored::FakeXenstored(unsigned domid, std::uint32_t start_index)
    : port_(*this),
      home_("/local/domain/" + std::to_string(domid)),
      req_cons_(start_index),
      rsp_prod_(start_index),
      last_req_prod_(start_index),
      last_rsp_cons_(start_index) {
    page_.ring.req_cons = page_.ring.req_prod = start_index;
    page_.ring.rsp_cons = page_.ring.rsp_prod = start_index;
    tree_["/"] = "";
    tree_["/local"] = "";
    tree_["/local/domain"] = "";
    tree_[home_] = "";
}

void FakeXenstored::violation(const std::string& what) {
    ++violations_;
    ADD_FAILURE() << "xenstore protocol violation by the guest: " << what;
}

std::string FakeXenstored::abs(std::string_view path) const {
    if (!path.empty() && path[0] == '/') return std::string(path);
    return home_ + "/" + std::string(path);
}

std::string FakeXenstored::rel(const std::string& abs_path) const {
    const std::string prefix = home_ + "/";
    return starts_with(abs_path, prefix) ? abs_path.substr(prefix.size()) : abs_path;
}

bool FakeXenstored::valid_path(std::string_view path) const {
    if (path.empty()) return false;
    if (path == "/") return true;
    if (path.back() == '/' || path.find("//") != std::string_view::npos) return false;
    for (char c : path) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '/' || c == '_' || c == '-' || c == '@' || c == '.';
        if (!ok) return false;
    }
    return true;
}

bool FakeXenstored::is_read_only(const std::string& abs_path) const {
    for (const auto& p : read_only_) {
        if (abs_path == p || starts_with(abs_path, child_prefix(p))) return true;
    }
    return false;
}

// ---- ring -----------------------------------------------------------------------------------

void FakeXenstored::step_if_auto() {
    if (auto_step_) step();
}

void FakeXenstored::step() {
    if (dead_) return;
    volatile xenstore_domain_interface* r = ring();
    // The guest must never write the indices the daemon owns.
    if (r->req_cons != req_cons_) violation("guest wrote req_cons");
    if (r->rsp_prod != rsp_prod_) violation("guest wrote rsp_prod");
    consume_requests();
    if (!hold_replies_) flush_replies();
}

void FakeXenstored::consume_requests() {
    volatile xenstore_domain_interface* r = ring();
    // io/xs_wire.h, consumer side: read req_prod, then the bytes below it.
    const std::uint32_t prod = load_acquire(&r->req_prod);
    if (static_cast<std::int32_t>(prod - last_req_prod_) < 0) {
        violation("req_prod moved backwards");
        return;
    }
    if (prod - req_cons_ > XENSTORE_RING_SIZE) {
        violation("guest wrote beyond the free request-ring space");
        return;
    }
    last_req_prod_ = prod;
    std::uint32_t avail = prod - req_cons_;
    if (req_bytes_per_step_ != 0 && avail > req_bytes_per_step_) {
        avail = static_cast<std::uint32_t>(req_bytes_per_step_);
    }
    for (std::uint32_t i = 0; i < avail; ++i) {
        inbox_.push_back(r->req[MASK_XENSTORE_IDX(req_cons_ + i)]);
    }
    if (avail > 0) {
        req_cons_ += avail;
        store_release(&r->req_cons, req_cons_);  // bytes copied before the space is released
        guest_pending_ = true;                   // xenstored signals after consuming
    }

    while (inbox_.size() >= sizeof(xsd_sockmsg)) {
        xsd_sockmsg h;
        std::memcpy(&h, inbox_.data(), sizeof h);
        if (h.len > XENSTORE_PAYLOAD_MAX) {
            violation("request len " + std::to_string(h.len) + " > XENSTORE_PAYLOAD_MAX");
            dead_ = true;
            return;
        }
        if (inbox_.size() < sizeof h + h.len) break;
        std::string payload = inbox_.substr(sizeof h, h.len);
        inbox_.erase(0, sizeof h + h.len);
        seen_.push_back({h.type, h.req_id, h.tx_id, payload});
        if (!unanswered_.insert(h.req_id).second) {
            violation("req_id " + std::to_string(h.req_id) + " reused while unanswered");
        }
        handle(h.type, h.req_id, h.tx_id, payload);
        if (dead_) return;
    }
}

void FakeXenstored::push(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id,
                         std::string_view payload) {
    xsd_sockmsg h{type, req_id, tx_id, static_cast<std::uint32_t>(payload.size())};
    outbox_.append(reinterpret_cast<const char*>(&h), sizeof h);
    outbox_.append(payload);
}

void FakeXenstored::inject(std::uint32_t type, std::uint32_t req_id, std::string_view payload) {
    push(type, req_id, 0, payload);
    if (!hold_replies_) flush_replies();
}

void FakeXenstored::flush_replies() {
    volatile xenstore_domain_interface* r = ring();
    // io/xs_wire.h, producer side: read rsp_cons before reusing the space it frees.
    const std::uint32_t cons = load_acquire(&r->rsp_cons);
    if (rsp_resync_expected_) {
        if (cons != rsp_prod_) return;  // the guest has not caught up with our jump yet
        rsp_resync_expected_ = false;
    } else {
        if (rsp_prod_ - cons > XENSTORE_RING_SIZE) violation("rsp_cons moved beyond rsp_prod");
        if (static_cast<std::int32_t>(cons - last_rsp_cons_) < 0) violation("rsp_cons moved backwards");
    }
    last_rsp_cons_ = cons;
    std::size_t space = XENSTORE_RING_SIZE - (rsp_prod_ - cons);
    if (space > outbox_.size()) space = outbox_.size();
    if (rsp_bytes_per_step_ != 0 && space > rsp_bytes_per_step_) space = rsp_bytes_per_step_;
    if (space == 0) return;
    for (std::size_t i = 0; i < space; ++i) {
        r->rsp[MASK_XENSTORE_IDX(rsp_prod_ + i)] = outbox_[i];
    }
    outbox_.erase(0, space);
    rsp_prod_ += static_cast<std::uint32_t>(space);
    store_release(&r->rsp_prod, rsp_prod_);  // bytes visible before the index
    guest_pending_ = true;
}

// ---- replies and misbehaviour ---------------------------------------------------------------

void FakeXenstored::reply(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id,
                          std::string payload) {
    unanswered_.erase(req_id);
    const Misbehave m = misbehave_;
    misbehave_ = Misbehave::none;
    switch (m) {
        case Misbehave::none:
            break;
        case Misbehave::wrong_req_id:
            push(type, req_id + 1000, tx_id, payload);
            return;
        case Misbehave::wrong_req_id_then_real:
            push(type, req_id + 1000, tx_id, payload);
            break;
        case Misbehave::wrong_type:
            push(type == XS_READ ? XS_DIRECTORY : XS_READ, req_id, tx_id, payload);
            return;
        case Misbehave::len_too_big: {
            xsd_sockmsg h{type, req_id, tx_id, XENSTORE_PAYLOAD_MAX + 1};
            outbox_.append(reinterpret_cast<const char*>(&h), sizeof h);
            outbox_.append(8, 'x');
            return;
        }
        case Misbehave::garbage:
            outbox_.append(40, static_cast<char>(0xA5));
            return;
        case Misbehave::rsp_prod_jump:
            rsp_prod_ += 3 * XENSTORE_RING_SIZE;
            store_release(&ring()->rsp_prod, rsp_prod_);
            rsp_resync_expected_ = true;
            guest_pending_ = true;
            return;
        case Misbehave::error_eacces:
            push(XS_ERROR, req_id, tx_id, std::string("EACCES", 7));
            return;
        case Misbehave::bad_ack:
            push(type, req_id, tx_id, std::string("KO", 3));
            return;
        case Misbehave::bad_tx_id:
            push(type, req_id, tx_id, std::string("abc", 4));
            return;
        case Misbehave::silent:
            return;
        case Misbehave::req_cons_ahead:
            req_cons_ = last_req_prod_ + 2 * XENSTORE_RING_SIZE;
            store_release(&ring()->req_cons, req_cons_);
            dead_ = true;
            guest_pending_ = true;
            return;
        case Misbehave::malformed_watch_event:
            push(XS_WATCH_EVENT, 0, 0, "nonuls");
            break;
    }
    push(type, req_id, tx_id, payload);
}

void FakeXenstored::error(std::uint32_t req_id, std::uint32_t tx_id, const char* err) {
    std::string payload(err);
    payload.push_back('\0');
    if (misbehave_ != Misbehave::none) {
        reply(XS_ERROR, req_id, tx_id, payload);
        return;
    }
    unanswered_.erase(req_id);
    push(XS_ERROR, req_id, tx_id, payload);
}

// ---- the tree -------------------------------------------------------------------------------

void FakeXenstored::apply(Tree& tree, const Op& op) {
    if (op.kind == Op::rm) {
        tree.erase(op.path);
        const std::string prefix = child_prefix(op.path);
        for (auto it = tree.lower_bound(prefix); it != tree.end() && starts_with(it->first, prefix);) {
            it = tree.erase(it);
        }
        return;
    }
    // Create missing parents, as xenstored does.
    for (std::size_t slash = op.path.find('/', 1); slash != std::string::npos;
         slash = op.path.find('/', slash + 1)) {
        tree.emplace(op.path.substr(0, slash), "");
    }
    if (op.kind == Op::write)
        tree[op.path] = op.value;
    else
        tree.emplace(op.path, "");
}

void FakeXenstored::fire(const std::string& abs_path, bool removed) {
    for (const Watch& w : watches_) {
        std::string reported;
        if (abs_path == w.abs_path || starts_with(abs_path, child_prefix(w.abs_path))) {
            reported = w.path[0] == '/' ? abs_path : rel(abs_path);
        } else if (removed && starts_with(w.abs_path, child_prefix(abs_path))) {
            reported = w.path;  // a watched node went away with its parent
        } else {
            continue;
        }
        std::string payload = reported;
        payload.push_back('\0');
        payload += w.token;
        payload.push_back('\0');
        push(XS_WATCH_EVENT, 0, 0, payload);
    }
}

void FakeXenstored::set(std::string_view path, std::string_view value) {
    const std::string a = abs(path);
    apply(tree_, {Op::write, a, std::string(value)});
    modified_[a] = ++generation_;
    fire(a, false);
    if (!hold_replies_) flush_replies();
}

std::optional<std::string> FakeXenstored::get(std::string_view path) const {
    auto it = tree_.find(abs(path));
    if (it == tree_.end()) return std::nullopt;
    return it->second;
}

void FakeXenstored::remove(std::string_view path) {
    const std::string a = abs(path);
    apply(tree_, {Op::rm, a, {}});
    modified_[a] = ++generation_;
    fire(a, true);
    if (!hold_replies_) flush_replies();
}

// ---- requests -------------------------------------------------------------------------------

void FakeXenstored::handle(std::uint32_t type, std::uint32_t req_id, std::uint32_t tx_id,
                           const std::string& payload) {
    const std::string ok("OK", 3);
    const std::size_t nuls = count_nuls(payload);
    auto one_arg = [&]() -> std::optional<std::string> {
        if (nuls != 1 || payload.back() != '\0') {
            violation("request type " + std::to_string(type) + " needs exactly one NUL-terminated argument");
            return std::nullopt;
        }
        return payload.substr(0, payload.size() - 1);
    };

    Transaction* tx = nullptr;
    if (tx_id != 0 && type != XS_TRANSACTION_START) {
        auto it = txs_.find(tx_id);
        if (it == txs_.end()) return error(req_id, tx_id, "ENOENT");
        tx = &it->second;
    }
    Tree& tree = tx ? tx->view : tree_;

    auto mutate = [&](Op op) {
        if (tx) {
            tx->touched.insert(op.path);
            apply(tx->view, op);
            tx->ops.push_back(std::move(op));
            return;
        }
        apply(tree_, op);
        modified_[op.path] = ++generation_;
        fire(op.path, op.kind == Op::rm);
    };

    switch (type) {
        case XS_READ: {
            auto path = one_arg();
            if (!path) return;
            if (!valid_path(*path)) return error(req_id, tx_id, "EINVAL");
            const std::string a = abs(*path);
            if (tx) tx->touched.insert(a);
            auto it = tree.find(a);
            if (it == tree.end()) return error(req_id, tx_id, "ENOENT");
            return reply(type, req_id, tx_id, it->second);
        }
        case XS_WRITE: {
            const std::size_t nul = payload.find('\0');
            if (nul == std::string::npos) return violation("XS_WRITE without a NUL after the path");
            const std::string path = payload.substr(0, nul);
            if (!valid_path(path)) return error(req_id, tx_id, "EINVAL");
            const std::string a = abs(path);
            if (is_read_only(a)) return error(req_id, tx_id, "EACCES");
            mutate({Op::write, a, payload.substr(nul + 1)});
            return reply(type, req_id, tx_id, ok);
        }
        case XS_MKDIR: {
            auto path = one_arg();
            if (!path) return;
            if (!valid_path(*path)) return error(req_id, tx_id, "EINVAL");
            const std::string a = abs(*path);
            if (is_read_only(a)) return error(req_id, tx_id, "EACCES");
            if (!tree.count(a)) mutate({Op::mkdir, a, {}});
            return reply(type, req_id, tx_id, ok);
        }
        case XS_RM: {
            auto path = one_arg();
            if (!path) return;
            if (!valid_path(*path)) return error(req_id, tx_id, "EINVAL");
            const std::string a = abs(*path);
            if (is_read_only(a)) return error(req_id, tx_id, "EACCES");
            if (!tree.count(a)) {
                // Removing a missing node is fine while its parent exists.
                const std::string parent = a.substr(0, a.rfind('/'));
                if (!tree.count(parent.empty() ? "/" : parent)) return error(req_id, tx_id, "ENOENT");
                return reply(type, req_id, tx_id, ok);
            }
            mutate({Op::rm, a, {}});
            return reply(type, req_id, tx_id, ok);
        }
        case XS_DIRECTORY: {
            auto path = one_arg();
            if (!path) return;
            if (!valid_path(*path)) return error(req_id, tx_id, "EINVAL");
            const std::string a = abs(*path);
            if (tx) tx->touched.insert(a);
            if (!tree.count(a)) return error(req_id, tx_id, "ENOENT");
            const std::string prefix = child_prefix(a);
            std::string names;
            for (auto it = tree.lower_bound(prefix); it != tree.end() && starts_with(it->first, prefix);
                 ++it) {
                const std::string name = it->first.substr(prefix.size());
                if (name.empty() || name.find('/') != std::string::npos) continue;
                names += name;
                names.push_back('\0');
            }
            if (names.size() > XENSTORE_PAYLOAD_MAX) return error(req_id, tx_id, "E2BIG");
            return reply(type, req_id, tx_id, names);
        }
        case XS_WATCH:
        case XS_UNWATCH: {
            if (nuls != 2 || payload.back() != '\0') {
                return violation("XS_(UN)WATCH needs <path>\\0<token>\\0");
            }
            const std::size_t nul = payload.find('\0');
            const std::string path = payload.substr(0, nul);
            const std::string token = payload.substr(nul + 1, payload.size() - nul - 2);
            if (!valid_path(path)) return error(req_id, tx_id, "EINVAL");
            auto it = watches_.begin();
            while (it != watches_.end() && !(it->path == path && it->token == token)) ++it;
            if (type == XS_UNWATCH) {
                if (it == watches_.end()) return error(req_id, tx_id, "ENOENT");
                watches_.erase(it);
                return reply(type, req_id, tx_id, ok);
            }
            if (it != watches_.end()) return error(req_id, tx_id, "EEXIST");
            const Misbehave m = misbehave_;
            reply(type, req_id, tx_id, ok);
            if (m == Misbehave::error_eacces) return;  // the watch was refused
            watches_.push_back({path, abs(path), token});
            // Like xenstored: fire once up front, after the acknowledgement.
            std::string event = path;
            event.push_back('\0');
            event += token;
            event.push_back('\0');
            push(XS_WATCH_EVENT, 0, 0, event);
            return;
        }
        case XS_TRANSACTION_START: {
            if (payload != std::string(1, '\0'))
                return violation("XS_TRANSACTION_START payload must be \"\\0\"");
            if (tx_id != 0) return violation("XS_TRANSACTION_START inside a transaction");
            const std::uint32_t id = next_tx_++;
            txs_[id] = Transaction{tree_, generation_, {}, {}};
            std::string s = std::to_string(id);
            s.push_back('\0');
            return reply(type, req_id, tx_id, s);
        }
        case XS_TRANSACTION_END: {
            if (payload != std::string("T", 2) && payload != std::string("F", 2)) {
                return violation("XS_TRANSACTION_END payload must be \"T\\0\" or \"F\\0\"");
            }
            if (!tx) return violation("XS_TRANSACTION_END without a transaction id");
            Transaction t = std::move(*tx);
            txs_.erase(tx_id);
            if (payload[0] == 'F') return reply(type, req_id, tx_id, ok);
            bool conflict = force_conflict_;
            force_conflict_ = false;
            for (const auto& p : t.touched) {
                auto it = modified_.find(p);
                if (it != modified_.end() && it->second > t.start_generation) conflict = true;
            }
            if (conflict) return error(req_id, tx_id, "EAGAIN");
            for (const Op& op : t.ops) {
                apply(tree_, op);
                modified_[op.path] = ++generation_;
                fire(op.path, op.kind == Op::rm);
            }
            return reply(type, req_id, tx_id, ok);
        }
        default:
            violation("unsupported request type " + std::to_string(type));
            return error(req_id, tx_id, "ENOSYS");
    }
}

}  // namespace keel::test
