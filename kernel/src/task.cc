// Task support that does not need to be a template: spawn and frame accounting.
#include "keel/task.h"

#include <new>

namespace keel {
namespace {

// Context: loop only (one vCPU).
std::size_t g_live_frames = 0;

}  // namespace

namespace detail {

void* alloc_task_frame(std::size_t n) {
    void* p = ::operator new(n);
    ++g_live_frames;
    return p;
}

void free_task_frame(void* p, std::size_t n) {
    --g_live_frames;
    ::operator delete(p, n);
}

}  // namespace detail

std::size_t live_task_frames() { return g_live_frames; }

void spawn(Task<void> t) {
    Task<void>::Handle h = t.release();
    KASSERT(h && !h.done());
    auto& p = h.promise();
    p.detached = true;
    if (p.started) return;  // already running (start()): it frees itself when it finishes
    p.started = true;
    h.resume();
}

}  // namespace keel
