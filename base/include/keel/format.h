// printf-style formatting into a caller's buffer: no allocation, no global state, usable from
// any context (including panic and trap handlers).
#pragma once

#include <cstdarg>
#include <cstddef>

namespace keel {

/// Format like vsnprintf. Conversions: %d %i %u %o %x %X %p %s %c %%; flags '-' '0' '+' ' ' '#';
/// width and precision (digits or '*'); length modifiers hh h l ll z j t.
/// %s of nullptr prints "(null)"; %p prints 0x<hex> (also for nullptr: "0x0").
/// An unknown conversion is copied to the output as written.
/// Returns the length the full output would have (excluding the NUL), like snprintf; writes at
/// most size-1 characters and always NUL-terminates when size > 0. buf may be nullptr if size is 0.
int vformat(char* buf, std::size_t size, const char* fmt, va_list ap);

/// format(buf, size, fmt, ...) == vformat(buf, size, fmt, ap).
int format(char* buf, std::size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace keel
