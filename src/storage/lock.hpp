// Image locking as QEMU's file-posix driver does it, on the same bytes, so
// that QEMU, qemu-img, qemu-io, qemu-nbd and vireo see each other's use of an
// image and refuse to write under one another.
//
// Every user of an image file states the permissions it takes (`perm`) and
// the ones it lets others take (`shared`). On the file, permission bit i is
// two bytes, both only ever read-locked with open file description (OFD)
// locks: byte 100+i is locked by every user that holds the permission, byte
// 200+i by every user that does not share it. A new user is refused when it
// wants a permission whose byte 200+i another open file holds ("Failed to get
// "write" lock"), or when it will not share one whose byte 100+i another open
// file holds ("Failed to get shared "write" lock"). Like QEMU, the bytes are
// locked first and checked second, so two users starting at once cannot both
// miss each other.
//
// A running guest (QEMU with the image as a read-write drive) holds
// consistent read, write and resize and shares neither write nor resize:
// readers must pass -U (force share) and writers are refused.
//
// Within one process, all users of one file share one descriptor on which
// the union of their bytes is locked: a process's own users never conflict
// with each other (QEMU's permission graph plays that role inside QEMU; in
// vireo the callers coordinate: vireo-img commit opens its base twice, the
// daemon marks busy volumes). The lock is released when the last user goes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "util/error.hpp"

namespace vireo::storage {

// QEMU's block permissions (BLK_PERM_*), same bits.
enum LockPerm : unsigned {
    kPermConsistentRead = 1U << 0,
    kPermWrite = 1U << 1,
    kPermWriteUnchanged = 1U << 2,
    kPermResize = 1U << 3,
    kPermAll = (1U << 4) - 1,
};

struct LockPerms {
    unsigned perm = 0;          // taken
    unsigned shared = kPermAll;  // allowed to others
};

// What qemu-img takes on an image it opens:
// read-only: consistent read, sharing all but write and resize;
// read-write: consistent read, write and resize, sharing all but write and resize;
// force_share (-U): the same permissions, sharing everything.
LockPerms default_lock_perms(bool writable, bool force_share, bool no_io = false);

namespace detail {
struct LockedFile;
}

// One user's hold on an image file's lock bytes; released when destroyed.
class ImageLock {
public:
    // Lock `path` for `perms`. `create`: make the file (empty, mode 0644) when
    // it does not exist, as a target of create/convert. Errors: the open
    // error, or Busy with QEMU's words:
    //   Failed to get "write" lock
    //   Is another process using the image [<path>]?
    // File systems without OFD locks (QEMU's locking=auto) take no lock.
    static Result<ImageLock> acquire(const std::filesystem::path& path, LockPerms perms, bool create = false);

    ImageLock() = default;
    ImageLock(ImageLock&& o) noexcept;
    ImageLock& operator=(ImageLock&& o) noexcept;
    ImageLock(const ImageLock&) = delete;
    ImageLock& operator=(const ImageLock&) = delete;
    ~ImageLock();

    [[nodiscard]] bool held() const { return file_ != nullptr; }
    void release();

private:
    std::shared_ptr<detail::LockedFile> file_;
    uint64_t id_ = 0;
};

// Whether another process holds `path` in a way that a user with `perms`
// would be refused (the same check as acquire, without taking anything).
// Ok when it may be used; Busy with QEMU's words when not.
Status check_image_lock(const std::filesystem::path& path, LockPerms perms);

}  // namespace vireo::storage
