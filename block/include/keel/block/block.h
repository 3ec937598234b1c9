// The block API: what services see of a disk. blkfront implements it over Xen's io/blkif.h;
// unit tests implement it in memory (with crash and torn-write simulation). Services include
// this header, never a driver's.
//
//   block::Device& disk = *block::devices()[0];
//   co_await disk.write(0, data);         // completed, not yet durable
//   co_await disk.flush();                // now every write completed before the flush is durable
//
// Buffers are plain memory of any alignment; sizes are whole sectors. Errors are values:
//   Error::invalid_argument  a range beyond the disk or a size that is not whole sectors
//   Error::permission        a write or discard on a read-only disk (xl: access=ro)
//   Error::not_supported     discard on a disk that does not offer it
//   Error::io                the backend answered with an error (BLKIF_RSP_ERROR), or the
//                            device has failed for good (failed())
//   Error::closed            the device went away (closing, reset) before the request finished
// Context: loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "keel/result.h"
#include "keel/task.h"

namespace keel::block {

struct Geometry {
    std::uint64_t sectors = 0;      // in units of sector_size
    std::uint32_t sector_size = 0;  // bytes: 512 or 4096
    bool read_only = false;
    bool flush = false;    // the backend offers flush (feature-flush-cache or feature-barrier);
                           // without it flush() succeeds only when writes are already durable
    bool discard = false;  // feature-discard
};

class Device {
public:
    virtual ~Device() = default;
    /// The xenstore node, e.g. "device/vbd/51712", or a test's name.
    virtual std::string_view name() const = 0;
    virtual const Geometry& geometry() const = 0;
    /// The device failed for good (blkfront: the disk changed its sector size, shrank or
    /// withdrew flush across a reconnect): every call fails with Error::io from now on.
    virtual bool failed() const { return false; }
    /// Read whole sectors starting at `sector` into `out`.
    virtual Task<Result<void>> read(std::uint64_t sector, std::span<std::byte> out) = 0;
    /// Write whole sectors; on success the data is on the device but not necessarily durable.
    virtual Task<Result<void>> write(std::uint64_t sector, std::span<const std::byte> data) = 0;
    /// Make every write that completed before this call durable.
    virtual Task<Result<void>> flush() = 0;
    /// The sectors' contents become unspecified (trim).
    virtual Task<Result<void>> discard(std::uint64_t sector, std::uint64_t count) = 0;
};

/// The disks the guest found at boot (blkfront: device/vbd/*, in xenstore order), then those
/// hot-plugged. Complete once discovered() is set; the devices live forever (a detached one
/// stays, its calls failing with Error::closed). An image gets disks by linking a driver that
/// adds them: keel_add_service(... LIBS keel_blkfront).
std::span<Device* const> devices();
/// Set once boot-time discovery has finished (with or without disks).
Event& discovered();

/// For drivers: make `device` one of devices() (Error::no_space beyond max_devices, detached
/// ones included: blkfront takes as many over the guest's life, xenbus::max_attached).
inline constexpr std::size_t max_devices = 32;
Result<void> add_device(Device& device);
/// Forget every device and clear discovered() (tests).
void clear_devices();

}  // namespace keel::block
