// The start_info parsers' tests (PVH and PV): a hostile field is refused as bad input, with
// exactly the reason the boot line prints.
#pragma once

#include <gtest/gtest.h>

#include "keel/result.h"

namespace keel::xen {

template <typename T>
void expect_refused(const Result<T>& r, const char* why, const char* text) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), Error::bad_input);
    ASSERT_NE(why, nullptr);
    EXPECT_STREQ(why, text);
}

}  // namespace keel::xen
