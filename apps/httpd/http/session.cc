// Router (static pages + the metrics hook) and Session (one connection's request/response
// cycle: parse, route, write the head, hand out head and body, keep-alive or close).
#include <utility>

#include "http.h"

namespace keel::http {
namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view allowed_methods = "GET, HEAD";

}  // namespace

// ---------------------------------------------------------------------------------------------
// Router

void Router::set_metrics(std::string_view path, MetricsHook hook) {
    metrics_path_ = path;
    metrics_ = std::move(hook);
}

const Page* Router::find(std::string_view path) const {
    for (const Page& p : site_) {
        if (p.path == path) return &p;
    }
    return nullptr;
}

Response Router::error(Status s) { return Response{s, text_plain, error_body(s), {}}; }

Response Router::route(const Request& req, std::span<char> scratch, const MoreScratch& more) {
    const bool readable = req.method == Method::get || req.method == Method::head;
    if (metrics_ && !metrics_path_.empty() && req.path == metrics_path_) {
        if (!readable)
            return Response{Status::method_not_allowed, text_plain, error_body(Status::method_not_allowed),
                            allowed_methods};
        MetricsWriter w(scratch);
        metrics_(w);
        if (!w.ok() && more.get != nullptr) {  // too big (or invalid): once more, in a larger buffer
            const std::span<char> larger = more.get(more.ctx);
            if (larger.size() > scratch.size()) {
                w = MetricsWriter(larger);
                metrics_(w);
            }
        }
        if (!w.ok()) return error(Status::internal_error);
        return Response{Status::ok, metrics_content_type, w.text(), {}};
    }
    const Page* page = find(req.path);
    if (!page && req.path == "/") page = find("/index.html");
    if (!page) return error(Status::not_found);
    if (!readable) {
        return Response{Status::method_not_allowed, text_plain, error_body(Status::method_not_allowed),
                        allowed_methods};
    }
    return Response{Status::ok, page->content_type, page->body, {}};
}

// ---------------------------------------------------------------------------------------------
// Metrics of the server itself

void write_metrics(MetricsWriter& w, const Stats& stats) {
    w.counter("keel_http_requests_total", "HTTP requests parsed completely.", stats.requests);
    w.counter("keel_http_parse_errors_total", "HTTP requests rejected by the parser.", stats.parse_errors);
    w.family("keel_http_responses_total", "HTTP responses, by status class.", MetricType::counter);
    w.sample("class", "2xx", stats.responses_2xx);
    w.sample("class", "4xx", stats.responses_4xx);
    w.sample("class", "5xx", stats.responses_5xx);
    w.counter("keel_http_request_timeouts_total", "Requests not complete by their deadline (answered 408).",
              stats.request_timeouts);
    w.counter("keel_http_idle_timeouts_total", "Keep-alive connections closed for want of a request.",
              stats.idle_timeouts);
    w.counter("keel_http_write_timeouts_total", "Responses the client did not take in time (reset).",
              stats.write_timeouts);
}

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(Router& router, SessionBuffers buffers, const SessionOptions& options)
    : router_(router), bufs_(buffers), options_(options), parser_(buffers.request, options.limits) {}

std::size_t Session::feed(std::span<const char> data) {
    if (state_ == SessionState::closed) return data.size();  // after the end: dropped
    if (state_ == SessionState::writing || input_ended_) return 0;
    const ParseResult r = parser_.feed(data);
    switch (r.state) {
        case ParseState::incomplete:
            state_ = parser_.idle() ? SessionState::idle : SessionState::reading;
            return r.consumed;
        case ParseState::complete:
            respond(parser_.request());
            parser_.reset();  // the response refers to static data or scratch, not the request
            return r.consumed;
        case ParseState::error:
            if (options_.stats) ++options_.stats->parse_errors;
            respond_error(parser_.error(), parser_.method() == Method::head);
            return data.size();  // the connection closes: what follows is not read
    }
    return r.consumed;
}

void Session::respond(const Request& req) {
    ++requests_;
    if (options_.stats) ++options_.stats->requests;
    const Response resp = router_.route(req, bufs_.scratch, bufs_.more_scratch);
    const bool last =
        !req.keep_alive || input_ended_ || (options_.max_requests != 0 && requests_ >= options_.max_requests);
    ResponseHead head;
    head.status = resp.status;
    head.content_type = resp.content_type;
    head.content_length = resp.body.size();
    head.allow = resp.allow;
    if (last) {
        head.connection = ConnectionHeader::close;
    } else if (req.version == Version::http_1_0) {
        head.connection = ConnectionHeader::keep_alive;  // 1.0 closes unless told otherwise
    }
    close_after_ = last;
    start_output(head, req.method == Method::head ? std::string_view() : resp.body);
}

void Session::respond_error(Status s, bool head_request) {
    const Response resp = Router::error(s);
    ResponseHead head;
    head.status = s;
    head.content_type = resp.content_type;
    head.content_length = resp.body.size();
    head.connection = ConnectionHeader::close;
    close_after_ = true;
    start_output(head, head_request ? std::string_view() : resp.body);
}

void Session::start_output(const ResponseHead& head_in, std::string_view body) {
    ResponseHead head = head_in;
    if (options_.wall_clock) head.date = options_.wall_clock();
    ResponseWriter w(bufs_.head);
    write_head(w, head);
    if (!w.ok()) {
        // Our own head did not fit or a page's content type is malformed: answer 500 plainly.
        ResponseHead fallback;
        fallback.status = Status::internal_error;
        fallback.content_type = text_plain;
        fallback.content_length = error_body(Status::internal_error).size();
        fallback.connection = ConnectionHeader::close;
        close_after_ = true;
        body = error_body(Status::internal_error);
        w = ResponseWriter(bufs_.head);
        write_head(w, fallback);
        if (!w.ok()) {  // a head buffer too small for anything: nothing sensible to send
            head_out_ = {};
            body_out_ = {};
            state_ = SessionState::closed;
            return;
        }
        count(Status::internal_error);
    } else {
        count(head.status);
    }
    head_out_ = w.bytes();
    body_out_ = body;
    state_ = SessionState::writing;
}

void Session::count(Status s) {
    if (!options_.stats) return;
    const unsigned c = code(s);
    if (c >= 200 && c < 300) ++options_.stats->responses_2xx;
    if (c >= 400 && c < 500) ++options_.stats->responses_4xx;
    if (c >= 500) ++options_.stats->responses_5xx;
}

std::span<const char> Session::output() const {
    if (!head_out_.empty()) return head_out_;
    return std::span<const char>(body_out_.data(), body_out_.size());
}

Session::OutputEnd Session::output_end() const {
    if (!head_out_.empty() && !body_out_.empty()) return OutputEnd::more;
    return close_after_ || input_ended_ ? OutputEnd::then_close : OutputEnd::flush;
}

void Session::sent(std::size_t n) {
    if (state_ != SessionState::writing) return;
    if (!head_out_.empty()) {
        head_out_ = n >= head_out_.size() ? std::span<const char>() : head_out_.subspan(n);
    } else {
        body_out_ = n >= body_out_.size() ? std::string_view()
                                          : std::string_view(body_out_.data() + n, body_out_.size() - n);
    }
    if (!head_out_.empty() || !body_out_.empty()) return;
    if (close_after_) {
        state_ = SessionState::closed;
    } else {
        state_ = input_ended_ ? SessionState::closed : SessionState::idle;
    }
}

void Session::end_of_input() {
    input_ended_ = true;
    if (state_ == SessionState::idle || state_ == SessionState::reading) state_ = SessionState::closed;
}

void Session::timed_out() {
    switch (state_) {
        case SessionState::idle:
        case SessionState::writing:
            head_out_ = {};
            body_out_ = {};
            state_ = SessionState::closed;
            break;
        case SessionState::reading:
            respond_error(Status::request_timeout, parser_.method() == Method::head);
            break;
        case SessionState::closed:
            break;
    }
}

}  // namespace keel::http
