// DNS lookups through lwIP's resolver (servers from dns= or DHCP; see config.h).
#pragma once

#include <cstddef>
#include <string_view>

#include "keel/net/addr.h"
#include "keel/result.h"
#include "keel/task.h"

namespace keel::net {

/// Resolve `name` to one address: IPv4 first, then IPv6 (an address literal resolves to
/// itself at once). Error::not_found when the name does not resolve or no server answers
/// (lwIP retries DNS_MAX_RETRIES times, several seconds in all), Error::invalid_argument for
/// an empty or too long name (255 bytes), Error::not_supported without a DNS server.
Task<Result<IpAddr>> dns_lookup(std::string_view name);

/// Use `server` as DNS server number `index` (0 or 1).
Result<void> set_dns_server(std::size_t index, const IpAddr& server);

}  // namespace keel::net
