// dns_lookup over lwIP's resolver. lwIP cannot cancel a query, so its callback argument is a
// small heap object holding the await_callback completion, which is safe to call after the
// waiting task is gone.
#include "keel/net/dns.h"

#include <cstring>
#include <new>

#include "lwip_glue.h"

namespace keel::net {
namespace {

struct Query {
    Completion<Result<IpAddr>> done;
};

void on_found(const char*, const ip_addr_t* addr, void* arg) {
    auto* q = static_cast<Query*>(arg);
    if (addr == nullptr) ++detail::counters().dns_failures;
    q->done(addr != nullptr ? Result<IpAddr>(detail::from_lwip(*addr)) : Result<IpAddr>(Error::not_found));
    delete q;
}

bool have_server() {
    for (u8_t i = 0; i < DNS_MAX_SERVERS; ++i) {
        const ip_addr_t* s = dns_getserver(i);
        if (s != nullptr && !ip_addr_isany(s)) return true;
    }
    return false;
}

}  // namespace

Result<void> set_dns_server(std::size_t index, const IpAddr& server) {
    if (index >= DNS_MAX_SERVERS || (!server.is_v4() && !server.is_v6())) return Error::invalid_argument;
    detail::ensure_init();
    const ip_addr_t a = detail::to_lwip(server);
    dns_setserver(static_cast<u8_t>(index), &a);
    return {};
}

Task<Result<IpAddr>> dns_lookup(std::string_view name) {
    if (name.empty() || name.size() > 255) co_return Error::invalid_argument;
    char text[256];
    std::memcpy(text, name.data(), name.size());
    text[name.size()] = '\0';
    if (std::strlen(text) != name.size()) co_return Error::invalid_argument;  // a NUL inside
    detail::ensure_init();
    ++detail::counters().dns_lookups;
    co_return co_await await_callback<Result<IpAddr>>([&text](Completion<Result<IpAddr>> done) {
        if (auto literal = IpAddr::parse(text)) {
            done(*literal);
            return;
        }
        if (!have_server()) {
            ++detail::counters().dns_failures;
            done(Error::not_supported);
            return;
        }
        auto* q = new (std::nothrow_t{}) Query{std::move(done)};
        if (q == nullptr) {  // the initializer (the move) runs only after a successful allocation
            done(Error::no_memory);
            return;
        }
        detail::LwipCall call;
        ip_addr_t addr;
        const err_t e = dns_gethostbyname_addrtype(text, &addr, &on_found, q, LWIP_DNS_ADDRTYPE_IPV4_IPV6);
        if (e == ERR_OK) {
            q->done(detail::from_lwip(addr));
            delete q;
        } else if (e != ERR_INPROGRESS) {
            ++detail::counters().dns_failures;
            q->done(detail::to_error(e));
            delete q;
        }
    });
}

}  // namespace keel::net
