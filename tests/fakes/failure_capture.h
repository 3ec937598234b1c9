// For the fakes' own tests: run something that should make a fake fail the test, and keep the
// failures it reported instead of failing.
#pragma once

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace keel::test {

/// The messages of every gtest failure `f` reported (they do not fail the running test).
template <typename F>
std::vector<std::string> failures_of(F&& f) {
    ::testing::TestPartResultArray results;
    {
        ::testing::ScopedFakeTestPartResultReporter reporter(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
        f();
    }
    std::vector<std::string> out;
    for (int i = 0; i < results.size(); ++i) out.emplace_back(results.GetTestPartResult(i).message());
    return out;
}

/// True if one of `failures` contains `needle`.
inline bool mentions(const std::vector<std::string>& failures, std::string_view needle) {
    for (const auto& f : failures) {
        if (f.find(needle) != std::string::npos) return true;
    }
    return false;
}

}  // namespace keel::test
