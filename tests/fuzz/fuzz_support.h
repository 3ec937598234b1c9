// What every fuzz target here shares: CHECK (abort with the failed condition, which libFuzzer
// reports as a crash), deterministic piece sizes derived from the input, and, when built with
// KEEL_FUZZ_REPLAY, the main() of the corpus replay. Include it in the target's one source file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace keel::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    std::abort();
}

/// The fuzzer's bytes, read front to back; past the end every read gives zeros (so a short
/// input is still a whole scenario). u16 takes the first byte as the low one, u32 the first as
/// the high one: the byte orders the seed corpora were written in.
class Input {
public:
    Input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
    bool empty() const { return pos_ >= n_; }
    std::uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
    std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v = v << 8 | u8();
        return v;
    }
    /// Up to `n` bytes (fewer at the end of the input), as a std::string or a
    /// std::vector<std::byte>.
    template <typename Out = std::string>
    Out bytes(std::size_t n) {
        n = std::min(n, n_ - std::min(pos_, n_));
        const auto* p = reinterpret_cast<const typename Out::value_type*>(d_ + pos_);
        pos_ += n;
        return Out(p, p + n);
    }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t pos_ = 0;
};

// Deterministic piece sizes: a small linear congruential generator seeded from the input.
// Mostly 1..9 bytes, one in eight 1..700.
class Pieces {
public:
    explicit Pieces(std::string_view data) {
        for (unsigned char c : data) state_ = state_ * 31 + c;
    }
    std::size_t next() {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t r = state_ >> 33;
        return r % 8 == 0 ? 1 + r % 700 : 1 + r % 9;
    }

private:
    std::uint64_t state_ = 1;
};

/// A parser must not care how its input is cut: `Stream` (a parser run with `feed(piece)` and a
/// `trace()` of what it saw) fed `data` at once and in pieces must end with the same trace.
template <typename Stream, typename Limits>
void check_cuts(std::string_view data, const Limits& limits);

/// The whole of a parser target's entry point: check_cuts<Stream> under the default limits and
/// under `tight` ones, then `check_session(input)` (the input served by a session). Returns 0.
template <typename Stream, typename Limits, typename CheckSession>
int check_input(const std::uint8_t* data, std::size_t size, const Limits& tight, CheckSession check_session) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_cuts<Stream>(input, Limits{});
    check_cuts<Stream>(input, tight);
    check_session(input);
    return 0;
}

}  // namespace keel::fuzz

#define CHECK(cond)                                                 \
    do {                                                            \
        if (!(cond)) ::keel::fuzz::fail(#cond, __FILE__, __LINE__); \
    } while (0)

template <typename Stream, typename Limits>
void keel::fuzz::check_cuts(std::string_view data, const Limits& limits) {
    Stream whole(limits);
    whole.feed(data);
    Stream pieces(limits);
    Pieces sizes(data);
    for (std::size_t pos = 0; pos < data.size();) {
        const std::size_t n = std::min(sizes.next(), data.size() - pos);
        pieces.feed(data.substr(pos, n));
        pos += n;
    }
    CHECK(whole.trace() == pieces.trace());
}

#ifdef KEEL_FUZZ_REPLAY
// Corpus replay: run the entry point over every file named, or in a directory named.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const fs::path p(argv[i]);
        if (fs::is_directory(p)) {
            for (const auto& e : fs::directory_iterator(p)) {
                if (e.is_regular_file()) files.push_back(e.path());
            }
        } else {
            files.push_back(p);
        }
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "cannot read %s\n", f.c_str());
            return 1;
        }
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("replayed %zu inputs\n", files.size());
    return files.empty() ? 1 : 0;  // an empty corpus is a broken test, not a pass
}
#endif
