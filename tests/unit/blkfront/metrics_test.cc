// blkfront's metric families (blkfront::write_metrics): one sample per disk, labelled with its
// xenstore node, following the disk's Stats.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "fakes/blkfront_rig.h"
#include "fakes/prometheus_check.h"

namespace keel::test {
namespace {

TEST_F(BlkfrontTest, MetricsFollowEachDisk) {
    make_connected();
    make_second();
    connect(*bf2);
    const auto data = pattern(3 * 512, 1);
    ASSERT_EQ(io(bf->write(4, data)), Error::ok);
    std::vector<std::byte> back(512);
    ASSERT_EQ(io(bf2->read(0, back)), Error::ok);
    ASSERT_EQ(io(bf2->read(1, back)), Error::ok);

    std::array<blkfront::Blkfront*, 2> devices{&*bf, &*bf2};
    std::array<char, 16384> buf;
    MetricsWriter w(buf);
    blkfront::write_metrics(w, devices);
    ASSERT_TRUE(w.ok());
    const std::string_view text = w.text();
    EXPECT_EQ(check_prometheus(text), "") << text;
    const std::string one = "{device=\"" + std::string(bf->name()) + "\"}";
    const std::string two = "{device=\"" + std::string(bf2->name()) + "\"}";
    EXPECT_NE(one, two);
    EXPECT_EQ(sample_int(text, "keel_blkfront_writes_total" + one), 1);
    EXPECT_EQ(sample_int(text, "keel_blkfront_written_bytes_total" + one), 3 * 512);
    EXPECT_EQ(sample_int(text, "keel_blkfront_reads_total" + one), 0);
    EXPECT_EQ(sample_int(text, "keel_blkfront_reads_total" + two), 2);
    EXPECT_EQ(sample_int(text, "keel_blkfront_read_bytes_total" + two), 2 * 512);
    EXPECT_EQ(sample_int(text, "keel_blkfront_requests_total" + two),
              static_cast<long long>(bf2->stats().requests));
    EXPECT_EQ(sample_int(text, "keel_blkfront_connects_total" + one), 1);
    EXPECT_EQ(sample_int(text, "keel_blkfront_given_up" + one), 0);
    EXPECT_EQ(sample_int(text, "keel_blkfront_protocol_errors_total" + one), 0);

    // No disk: the families are declared, with no samples.
    MetricsWriter none(buf);
    blkfront::write_metrics(none, {});
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(check_prometheus(none.text()), "");
    EXPECT_EQ(family_names(none.text()).size(), 18u);
}

}  // namespace
}  // namespace keel::test
