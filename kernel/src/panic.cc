// panic(): format once into static storage (the stack may be what is broken), log, hand over.
#include "keel/panic.h"

#include <cstdarg>

#include "keel/format.h"
#include "keel/log.h"

namespace keel {
namespace {

PanicHandler g_handler = nullptr;
bool g_panicking = false;
char g_message[512];

}  // namespace

void set_panic_handler(PanicHandler h) { g_handler = h; }

void panic(const char* fmt, ...) {
    const bool nested = g_panicking;
    g_panicking = true;

    va_list ap;
    va_start(ap, fmt);
    if (nested) {
        // The first message stays readable in the log; this one says what went wrong after it.
        constexpr char tag[] = "nested panic: ";
        const int n = format(g_message, sizeof g_message, "%s", tag);
        vformat(g_message + n, sizeof g_message - static_cast<std::size_t>(n), fmt, ap);
    } else {
        vformat(g_message, sizeof g_message, fmt, ap);
    }
    va_end(ap);

    if (!nested) log(LogLevel::error, "panic: %s", g_message);
    if (g_handler != nullptr) g_handler(g_message);
    __builtin_trap();
}

}  // namespace keel
