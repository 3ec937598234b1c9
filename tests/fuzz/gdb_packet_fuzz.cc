// gdb's side of keel-gdbserver: any bytes, in pieces of any size, into a Session over a small
// in-memory guest (4-level tables, one 4 KiB and one 2 MiB page). Whatever arrives, the stub
// sends only acks and well-formed packets, touches registers and memory only while the guest
// is paused, never accesses memory across a frame, and leaves the guest running at the end.
#include <array>
#include <cstring>
#include <map>
#include <string>

#include "fuzz_support.h"
#include "session.h"

namespace {

using keel::gdbserver::Registers;

class Guest final : public keel::gdbserver::Target {
public:
    Guest() {
        regs.cr0 = 0x80050033, regs.cr4 = 0x20, regs.efer = 0x500, regs.cr3 = 0x1000;
        // PML4[0] -> 0x2000 (PDPT), PDPT[0] -> 0x3000 (PD), PD[0] -> 0x4000 (PT),
        // PT[1] -> 0x10000 (4 KiB page at va 0x1000), PD[1] -> 2 MiB page at gpa 0x200000.
        set(0x1000, 0x2003), set(0x2000, 0x3003), set(0x3000, 0x4003), set(0x4008, 0x10003);
        set(0x3008, 0x200083);
        frames_[0x10];
        frames_[0x200];
    }
    bool pause() override { return ++paused > 0; }
    bool resume() override {
        CHECK(paused > 0);
        --paused;
        return true;
    }
    bool alive() override { return true; }
    bool registers(unsigned vcpu, Registers& out) override {
        CHECK(paused > 0);
        out = regs;
        return vcpu == 0;
    }
    bool read_physical(std::uint64_t gpa, void* buf, std::size_t len) override {
        auto* f = frame(gpa, len);
        if (f) std::memcpy(buf, f->data() + (gpa & 4095), len);
        return f != nullptr;
    }
    bool write_physical(std::uint64_t gpa, const void* buf, std::size_t len) override {
        auto* f = frame(gpa, len);
        if (f) std::memcpy(f->data() + (gpa & 4095), buf, len);
        return f != nullptr;
    }
    Registers regs;
    int paused = 0;

private:
    void set(std::uint64_t gpa, std::uint64_t entry) {
        std::memcpy(frames_[gpa >> 12].data() + (gpa & 4095), &entry, 8);
    }
    std::array<std::uint8_t, 4096>* frame(std::uint64_t gpa, std::size_t len) {
        CHECK(paused > 0);
        CHECK((gpa & 4095) + len <= 4096);
        auto it = frames_.find(gpa >> 12);
        return it == frames_.end() ? nullptr : &it->second;
    }
    std::map<std::uint64_t, std::array<std::uint8_t, 4096>> frames_;
};

// Every reply is '+', '-' or $BODY#CC with the right checksum and no '$' or '#' inside.
void check_output(const std::string& out) {
    std::size_t i = 0;
    while (i < out.size()) {
        if (out[i] == '+' || out[i] == '-') {
            ++i;
            continue;
        }
        CHECK(out[i] == '$');
        const auto end = out.find('#', i);
        CHECK(end != std::string::npos && end + 2 < out.size());
        const std::string body = out.substr(i + 1, end - i - 1);
        CHECK(body.find('$') == std::string::npos);
        CHECK(out.substr(i, end + 3 - i) == keel::gdbserver::frame(body));
        i = end + 3;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    Guest guest;
    {
        keel::gdbserver::Session s(guest);
        CHECK(s.ok() && guest.paused == 1);
        keel::fuzz::Pieces pieces(text);
        std::size_t at = 0;
        while (at < text.size() && !s.finished()) {
            const std::size_t n = std::min(pieces.next(), text.size() - at);
            check_output(s.receive(text.substr(at, n)));
            check_output(s.poll());
            CHECK(guest.paused == (s.running() || s.finished() ? 0 : 1));
            at += n;
        }
    }
    CHECK(guest.paused == 0);
    return 0;
}
