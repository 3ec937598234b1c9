// ResponseWriter, write_head, HTTP dates and the status texts.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "http.h"

namespace keel::http {
namespace {

using namespace std::literals;

std::string date(std::uint64_t t) {
    std::array<char, http_date_size> out;
    if (!format_http_date(t, out)) return "(none)";
    return std::string(out.data(), out.size());
}

TEST(HttpDate, KnownDates) {
    EXPECT_EQ(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
    EXPECT_EQ(date(68256000), "Wed, 01 Mar 1972 00:00:00 GMT");   // after a leap day
    EXPECT_EQ(date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");  // 2000 is a leap year
    EXPECT_EQ(date(1735689599), "Tue, 31 Dec 2024 23:59:59 GMT");
    EXPECT_EQ(date(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
    EXPECT_EQ(date(253402300800), "(none)");  // year 10000
}

TEST(Status, Texts) {
    EXPECT_EQ(reason_phrase(Status::ok), "OK");
    EXPECT_EQ(reason_phrase(Status::header_fields_too_large), "Request Header Fields Too Large");
    EXPECT_EQ(reason_phrase(static_cast<Status>(299)), "Unknown");
    for (Status s :
         {Status::bad_request, Status::not_found, Status::method_not_allowed, Status::request_timeout,
          Status::content_too_large, Status::uri_too_long, Status::header_fields_too_large,
          Status::internal_error, Status::not_implemented, Status::version_not_supported}) {
        EXPECT_EQ(error_body(s), std::to_string(code(s)) + " " + std::string(reason_phrase(s)) + "\n");
    }
}

TEST(ResponseWriter, WritesAHead) {
    std::array<char, 256> buf;
    ResponseWriter w(buf);
    w.status_line(Status::not_found);
    w.header("Content-Type", "text/plain");
    w.header("Content-Length", std::uint64_t{18446744073709551615u});
    w.header("X-Zero", std::uint64_t{0});
    w.end();
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.text(),
              "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18446744073709551615\r\n"
              "X-Zero: 0\r\n\r\n");
    EXPECT_EQ(w.bytes().size(), w.text().size());
}

TEST(ResponseWriter, RefusesToOverflow) {
    std::array<char, 20> buf{};
    ResponseWriter w(std::span<char>(buf.data(), 19));
    w.status_line(Status::ok);  // 17 bytes
    EXPECT_TRUE(w.ok());
    w.header("A", "b");  // would need 6 more
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(buf[19], '\0');
    EXPECT_LE(w.text().size(), 19u);
}

TEST(ResponseWriter, RefusesToBreakTheFraming) {
    for (std::string_view value : {"a\r\nX-Injected: 1"sv, "a\nb"sv, "a\rb"sv, "a\0b"sv}) {
        std::array<char, 128> buf;
        ResponseWriter w(buf);
        w.status_line(Status::ok);
        w.header("X", value);
        EXPECT_FALSE(w.ok()) << value;
    }
    for (std::string_view name : {"", "Bad Name", "X:", "X\r\n"}) {
        std::array<char, 128> buf;
        ResponseWriter w(buf);
        w.header(name, "v");
        EXPECT_FALSE(w.ok()) << name;
    }
    std::array<char, 128> buf;
    ResponseWriter w(buf);
    w.status_line(static_cast<Status>(1000));
    EXPECT_FALSE(w.ok());
}

TEST(WriteHead, AllFields) {
    std::array<char, 512> buf;
    ResponseWriter w(buf);
    ResponseHead head;
    head.status = Status::method_not_allowed;
    head.content_type = "text/plain; charset=utf-8";
    head.content_length = 23;
    head.allow = "GET, HEAD";
    head.connection = ConnectionHeader::close;
    head.date = 784111777;
    write_head(w, head);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.text(),
              "HTTP/1.1 405 Method Not Allowed\r\n"
              "Server: keel\r\n"
              "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 23\r\n"
              "Allow: GET, HEAD\r\n"
              "Connection: close\r\n"
              "\r\n");
}

TEST(WriteHead, Minimal) {
    std::array<char, 512> buf;
    ResponseWriter w(buf);
    ResponseHead head;
    head.connection = ConnectionHeader::keep_alive;
    write_head(w, head);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.text(),
              "HTTP/1.1 200 OK\r\nServer: keel\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    // A clock past year 9999 gives no Date rather than a wrong one.
    ResponseWriter w2(buf);
    head.date = 253402300800;
    head.connection = ConnectionHeader::omit;
    write_head(w2, head);
    EXPECT_EQ(w2.text(), "HTTP/1.1 200 OK\r\nServer: keel\r\nContent-Length: 0\r\n\r\n");
}

TEST(Iequals, Ascii) {
    EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
    EXPECT_FALSE(iequals("a", "ab"));
    EXPECT_FALSE(iequals("[", "{"));  // only letters fold
    EXPECT_TRUE(iequals("", ""));
}

}  // namespace
}  // namespace keel::http
