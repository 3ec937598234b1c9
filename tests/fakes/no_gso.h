// fake_link.h declares the GSO splitter (the backend's model) that tests/unit/net defines. A test
// binary whose devices never do GSO includes this instead, from exactly one of its files.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace keel::net::test {
std::vector<std::vector<std::byte>> segment_super_frame(const std::vector<std::byte>&, std::size_t) {
    ADD_FAILURE() << "no GSO in these tests";
    return {};
}
}  // namespace keel::net::test
