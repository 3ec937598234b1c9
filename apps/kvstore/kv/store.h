// The in-memory key space: a chained hash table of string keys to string values with an
// optional expiry time each. Keys come from the network, so the hash is keyed (SipHash-2-4 with
// a seed from the service) to keep crafted keys from piling into one chain.
//
// Time is whatever clock the caller passes in, in nanoseconds; the service passes Unix time so
// that expiry times written to the log mean the same after a reboot. An entry is expired once
// now >= its expiry. Expired entries are deleted lazily (find() on access) and by sweep().
//
// Context: loop only. Nothing here yields, so an Entry pointer stays valid until the next call
// that changes the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/result.h"

namespace keel::kv {

struct StoreOptions {
    std::uint64_t max_memory = 0;  ///< bytes of entries and table (memory()); 0 = no limit
    std::uint64_t seed0 = 0;       ///< hash key: pass something unpredictable (TSC, clock)
    std::uint64_t seed1 = 0;
};

/// One key with its value, in a single allocation.
class Entry {
public:
    std::string_view key() const { return {bytes(), klen_}; }
    std::string_view value() const { return {bytes() + klen_, vlen_}; }
    /// Expiry time in the store's clock; 0 = never.
    std::uint64_t expire_ns() const { return expire_; }

private:
    friend class Store;
    Entry(std::uint64_t hash, std::uint64_t expire, std::uint32_t klen, std::uint32_t vlen)
        : hash_(hash), expire_(expire), klen_(klen), vlen_(vlen) {}
    const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
    char* bytes() { return reinterpret_cast<char*>(this + 1); }

    Entry* next_ = nullptr;
    std::uint64_t hash_;
    std::uint64_t expire_;
    std::uint32_t klen_;
    std::uint32_t vlen_;
};

class Store {
public:
    explicit Store(const StoreOptions& options = {});
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    /// The entry for `key`, or nullptr. An entry found expired is deleted (and counted).
    const Entry* find(std::string_view key, std::uint64_t now_ns);
    /// The entry for `key` whether or not it has expired (for replay and tests).
    const Entry* peek(std::string_view key) const;
    /// Insert or replace `key`. Error::no_memory over max_memory or when the heap is out;
    /// Error::invalid_argument for a key or value over 4 GiB. On error nothing changed.
    Result<void> set(std::string_view key, std::string_view value, std::uint64_t expire_ns);
    /// Delete `key`; false if it was not there (expired or not).
    bool erase(std::string_view key);
    /// Delete everything.
    void clear();

    /// Entries, including expired ones not yet deleted.
    std::size_t size() const { return size_; }
    /// Entries with an expiry time.
    std::size_t expiring() const { return expiring_; }
    /// Bytes held: entries (header, key, value) and the bucket table.
    std::uint64_t memory() const { return memory_; }
    /// Sum of key and value sizes of all entries.
    std::uint64_t data_bytes() const { return data_bytes_; }
    /// Entries deleted because they expired, since construction.
    std::uint64_t expired_total() const { return expired_total_; }
    std::uint64_t max_memory() const { return options_.max_memory; }

    /// Delete expired entries in at most `max_buckets` buckets, continuing where the previous
    /// call stopped (round-robin over the table). Returns the number deleted.
    std::size_t sweep(std::uint64_t now_ns, std::size_t max_buckets);

    /// The table, for iteration: visit buckets 0 .. bucket_count()-1.
    std::size_t bucket_count() const { return buckets_ != nullptr ? mask_ + 1 : 0; }
    template <typename F>
    void for_each_in_bucket(std::size_t b, F&& f) const {
        for (const Entry* e = buckets_[b]; e != nullptr; e = e->next_) f(*e);
    }
    template <typename F>
    void for_each(F&& f) const {
        for (std::size_t b = 0; b < bucket_count(); ++b) for_each_in_bucket(b, f);
    }

    /// While paused (calls nest), the bucket table keeps its size, so an iteration that yields
    /// between buckets (a snapshot written to disk) sees every entry that stays in the store.
    void pause_resize() { ++paused_; }
    void resume_resize();

private:
    static std::uint64_t entry_bytes(std::size_t klen, std::size_t vlen) {
        return sizeof(Entry) + klen + vlen;
    }
    std::uint64_t hash(std::string_view key) const;
    Entry** slot(std::string_view key, std::uint64_t h);
    void unlink_and_free(Entry** at);
    void maybe_resize();
    bool rehash(std::size_t buckets);

    StoreOptions options_;
    Entry** buckets_ = nullptr;
    std::size_t mask_ = 0;  // bucket count - 1, when buckets_ is set
    std::size_t size_ = 0;
    std::size_t expiring_ = 0;
    std::uint64_t memory_ = 0;
    std::uint64_t data_bytes_ = 0;
    std::uint64_t expired_total_ = 0;
    std::size_t sweep_cursor_ = 0;
    unsigned paused_ = 0;
};

}  // namespace keel::kv
