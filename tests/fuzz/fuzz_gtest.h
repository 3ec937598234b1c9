// For fuzz targets that drive the GoogleTest-based fakes and rigs: a failure a fake or rig
// reports (the other side's protocol rules) is a finding, so it aborts and libFuzzer keeps the
// input. Install with ::testing::UnitTest::GetInstance()->listeners().Append(new AbortOnFailure).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace keel::fuzz {

class AbortOnFailure : public ::testing::EmptyTestEventListener {
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (!r.failed()) return;
        std::fprintf(stderr, "%s:%d: %s\n", r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
        std::abort();
    }
};

}  // namespace keel::fuzz
