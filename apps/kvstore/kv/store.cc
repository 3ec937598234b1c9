// Store: separate chaining over a power-of-two table. The table doubles when there are more
// entries than buckets and halves below one entry per eight buckets (never while paused).
// Rehashing moves every entry at once; at a million keys that is a few milliseconds of loop
// time, rare enough (each doubling) not to need Redis's incremental rehash.
#include "kv/store.h"

#include <cstring>
#include <new>

#include "keel/siphash.h"

namespace keel::kv {
namespace {

constexpr std::size_t min_buckets = 64;

}  // namespace

Store::Store(const StoreOptions& options) : options_(options) {}

Store::~Store() {
    ++paused_;  // clear() must not allocate a table on the way out
    clear();
    ::operator delete(buckets_);
}

std::uint64_t Store::hash(std::string_view key) const {
    return siphash24(SipKey{options_.seed0, options_.seed1}, key.data(), key.size());
}

Entry** Store::slot(std::string_view key, std::uint64_t h) {
    Entry** at = &buckets_[h & mask_];
    while (*at != nullptr) {
        const Entry* e = *at;
        if (e->hash_ == h && e->key() == key) return at;
        at = &(*at)->next_;
    }
    return at;
}

const Entry* Store::peek(std::string_view key) const {
    if (buckets_ == nullptr) return nullptr;
    const std::uint64_t h = hash(key);
    for (const Entry* e = buckets_[h & mask_]; e != nullptr; e = e->next_) {
        if (e->hash_ == h && e->key() == key) return e;
    }
    return nullptr;
}

const Entry* Store::find(std::string_view key, std::uint64_t now_ns) {
    if (buckets_ == nullptr) return nullptr;
    Entry** at = slot(key, hash(key));
    Entry* e = *at;
    if (e == nullptr) return nullptr;
    if (e->expire_ != 0 && now_ns >= e->expire_) {
        unlink_and_free(at);
        ++expired_total_;
        maybe_resize();
        return nullptr;
    }
    return e;
}

Result<void> Store::set(std::string_view key, std::string_view value, std::uint64_t expire_ns) {
    if (key.size() > 0xffffffffu || value.size() > 0xffffffffu) return Error::invalid_argument;
    if (buckets_ == nullptr && !rehash(min_buckets)) return Error::no_memory;
    const std::uint64_t h = hash(key);
    Entry** at = slot(key, h);
    Entry* old = *at;
    const std::uint64_t need = entry_bytes(key.size(), value.size());
    const std::uint64_t have = old != nullptr ? entry_bytes(old->klen_, old->vlen_) : 0;
    if (options_.max_memory != 0 && need > have && memory_ - have + need > options_.max_memory) {
        return Error::no_memory;
    }
    Entry* e = old;
    if (old == nullptr || old->vlen_ != value.size()) {
        void* mem = ::operator new (need, std::nothrow_t{});
        if (mem == nullptr) return Error::no_memory;
        e = new (mem) Entry(h, expire_ns, static_cast<std::uint32_t>(key.size()),
                            static_cast<std::uint32_t>(value.size()));
        std::memcpy(e->bytes(), key.data(), key.size());
    }
    if (!value.empty()) std::memmove(e->bytes() + key.size(), value.data(), value.size());
    if (old != nullptr) {
        if (old->expire_ != 0) --expiring_;
        data_bytes_ -= old->vlen_;
        memory_ -= have;
        if (e != old) {
            e->next_ = old->next_;
            old->~Entry();
            ::operator delete(old);
            *at = e;
        }
        --size_;
        data_bytes_ -= key.size();
    } else {
        *at = e;
    }
    e->expire_ = expire_ns;
    if (expire_ns != 0) ++expiring_;
    ++size_;
    data_bytes_ += key.size() + value.size();
    memory_ += need;
    if (old == nullptr) maybe_resize();
    return {};
}

void Store::unlink_and_free(Entry** at) {
    Entry* e = *at;
    *at = e->next_;
    if (e->expire_ != 0) --expiring_;
    --size_;
    data_bytes_ -= e->klen_ + e->vlen_;
    memory_ -= entry_bytes(e->klen_, e->vlen_);
    e->~Entry();
    ::operator delete(e);
}

bool Store::erase(std::string_view key) {
    if (buckets_ == nullptr) return false;
    Entry** at = slot(key, hash(key));
    if (*at == nullptr) return false;
    unlink_and_free(at);
    maybe_resize();
    return true;
}

void Store::clear() {
    for (std::size_t b = 0; b < bucket_count(); ++b) {
        while (buckets_[b] != nullptr) unlink_and_free(&buckets_[b]);
    }
    if (paused_ == 0 && buckets_ != nullptr) {
        memory_ -= (mask_ + 1) * sizeof(Entry*);
        ::operator delete(buckets_);
        buckets_ = nullptr;
        mask_ = 0;
    }
    sweep_cursor_ = 0;
}

std::size_t Store::sweep(std::uint64_t now_ns, std::size_t max_buckets) {
    std::size_t deleted = 0;
    // One pass over the table at most: going round again finds nothing new to expire.
    const std::size_t visits = buckets_ == nullptr ? 0 : max_buckets < mask_ + 1 ? max_buckets : mask_ + 1;
    for (std::size_t n = 0; n < visits; ++n) {
        const std::size_t b = sweep_cursor_++ & mask_;
        Entry** at = &buckets_[b];
        while (*at != nullptr) {
            if ((*at)->expire_ != 0 && now_ns >= (*at)->expire_) {
                unlink_and_free(at);
                ++deleted;
            } else {
                at = &(*at)->next_;
            }
        }
    }
    expired_total_ += deleted;
    if (deleted != 0) maybe_resize();
    return deleted;
}

void Store::resume_resize() {
    if (paused_ != 0 && --paused_ == 0) maybe_resize();
}

void Store::maybe_resize() {
    if (paused_ != 0 || buckets_ == nullptr) return;
    const std::size_t n = mask_ + 1;
    if (size_ > n) {
        (void)rehash(n * 2);  // on failure the chains just get longer
    } else if (size_ == 0) {
        memory_ -= n * sizeof(Entry*);
        ::operator delete(buckets_);
        buckets_ = nullptr;
        mask_ = 0;
    } else if (n > min_buckets && size_ < n / 8) {
        (void)rehash(n / 2);
    }
}

bool Store::rehash(std::size_t buckets) {
    const std::uint64_t extra = buckets * sizeof(Entry*);
    void* mem = ::operator new (extra, std::nothrow_t{});
    if (mem == nullptr) return false;
    auto** table = static_cast<Entry**>(mem);
    for (std::size_t b = 0; b < buckets; ++b) table[b] = nullptr;
    const std::size_t old_count = bucket_count();
    for (std::size_t b = 0; b < old_count; ++b) {
        Entry* e = buckets_[b];
        while (e != nullptr) {
            Entry* next = e->next_;
            Entry** head = &table[e->hash_ & (buckets - 1)];
            e->next_ = *head;
            *head = e;
            e = next;
        }
    }
    memory_ -= old_count * sizeof(Entry*);
    memory_ += extra;
    ::operator delete(buckets_);
    buckets_ = table;
    mask_ = buckets - 1;
    return true;
}

}  // namespace keel::kv
