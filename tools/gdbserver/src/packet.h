// gdb remote serial protocol framing (gdb manual, "Overview" of the Remote Protocol): a packet
// is $BODY#CC, CC the two hex digits of the sum of BODY's bytes modulo 256; the receiver
// answers + (good) or - (resend) until QStartNoAckMode; 0x03 outside a packet is an interrupt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::gdbserver {

/// Sum of the bytes modulo 256, as the trailer carries it.
std::uint8_t checksum(std::string_view body);

/// "$BODY#CC". Replies are ASCII (hex, OK, E NN, S NN) and need no escaping.
std::string frame(std::string_view body);

/// Splits gdb's byte stream into events, one byte at a time.
class PacketReader {
public:
    /// Longest body accepted; longer ones are dropped and nacked. Advertised as PacketSize.
    static constexpr std::size_t kMaxBody = 0x4000;

    enum class Event {
        none,       ///< byte consumed, nothing complete yet
        packet,     ///< a well-formed packet: body()
        bad,        ///< a packet with a wrong checksum, bad trailer or too long: answer '-'
        ack,        ///< '+' between packets
        nack,       ///< '-' between packets: resend the last reply
        interrupt,  ///< 0x03 between packets
    };

    Event feed(char c);
    /// The body of the last Event::packet (valid until the next feed()).
    const std::string& body() const { return body_; }

private:
    enum class State { idle, body, check_hi, check_lo };
    State state_ = State::idle;
    std::string body_;
    bool overflow_ = false;
    int check_hi_ = 0;
};

}  // namespace keel::gdbserver
