// Lifecycle requests from the toolstack: `xl shutdown`, `xl reboot`, ... arrive as a value in
// the domain's control/shutdown xenstore node. ShutdownWatch turns them into one callback.
#pragma once

#include <optional>
#include <string_view>

#include "keel/function.h"
#include "keel/result.h"
#include "keel/xen/xenstore.h"

namespace keel {

enum class ShutdownRequest { poweroff, reboot, halt, crash, suspend };

/// "poweroff", "reboot", "halt", "crash", "suspend".
const char* to_string(ShutdownRequest kind);
/// The control/shutdown value for a request; anything else (including "") is nullopt.
std::optional<ShutdownRequest> parse_shutdown_request(std::string_view value);

/// Watches control/shutdown (relative to the domain's home) and hands each request to
/// `on_request` after acknowledging it.
///
/// Protocol (what libxl expects): the guest advertises control/feature-poweroff=1 and
/// control/feature-reboot=1 -- the two requests the toolstack may send without other means -- and
/// control/feature-suspend=1 when it honours "suspend" (docs/misc/xenstore-paths.pandoc; libxl
/// itself sends "suspend" to any PVH guest with an upcall set, advertised or not); halt and crash
/// are still parsed and passed on, but not advertised. A request is a non-empty
/// value; the guest acknowledges it by writing "" back, and the toolstack waits for that. The read
/// and the acknowledgement run in one xenstore transaction (retried on conflict, up to
/// max_retries times), so a request written in between is not wiped out. Values we do not know
/// are logged as rejected and left unacknowledged, which tells the toolstack we do not honour them.
///
/// Context: event loop; lives as long as the XenStore (its requests hold `this`).
class ShutdownWatch {
public:
    static constexpr unsigned max_retries = 8;

    /// `suspend`: the owner honours ShutdownRequest::suspend (advertise control/feature-suspend).
    ShutdownWatch(xen::XenStore& xs, Function<void(ShutdownRequest)> on_request, bool suspend = false);
    ~ShutdownWatch();
    ShutdownWatch(const ShutdownWatch&) = delete;
    ShutdownWatch& operator=(const ShutdownWatch&) = delete;

    /// Advertise the features and register the watch. Error::busy if already started; otherwise
    /// the watch registration's immediate error. Failures of the feature writes are logged.
    Result<void> start();

    /// After a resume in a new domain (and XenStore::reconnect()): advertise the features again
    /// in the new domain's control/. No-op before start().
    void resumed();

private:
    void changed();
    void begin();
    void on_value(xen::XenStore::Tx tx, Result<std::string_view> value);
    void on_acked(xen::XenStore::Tx tx, ShutdownRequest kind, Result<void> written);
    void on_committed(ShutdownRequest kind, Result<void> committed);
    void deliver(ShutdownRequest kind);
    void abort(xen::XenStore::Tx tx);
    void finish();
    void advertise();

    xen::XenStore& xs_;
    Function<void(ShutdownRequest)> on_request_;
    xen::WatchId watch_{};
    bool suspend_;
    bool started_ = false;
    bool busy_ = false;     // a check is in progress
    bool recheck_ = false;  // the node changed again meanwhile
    unsigned retries_ = 0;
};

}  // namespace keel
