// Response side: status texts, the head writer, HTTP dates.
// Everything writes into caller buffers and refuses (ok() == false) rather than overflow.
#include "http.h"

namespace keel::http {
namespace {

struct StatusText {
    Status status;
    std::string_view reason;
    std::string_view body;
};

constexpr StatusText status_texts[] = {
    {Status::ok, "OK", "200 OK\n"},
    {Status::bad_request, "Bad Request", "400 Bad Request\n"},
    {Status::not_found, "Not Found", "404 Not Found\n"},
    {Status::method_not_allowed, "Method Not Allowed", "405 Method Not Allowed\n"},
    {Status::request_timeout, "Request Timeout", "408 Request Timeout\n"},
    {Status::content_too_large, "Content Too Large", "413 Content Too Large\n"},
    {Status::uri_too_long, "URI Too Long", "414 URI Too Long\n"},
    {Status::header_fields_too_large, "Request Header Fields Too Large",
     "431 Request Header Fields Too Large\n"},
    {Status::internal_error, "Internal Server Error", "500 Internal Server Error\n"},
    {Status::not_implemented, "Not Implemented", "501 Not Implemented\n"},
    {Status::version_not_supported, "HTTP Version Not Supported", "505 HTTP Version Not Supported\n"},
};

const StatusText* find_status(Status s) {
    for (const StatusText& t : status_texts) {
        if (t.status == s) return &t;
    }
    return nullptr;
}

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    for (char t : std::string_view("!#$%&'*+-.^_`|~")) {
        if (c == t) return true;
    }
    return false;
}

// Decimal digits of v, most significant first, into the tail of `digits`; returns the start.
std::size_t to_decimal(std::uint64_t v, std::array<char, 20>& digits) {
    std::size_t i = digits.size();
    do {
        digits[--i] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return i;
}

bool is_leap(std::uint64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

void put2(char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

std::string_view reason_phrase(Status s) {
    const StatusText* t = find_status(s);
    return t ? t->reason : std::string_view("Unknown");
}

std::string_view error_body(Status s) {
    const StatusText* t = find_status(s);
    return t ? t->body : std::string_view("error\n");
}

bool format_http_date(std::uint64_t unix_seconds, std::span<char, http_date_size> out) {
    static constexpr std::string_view weekdays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::uint64_t days = unix_seconds / 86400;
    const auto secs = static_cast<unsigned>(unix_seconds % 86400);
    const std::string_view weekday = weekdays[days % 7];  // 1970-01-01 was a Thursday
    std::uint64_t year = 1970;
    for (;;) {
        const unsigned in_year = is_leap(year) ? 366 : 365;
        if (days < in_year) break;
        days -= in_year;
        if (++year > 9999) return false;  // four digits in an IMF-fixdate
    }
    unsigned month = 0;
    for (;;) {
        static constexpr unsigned lengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const unsigned in_month = lengths[month] + (month == 1 && is_leap(year) ? 1 : 0);
        if (days < in_month) break;
        days -= in_month;
        ++month;
    }
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    char* p = out.data();
    for (std::size_t i = 0; i < 3; ++i) p[i] = weekday[i];
    p[3] = ',';
    p[4] = ' ';
    put2(p + 5, static_cast<unsigned>(days) + 1);
    p[7] = ' ';
    for (std::size_t i = 0; i < 3; ++i) p[8 + i] = months[month][i];
    p[11] = ' ';
    put2(p + 12, static_cast<unsigned>(year / 100));
    put2(p + 14, static_cast<unsigned>(year % 100));
    p[16] = ' ';
    put2(p + 17, secs / 3600);
    p[19] = ':';
    put2(p + 20, secs / 60 % 60);
    p[22] = ':';
    put2(p + 23, secs % 60);
    p[25] = ' ';
    p[26] = 'G';
    p[27] = 'M';
    p[28] = 'T';
    return true;
}

// ---------------------------------------------------------------------------------------------
// ResponseWriter

void ResponseWriter::status_line(Status s) {
    const unsigned c = code(s);
    if (c < 100 || c > 999) {
        fail();
        return;
    }
    put("HTTP/1.1 ");
    put_u64(c);
    put(" ");
    put(reason_phrase(s));
    put("\r\n");
}

void ResponseWriter::header(std::string_view name, std::string_view value) {
    bool valid = !name.empty();
    for (char c : name) valid = valid && is_tchar(c);
    for (char c : value) valid = valid && c != '\r' && c != '\n' && c != '\0';
    if (!valid) {
        fail();
        return;
    }
    put(name);
    put(": ");
    put(value);
    put("\r\n");
}

void ResponseWriter::header(std::string_view name, std::uint64_t value) {
    std::array<char, 20> digits;
    const std::size_t start = to_decimal(value, digits);
    header(name, std::string_view(digits.data() + start, digits.size() - start));
}

void ResponseWriter::end() { put("\r\n"); }

void write_head(ResponseWriter& w, const ResponseHead& head) {
    w.status_line(head.status);
    w.header("Server", "keel");
    if (head.date) {
        std::array<char, http_date_size> date;
        if (format_http_date(*head.date, date)) w.header("Date", std::string_view(date.data(), date.size()));
    }
    if (!head.content_type.empty()) w.header("Content-Type", head.content_type);
    w.header("Content-Length", head.content_length);
    if (!head.allow.empty()) w.header("Allow", head.allow);
    if (head.connection == ConnectionHeader::close) w.header("Connection", "close");
    if (head.connection == ConnectionHeader::keep_alive) w.header("Connection", "keep-alive");
    w.end();
}

}  // namespace keel::http
