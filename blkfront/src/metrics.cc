// The disks' metric families (blkfront.h): one sample per disk, labelled with its xenstore node.
#include <cstdint>

#include "keel/blkfront/blkfront.h"

namespace keel::blkfront {
namespace {

// Responses that broke the protocol, of every kind (each is counted by kind in Stats).
std::uint64_t protocol_errors(const Stats& s) {
    return s.unknown_id + s.not_in_flight + s.duplicate + s.bad_status + s.bad_operation + s.ring_overrun +
           s.lost;
}

template <typename Value>
void per_device(MetricsWriter& w, std::span<Blkfront* const> devices, std::string_view name,
                std::string_view help, MetricType type, Value value) {
    w.family(name, help, type);
    for (const Blkfront* dev : devices) w.sample("device", dev->name(), value(*dev, dev->stats()));
}

}  // namespace

void write_metrics(MetricsWriter& w, std::span<Blkfront* const> devices) {
    constexpr MetricType counter = MetricType::counter;
    constexpr MetricType gauge = MetricType::gauge;
    per_device(w, devices, "keel_blkfront_reads_total", "Block reads that succeeded.", counter,
               [](const Blkfront&, const Stats& s) { return s.reads; });
    per_device(w, devices, "keel_blkfront_writes_total", "Block writes that succeeded.", counter,
               [](const Blkfront&, const Stats& s) { return s.writes; });
    per_device(w, devices, "keel_blkfront_flushes_total", "Block flushes that succeeded.", counter,
               [](const Blkfront&, const Stats& s) { return s.flushes; });
    per_device(w, devices, "keel_blkfront_discards_total", "Block discards that succeeded.", counter,
               [](const Blkfront&, const Stats& s) { return s.discards; });
    per_device(w, devices, "keel_blkfront_read_bytes_total", "Bytes read.", counter,
               [](const Blkfront& d, const Stats& s) { return s.sectors_read * d.geometry().sector_size; });
    per_device(
        w, devices, "keel_blkfront_written_bytes_total", "Bytes written.", counter,
        [](const Blkfront& d, const Stats& s) { return s.sectors_written * d.geometry().sector_size; });
    per_device(w, devices, "keel_blkfront_errors_total", "Block calls that failed, for any reason.", counter,
               [](const Blkfront&, const Stats& s) { return s.errors; });
    per_device(w, devices, "keel_blkfront_requests_total", "Requests put on the ring.", counter,
               [](const Blkfront&, const Stats& s) { return s.requests; });
    per_device(w, devices, "keel_blkfront_indirect_requests_total", "Of the requests: indirect ones.",
               counter, [](const Blkfront&, const Stats& s) { return s.indirect_requests; });
    per_device(w, devices, "keel_blkfront_waits_total", "Calls that waited for ring slots or pages.", counter,
               [](const Blkfront&, const Stats& s) { return s.waits; });
    per_device(w, devices, "keel_blkfront_backend_errors_total",
               "Requests the backend answered with an error or as not supported.", counter,
               [](const Blkfront&, const Stats& s) { return s.backend_error + s.not_supported; });
    per_device(w, devices, "keel_blkfront_protocol_errors_total", "Responses that broke the ring protocol.",
               counter, [](const Blkfront&, const Stats& s) { return protocol_errors(s); });
    per_device(w, devices, "keel_blkfront_aborted_total",
               "Requests in flight or waiting when a connection ended.", counter,
               [](const Blkfront&, const Stats& s) { return s.aborted; });
    per_device(w, devices, "keel_blkfront_reissued_total",
               "Calls run again on the new backend after a resume interrupted them.", counter,
               [](const Blkfront&, const Stats& s) { return s.reissued; });
    per_device(w, devices, "keel_blkfront_connects_total", "Handshakes that reached Connected.", counter,
               [](const Blkfront&, const Stats& s) { return s.connects; });
    per_device(w, devices, "keel_blkfront_resets_total", "Device resets for a misbehaving backend.", counter,
               [](const Blkfront&, const Stats& s) { return s.resets; });
    per_device(w, devices, "keel_blkfront_given_up", "1 once the device was given up on.", gauge,
               [](const Blkfront& d, const Stats&) { return std::uint64_t{d.given_up() ? 1u : 0u}; });
    per_device(w, devices, "keel_blkfront_held_pages",
               "Pages whose grant the backend still held at the last teardown.", gauge,
               [](const Blkfront&, const Stats& s) { return s.held_pages; });
}

}  // namespace keel::blkfront
