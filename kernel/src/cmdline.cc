// Command-line parser. Input from the toolstack: every rule violation is an error, not a panic.
#include "keel/cmdline.h"

namespace keel {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

}  // namespace

CommandLine::CommandLine(const CommandLine& o) { copy_from(o); }

CommandLine& CommandLine::operator=(const CommandLine& o) {
    if (this != &o) copy_from(o);
    return *this;
}

void CommandLine::copy_from(const CommandLine& o) {
    for (std::size_t i = 0; i <= o.len_; ++i) buf_[i] = o.buf_[i];
    len_ = o.len_;
    count_ = o.count_;
    // The views point into o.buf_: rebase them onto our copy.
    auto rebase = [&](std::string_view v) { return std::string_view(buf_ + (v.data() - o.buf_), v.size()); };
    for (std::size_t i = 0; i < count_; ++i) {
        const Arg& a = o.args_[i];
        args_[i] = Arg{rebase(a.key), a.has_value ? rebase(a.value) : std::string_view(), a.has_value};
    }
}

Result<CommandLine> CommandLine::parse(std::string_view text, const char** why, std::size_t* where) {
    auto fail = [&](const char* reason, std::size_t at) -> Result<CommandLine> {
        if (why != nullptr) *why = reason;
        if (where != nullptr) *where = at;
        return Error::invalid_argument;
    };
    if (text.size() > max_length) return fail("command line longer than 2047 bytes", max_length);

    CommandLine cl;
    for (std::size_t i = 0; i < text.size(); ++i) cl.buf_[i] = text[i];
    cl.len_ = text.size();
    cl.buf_[cl.len_] = '\0';
    const char* b = cl.buf_;
    const std::size_t n = cl.len_;

    std::size_t i = 0;
    for (;;) {
        while (i < n && is_space(b[i])) ++i;
        if (i == n) break;
        if (cl.count_ == max_words) return fail("more than 64 words", i);

        const std::size_t key_start = i;
        while (i < n && !is_space(b[i]) && b[i] != '=') {
            if (is_control(b[i])) return fail("control character", i);
            if (!is_key_char(b[i])) return fail("bad character in key (allowed: A-Z a-z 0-9 _ . -)", i);
            ++i;
        }
        if (i == key_start) return fail("empty key", i);
        Arg arg{std::string_view(b + key_start, i - key_start), std::string_view(), false};

        if (i < n && b[i] == '=') {
            ++i;
            arg.has_value = true;
            if (i < n && b[i] == '"') {
                const std::size_t quote = i++;
                const std::size_t value_start = i;
                while (i < n && b[i] != '"') {
                    if (is_control(b[i])) return fail("control character", i);
                    ++i;
                }
                if (i == n) return fail("unterminated quote", quote);
                arg.value = std::string_view(b + value_start, i - value_start);
                ++i;
                if (i < n && !is_space(b[i])) return fail("text right after a closing quote", i);
            } else {
                const std::size_t value_start = i;
                while (i < n && !is_space(b[i])) {
                    if (is_control(b[i])) return fail("control character", i);
                    if (b[i] == '"') return fail("quote inside an unquoted value", i);
                    ++i;
                }
                arg.value = std::string_view(b + value_start, i - value_start);
            }
        }

        for (std::size_t j = 0; j < cl.count_; ++j) {
            if (cl.args_[j].key == arg.key) return fail("duplicate key", key_start);
        }
        cl.args_[cl.count_++] = arg;
    }
    return cl;
}

const CommandLine::Arg* CommandLine::find(std::string_view key) const {
    for (std::size_t i = 0; i < count_; ++i) {
        if (args_[i].key == key) return &args_[i];
    }
    return nullptr;
}

std::optional<std::string_view> CommandLine::get(std::string_view key) const {
    const Arg* a = find(key);
    if (a == nullptr || !a->has_value) return std::nullopt;
    return a->value;
}

bool CommandLine::has(std::string_view key) const { return find(key) != nullptr; }

Result<std::uint64_t> CommandLine::get_uint(std::string_view key, std::uint64_t fallback, std::uint64_t lo,
                                            std::uint64_t hi) const {
    const Arg* a = find(key);
    if (a == nullptr) return fallback;
    if (!a->has_value || a->value.empty() || a->value.size() > 19) return Error::invalid_argument;
    std::uint64_t n = 0;  // at most 19 digits: no overflow
    for (char c : a->value) {
        if (c < '0' || c > '9') return Error::invalid_argument;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n < lo || n > hi) return Error::invalid_argument;
    return n;
}

}  // namespace keel
