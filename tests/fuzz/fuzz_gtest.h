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

namespace keel::fuzz {

class AbortOnFailure : public ::testing::EmptyTestEventListener {
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (!r.failed()) return;
        std::fprintf(stderr, "%s:%d: %s\n", r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
        std::abort();
    }
};

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
