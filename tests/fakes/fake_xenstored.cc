// The fake xenstored: daemon side of io/xs_wire.h, with the checks a strict daemon would make.
#include "fakes/fake_xenstored.h"

#include <gtest/gtest.h>

#include <cstring>

namespace keel::test {

namespace {

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

FakeXenstored::FakeXenstored(unsigned domid, std::uint32_t start_index)
    : port_(*this),
      home_("/local/domain/" + std::to_string(domid)),
      req_({page_.ring.req, &page_.ring.req_prod, &page_.ring.req_cons}, start_index),
      rsp_({page_.ring.rsp, &page_.ring.rsp_prod, &page_.ring.rsp_cons}, start_index) {
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

void FakeXenstored::restart_connection() {
    std::memset(const_cast<xenstore_domain_interface*>(&page_.ring), 0, sizeof page_.ring);
    req_ = BackendReader<XENSTORE_RING_SIZE>({page_.ring.req, &page_.ring.req_prod, &page_.ring.req_cons}, 0);
    rsp_ = BackendWriter<XENSTORE_RING_SIZE>({page_.ring.rsp, &page_.ring.rsp_prod, &page_.ring.rsp_cons}, 0);
    rsp_resync_expected_ = false;
    dead_ = false;
    hold_replies_ = false;
    inbox_.clear();
    outbox_.clear();
    unanswered_.clear();
    txs_.clear();
    watches_.clear();
    guest_pending_ = true;  // the new xenstored signals the new port
}

void FakeXenstored::step_if_auto() {
    if (auto_step_) step();
}

void FakeXenstored::step() {
    if (dead_) return;
    // The guest must never write the indices the daemon owns.
    if (req_.guest_wrote_cons()) violation("guest wrote req_cons");
    if (rsp_.guest_wrote_prod()) violation("guest wrote rsp_prod");
    consume_requests();
    if (!hold_replies_) flush_replies();
}

void FakeXenstored::consume_requests() {
    // io/xs_wire.h, consumer side: read req_prod, then the bytes below it.
    const ByteRingStep step = req_.take(req_bytes_per_step_ != 0 ? req_bytes_per_step_ : SIZE_MAX, inbox_);
    if (step.violation) return violation(std::string("req_prod ") + step.violation);
    if (step.bytes != 0) guest_pending_ = true;  // xenstored signals after consuming

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
    if (rsp_resync_expected_) {
        if (!rsp_.guest_caught_up()) return;  // the guest has not caught up with our jump yet
        rsp_resync_expected_ = false;
        rsp_.resync();
    }
    // io/xs_wire.h, producer side: read rsp_cons before reusing the space it frees.
    const ByteRingStep step = rsp_.put(outbox_, rsp_bytes_per_step_ != 0 ? rsp_bytes_per_step_ : SIZE_MAX);
    if (step.violation) return violation(std::string("rsp_cons ") + step.violation);
    if (step.bytes != 0) guest_pending_ = true;
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
            rsp_.force_prod(rsp_.prod() + 3 * XENSTORE_RING_SIZE);
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
            req_.force_cons(req_.last_prod() + 2 * XENSTORE_RING_SIZE);
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
        const std::string_view parent = std::string_view(op.path).substr(0, slash);
        if (tree.find(parent) == tree.end()) tree.emplace(parent, "");
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
    // Looked up without building a string (every fake backend polls its nodes every round).
    if (path.empty() || path[0] != '/') {
        lookup_.assign(home_);
        lookup_ += '/';
        lookup_ += path;
        path = lookup_;
    }
    auto it = tree_.find(path);
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
    // The absolute path a request names, or nullopt once the request is answered: EINVAL for a
    // malformed path, EACCES when a request that `writes` names a read-only one.
    auto target = [&](const std::string& path, bool writes) -> std::optional<std::string> {
        if (!valid_path(path)) {
            error(req_id, tx_id, "EINVAL");
            return std::nullopt;
        }
        std::string a = abs(path);
        if (writes && is_read_only(a)) {
            error(req_id, tx_id, "EACCES");
            return std::nullopt;
        }
        return a;
    };
    // The one argument as a target (a malformed payload is a violation).
    auto one_target = [&](bool writes) -> std::optional<std::string> {
        auto path = one_arg();
        return path ? target(*path, writes) : std::nullopt;
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
            const auto found = one_target(false);
            if (!found) return;
            const std::string& a = *found;
            if (tx) tx->touched.insert(a);
            auto it = tree.find(a);
            if (it == tree.end()) return error(req_id, tx_id, "ENOENT");
            return reply(type, req_id, tx_id, it->second);
        }
        case XS_WRITE: {
            const std::size_t nul = payload.find('\0');
            if (nul == std::string::npos) return violation("XS_WRITE without a NUL after the path");
            const auto a = target(payload.substr(0, nul), true);
            if (!a) return;
            mutate({Op::write, *a, payload.substr(nul + 1)});
            return reply(type, req_id, tx_id, ok);
        }
        case XS_MKDIR: {
            const auto a = one_target(true);
            if (!a) return;
            if (!tree.count(*a)) mutate({Op::mkdir, *a, {}});
            return reply(type, req_id, tx_id, ok);
        }
        case XS_RM: {
            const auto found = one_target(true);
            if (!found) return;
            const std::string& a = *found;
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
            const auto found = one_target(false);
            if (!found) return;
            const std::string& a = *found;
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
