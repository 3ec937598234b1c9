// The `mac` node's text to bytes.
#include "keel/netfront/netfront.h"

#include "keel/ascii.h"

namespace keel::netfront {

std::optional<Mac> parse_mac(std::string_view text) {
    // "xx:xx:xx:xx:xx:xx": 6 * 2 digits + 5 separators.
    if (text.size() != 17) return std::nullopt;
    Mac mac;
    for (std::size_t i = 0; i < 6; ++i) {
        const std::size_t at = i * 3;
        if (i > 0 && text[at - 1] != ':') return std::nullopt;
        const int hi = hex_value(text[at]);
        const int lo = hex_value(text[at + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        mac.bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    if (mac.bytes[0] & 1) return std::nullopt;  // a group address cannot name a station
    return mac;
}

}  // namespace keel::netfront
