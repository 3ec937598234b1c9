// Fuzz target for keel::xen::console_ring_put, the classic PV start of day's own writer on the
// console's out ring (platform-xen, before the console driver exists), the fuzzer playing
// xenconsoled: the input is a script of steps -- the guest puts text, the daemon drains some of
// out[] honestly, or moves out_cons anywhere. Checked: no crash or sanitizer report; a put never
// takes more than the free space, never touches in[] or a byte of out[] that is still
// outstanding, publishes exactly what it copied, and refuses (Error::protocol, nothing written)
// once out_cons claims more than the ring holds; while the daemon is honest, the stream it
// drains is exactly what the guest put.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_support.h"
#include "keel/xen/console_ring.h"

namespace {

struct alignas(4096) Page {
    xencons_interface ring;
};

constexpr std::uint32_t out_size = sizeof(xencons_interface::out);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Page page;
    static Page before;
    keel::fuzz::Input in(data, size);
    std::memset(&page, 0, sizeof page);
    const std::uint32_t start = in.u32();
    page.ring.out_cons = page.ring.out_prod = start;
    volatile xencons_interface& ring = page.ring;
    std::uint32_t out_cons = start;  // the daemon's own index
    std::string put, drained;
    bool hostile = false;

    for (int steps = 0; !in.empty() && steps < 2000; ++steps) {
        const std::uint8_t op = in.u8();
        switch (op % 4) {
            case 0:
            case 1: {  // the guest puts text
                const std::string text = in.bytes(op & 0x80 ? in.u8() * 16u : in.u8() % 64);
                std::memcpy(&before, &page, sizeof page);
                const std::uint32_t prod = ring.out_prod;
                const std::uint32_t cons = ring.out_cons;
                const keel::Result<std::size_t> n = keel::xen::console_ring_put(ring, text);
                CHECK(std::memcmp(&before.ring.in, &page.ring.in, sizeof page.ring.in) == 0);
                CHECK(ring.out_cons == cons);
                if (prod - cons > out_size) {
                    CHECK(!n && n.error() == keel::Error::protocol);
                    CHECK(std::memcmp(&before, &page, sizeof page) == 0);
                    break;
                }
                CHECK(n.ok());
                const std::uint32_t room = out_size - (prod - cons);
                CHECK(*n == (text.size() < room ? text.size() : room));
                CHECK(ring.out_prod == prod + static_cast<std::uint32_t>(*n));
                for (std::uint32_t i = 0; i < out_size; ++i) {
                    const std::uint32_t at = MASK_XENCONS_IDX(prod + i, ring.out);
                    const char want = i < *n ? text[i] : before.ring.out[at];
                    CHECK(ring.out[at] == want);  // copied, or left alone (outstanding or free)
                }
                put.append(text, 0, *n);
                break;
            }
            case 2: {  // xenconsoled drains some of out[]
                const std::uint32_t prod = ring.out_prod;
                if (prod - out_cons > out_size) break;  // it moved out_cons itself (hostile)
                for (std::uint32_t k = in.u8() * 8u + 1; k != 0 && out_cons != prod; --k, ++out_cons)
                    drained.push_back(ring.out[MASK_XENCONS_IDX(out_cons, ring.out)]);
                ring.out_cons = out_cons;
                CHECK(keel::xen::console_ring_drained(ring) == (out_cons == prod));
                break;
            }
            default:  // hostile: any out_cons
                hostile = true;
                ring.out_cons = out_cons = in.u32();
        }
    }
    if (!hostile) {
        CHECK(put.size() - drained.size() == ring.out_prod - out_cons);
        CHECK(put.compare(0, drained.size(), drained) == 0);
    }
    return 0;
}
