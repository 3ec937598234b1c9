// Fuzz target for keel::console::Console, the fuzzer playing xenconsoled. The input is a script
// of steps against the real frontend on a shared console page: the guest logs lines (short and
// long), xenconsoled drains out[] honestly (some or all), moves out_cons or in_prod anywhere,
// types input bytes into in[], signals (on_event) or lets the crash path wait (flush_sync).
// Checked: no crash or sanitizer report; write() never waits; input handed over is exactly
// what was typed, in order, while the backend is honest; and the output stream accounts for
// every byte: what was sent to the ring, plus what waits in the backlog, plus the dropped
// bytes, equals what was written (CRLF-expanded), plus the gap lines.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <xen/io/console.h>

#include "fuzz_port.h"
#include "fuzz_support.h"
#include "keel/console/console.h"

namespace {

using keel::console::Console;

using keel::fuzz::Input;
using keel::fuzz::Port;

struct alignas(4096) Page {
    xencons_interface ring;
};

std::size_t expanded(std::string_view s) {
    std::size_t n = s.size();
    for (char c : s) n += c == '\n';
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Page page;
    std::memset(&page, 0, sizeof page);
    Input in(data, size);
    const std::uint32_t start = in.u32();
    page.ring.out_cons = page.ring.out_prod = page.ring.in_cons = page.ring.in_prod = start;
    volatile xencons_interface* ring = &page.ring;
    std::uint32_t out_cons = start, in_prod = start;  // the daemon's own indices

    Port port;
    auto* console = new Console(ring, port);
    static std::string fallback;
    fallback.clear();
    console->set_fallback(+[](std::string_view s) { fallback.append(s); });
    std::string typed, received;
    console->set_input_handler([&received](std::string_view s) { received.append(s); });

    std::string drained;
    std::size_t written = 0;  // CRLF-expanded bytes offered while the ring was usable
    bool hostile = false;

    for (int steps = 0; !in.empty() && steps < 4000; ++steps) {
        const std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {  // the guest logs a line (or a long text)
                std::string text = in.bytes(op & 0x80 ? in.u8() * 64u : in.u8() % 96);
                if (op & 0x40) text += '\n';
                const unsigned waits = port.waits;
                const bool was_broken = console->broken();
                console->write(text);
                CHECK(port.waits == waits);  // write() never waits
                if (!was_broken) written += expanded(text);
                break;
            }
            case 2: {  // xenconsoled drains some of out[]
                const std::uint32_t prod = ring->out_prod;
                CHECK(hostile || prod - out_cons <= sizeof(xencons_interface::out));
                std::uint32_t n = in.u8() * 16u + 1;
                for (; n != 0 && out_cons != prod; --n, ++out_cons)
                    drained.push_back(ring->out[MASK_XENCONS_IDX(out_cons, ring->out)]);
                ring->out_cons = out_cons;
                break;
            }
            case 3: {  // xenconsoled types
                const std::string t = in.bytes(in.u8() % 64);
                const std::uint32_t cons = ring->in_cons;
                std::size_t k = 0;
                while (k < t.size() && in_prod - cons < sizeof(xencons_interface::in)) {
                    ring->in[MASK_XENCONS_IDX(in_prod, ring->in)] = t[k++];
                    ++in_prod;
                }
                typed.append(t, 0, k);
                ring->in_prod = in_prod;
                break;
            }
            case 4: console->on_event(); break;
            case 5: console->flush_sync(); break;
            case 6:  // hostile: any out_cons
                hostile = true;
                ring->out_cons = out_cons = in.u32();
                break;
            default:  // hostile: any in_prod
                hostile = true;
                ring->in_prod = in_prod = in.u32();
        }
    }
    console->on_event();

    const auto st = console->stats();
    CHECK(port.waits <= Console::sync_waits_without_progress + st.bytes_out);
    CHECK(console->backlog() <= Console::backlog_bytes);
    if (!hostile) {
        CHECK(!console->broken() && st.errors == 0);
        CHECK(received == typed.substr(0, received.size()));
        // Every byte accounted for: sent + still in the backlog + dropped == written, plus the
        // gap lines when there were drops.
        const std::size_t in_ring = ring->out_prod - out_cons;
        CHECK(drained.size() + in_ring == st.bytes_out);
        const std::size_t total = st.bytes_out + console->backlog() + st.dropped_bytes;
        CHECK(st.gaps == 0 ? total == written : total > written);
        CHECK(st.dropped_bytes == 0 || st.gaps != 0 || console->backlog() + in_ring != 0 || written != 0);
    }
    delete console;
    return 0;
}
