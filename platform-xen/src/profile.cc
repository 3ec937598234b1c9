// The sampling profiler's table and report (keel/xen/profile.h).
#include "keel/xen/profile.h"

#include "keel/format.h"

namespace keel::xen {
namespace {

std::uint64_t hash(const std::uint64_t* pcs, unsigned depth) {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ depth;
    for (unsigned i = 0; i < depth; ++i) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h;
}

bool same(const StackProfile::Entry& e, const std::uint64_t* pcs, unsigned depth) {
    if (e.depth != depth) return false;
    for (unsigned i = 0; i < depth; ++i) {
        if (e.pcs[i] != pcs[i]) return false;
    }
    return true;
}

/// "12.3%" of `total` (one decimal, rounded down).
void percent(char (&buf)[16], std::uint64_t part, std::uint64_t total) {
    const std::uint64_t tenths = total == 0 ? 0 : part * 1000 / total;
    format(buf, sizeof buf, "%3lu.%lu%%", static_cast<unsigned long>(tenths / 10),
           static_cast<unsigned long>(tenths % 10));
}

}  // namespace

StackProfile::StackProfile(Entry* table, std::size_t slots) : table_(table), slots_(table ? slots : 0) {
    for (std::size_t i = 0; i < slots_; ++i) table_[i] = Entry{};
}

void StackProfile::add(const std::uint64_t* pcs, unsigned depth) {
    if (depth == 0 || pcs == nullptr) return;
    if (depth > max_depth) depth = max_depth;
    ++samples_;
    if (slots_ == 0) {
        ++dropped_;
        return;
    }
    // Open addressing, bounded probing: a table that is nearly full drops rather than scans.
    constexpr std::size_t max_probe = 32;
    std::size_t i = hash(pcs, depth) % slots_;
    for (std::size_t probe = 0; probe < max_probe && probe < slots_; ++probe, i = (i + 1) % slots_) {
        Entry& e = table_[i];
        if (e.count == 0) {
            for (unsigned k = 0; k < depth; ++k) e.pcs[k] = pcs[k];
            e.depth = static_cast<std::uint8_t>(depth);
            e.count = 1;
            ++used_;
            return;
        }
        if (same(e, pcs, depth)) {
            if (e.count != ~std::uint32_t{0}) ++e.count;
            return;
        }
    }
    ++dropped_;
}

void StackProfile::report(void (*out)(const char* line), Symbolizer symbolize, unsigned top) const {
    if (out == nullptr) return;
    char line[256];
    format(line, sizeof line, "profile: %lu samples, %zu distinct stacks, %lu dropped (table full)",
           static_cast<unsigned long>(samples_), used_, static_cast<unsigned long>(dropped_));
    out(line);
    if (samples_ == 0) return;

    // Self samples per function: the function of each stack's first PC.
    struct Func {
        std::uint64_t start;
        std::uint64_t end;  ///< the function is [start, end), or from start on if ~0; unknown: start
        std::uint64_t count;
        bool shown;
    };
    // An unknown PC (end == start) is its own function: it matches only itself.
    const auto in_func = [](const Func& f, std::uint64_t pc) {
        return f.start == pc || (f.start < pc && (pc < f.end || f.end == ~std::uint64_t{0}));
    };
    constexpr std::size_t max_funcs = 128;
    Func funcs[max_funcs];
    std::size_t nfuncs = 0;
    std::uint64_t other = 0;
    char name[160];
    for (std::size_t i = 0; i < slots_; ++i) {
        const Entry& e = table_[i];
        if (e.count == 0) continue;
        const std::uint64_t pc = e.pcs[0];
        std::size_t f = 0;
        while (f < nfuncs && !in_func(funcs[f], pc)) ++f;
        if (f == nfuncs) {
            if (nfuncs == max_funcs) {
                other += e.count;
                continue;
            }
            std::uint64_t start = 0, end = 0;
            if (!symbolize || !symbolize(pc, name, sizeof name, &start, &end))
                start = end = pc;  // the PC alone
            funcs[nfuncs++] = {start, end, 0, false};
        }
        funcs[f].count += e.count;
    }
    out("profile: top functions (self samples)");
    char pct[16];
    for (unsigned n = 0; n < top; ++n) {
        Func* best = nullptr;
        for (std::size_t f = 0; f < nfuncs; ++f) {
            if (!funcs[f].shown && (best == nullptr || funcs[f].count > best->count)) best = &funcs[f];
        }
        if (best == nullptr) break;
        best->shown = true;
        std::uint64_t start = 0, end = 0;
        if (!symbolize || !symbolize(best->start, name, sizeof name, &start, &end))
            format(name, sizeof name, "?");
        percent(pct, best->count, samples_);
        format(line, sizeof line, "  %s %8lu  %#lx %s", pct, static_cast<unsigned long>(best->count),
               static_cast<unsigned long>(best->start), name);
        out(line);
    }
    if (other != 0) {
        percent(pct, other, samples_);
        format(line, sizeof line, "  %s %8lu  (other functions)", pct, static_cast<unsigned long>(other));
        out(line);
    }

    out("profile: top stacks (PC first, then callers)");
    std::uint64_t shown_below = ~std::uint64_t{0};  // counts already printed are <= this
    std::size_t shown_at = slots_;                  // ... and equal ones after this index
    for (unsigned n = 0; n < top; ++n) {
        // The next entry in (count descending, index ascending) order.
        const Entry* best = nullptr;
        std::size_t best_i = 0;
        for (std::size_t i = 0; i < slots_; ++i) {
            const Entry& e = table_[i];
            if (e.count == 0) continue;
            const bool after =
                e.count < shown_below || (e.count == shown_below && shown_at != slots_ && i > shown_at);
            if (!after) continue;
            if (best == nullptr || e.count > best->count) {
                best = &e;
                best_i = i;
            }
        }
        if (best == nullptr) break;
        shown_below = best->count;
        shown_at = best_i;
        percent(pct, best->count, samples_);
        format(line, sizeof line, "  %s %8lu", pct, static_cast<unsigned long>(best->count));
        out(line);
        for (unsigned k = 0; k < best->depth; ++k) {
            std::uint64_t start = 0, end = 0;
            // A return address points after its call: name the call's function.
            const std::uint64_t pc = k == 0 ? best->pcs[k] : best->pcs[k] - 1;
            if (symbolize && symbolize(pc, name, sizeof name, &start, &end)) {
                format(line, sizeof line, "      %#lx %s+%#lx", static_cast<unsigned long>(best->pcs[k]),
                       name, static_cast<unsigned long>(pc - start));
            } else {
                format(line, sizeof line, "      %#lx ?", static_cast<unsigned long>(best->pcs[k]));
            }
            out(line);
        }
    }
}

}  // namespace keel::xen
