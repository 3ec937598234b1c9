// The kvstore log's on-disk format: see log_format.h for the layout.
#include "kv/log_format.h"

#include <cstring>

#include "kv/crc32c.h"

namespace keel::kv::disk {

void encode_header(const Header& h, char out[header_bytes]) {
    std::memset(out, 0, header_bytes);
    std::memcpy(out, magic, sizeof(magic));
    put32(out + 8, version);
    put32(out + 12, h.sector_size);
    put64(out + 16, h.epoch);
    put64(out + 24, h.base_epoch);
    put64(out + 32, h.log_id);
    put64(out + 40, h.data_start);
    put64(out + 48, h.region_sectors);
    put32(out + 56, h.active_region);
    put32(out + 60, crc32c(out, 60));
}

bool decode_header(const char in[header_bytes], Header& h) {
    if (std::memcmp(in, magic, sizeof(magic)) != 0 || get32(in + 8) != version) return false;
    if (get32(in + 60) != crc32c(in, 60)) return false;
    h.sector_size = get32(in + 12);
    h.epoch = get64(in + 16);
    h.base_epoch = get64(in + 24);
    h.log_id = get64(in + 32);
    h.data_start = get64(in + 40);
    h.region_sectors = get64(in + 48);
    h.active_region = get32(in + 56);
    return h.active_region <= 1 && h.base_epoch <= h.epoch;
}

bool is_other_version(const char in[header_bytes]) {
    return std::memcmp(in, magic, sizeof(magic)) == 0 && get32(in + 8) != version;
}

RecordHeader decode_record_header(const char* record) {
    return RecordHeader{get32(record), get32(record + 4), get64(record + 8)};
}

std::uint32_t record_crc(std::uint64_t log_id, const char* record, std::size_t payload_bytes) {
    char id[8];
    put64(id, log_id);
    return crc32c(record + 4, record_header_bytes - 4 + payload_bytes, crc32c(id, sizeof(id)));
}

bool record_verifies(std::uint64_t log_id, const char* record, std::size_t payload_bytes) {
    return get32(record) == record_crc(log_id, record, payload_bytes);
}

void seal_record(char* record, std::size_t payload_bytes, std::uint64_t epoch, std::uint64_t log_id) {
    put32(record + 4, static_cast<std::uint32_t>(payload_bytes));
    put64(record + 8, epoch);
    put32(record, record_crc(log_id, record, payload_bytes));
}

void encode_set(char* out, std::string_view key, std::string_view value, std::uint64_t expire_ns) {
    out[0] = static_cast<char>(Op::set);
    put32(out + 1, static_cast<std::uint32_t>(key.size()));
    put32(out + 5, static_cast<std::uint32_t>(value.size()));
    put64(out + 9, expire_ns);
    std::memcpy(out + set_overhead, key.data(), key.size());
    if (!value.empty()) std::memcpy(out + set_overhead + key.size(), value.data(), value.size());
}

void encode_del(char* out, std::string_view key) {
    out[0] = static_cast<char>(Op::del);
    put32(out + 1, static_cast<std::uint32_t>(key.size()));
    std::memcpy(out + del_overhead, key.data(), key.size());
}

void encode_flush_all(char* out) { out[0] = static_cast<char>(Op::flush_all); }

}  // namespace keel::kv::disk
