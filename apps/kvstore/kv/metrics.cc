// kvstore's own metric families (server.h): what INFO reports, in the Prometheus text format.
#include <cstdint>

#include "kv/server.h"

namespace keel::kv {

void write_metrics(MetricsWriter& w, Server& server) {
    const Stats& s = server.stats();
    const Store& store = server.store();
    w.gauge("keel_kvstore_connections", "Client connections open.", s.connected);
    w.counter("keel_kvstore_connections_received_total", "Client connections accepted.",
              s.connections_received);
    w.counter("keel_kvstore_rejected_connections_total", "Connections refused: no memory for their buffers.",
              s.rejected_connections);
    w.counter("keel_kvstore_timed_out_connections_total",
              "Connections reset past their command, idle or write deadline.", s.timed_out_connections);
    w.counter("keel_kvstore_commands_total", "Commands processed.", s.commands);
    w.counter("keel_kvstore_error_replies_total", "Commands answered with an error.", s.error_replies);
    w.counter("keel_kvstore_protocol_errors_total", "Connections closed for a RESP protocol error.",
              s.protocol_errors);
    w.counter("keel_kvstore_keyspace_hits_total", "Lookups that found their key.", s.keyspace_hits);
    w.counter("keel_kvstore_keyspace_misses_total", "Lookups that did not find their key.",
              s.keyspace_misses);
    w.counter("keel_kvstore_expired_keys_total", "Keys removed because their time to live ran out.",
              store.expired_total());
    w.gauge("keel_kvstore_keys", "Keys in the store.", store.size());
    w.gauge("keel_kvstore_expiring_keys", "Keys with a time to live.", store.expiring());
    w.gauge("keel_kvstore_memory_used_bytes", "Bytes of keys, values and table (INFO used_memory).",
            store.memory());
    w.gauge("keel_kvstore_memory_max_bytes", "maxmemory: writes beyond it are answered -OOM.",
            store.max_memory());

    const Log* log = server.log();
    w.gauge("keel_kvstore_log_enabled", "1 with a log on a disk, 0 in memory only.", log != nullptr ? 1 : 0);
    if (log == nullptr) return;
    const LogStats l = log->stats();
    w.gauge("keel_kvstore_log_failed", "1 once the log failed (writes refused until a restart).",
            log->failed() != Error::ok ? 1 : 0);
    w.gauge("keel_kvstore_log_read_only", "1 when the disk is read-only (writes refused).",
            log->read_only() ? 1 : 0);
    w.gauge("keel_kvstore_log_bytes", "Bytes of records in the active log region.", l.log_bytes);
    w.gauge("keel_kvstore_log_region_bytes", "Capacity of a log region.", l.region_bytes);
    w.gauge("keel_kvstore_log_live_bytes", "Estimated size of a compacted log.", l.live_bytes);
    w.gauge("keel_kvstore_log_epoch", "Log epoch (moves with every compaction).", l.epoch);
    w.gauge("keel_kvstore_log_compacting", "1 while a compaction runs.", l.compacting ? 1 : 0);
    w.gauge("keel_kvstore_log_replayed_records", "Records replayed when the log was opened.",
            l.replay.records);
    w.counter("keel_kvstore_log_appended_records_total", "Log records appended.", l.appended_lsn);
    w.counter("keel_kvstore_log_durable_records_total", "Log records made durable.", l.durable_lsn);
    w.counter("keel_kvstore_log_commits_total", "Log write + flush rounds.", l.commits);
    w.counter("keel_kvstore_log_written_bytes_total", "Bytes written by commits, snapshots and headers.",
              l.bytes_written);
    w.counter("keel_kvstore_log_compactions_total", "Log compactions done.", l.compactions);
    w.counter("keel_kvstore_log_compactions_aborted_total", "Log compactions given up (no room, no memory).",
              l.compactions_aborted);
}

}  // namespace keel::kv
