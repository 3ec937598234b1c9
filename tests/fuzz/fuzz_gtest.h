// For fuzz targets that drive the GoogleTest-based fakes and rigs (tests/fakes): a failure a
// fake or rig reports (the other side's protocol rules) is a finding, so it aborts and
// libFuzzer keeps the input. The libFuzzer binary compiles the fakes it uses in (tests/fuzz/
// CMakeLists.txt, keel_fakes_fuzz_target); the replay links keel_fakes.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz_support.h"
#include "keel/loop.h"

namespace keel::fuzz {

class AbortOnFailure : public ::testing::EmptyTestEventListener {
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (!r.failed()) return;
        std::fprintf(stderr, "%s:%d: %s\n", r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
        std::abort();
    }
};

/// Run a rig's loop (idling allowed: the clock moves to the next timer) until `done()` or `max`
/// rounds, as FrontendRig::run_until does, but stop once three rounds in a row ran nothing,
/// left the clock where it was and left nothing pending (`busy()` false, no queued work): with
/// no timer armed every further round is the same no-op (a "time passes" move spun through up
/// to 400 of them, each polling the fakes). Three, not one: a fake backend's own xenstore
/// writes show as pending work only a round later.
template <typename Done, typename Busy>
bool run_until_quiet(EventLoop& loop, Done&& done, Busy&& busy, int max) {
    int quiet = 0;
    for (int i = 0; i < max; ++i) {
        if (done()) return true;
        const std::uint64_t before = loop.now();
        const bool ran = loop.run_once(true);
        quiet = !ran && loop.now() == before && loop.queued() == 0 && !busy() ? quiet + 1 : 0;
        if (quiet == 3) break;
    }
    return done();
}

/// The whole entry point of a target that plays against a rig: a fresh `Rig` (a test fixture
/// with play(Input&)) per input, so that an input replayed alone behaves the same.
template <typename Rig>
int play_rig(const std::uint8_t* data, std::size_t size) {
    static const bool listening = [] {
        ::testing::UnitTest::GetInstance()->listeners().Append(new AbortOnFailure);
        return true;
    }();
    (void)listening;
    Input in(data, size);
    Rig rig;
    rig.play(in);
    return 0;
}

}  // namespace keel::fuzz
