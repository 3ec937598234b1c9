// Glob patterns as KEYS and CONFIG GET use them.
#pragma once

#include <string_view>

namespace keel::kv {

/// Whole-string match of `s` against `pattern`:
///   *        any run of bytes, also empty     ?      exactly one byte
///   [abc]    one byte of the set              [a-z]  one byte in the range (either order)
///   [^abc]   one byte not in the set (also [!abc])
///   \x       the byte x itself, outside or inside brackets ("[\]]" is the set of ']')
///   []       a set without members: matches nothing ("[^]" matches any byte)
/// A '[' without its closing ']' and a trailing '\' stand for themselves. Bytes compare
/// exactly (case-sensitive). Runs in O(len(pattern) * len(s)) time whatever the pattern (no
/// exponential backtracking on "a*a*a*...b").
bool glob_match(std::string_view pattern, std::string_view s);

}  // namespace keel::kv
