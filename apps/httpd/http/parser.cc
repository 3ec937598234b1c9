// RequestParser: the request line and header block are received line by line (each line is
// checked when its LF arrives); limits that a partial line can already break (method, target,
// header block size) are checked on every piece, with the same rules in the same order as at
// the end of the line, so the result does not depend on how the bytes were split.
// The rules and the choices made are listed in http.h.
#include <algorithm>

#include "http.h"

namespace keel::http {
namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);
constexpr std::size_t version_bytes = 8;  // "HTTP/1.1"

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ows(char c) { return c == ' ' || c == '\t'; }

// tchar (RFC 9110 §5.6.2).
bool is_tchar(char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

// field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5): everything but CTLs other than HTAB.
bool is_field_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// Visible ASCII: what a request-target may hold (a fragment '#' is never sent, RFC 9112 §3.2).
bool is_target_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '#';
}

// uri-host [ ":" port ]: reg-name (unreserved, pct-encoded, sub-delims), IP-literal ('[', ']',
// ':'), port digits. Anything else (space, '@', '/', controls, non-ASCII) is refused.
bool is_host_byte(char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("-._~%!$&'()*+,;=:[]").find(c) != std::string_view::npos;
}

bool is_host(std::string_view s) {
    for (char c : s) {
        if (!is_host_byte(c)) return false;
    }
    return true;
}

// string_view::substr throws on a bad position; these never do (callers keep pos <= size).
std::string_view tail(std::string_view s, std::size_t pos) {
    return std::string_view(s.data() + pos, s.size() - pos);
}
std::string_view head(std::string_view s, std::size_t len) { return std::string_view(s.data(), len); }

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// 1*DIGIT into 64 bits; nullopt if empty, not all digits, or too large.
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (!is_digit(c)) return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

Method method_from(std::string_view m) {
    struct Entry {
        std::string_view name;
        Method method;
    };
    static constexpr Entry table[] = {
        {"GET", Method::get},         {"HEAD", Method::head},      {"POST", Method::post},
        {"PUT", Method::put},         {"DELETE", Method::delete_}, {"CONNECT", Method::connect},
        {"OPTIONS", Method::options}, {"TRACE", Method::trace},    {"PATCH", Method::patch},
    };
    for (const Entry& e : table) {
        if (e.name == m) return e.method;  // methods are case-sensitive (RFC 9110 §9.1)
    }
    return Method::other;
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const Header& h : headers) {
        if (iequals(h.name, name)) return h.value;
    }
    return std::nullopt;
}

RequestParser::RequestParser(std::span<char> buffer, const Limits& limits)
    : buf_(buffer), limits_(limits), header_limit_(std::min(limits.max_header_bytes, buffer.size())) {
    limits_.max_header_count = std::min(limits_.max_header_count, max_headers);
    reset();
}

void RequestParser::reset() {
    used_ = 0;
    line_start_ = 0;
    sp1_ = npos;
    sp2_ = npos;
    body_remaining_ = 0;
    body_start_ = 0;
    header_count_ = 0;
    empty_lines_ = 0;
    host_count_ = 0;
    has_content_length_ = false;
    transfer_encoding_ = false;
    conn_close_ = false;
    conn_keep_alive_ = false;
    phase_ = Phase::request_line;
    error_ = Status::bad_request;
    req_ = Request{};
}

ParseState RequestParser::state() const {
    switch (phase_) {
        case Phase::complete:
            return ParseState::complete;
        case Phase::failed:
            return ParseState::error;
        default:
            return ParseState::incomplete;
    }
}

bool RequestParser::idle() const { return phase_ == Phase::request_line && used_ == 0; }

void RequestParser::fail(Status s) {
    error_ = s;
    phase_ = Phase::failed;
}

ParseResult RequestParser::feed(std::span<const char> data) {
    std::size_t consumed = 0;
    for (;;) {
        if (phase_ == Phase::request_line || phase_ == Phase::headers) {
            if (consumed == data.size()) break;
            consumed += take_line_bytes(data.subspan(consumed));
        } else if (phase_ == Phase::body) {
            if (consumed == data.size()) break;
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, data.size() - consumed));
            std::copy_n(data.data() + consumed, n, buf_.data() + used_);
            used_ += n;
            consumed += n;
            body_remaining_ -= n;
            if (body_remaining_ == 0) {
                req_.body = std::string_view(buf_.data() + body_start_, used_ - body_start_);
                phase_ = Phase::complete;
            }
        } else {
            break;  // complete or failed: take nothing more
        }
    }
    return {state(), consumed};
}

// Copy bytes up to and including the next LF (or all of `data`), within the header limit.
std::size_t RequestParser::take_line_bytes(std::span<const char> data) {
    const char* lf = std::find(data.data(), data.data() + data.size(), '\n');
    const bool has_lf = lf != data.data() + data.size();
    const std::size_t want = has_lf ? static_cast<std::size_t>(lf - data.data()) + 1 : data.size();
    const std::size_t take = std::min(want, header_limit_ - used_);
    std::copy_n(data.data(), take, buf_.data() + used_);
    const std::size_t from = used_;
    used_ += take;
    if (phase_ == Phase::request_line) note_request_line_bytes(from, used_);

    if (take == want && has_lf) {
        process_line();
        return take;
    }
    // A partial line: apply the limits it can already break, as processing it would.
    if (phase_ == Phase::request_line) {
        std::size_t content = used_ - line_start_;
        if (content > 0 && buf_[used_ - 1] == '\r') --content;  // may be the CR of CRLF
        if (auto s = check_request_line_lengths(content)) {
            fail(*s);
            return take;
        }
    }
    if (take < want) {
        // The header block outgrew its limit. In the request line that is the target (if it
        // was the method, the method check above already failed).
        if (phase_ == Phase::request_line) {
            fail(sp1_ != npos && sp2_ == npos ? Status::uri_too_long : Status::bad_request);
        } else {
            fail(Status::header_fields_too_large);
        }
    }
    return take;
}

void RequestParser::note_request_line_bytes(std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
        if (buf_[i] != ' ') continue;
        if (sp1_ == npos) {
            sp1_ = i - line_start_;
        } else if (sp2_ == npos) {
            sp2_ = i - line_start_;
        }
    }
}

// The limits a request line (or a prefix of it, of content_len bytes without CR/LF) breaks:
// method too long (501), target too long (414), version too long (400). Each only grows as
// bytes arrive, so a prefix fails exactly when the whole line would.
std::optional<Status> RequestParser::check_request_line_lengths(std::size_t content_len) const {
    if (sp1_ == npos ? content_len > max_method_bytes : sp1_ > max_method_bytes)
        return Status::not_implemented;
    if (sp1_ == npos) return std::nullopt;
    const std::size_t target_end = sp2_ == npos ? content_len : sp2_;
    if (target_end - sp1_ - 1 > limits_.max_target_bytes) return Status::uri_too_long;
    if (sp2_ != npos && content_len - sp2_ - 1 > version_bytes) return Status::bad_request;
    return std::nullopt;
}

void RequestParser::process_line() {
    // [line_start_, used_) ends in LF; drop it and a CR right before it.
    std::string_view line(buf_.data() + line_start_, used_ - line_start_ - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (phase_ == Phase::request_line) {
        process_request_line(line);
    } else {
        process_header_line(line);
    }
    line_start_ = used_;
}

void RequestParser::process_request_line(std::string_view line) {
    if (line.empty()) {
        // An empty line before the request line (RFC 9112 §2.2): forget it.
        if (++empty_lines_ > max_leading_empty_lines) return fail(Status::bad_request);
        used_ = 0;
        line_start_ = 0;  // process_line() sets it to used_ (0) again
        sp1_ = sp2_ = npos;
        return;
    }
    if (auto s = check_request_line_lengths(line.size())) return fail(*s);
    if (sp1_ == npos || sp2_ == npos) return fail(Status::bad_request);

    const std::string_view method = head(line, sp1_);
    const std::string_view target(line.data() + sp1_ + 1, sp2_ - sp1_ - 1);
    const std::string_view version = tail(line, sp2_ + 1);

    if (!is_token(method)) return fail(Status::bad_request);
    req_.method_name = method;
    req_.method = method_from(method);

    // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), case-sensitive.
    if (version.size() != version_bytes || head(version, 5) != "HTTP/" || !is_digit(version[5]) ||
        version[6] != '.' || !is_digit(version[7])) {
        return fail(Status::bad_request);
    }
    if (version[5] != '1') return fail(Status::version_not_supported);
    req_.version = version[7] == '0' ? Version::http_1_0 : Version::http_1_1;

    if (target.empty()) return fail(Status::bad_request);
    for (char c : target) {
        if (!is_target_byte(c)) return fail(Status::bad_request);
    }
    req_.target = target;
    std::string_view path_and_query;
    if (target == "*") {
        if (req_.method != Method::options) return fail(Status::bad_request);  // asterisk-form
        req_.path = target;
        phase_ = Phase::headers;
        return;
    }
    if (target.front() == '/') {
        path_and_query = target;  // origin-form
    } else {
        // absolute-form: "http" or "https" "://" authority [ path-abempty ] [ "?" query ]
        const std::size_t colon = target.find("://");
        if (colon == std::string_view::npos) return fail(Status::bad_request);
        const std::string_view scheme = head(target, colon);
        if (!iequals(scheme, "http") && !iequals(scheme, "https")) return fail(Status::bad_request);
        const std::string_view rest = tail(target, colon + 3);
        std::size_t end = 0;
        while (end < rest.size() && rest[end] != '/' && rest[end] != '?') ++end;
        const std::string_view authority = head(rest, end);
        if (authority.empty() || !is_host(authority)) return fail(Status::bad_request);
        req_.host = authority;
        path_and_query = tail(rest, end);
    }
    const std::size_t q = path_and_query.find('?');
    if (q == std::string_view::npos) {
        req_.path = path_and_query;
    } else {
        req_.path = head(path_and_query, q);
        req_.query = tail(path_and_query, q + 1);
    }
    if (req_.path.empty()) req_.path = "/";  // "http://host" or "http://host?x"
    phase_ = Phase::headers;
}

void RequestParser::process_header_line(std::string_view line) {
    if (line.empty()) return finish_headers();
    // obs-fold, or whitespace between the start line and the first field (RFC 9112 §2.2, §5.2).
    if (is_ows(line.front())) return fail(Status::bad_request);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(Status::bad_request);
    const std::string_view name = head(line, colon);
    if (!is_token(name)) return fail(Status::bad_request);  // also "Name :" (§5.1)
    const std::string_view value = trim_ows(tail(line, colon + 1));
    for (char c : value) {
        if (!is_field_byte(c)) return fail(Status::bad_request);
    }
    if (header_count_ >= limits_.max_header_count) return fail(Status::header_fields_too_large);
    headers_[header_count_++] = Header{name, value};

    if (iequals(name, "content-length")) {
        const auto n = parse_decimal(value);
        if (!n) return fail(Status::bad_request);
        if (has_content_length_ && *n != req_.content_length) return fail(Status::bad_request);
        has_content_length_ = true;
        req_.content_length = *n;
    } else if (iequals(name, "transfer-encoding")) {
        transfer_encoding_ = true;
    } else if (iequals(name, "host")) {
        if (!is_host(value)) return fail(Status::bad_request);
        ++host_count_;
        if (host_count_ == 1 && req_.host.empty()) req_.host = value;
    } else if (iequals(name, "connection")) {
        std::string_view rest = value;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::size_t len = comma == std::string_view::npos ? rest.size() : comma;
            const std::string_view option = trim_ows(head(rest, len));
            if (iequals(option, "close")) conn_close_ = true;
            if (iequals(option, "keep-alive")) conn_keep_alive_ = true;
            rest = comma == std::string_view::npos ? std::string_view() : tail(rest, comma + 1);
        }
    }
}

void RequestParser::finish_headers() {
    if (transfer_encoding_) return fail(Status::not_implemented);
    if (host_count_ > 1 || (req_.version == Version::http_1_1 && host_count_ == 0)) {
        return fail(Status::bad_request);
    }
    req_.keep_alive = !conn_close_ && (req_.version == Version::http_1_1 || conn_keep_alive_);
    req_.headers = std::span<const Header>(headers_.data(), header_count_);
    if (req_.content_length > limits_.max_body_bytes || req_.content_length > buf_.size() - used_) {
        return fail(Status::content_too_large);
    }
    body_start_ = used_;
    body_remaining_ = req_.content_length;
    req_.body = std::string_view(buf_.data() + used_, 0);
    phase_ = body_remaining_ == 0 ? Phase::complete : Phase::body;
}

}  // namespace keel::http
