#include "session.h"

#include <charconv>
#include <cstdint>
#include <vector>

#include "walk.h"

namespace keel::gdbserver {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, const void* data, std::size_t len) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < len; ++i) {
        out += kHex[p[i] >> 4];
        out += kHex[p[i] & 15];
    }
}

// Little-endian, as gdb reads x86 registers.
template <typename T>
void append_le(std::string& out, T value) {
    append_hex(out, &value, sizeof value);
}

bool parse_hex(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 16) return false;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool decode_hex(std::string_view s, std::vector<std::uint8_t>& out) {
    if (s.size() % 2) return false;
    out.resize(s.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint64_t v = 0;
        if (!parse_hex(s.substr(2 * i, 2), v)) return false;
        out[i] = static_cast<std::uint8_t>(v);
    }
    return true;
}

// "ADDR,LEN" -> addr, len.
bool parse_range(std::string_view s, std::uint64_t& addr, std::uint64_t& len) {
    const auto comma = s.find(',');
    return comma != std::string_view::npos && parse_hex(s.substr(0, comma), addr) &&
           parse_hex(s.substr(comma + 1), len);
}

// gdb's amd64 register numbers without a target description, 0..23 (rax .. gs): the 'g'
// packet's order. Returns the value's size, 0 for a number past gs.
std::size_t register_bytes(const Registers& r, unsigned n, std::string& out) {
    const std::uint64_t gprs[] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                                  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
    const std::uint32_t narrow[] = {static_cast<std::uint32_t>(r.rflags), r.cs, r.ss, r.ds, r.es, r.fs, r.gs};
    if (n < 17) {
        append_le(out, gprs[n]);
        return 8;
    }
    if (n < 24) {
        append_le(out, narrow[n - 17]);
        return 4;
    }
    return 0;
}

}  // namespace

Session::Session(Target& target, unsigned vcpu) : target_(target), vcpu_(vcpu) { paused_ = target_.pause(); }

Session::~Session() {
    if (paused_) target_.resume();
}

std::string Session::reply(std::string_view body) {
    last_ = frame(body);
    return last_;
}

std::string Session::receive(std::string_view bytes) {
    std::string out;
    for (char c : bytes) {
        if (finished_) break;
        switch (reader_.feed(c)) {
            case PacketReader::Event::none:
            case PacketReader::Event::ack:
                break;
            case PacketReader::Event::nack:
                if (ack_mode_) out += last_;
                break;
            case PacketReader::Event::bad:
                if (ack_mode_) out += '-';
                break;
            case PacketReader::Event::interrupt:
                if (running_) out += reply(stop());
                break;
            case PacketReader::Event::packet: {
                if (ack_mode_) out += '+';
                const std::string body = reader_.body();
                if (running_) break;  // gdb waits for the stop reply; nothing else is valid now
                std::string r = handle(body);
                if (body == "QStartNoAckMode") {
                    out += reply(r);
                    ack_mode_ = false;
                } else if (!running_) {
                    // c answers only when the target stops again; k gets no reply.
                    if (body != "k") out += reply(r);
                }
                break;
            }
        }
    }
    return out;
}

std::string Session::poll() {
    if (!running_ || finished_ || target_.alive()) return {};
    running_ = false;
    finished_ = true;
    return reply("X09");  // killed (SIGKILL): the domain is gone
}

std::string Session::stop() {
    if (!target_.pause()) return "E01";
    paused_ = true;
    running_ = false;
    return "S02";  // SIGINT, as gdb's own ^C
}

bool Session::fetch(Registers& regs) { return paused_ && target_.registers(vcpu_, regs); }

std::string Session::handle(const std::string& body) {
    const std::string_view b = body;
    if (b.empty()) return {};
    const std::string_view args = b.substr(1);
    switch (b[0]) {
        case '?':
            return "S05";
        case 'g': {
            Registers regs;
            if (!fetch(regs)) return "E01";
            std::string out;
            for (unsigned n = 0; register_bytes(regs, n, out) != 0; ++n) {
            }
            return out;
        }
        case 'p':
            return read_register(args);
        case 'm':
            return read_memory(args);
        case 'M':
            return write_memory(args);
        case 'c':
            // "c ADDR" would resume elsewhere: refused, registers are read-only here.
            if (!args.empty() || !paused_) return "E01";
            if (!target_.resume()) return "E01";
            paused_ = false;
            running_ = true;
            return {};
        case 's':
            // No single-step without gdbsx (README). An error, not "", which gdb would take as a
            // stop reply it cannot parse and then wait forever.
            return "E01";
        case 'D':
            if (paused_ && !target_.resume()) return "E01";
            paused_ = false;
            finished_ = true;
            return "OK";
        case 'k':
            // Kill detaches: the domain is the administrator's to destroy (xl destroy), not gdb's.
            if (paused_) target_.resume();
            paused_ = false;
            finished_ = true;
            return {};
        case 'H':
            return (args.size() >= 1 && (args[0] == 'g' || args[0] == 'c')) ? "OK" : "";
        case 'T':
            return "OK";
        default:
            break;
    }
    if (b.rfind("qSupported", 0) == 0) return "PacketSize=4000;QStartNoAckMode+";
    if (b == "QStartNoAckMode") return "OK";
    if (b.rfind("qAttached", 0) == 0) return "1";
    if (b == "qC") return "QC1";
    if (b == "qfThreadInfo") return "m1";
    if (b == "qsThreadInfo") return "l";
    return {};  // not supported (Z/z breakpoints among them: see README)
}

std::string Session::read_register(std::string_view args) {
    std::uint64_t n = 0;
    if (!parse_hex(args, n)) return "E01";
    Registers regs;
    if (!fetch(regs)) return "E01";
    std::string out;
    // Past gs: unknown to this stub. "" makes gdb fall back to 'g' and mark them unavailable.
    if (n > 0xffff || register_bytes(regs, static_cast<unsigned>(n), out) == 0) return {};
    return out;
}

std::string Session::read_memory(std::string_view args) {
    std::uint64_t addr = 0, len = 0;
    if (!parse_range(args, addr, len)) return "E01";
    // A reply carries two hex digits per byte.
    if (len > PacketReader::kMaxBody / 2) len = PacketReader::kMaxBody / 2;
    Registers regs;
    if (!fetch(regs)) return "E01";
    std::vector<std::uint8_t> buf(len);
    const std::size_t got = read_virtual(target_, regs, addr, buf.data(), buf.size());
    if (got == 0 && len != 0) return "E14";  // EFAULT: not mapped
    std::string out;
    append_hex(out, buf.data(), got);
    return out;
}

std::string Session::write_memory(std::string_view args) {
    const auto colon = args.find(':');
    std::uint64_t addr = 0, len = 0;
    std::vector<std::uint8_t> data;
    if (colon == std::string_view::npos || !parse_range(args.substr(0, colon), addr, len) ||
        !decode_hex(args.substr(colon + 1), data) || data.size() != len)
        return "E01";
    Registers regs;
    if (!fetch(regs)) return "E01";
    if (write_virtual(target_, regs, addr, data.data(), data.size()) != data.size()) return "E14";
    return "OK";
}

}  // namespace keel::gdbserver
