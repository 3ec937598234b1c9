#include "packet.h"

namespace keel::gdbserver {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::uint8_t checksum(std::string_view body) {
    unsigned sum = 0;
    for (char c : body) sum += static_cast<std::uint8_t>(c);
    return static_cast<std::uint8_t>(sum);
}

std::string frame(std::string_view body) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(body.size() + 4);
    out += '$';
    out += body;
    out += '#';
    const auto sum = checksum(body);
    out += kHex[sum >> 4];
    out += kHex[sum & 15];
    return out;
}

PacketReader::Event PacketReader::feed(char c) {
    switch (state_) {
        case State::idle:
            // Anything else between packets (line noise, a stray '#') is skipped.
            if (c == '$') {
                body_.clear();
                overflow_ = false;
                state_ = State::body;
            } else if (c == '+') {
                return Event::ack;
            } else if (c == '-') {
                return Event::nack;
            } else if (c == '\x03') {
                return Event::interrupt;
            }
            return Event::none;
        case State::body:
            if (c == '#') {
                state_ = State::check_hi;
            } else if (c == '$') {
                // A new packet inside a packet: the first was cut short. Start over with this one.
                body_.clear();
                overflow_ = false;
            } else if (body_.size() < kMaxBody) {
                body_ += c;
            } else {
                overflow_ = true;
            }
            return Event::none;
        case State::check_hi:
            check_hi_ = hex_value(c);
            state_ = State::check_lo;
            return Event::none;
        case State::check_lo: {
            state_ = State::idle;
            const int lo = hex_value(c);
            if (check_hi_ < 0 || lo < 0 || overflow_ || checksum(body_) != check_hi_ * 16 + lo) {
                body_.clear();
                return Event::bad;
            }
            return Event::packet;
        }
    }
    return Event::none;
}

}  // namespace keel::gdbserver
