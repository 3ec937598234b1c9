// glob_match: a linear scan that remembers only the most recent '*'. Every token other than '*'
// matches exactly one byte, so when a later token fails it is enough to let that last star
// swallow one more byte and retry from there: an earlier star could only produce alignments
// the last one also reaches.
#include "kv/glob.h"

#include <cstddef>

namespace keel::kv {
namespace {

// Matches one non-star token at pattern[p] against byte c. Sets `next` to the position after
// the token. The pattern is never empty at p.
bool match_token(std::string_view pat, std::size_t p, char c, std::size_t& next) {
    const char t = pat[p];
    if (t == '?') {
        next = p + 1;
        return true;
    }
    if (t == '\\' && p + 1 < pat.size()) {
        next = p + 2;
        return pat[p + 1] == c;
    }
    if (t == '[') {
        // Find the closing bracket first: without one, '[' is a plain byte.
        std::size_t q = p + 1;
        if (q < pat.size() && (pat[q] == '^' || pat[q] == '!')) ++q;
        const std::size_t body = q;
        std::size_t close = std::string_view::npos;
        for (std::size_t k = body; k < pat.size(); ++k) {
            if (pat[k] == '\\' && k + 1 < pat.size()) {
                ++k;
            } else if (pat[k] == ']') {  // as in Redis, "[]" is a set without members
                close = k;
                break;
            }
        }
        if (close == std::string_view::npos) {
            next = p + 1;
            return c == '[';
        }
        const bool negate = body != p + 1;
        bool hit = false;
        for (std::size_t k = body; k < close; ++k) {
            char lo = pat[k];
            if (lo == '\\' && k + 1 < close) lo = pat[++k];
            char hi = lo;
            if (k + 2 < close && pat[k + 1] == '-') {
                hi = pat[k + 2];
                k += 2;
                if (hi == '\\' && k + 1 < close) hi = pat[++k];
            }
            const auto ul = static_cast<unsigned char>(lo), uh = static_cast<unsigned char>(hi),
                       uc = static_cast<unsigned char>(c);
            if ((ul <= uh && uc >= ul && uc <= uh) || (ul > uh && uc >= uh && uc <= ul)) hit = true;
        }
        next = close + 1;
        return hit != negate;
    }
    next = p + 1;
    return t == c;
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view s) {
    std::size_t p = 0, i = 0;
    std::size_t star_p = std::string_view::npos, star_i = 0;
    while (i < s.size()) {
        if (p < pat.size() && pat[p] == '*') {
            while (p < pat.size() && pat[p] == '*') ++p;
            star_p = p;
            star_i = i;
            continue;
        }
        std::size_t next = 0;
        if (p < pat.size() && match_token(pat, p, s[i], next)) {
            p = next;
            ++i;
            continue;
        }
        if (star_p == std::string_view::npos) return false;
        p = star_p;
        i = ++star_i;
    }
    while (p < pat.size() && pat[p] == '*') ++p;
    return p == pat.size();
}

}  // namespace keel::kv
