// keel_main: the kernel's start after platform-xen has the CPU, page tables and events up.
// Memory, C++ runtime, logging, the event loop, the drivers' KEEL_INIT entries (PV console,
// xenstore and the toolstack's control requests, frontends), then the service.
#include <cstring>

#include "keel/cmdline.h"
#include "keel/init.h"
#include "keel/heap.h"
#include "keel/log.h"
#include "keel/loop.h"
#include "keel/page_alloc.h"
#include "keel/panic.h"
#include "keel/service.h"
#include "keel/task.h"
#include "keel/xen/platform.h"
#include "keel/xen/profile.h"

extern "C" {
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();
extern const keel::InitEntry __keel_init_start[], __keel_init_end[];
}

namespace keel {
namespace {

// Built by hand in init_memory(): global constructors run later (they may allocate) and
// would otherwise reset these.
alignas(PageAllocator) unsigned char g_pages_storage[sizeof(PageAllocator)];
PageAllocator* g_pages = nullptr;

struct Pages final : Heap::PageSource {
    void* alloc_pages(std::size_t n) override {
        auto r = g_pages->alloc(n);
        return r.ok() ? reinterpret_cast<void*>(r.value()) : nullptr;
    }
    void free_pages(void* p, std::size_t n) override { g_pages->free(reinterpret_cast<std::uint64_t>(p), n); }
    std::size_t free_page_count() const override { return g_pages->free_pages(); }
} g_page_source;

alignas(Heap) unsigned char g_heap_storage[sizeof(Heap)];

struct EarlySink final : LogSink {
    void write(std::string_view line) override { xen::early_write(line); }
} g_early_sink;

struct XenLoopPlatform final : LoopPlatform {
    std::uint64_t now_ns() override { return xen::now_ns(); }
    void arm_timer(std::uint64_t deadline_ns) override { xen::set_timer(deadline_ns); }
    bool poll_events() override { return xen::dispatch_events(); }
    void idle() override { xen::idle(); }
} g_loop_platform;

int g_exit_status = 0;
StopReason g_stop_reason = StopReason::poweroff;
bool g_service_done = false;

void init_memory() {
    g_pages = new (g_pages_storage) PageAllocator();
    xen::MemRegion regions[64];
    std::size_t n = xen::free_ram(regions, 64);
    for (std::size_t i = 0; i < n; ++i) {
        if (auto r = g_pages->add_range(regions[i].base, regions[i].length); !r.ok()) {
            xen::early_write("keel: too many RAM regions; ignoring the rest\n");
            break;
        }
    }
    set_global_heap(new (g_heap_storage) Heap(g_page_source));
}

void run_constructors() {
    for (auto* f = __init_array_start; f != __init_array_end; ++f) (*f)();
}

[[noreturn]] void panic_to_crash(const char* message) { xen::crash(message); }

void log_boot_facts() {
    const auto v = xen::xen_version();
    const auto& p = xen::protection_report();
    const auto& b = xen::boot_info();
    KLOG_INFO("keel on Xen %u.%u%s as a %s guest, %lu MiB RAM, image %lu KiB", v.major, v.minor, v.extra,
              xen::to_string(xen::guest_mode()),
              static_cast<unsigned long>(b.ram_bytes() >> 20), static_cast<unsigned long>(p.image_bytes >> 10));
    KLOG_INFO("W^X audit: %lu pages mapped, %lu writable, %lu executable, %lu writable+executable, page 0 %s, "
              "%lu page-table pages read-only",
              static_cast<unsigned long>(p.mapped_pages), static_cast<unsigned long>(p.writable_pages),
              static_cast<unsigned long>(p.executable_pages), static_cast<unsigned long>(p.wx_pages),
              p.page0_mapped ? "MAPPED" : "unmapped", static_cast<unsigned long>(p.table_pages));
    KLOG_INFO("memory: %lu free pages; command line: \"%s\"", static_cast<unsigned long>(g_pages->free_pages()),
              b.cmdline.data());
}

[[noreturn]] void finish() {
    if (g_stop_reason == StopReason::poweroff && g_exit_status != 0) {
        KLOG_ERROR("service exited with status %d: crashing so on_crash applies", g_exit_status);
        xen::shutdown(xen::ShutdownReason::crash);
    }
    const xen::StackUse stack = xen::stack_use();
    KLOG_INFO("%s (stack: %lu of %lu KiB used at most)", g_stop_reason == StopReason::reboot ? "rebooting" : "powering off",
              static_cast<unsigned long>((stack.peak + 1023) >> 10), static_cast<unsigned long>(stack.size >> 10));
    xen::shutdown(g_stop_reason == StopReason::reboot ? xen::ShutdownReason::reboot : xen::ShutdownReason::poweroff);
}

Task<void> run_service(Service& service, const CommandLine& args) {
    g_exit_status = co_await service.run(args);
    g_service_done = true;
    loop().stop();
}

}  // namespace

void request_stop(StopReason reason) {
    static bool stopping = false;
    if (stopping) return;
    stopping = true;
    g_stop_reason = reason;
    KLOG_INFO("shutdown requested (%s): stopping the service", reason == StopReason::reboot ? "reboot" : "poweroff");
    keel_service_instance().stop();
    static Timer deadline;
    deadline.start_in(stop_timeout_ns, [] {
        KLOG_WARN("service did not stop within %lu s; shutting down anyway",
                  static_cast<unsigned long>(stop_timeout_ns / 1'000'000'000ull));
        loop().stop();
    });
}

void request_poweroff(int status) {
    g_exit_status = status;
    loop().stop();
}

}  // namespace keel

using namespace keel;

extern "C" [[noreturn]] void keel_main() {
    init_memory();
    run_constructors();   // before any other global is touched: they may reset it
    set_panic_handler(panic_to_crash);
    set_log_clock(xen::now_ns);
    set_log_sink(&g_early_sink);

    // The command line first, so that loglevel= applies to the drivers' lines too; what is
    // wrong with it is reported once the console is up.
    const char* why = nullptr;
    const auto& boot = xen::boot_info();
    auto args = CommandLine::parse(std::string_view(boot.cmdline.data(), boot.cmdline_len), &why);
    const auto level = args.ok() ? args.value().get("loglevel") : std::nullopt;
    const bool level_ok = !level.has_value() || set_log_levels(*level).ok();

    static EventLoop event_loop(g_loop_platform);
    set_loop(&event_loop);

    // Drivers (the PV console first: it takes over logging) register with KEEL_INIT.
    for (const InitEntry* e = __keel_init_start; e != __keel_init_end; ++e) e->fn();
    log_boot_facts();

    if (!args.ok()) {
        KLOG_ERROR("bad command line: %s", why ? why : to_string(args.error()));
        xen::shutdown(xen::ShutdownReason::crash);
    }
    if (!level_ok) {
        KLOG_ERROR("bad command line: loglevel=%.*s: want LEVEL[,SUBSYSTEM=LEVEL...] (at most %zu), "
                   "LEVEL one of error, warn, info, debug",
                   static_cast<int>(level->size()), level->data(), max_log_subsystems);
        xen::shutdown(xen::ShutdownReason::crash);
    }

    // profile=HZ: the sampling profiler (docs/profiling.md); its table comes from the heap.
    if (Result<std::uint64_t> hz = args.value().get_uint("profile", 0, 1, 1000); !hz) {
        KLOG_ERROR("bad command line: profile=%.*s: want a sampling rate of 1 to 1000 (Hz)",
                   static_cast<int>(args.value().get("profile").value_or("").size()),
                   args.value().get("profile").value_or("").data());
        xen::shutdown(xen::ShutdownReason::crash);
    } else if (*hz != 0) {
        constexpr std::size_t slots = 4096;  // distinct stacks, 80 bytes each
        auto* table = static_cast<xen::StackProfile::Entry*>(
            global_heap().alloc(slots * sizeof(xen::StackProfile::Entry), alignof(xen::StackProfile::Entry)));
        const Result<void> r = table ? xen::start_profiling(static_cast<unsigned>(*hz), table, slots)
                                     : Result<void>(Error::no_memory);
        if (r) {
            KLOG_INFO("profile: sampling at %lu Hz; `xl sysrq DOMAIN p` prints the profile",
                      static_cast<unsigned long>(*hz));
        } else {
            KLOG_ERROR("profile: cannot start (%s); running without it", to_string(r.error()));
        }
    }

    Service& service = keel_service_instance();
    KLOG_INFO("service starting (%lu us after entry)",
              static_cast<unsigned long>((xen::now_ns() - xen::protection_report().boot_ns) / 1000));
    static CommandLine service_args = args.value();
    spawn(run_service(service, service_args));
    event_loop.run();
    finish();
}
