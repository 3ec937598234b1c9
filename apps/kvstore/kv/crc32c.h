// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every log record and
// header on disk. Table-driven, eight bytes per step; the tables are computed at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::kv {

/// Continue a CRC-32C over `n` more bytes. Start with crc = 0; crc32c("123456789") = 0xE3069283.
/// crc32c(a + b) == crc32c(b, crc32c(a)).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

}  // namespace keel::kv
