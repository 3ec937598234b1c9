// An in-memory Target for the gdbserver tests: guest frames in a map, page tables built by
// map_4k/map_2m/map_1g, and the rules a real domain imposes checked as it is used: registers
// and memory only while paused, pause/resume balanced, no physical access across a frame.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>

#include "target.h"

namespace keel::gdbserver::test {

class FakeTarget final : public Target {
public:
    static constexpr std::uint64_t kPresentRw = 0x3;
    static constexpr std::uint64_t kLarge = 0x80;

    FakeTarget() {
        regs.cr0 = 0x80050033;  // PG, WP, NE, ET, MP, PE
        regs.cr4 = 0x20;        // PAE
        regs.efer = 0x500;      // LME, LMA
        regs.cr3 = alloc_frame();
    }

    bool pause() override {
        ++pauses;
        return ++pause_count > 0;
    }
    bool resume() override {
        EXPECT_GT(pause_count, 0) << "resume without a pause";
        --pause_count;
        ++resumes;
        return true;
    }
    bool alive() override { return is_alive; }
    bool registers(unsigned vcpu, Registers& out) override {
        EXPECT_GT(pause_count, 0) << "registers read while the domain runs";
        if (vcpu != 0) return false;
        out = regs;
        return true;
    }
    bool read_physical(std::uint64_t gpa, void* buf, std::size_t len) override {
        EXPECT_GT(pause_count, 0) << "memory read while the domain runs";
        auto* f = frame(gpa, len);
        if (!f) return false;
        std::memcpy(buf, f->data() + (gpa & 4095), len);
        return true;
    }
    bool write_physical(std::uint64_t gpa, const void* buf, std::size_t len) override {
        EXPECT_GT(pause_count, 0) << "memory written while the domain runs";
        auto* f = frame(gpa, len);
        if (!f) return false;
        std::memcpy(f->data() + (gpa & 4095), buf, len);
        return true;
    }

    /// A fresh zeroed frame; returns its guest-physical address.
    std::uint64_t alloc_frame() {
        const std::uint64_t gpa = next_frame_;
        next_frame_ += 4096;
        frames_[gpa >> 12].fill(0);
        return gpa;
    }
    /// Makes frames [gpa, gpa + len) exist (data pages; for large pages too).
    void add_memory(std::uint64_t gpa, std::uint64_t len) {
        for (std::uint64_t a = gpa & ~4095ull; a < gpa + len; a += 4096) frames_[a >> 12];
    }
    void poke(std::uint64_t gpa, const void* data, std::size_t len) {
        std::memcpy(frames_.at(gpa >> 12).data() + (gpa & 4095), data, len);
    }
    void map_4k(std::uint64_t va, std::uint64_t gpa) { *entry(va, 1) = gpa | kPresentRw; }
    void map_2m(std::uint64_t va, std::uint64_t gpa) { *entry(va, 2) = gpa | kPresentRw | kLarge; }
    void map_1g(std::uint64_t va, std::uint64_t gpa) { *entry(va, 3) = gpa | kPresentRw | kLarge; }

    Registers regs;
    int pause_count = 0;
    int pauses = 0;
    int resumes = 0;
    bool is_alive = true;

private:
    std::array<std::uint8_t, 4096>* frame(std::uint64_t gpa, std::size_t len) {
        EXPECT_LE((gpa & 4095) + len, 4096u) << "physical access crosses a frame";
        if ((gpa & 4095) + len > 4096) return nullptr;
        auto it = frames_.find(gpa >> 12);
        return it == frames_.end() ? nullptr : &it->second;
    }
    // The entry for va at level (1 = PTE ... 4 = PML4E), creating the tables above it.
    std::uint64_t* entry(std::uint64_t va, int level) {
        std::uint64_t table = regs.cr3 & 0x000ffffffffff000ull;
        for (int l = 4;; --l) {
            auto* e = reinterpret_cast<std::uint64_t*>(frames_.at(table >> 12).data()) +
                      ((va >> (12 + 9 * (l - 1))) & 511);
            if (l == level) return e;
            if (!(*e & 1)) *e = alloc_frame() | kPresentRw;
            table = *e & 0x000ffffffffff000ull;
        }
    }

    std::map<std::uint64_t, std::array<std::uint8_t, 4096>> frames_;
    std::uint64_t next_frame_ = 0x100000;  // page tables from 1 MiB; data from 16 MiB up in the tests
};

}  // namespace keel::gdbserver::test
