// The .ksyms tables of the real images (hello, httpd, kvstore: KEEL_TEST_IMAGES, colon-separated, set by
// tests/unit/CMakeLists.txt) against binutils: every text symbol nm lists must symbolize to
// its demangled name (c++filt -p, GCC clone suffix kept as " [clone .cold]", the rule in
// cmake/gen-ksyms.sh) at offset 0, and the byte before the next symbol to the same name. Skips
// an image that is not built.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "keel/xen/ksyms.h"

namespace keel::xen {
namespace {

std::string run(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    EXPECT_EQ(pclose(p), 0) << command;
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Length of `name` without its trailing GCC clone suffixes (".cold", ".actor", ".destroy",
// ".constprop.N", ".isra.N", ".part.N", any number of them).
std::size_t without_clone_suffix(const std::string& name) {
    std::size_t end = name.size();
    for (;;) {
        std::size_t e = end;
        while (e > 0 && std::isdigit(static_cast<unsigned char>(name[e - 1]))) --e;
        std::size_t cut = std::string::npos;
        if (e < end && e > 0 && name[e - 1] == '.') {  // ".constprop.N", ".isra.N", ".part.N"
            for (const char* word : {".constprop", ".isra", ".part"}) {
                const std::size_t n = std::strlen(word);
                if (e - 1 >= n && name.compare(e - 1 - n, n, word) == 0) cut = e - 1 - n;
            }
        } else if (e == end) {
            for (const char* word : {".cold", ".actor", ".destroy"}) {
                const std::size_t n = std::strlen(word);
                if (end >= n && name.compare(end - n, n, word) == 0) cut = end - n;
            }
        }
        if (cut == std::string::npos) return end;
        end = cut;
    }
}

std::vector<std::string> images() {
    std::vector<std::string> out;
    const char* env = std::getenv("KEEL_TEST_IMAGES");
    std::stringstream ss(env ? env : "");
    for (std::string s; std::getline(ss, s, ':');)
        if (!s.empty()) out.push_back(s);
    return out;
}

TEST(KsymsImage, EveryTextSymbolResolvesToItsDemangledName) {
    const std::vector<std::string> list = images();
    if (list.empty()) GTEST_SKIP() << "KEEL_TEST_IMAGES is not set";
    int checked = 0;
    for (const std::string& image : list) {
        SCOPED_TRACE(image);
        if (access(image.c_str(), R_OK) != 0) continue;  // not built
        const std::string tmp = ::testing::TempDir() + "ksyms_image_test." + std::to_string(getpid());
        run("objcopy -O binary --only-section=.ksyms '" + image + "' '" + tmp + ".bin'");
        const std::string blob_bytes = read_file(tmp + ".bin");
        const auto* blob = reinterpret_cast<const std::uint8_t*>(blob_bytes.data());
        ASSERT_GE(blob_bytes.size(), 8u);
        EXPECT_TRUE(ksyms_valid(blob, blob_bytes.size()));

        // nm's text symbols in address order; the clone suffix split off before c++filt -p.
        std::vector<std::uint64_t> addrs;
        std::vector<std::string> suffixes;
        std::string mangled;
        std::istringstream nm(run("nm -n --defined-only '" + image + "'"));
        for (std::string line; std::getline(nm, line);) {
            std::istringstream fields(line);
            std::string addr, type, name;
            fields >> addr >> type >> name;
            const bool text = type == "t" || type == "T" || type == "w" || type == "W";
            if (!text && name != "keel_hypercall_page") continue;  // gen-ksyms.sh takes it too
            std::string suffix;
            if (name.rfind("_Z", 0) == 0) {
                suffix = name.substr(without_clone_suffix(name));
                name.resize(name.size() - suffix.size());
            }
            addrs.push_back(std::stoull(addr, nullptr, 16));
            suffixes.push_back(suffix);
            mangled += name + "\n";
        }
        std::ofstream(tmp + ".names") << mangled;
        std::istringstream demangled(run("c++filt -p < '" + tmp + ".names'"));
        std::remove((tmp + ".bin").c_str());
        std::remove((tmp + ".names").c_str());
        std::map<std::uint64_t, std::string> want;  // the last name nm lists at an address wins
        for (std::size_t i = 0; i < addrs.size(); ++i) {
            std::string name;
            ASSERT_TRUE(std::getline(demangled, name));
            if (!suffixes[i].empty()) name += " [clone " + suffixes[i] + "]";
            want[addrs[i]] = name;
        }
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(blob[0] | blob[1] << 8 | blob[2] << 16 | blob[3] << 24, static_cast<int>(addrs.size()));

        char buf[1024];
        for (auto it = want.begin(); it != want.end(); ++it) {
            SCOPED_TRACE(it->second);
            auto s = symbolize(blob, blob_bytes.size(), it->first, buf);
            ASSERT_TRUE(s) << std::hex << it->first;
            EXPECT_EQ(std::string(s->name), it->second);
            EXPECT_EQ(s->offset, 0u);
            EXPECT_FALSE(s->truncated);
            const auto next = std::next(it);
            if (next == want.end()) continue;
            s = symbolize(blob, blob_bytes.size(), next->first - 1, buf);
            ASSERT_TRUE(s);
            EXPECT_EQ(std::string(s->name), it->second);
            EXPECT_EQ(s->offset, next->first - 1 - it->first);
            ++checked;
        }
        EXPECT_FALSE(symbolize(blob, blob_bytes.size(), want.begin()->first - 1, buf));
    }
    if (checked == 0) GTEST_SKIP() << "no image built";
}

}  // namespace
}  // namespace keel::xen
