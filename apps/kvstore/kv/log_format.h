// The on-disk format of the kvstore log: byte layout, encoding and decoding, checksums. No
// I/O and no policy: log.cc decides what to write where, and what a record that does not
// verify means. docs/kvstore.md has the full description; all integers are little-endian.
//
//   sector 0            header copy 0 \  the valid copy (magic, version, CRC) with the higher
//   sector 1            header copy 1 /  epoch counts; a header goes to the older copy
//   sector 2 ...        region 0  (region_sectors sectors)
//   ...                 region 1  (region_sectors sectors)
//
// Header (64 bytes at the start of its sector, the rest zero):
//   0 magic "KEELKVLG" (8) | 8 version (4) | 12 sector size (4) | 16 epoch (8)
//   24 base epoch (8) | 32 log id (8) | 40 first sector of region 0 (8)
//   48 sectors per region (8) | 56 active region (4) | 60 CRC-32C of bytes 0..59 (4)
//
// A region holds a stream of records from its first byte, across sector boundaries:
//   0 CRC-32C (4): over the 8 bytes of the log id, then bytes 4 .. 16+length of the record
//   4 payload length (4, > 0) | 8 epoch (8) | 16 payload: one or more operations
// Operations:
//   set        01, key length (4), value length (4), expiry (8: Unix ns, 0 = none), key, value
//   delete     02, key length (4), key
//   flush all  03
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::kv::disk {

inline constexpr char magic[8] = {'K', 'E', 'E', 'L', 'K', 'V', 'L', 'G'};
inline constexpr std::uint32_t version = 1;
inline constexpr std::size_t header_bytes = 64;
inline constexpr std::uint64_t header_sectors = 2;  // two copies, one sector each
inline constexpr std::size_t record_header_bytes = 16;
/// A record longer than this is corrupt, whatever the writer's limit was.
inline constexpr std::uint32_t max_record_payload = 64u * 1024 * 1024;

enum class Op : std::uint8_t { set = 1, del = 2, flush_all = 3 };

inline constexpr std::size_t set_overhead = 1 + 4 + 4 + 8;  // op, key length, value length, expiry
inline constexpr std::size_t del_overhead = 1 + 4;          // op, key length
inline constexpr std::size_t flush_all_overhead = 1;

// Little-endian integers at any alignment.
inline void put32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void put64(char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline std::uint32_t get32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
inline std::uint64_t get64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

// ---- Header ---------------------------------------------------------------------------------

struct Header {
    std::uint64_t epoch = 0;           ///< bumped by every open() and every compaction
    std::uint64_t base_epoch = 0;      ///< epoch of the first record of the active region
    std::uint64_t log_id = 0;          ///< chosen at format time; part of every record's CRC
    std::uint64_t data_start = 0;      ///< first sector of region 0
    std::uint64_t region_sectors = 0;  ///< sectors per region
    std::uint32_t sector_size = 0;
    std::uint32_t active_region = 0;  ///< 0 or 1
};

/// Writes the 64 header bytes (CRC included).
void encode_header(const Header& h, char out[header_bytes]);
/// Reads a header copy; false if the magic, version or CRC is wrong.
bool decode_header(const char in[header_bytes], Header& h);
/// A header copy with our magic but another version (a log this code must not touch).
bool is_other_version(const char in[header_bytes]);

// ---- Records --------------------------------------------------------------------------------

/// The fixed part of a record, as read (nothing verified yet).
struct RecordHeader {
    std::uint32_t crc = 0;
    std::uint32_t length = 0;  ///< of the payload
    std::uint64_t epoch = 0;
};
RecordHeader decode_record_header(const char* record);

/// The CRC of a record: over log_id, then the record from its length field to its end.
std::uint32_t record_crc(std::uint64_t log_id, const char* record, std::size_t payload_bytes);
/// The stored CRC of the record (header and `payload_bytes` of payload) matches.
bool record_verifies(std::uint64_t log_id, const char* record, std::size_t payload_bytes);
/// Fills in the header of the record at `record` whose payload (already in place) is
/// `payload_bytes` long: length, epoch, then the CRC over them.
void seal_record(char* record, std::size_t payload_bytes, std::uint64_t epoch, std::uint64_t log_id);

/// Encode one operation at `out`, which has room for its set/del/flush_all_overhead plus key
/// and value.
void encode_set(char* out, std::string_view key, std::string_view value, std::uint64_t expire_ns);
void encode_del(char* out, std::string_view key);
void encode_flush_all(char* out);

/// Walks the operations of a record payload, calling f(op, key, value, expire) for each (del:
/// empty value, expiry 0; flush_all: empty key too); false if the payload does not parse
/// exactly or f returns false.
template <typename F>
bool walk_ops(const char* p, std::size_t n, F&& f) {
    std::size_t i = 0;
    while (i < n) {
        const auto op = static_cast<Op>(static_cast<unsigned char>(p[i]));
        ++i;
        if (op == Op::set) {
            if (n - i < set_overhead - 1) return false;
            const std::uint32_t klen = get32(p + i), vlen = get32(p + i + 4);
            const std::uint64_t expire = get64(p + i + 8);
            i += set_overhead - 1;
            if (klen > n - i || vlen > n - i - klen) return false;
            if (!f(op, std::string_view(p + i, klen), std::string_view(p + i + klen, vlen), expire))
                return false;
            i += static_cast<std::size_t>(klen) + vlen;
        } else if (op == Op::del) {
            if (n - i < del_overhead - 1) return false;
            const std::uint32_t klen = get32(p + i);
            i += del_overhead - 1;
            if (klen > n - i) return false;
            if (!f(op, std::string_view(p + i, klen), std::string_view(), 0)) return false;
            i += klen;
        } else if (op == Op::flush_all) {
            if (!f(op, std::string_view(), std::string_view(), 0)) return false;
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace keel::kv::disk
