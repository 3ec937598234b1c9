// start_listening(): the network start-up every TCP service does first (see serve.h).
#include "keel/log.h"
#include "keel/net/net.h"
#include "keel/net/serve.h"
#include "keel/timer.h"

namespace keel::net {

Task<Result<TcpListener>> start_listening(Config cfg, std::uint16_t port, const char* who) {
    auto iface = co_await start(cfg);
    if (!iface.ok()) {
        KLOG_ERROR("%s: no network: %s", who, to_string(iface.error()));
        co_return iface.error();
    }
    if (!co_await iface.value()->ready().wait_for(s(60))) {
        KLOG_ERROR("%s: no IPv4 address after 60 s", who);
        co_return Error::timed_out;
    }
    auto listener = TcpListener::listen(port, 128);
    if (!listener.ok()) {
        KLOG_ERROR("%s: cannot listen on port %u: %s", who, port, to_string(listener.error()));
        co_return listener.error();
    }
    co_return std::move(listener.value());
}

}  // namespace keel::net
