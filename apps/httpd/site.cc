// The static content httpd serves, compiled into the image.
#include "site.h"

namespace keel::httpd {
namespace {

constexpr std::string_view index_html =
    "<!doctype html>\n"
    "<html><head><title>keel</title></head>\n"
    "<body><h1>Hello from keel</h1>\n"
    "<p>A C++ unikernel serving this page from a Xen PVH guest.</p>\n"
    "<p>Counters: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

constexpr std::string_view robots_txt = "User-agent: *\nDisallow:\n";

constexpr http::Page pages[] = {
    {"/index.html", "text/html; charset=utf-8", index_html},
    {"/robots.txt", "text/plain; charset=utf-8", robots_txt},
};

}  // namespace

http::Site site() { return http::Site(pages); }

}  // namespace keel::httpd
