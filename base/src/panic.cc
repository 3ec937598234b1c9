// panic(): format once into static storage (the stack may be what is broken), report, hand over.
#include "keel/panic.h"

#include <cstdarg>

#include "keel/format.h"

namespace keel {
namespace {

PanicHandler g_handler = nullptr;
PanicHandler g_reporter = nullptr;
bool g_panicking = false;
char g_message[512];

}  // namespace

void set_panic_handler(PanicHandler h) { g_handler = h; }
void set_panic_reporter(PanicHandler r) { g_reporter = r; }

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

    if (!nested && g_reporter != nullptr) g_reporter(g_message);
    if (g_handler != nullptr) g_handler(g_message);
    __builtin_trap();
}

}  // namespace keel
