// Test rig for blkfront: the generic frontend rig (fake xenstored, loop, grant table, test
// platform) with two fake blkbacks on the same grant table and pages, and up to two Blkfronts.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "fakes/allocation_counter.h"
#include "fakes/fake_blkback.h"
#include "fakes/frontend_rig.h"
#include "keel/blkfront/blkfront.h"

namespace keel::test {

/// Bytes with a pattern that differs per seed and per position.
std::vector<std::byte> pattern(std::size_t n, unsigned seed);

class BlkfrontTest : public FrontendRig {
protected:
    BlkfrontTest();
    ~BlkfrontTest() override;

    /// The toolstack's nodes and the backend's disk, then a Blkfront over them, init()ed.
    blkfront::Blkfront& make(const DiskConfig& c = {}, blkfront::Options o = {}) { return make_on(bb, bf, c, o); }
    /// The same for the second disk (device/vbd/51728).
    blkfront::Blkfront& make_second(const DiskConfig& c = {}, blkfront::Options o = {}) {
        return make_on(bb2, bf2, c, o);
    }
    /// connect() to Connected, then let everything settle.
    void connect(blkfront::Blkfront& b);
    void connect() { connect(*bf); }
    /// make() then connect().
    void make_connected(const DiskConfig& c = {}, blkfront::Options o = {}) {
        make(c, o);
        connect();
    }

    /// Run a block call to its end; its error (Error::ok on success).
    Error io(Task<Result<void>> t) {
        auto r = run(std::move(t));
        return r ? r->error() : Error::cancelled;
    }

    std::optional<std::string> key(const char* k) const { return d.get(bb.front() + "/" + k); }

    /// xl restore of the first disk: bb vanishes without a word and the new domain's backend
    /// (another path: the domid is new) appears with the toolstack's nodes and the same disk
    /// contents (the same image file). `answering` false: its nodes only, nothing behind them.
    FakeBlkback& move_to_new_domain(bool answering = true);

    FakeBlkback bb;
    FakeBlkback bb2;
    std::optional<FakeBlkback> bb_moved;  ///< move_to_new_domain()
    std::optional<blkfront::Blkfront> bf;
    std::optional<blkfront::Blkfront> bf2;

private:
    blkfront::Blkfront& make_on(FakeBlkback& b, std::optional<blkfront::Blkfront>& dev, const DiskConfig& c,
                                blkfront::Options o);
    DiskConfig config_;  ///< the first disk's, as make() created it
};

}  // namespace keel::test
