// Test rig for netfront: the generic frontend rig (fake xenstored, loop, grant table, test
// platform) with a fake netback and one Netfront.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "fakes/allocation_counter.h"
#include "fakes/fake_netback.h"
#include "fakes/frontend_rig.h"
#include "keel/netfront/netfront.h"

namespace keel::test {

std::vector<std::byte> make_frame(std::size_t n, unsigned seed);
std::vector<std::byte> flatten(const netfront::RxBuffer& b);

class NetfrontTest : public FrontendRig {
protected:
    NetfrontTest();
    ~NetfrontTest() override;

    /// Toolstack nodes + backend features, then a Netfront over them, init()ed.
    netfront::Netfront& make(const BackendFeatures& f = {}, netfront::Options o = {});
    /// make() without init() (for init's own tests).
    netfront::Netfront& construct(const BackendFeatures& f = {}, netfront::Options o = {});
    /// connect() to Connected, then let everything settle.
    void connect();
    /// make() then connect().
    void make_connected(const BackendFeatures& f = {}, netfront::Options o = {}) {
        make(f, o);
        connect();
    }

    std::optional<std::string> key(const char* k) const {
        return d.get(std::string(FakeNetback::vif_front) + "/" + k);
    }
    /// Keep every received frame in `rx`.
    void collect();

    FakeNetback nb;
    std::optional<netfront::Netfront> nf;
    std::vector<netfront::RxBuffer> rx;
};

}  // namespace keel::test
