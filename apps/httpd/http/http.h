// keel::http — the HTTP/1.1 core of httpd: an incremental request parser, a response writer, a
// static-site router with a /metrics hook, and the per-connection Session the network glue
// drives. Pure: no allocation, no exceptions, no I/O, no clock; host-tested and fuzzed.
//
// What the parser accepts (RFC 9112 / RFC 9110), and why where it had a choice:
// - request-line = method SP request-target SP HTTP-version, exactly one SP between the parts.
//   Methods are case-sensitive tokens of at most max_method_bytes (longer: 501). Targets are
//   origin-form ("/path?query"), absolute-form ("http://host/path", RFC 9112 §3.2.2: a server
//   MUST accept it; the authority then is the request's host) or "*" for OPTIONS; anything
//   else is 400. Target bytes are visible ASCII except '#'; the path is not percent-decoded.
// - Versions: HTTP/1.0 and HTTP/1.1; HTTP/1.x with x > 1 is served as 1.1 (RFC 9110 §6.2);
//   any other major version is 505; a malformed version is 400.
// - Line ends: CRLF, and a bare LF is also accepted as a line end (RFC 9112 §2.2 allows it:
//   "a recipient MAY recognize a single LF"); it makes `printf 'GET / HTTP/1.0\n\n' | nc`
//   work, and no proxy sits in front of us that could frame the same bytes differently. A CR
//   anywhere except right before the LF is 400 (§2.2: a bare CR is invalid).
// - Up to max_leading_empty_lines empty lines before a request line are ignored (§2.2).
// - Header fields: token ':' OWS value OWS. Whitespace before the colon is 400 (§5.1 MUST),
//   obs-fold (a line starting with SP/HTAB) is 400 (§5.2 allows rejecting), control bytes
//   other than HTAB in a value are 400; obs-text (0x80-0xFF) is kept.
// - Host: an HTTP/1.1 request without exactly one Host is 400, as is more than one Host in
//   any request, or a Host with bytes outside the URI host/port grammar (§3.2 MUST).
// - Content-Length: digits only, 1*DIGIT; repeated fields must carry the same number; an
//   overflow of 64 bits is 400; more than the body limit (or the buffer) is 413 before the
//   body is read. A body is read into the buffer right after the header block.
// - Transfer-Encoding of any value is 501 (§6.1: SHOULD answer 501 to a coding it does not
//   understand; chunked request bodies are not implemented), which also shuts the door on
//   CL/TE smuggling.
// - Connection: a comma list; "close" wins, "keep-alive" asks 1.0 to stay open; 1.1 stays
//   open unless "close". Expect is ignored (a client then sends the body after its timeout).
// - Limits: the header block (request line + fields + blank line) over max_header_bytes is 431
//   (414 while still in the request line and inside the target), a target over
//   max_target_bytes is 414, more than max_header_count fields is 431.
// The outcome never depends on how the bytes were split into feed() calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "keel/ascii.h"
#include "keel/function.h"
#include "keel/prometheus.h"
#include "keel/text_buffer.h"

namespace keel::http {

// ---------------------------------------------------------------------------------------------
// Vocabulary

/// The status codes this server produces.
enum class Status : std::uint16_t {
    ok = 200,
    bad_request = 400,
    not_found = 404,
    method_not_allowed = 405,
    request_timeout = 408,
    content_too_large = 413,
    uri_too_long = 414,
    header_fields_too_large = 431,
    internal_error = 500,
    not_implemented = 501,
    version_not_supported = 505,
};

constexpr unsigned code(Status s) { return static_cast<unsigned>(s); }

/// "OK", "Not Found", ... ("Unknown" for a value outside the enum).
std::string_view reason_phrase(Status s);

/// The short text/plain body of an error response: "404 Not Found\n".
std::string_view error_body(Status s);

enum class Method : std::uint8_t { get, head, post, put, delete_, connect, options, trace, patch, other };

enum class Version : std::uint8_t { http_1_0, http_1_1 };

struct Header {
    std::string_view name;   ///< as sent (a token)
    std::string_view value;  ///< without leading/trailing OWS
};

/// A parsed request. Every view points into the parser's buffer (or its header table) and is
/// valid until the parser is reset or fed again after reset.
struct Request {
    Method method = Method::other;
    std::string_view method_name;  ///< the method token as sent ("GET", "BREW", ...)
    std::string_view target;       ///< the request-target as sent
    std::string_view path;         ///< target up to '?' ("/" for "http://host"; "*" for "*")
    std::string_view query;        ///< after '?', without it; empty if none
    std::string_view host;         ///< absolute-form authority, else the Host field (may be empty)
    Version version = Version::http_1_1;
    bool keep_alive = false;  ///< the connection may carry another request after this one
    std::uint64_t content_length = 0;
    std::string_view body;  ///< content_length bytes
    std::span<const Header> headers;

    /// The first field with this name (ASCII case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const;
};

// ---------------------------------------------------------------------------------------------
// RequestParser

/// Most header fields a parser can hold (its table is inline).
inline constexpr std::size_t max_headers = 64;
/// Longest method token; a longer one is answered with 501.
inline constexpr std::size_t max_method_bytes = 32;
/// Empty lines tolerated before a request line (RFC 9112 §2.2); one more is 400.
inline constexpr unsigned max_leading_empty_lines = 4;

struct Limits {
    std::size_t max_header_bytes = 8192;  ///< request line + fields + blank line; else 431 (414)
    std::size_t max_target_bytes = 4096;  ///< request-target; else 414
    std::size_t max_header_count = 32;    ///< fields (at most max_headers); else 431
    std::size_t max_body_bytes = 0;       ///< Content-Length; else 413 (a GET/HEAD server takes none)
};

enum class ParseState : std::uint8_t { incomplete, complete, error };

struct ParseResult {
    ParseState state;
    /// Bytes of this feed() taken: all of them while incomplete; after `complete` the rest is
    /// the next request; after `error` it says only where the parser stopped, which depends on
    /// the pieces (a partial line can already break a limit): the connection closes anyway.
    std::size_t consumed;
};

/// Incremental HTTP/1.1 request parser over a caller-owned buffer, which must hold the header
/// block and the body (the effective limits are clamped to its size). Feed it bytes as they
/// arrive, in pieces of any size; it copies what belongs to the current request and stops at
/// its end. After `complete`, read request(), then reset() before feeding the next bytes.
/// After `error`, error() is the status to answer with; the connection must then be closed.
class RequestParser {
public:
    explicit RequestParser(std::span<char> buffer, const Limits& limits = {});
    // request().headers points into this object: it stays where it was made.
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    ParseResult feed(std::span<const char> data);
    ParseResult feed(std::string_view data) { return feed(std::span<const char>(data.data(), data.size())); }

    ParseState state() const;
    /// The request; valid in state complete.
    const Request& request() const { return req_; }
    /// The status to answer with; valid in state error.
    Status error() const { return error_; }
    /// The method once the request line was parsed (other before), for error responses to HEAD.
    Method method() const { return req_.method; }
    /// No byte of a request has arrived yet (empty lines before a request do not count).
    bool idle() const;
    /// Forget the current request and start over on an empty buffer.
    void reset();

private:
    enum class Phase : std::uint8_t { request_line, headers, body, complete, failed };

    std::size_t take_line_bytes(std::span<const char> data);
    void note_request_line_bytes(std::size_t from, std::size_t to);
    std::optional<Status> check_request_line_lengths(std::size_t content_len) const;
    void process_line();
    void process_request_line(std::string_view line);
    void process_header_line(std::string_view line);
    void finish_headers();
    void fail(Status s);

    std::span<char> buf_;
    Limits limits_;
    std::size_t header_limit_;    // min(max_header_bytes, buffer size)
    std::size_t used_ = 0;        // bytes of buf_ holding the current request
    std::size_t line_start_ = 0;  // offset of the line being received
    std::size_t sp1_, sp2_;       // first/second SP of the request line, relative to it
    std::uint64_t body_remaining_ = 0;
    std::size_t body_start_ = 0;
    std::size_t header_count_ = 0;
    unsigned empty_lines_ = 0;
    unsigned host_count_ = 0;
    bool has_content_length_ = false;
    bool transfer_encoding_ = false;
    bool conn_close_ = false;
    bool conn_keep_alive_ = false;
    Phase phase_ = Phase::request_line;
    Status error_ = Status::bad_request;
    Request req_;
    std::array<Header, max_headers> headers_;
};

// ---------------------------------------------------------------------------------------------
// Responses

/// Length of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
inline constexpr std::size_t http_date_size = 29;

/// Format seconds since 1970-01-01 UTC as an IMF-fixdate (RFC 9110 §5.6.7). False after 9999.
bool format_http_date(std::uint64_t unix_seconds, std::span<char, http_date_size> out);

/// Writes a response head into a caller buffer. Never writes past it: when the head does not
/// fit, or a name/value would break the framing (CR, LF, NUL, a non-token name), ok() turns
/// false and the head must not be sent.
class ResponseWriter : private TextBuffer {
public:
    explicit ResponseWriter(std::span<char> out) : TextBuffer(out) {}

    /// "HTTP/1.1 <code> <reason>\r\n" (we always speak 1.1, RFC 9110 §6.2).
    void status_line(Status s);
    void header(std::string_view name, std::string_view value);
    void header(std::string_view name, std::uint64_t value);
    /// The blank line ending the head.
    void end();

    using TextBuffer::ok;
    using TextBuffer::text;
    std::span<const char> bytes() const { return std::span<const char>(text()); }
};

enum class ConnectionHeader : std::uint8_t { omit, keep_alive, close };

/// Everything a response head says.
struct ResponseHead {
    Status status = Status::ok;
    std::string_view content_type;     ///< omitted when empty
    std::uint64_t content_length = 0;  ///< of the GET body, also for HEAD
    std::string_view allow;            ///< "Allow" (405), omitted when empty
    ConnectionHeader connection = ConnectionHeader::omit;
    std::optional<std::uint64_t> date;  ///< unix seconds; no Date header without a clock
};

/// Status line, Server: keel, Date, Content-Type, Content-Length, Allow, Connection, blank line.
void write_head(ResponseWriter& w, const ResponseHead& head);

// ---------------------------------------------------------------------------------------------
// Metrics: MetricsWriter, MetricType and metrics_content_type are keel's (keel/prometheus.h),
// also reachable as http::... for code written against httpd's core.
using keel::metrics_content_type;
using keel::MetricsWriter;
using keel::MetricType;

// ---------------------------------------------------------------------------------------------
// Router

/// One page of static content compiled into the image. The views must live forever
/// (string literals, or data embedded in the image).
struct Page {
    std::string_view path;          ///< exact request path, e.g. "/index.html"
    std::string_view content_type;  ///< e.g. "text/html; charset=utf-8"
    std::string_view body;
};

/// The whole site: a table of pages.
using Site = std::span<const Page>;

/// What a handler answers: the head fields it decides and the body (for GET; HEAD drops it).
struct Response {
    Status status = Status::ok;
    std::string_view content_type;
    std::string_view body;   ///< static, or in the scratch buffer given to route()
    std::string_view allow;  ///< "Allow" value for 405
};

/// Fills the metrics page. Runs on the loop, once per /metrics request (twice when the page
/// did not fit the session's scratch and a larger buffer was found).
using MetricsHook = keel::Function<void(MetricsWriter&)>;

/// A larger buffer for a dynamic body that did not fit the scratch (a metrics page with many
/// families), asked for only then: get(ctx) returns it, or an empty span when there is none
/// (the glue allocates it fallibly on first use and keeps it for the connection).
struct MoreScratch {
    std::span<char> (*get)(void* ctx) = nullptr;
    void* ctx = nullptr;
};

/// Maps requests onto the site: GET/HEAD of a page serve it ("/" is "/index.html" unless the
/// site has "/" itself); an unknown path is 404; another method on a known path is 405 with
/// "Allow: GET, HEAD". The metrics path, once set, runs the hook into the scratch buffer (500 if
/// it does not fit).
class Router {
public:
    explicit Router(Site site) : site_(site) {}

    void set_metrics(std::string_view path, MetricsHook hook);

    /// `more`: where a metrics page that does not fit `scratch` is written again, if it is
    /// larger (see SessionBuffers::more_scratch).
    Response route(const Request& req, std::span<char> scratch, const MoreScratch& more = {});

    /// An error response with the short text body.
    static Response error(Status s);

private:
    const Page* find(std::string_view path) const;

    Site site_;
    std::string_view metrics_path_;
    MetricsHook metrics_;
};

// ---------------------------------------------------------------------------------------------
// Session

/// Counters shared by the sessions of a server (all on one loop: no locks).
struct Stats {
    std::uint64_t requests = 0;      ///< requests parsed completely
    std::uint64_t parse_errors = 0;  ///< requests answered by the parser with an error
    std::uint64_t responses_2xx = 0;
    std::uint64_t responses_4xx = 0;
    std::uint64_t responses_5xx = 0;
    std::uint64_t request_timeouts = 0;  ///< requests not complete by their deadline (408)
    std::uint64_t idle_timeouts = 0;     ///< keep-alive connections closed for want of a request
    std::uint64_t write_timeouts = 0;    ///< responses the client did not take in time (reset)
};

/// keel_http_requests_total, keel_http_parse_errors_total, keel_http_responses_total{class=...}.
void write_metrics(MetricsWriter& w, const Stats& stats);

struct SessionOptions {
    Limits limits{};
    std::uint32_t max_requests = 0;                          ///< per connection; 0 = unlimited
    std::optional<std::uint64_t> (*wall_clock)() = nullptr;  ///< unix seconds for Date, if known
    Stats* stats = nullptr;                                  ///< counters to update, if any
};

/// Buffers a session works in, owned by the caller (preallocated per connection slot).
struct SessionBuffers {
    std::span<char> request;     ///< header block + body (RequestParser)
    std::span<char> head;        ///< response head; 512 bytes is ample
    std::span<char> scratch;     ///< dynamic bodies (metrics)
    MoreScratch more_scratch{};  ///< optional: for a dynamic body larger than scratch
};

/// Inline storage for one session's buffers.
template <std::size_t RequestBytes = 8192, std::size_t ScratchBytes = 4096>
struct SessionStorage {
    std::array<char, RequestBytes> request;
    std::array<char, 512> head;
    std::array<char, ScratchBytes> scratch;
    SessionBuffers buffers() { return {request, head, scratch}; }
};

/// What the connection is doing, for the glue's timers and its close decision.
enum class SessionState : std::uint8_t {
    idle,     ///< waiting for a request, nothing of it received: arm the keep-alive (idle) timer
    reading,  ///< part of a request received: arm the request (header) timer against slowloris
    writing,  ///< output() has bytes to send; feed() takes nothing until they are sent
    closed,   ///< everything sent: close the connection (gracefully: FIN, then drain and drop input)
};

/// The per-connection HTTP state machine. The network glue:
///   n = feed(received)       offers bytes; it takes n of them (all of them once closed). Keep
///                            the rest and offer it again after the output was sent: a
///                            pipelined request waits until the previous response is out.
///   output() / sent(n)       the next chunk to send (head, then body, which for static pages
///                            points into the image: send it without copying), and how much of
///                            it the transport accepted.
///   output_end()             what the transport does after output(): hold it for the body
///                            that follows (one segment for head and body), shut the write side
///                            (the FIN rides on the last segment), or just send it.
///   end_of_input()           the peer finished sending (FIN), after every received byte was
///                            taken by feed(); a pending response is still sent, then closed.
///   timed_out()              the glue's timer for the current state ran out: idle -> closed;
///                            reading -> a 408 is sent, then closed; writing -> closed (abort).
///   state()                  see SessionState; after an error response, or "Connection:
///                            close", or max_requests, the session goes to closed once sent.
class Session {
public:
    Session(Router& router, SessionBuffers buffers, const SessionOptions& options = {});
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    std::size_t feed(std::span<const char> data);
    std::size_t feed(std::string_view data) { return feed(std::span<const char>(data.data(), data.size())); }

    std::span<const char> output() const;
    /// n bytes of output() were sent; n larger than output().size() counts as all of it.
    void sent(std::size_t n);
    /// After output(): more (the body follows the head), then_close (it is the last chunk and
    /// the connection closes once it is sent) or flush.
    enum class OutputEnd : std::uint8_t { flush, more, then_close };
    OutputEnd output_end() const;

    void end_of_input();
    void timed_out();

    SessionState state() const { return state_; }
    /// Requests answered on this connection (complete ones; not parse errors).
    std::uint32_t requests() const { return requests_; }

private:
    void respond(const Request& req);
    void respond_error(Status s, bool head_request);
    void start_output(const ResponseHead& head, std::string_view body);
    void count(Status s);

    Router& router_;
    SessionBuffers bufs_;
    SessionOptions options_;
    RequestParser parser_;
    std::span<const char> head_out_;  // unsent part of the head
    std::string_view body_out_;       // unsent part of the body
    std::uint32_t requests_ = 0;
    bool close_after_ = false;
    bool input_ended_ = false;
    SessionState state_ = SessionState::idle;
};

}  // namespace keel::http
