#include "storage/lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <tuple>
#include <mutex>

#include "util/fd.hpp"

namespace vireo::storage {

namespace {

constexpr off_t kPermBase = 100;    // byte 100+i: "holds permission i"
constexpr off_t kSharedBase = 200;  // byte 200+i: "does not share permission i"
constexpr int kPermBits = 4;

const char* perm_name(int bit) {
    static const char* const kNames[kPermBits] = {"consistent read", "write", "write unchanged", "resize"};
    return kNames[bit];
}

struct ::flock one_byte(short type, off_t off) {
    struct ::flock fl{};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = off;
    fl.l_len = 1;
    return fl;
}

// errno values that mean "this file system has no OFD locks": QEMU's
// locking=auto then runs without locking.
bool no_lock_support(int err) { return err == EINVAL || err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS; }

}  // namespace

LockPerms default_lock_perms(bool writable, bool force_share, bool no_io) {
    LockPerms p;
    p.perm = no_io ? 0U : kPermConsistentRead;
    if (writable) p.perm |= kPermWrite | kPermResize;
    p.shared = force_share ? kPermAll : (kPermAll & ~(kPermWrite | kPermResize));
    return p;
}

namespace detail {

// One file's lock descriptor in this process and the users holding it.
struct LockedFile {
    UniqueFd fd;
    dev_t dev = 0;
    ino_t ino = 0;
    bool supported = true;
    std::map<uint64_t, LockPerms> users;
    unsigned locked_perm = 0, locked_unshared = 0;  // bytes locked now

    // Lock exactly the union of the users' bytes; false (errno set) on failure.
    bool apply() {
        unsigned perm = 0, unshared = 0;
        for (const auto& [id, p] : users) {
            perm |= p.perm;
            unshared |= kPermAll & ~p.shared;
        }
        for (int i = 0; i < kPermBits; ++i) {
            const unsigned bit = 1U << i;
            for (auto [want, have, base] : {std::tuple{perm, locked_perm, kPermBase},
                                            std::tuple{unshared, locked_unshared, kSharedBase}}) {
                if (((want ^ have) & bit) == 0) continue;
                auto fl = one_byte((want & bit) ? F_RDLCK : F_UNLCK, base + i);
                if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) return false;
            }
        }
        locked_perm = perm;
        locked_unshared = unshared;
        return true;
    }

    // Does another open file hold byte `off`? (F_OFD_GETLK never reports our own.)
    Result<bool> taken_elsewhere(off_t off) const {
        auto fl = one_byte(F_WRLCK, off);
        if (::fcntl(fd.get(), F_OFD_GETLK, &fl) != 0) return fail_errno("cannot test an image lock");
        return fl.l_type != F_UNLCK;
    }

    // QEMU's check order: the permissions wanted first, then the ones not shared.
    Status check(const LockPerms& p, const std::string& path) const {
        for (int i = 0; i < kPermBits; ++i) {
            if (!(p.perm & (1U << i))) continue;
            auto t = taken_elsewhere(kSharedBase + i);
            if (!t) return std::unexpected(t.error());
            if (*t)
                return fail(ErrorCode::Busy, "Failed to get \"{}\" lock\nIs another process using the image [{}]?",
                            perm_name(i), path);
        }
        for (int i = 0; i < kPermBits; ++i) {
            if (p.shared & (1U << i)) continue;
            auto t = taken_elsewhere(kPermBase + i);
            if (!t) return std::unexpected(t.error());
            if (*t)
                return fail(ErrorCode::Busy,
                            "Failed to get shared \"{}\" lock\nIs another process using the image [{}]?",
                            perm_name(i), path);
        }
        return {};
    }
};

}  // namespace detail

namespace {

// Every locked file of this process, by device and inode.
std::mutex g_mu;
std::map<std::pair<dev_t, ino_t>, std::weak_ptr<detail::LockedFile>> g_files;
uint64_t g_next_id = 1;

Result<UniqueFd> open_for_lock(const std::filesystem::path& path, bool create) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return std::unexpected(errno_error(fmt::format("Could not create '{}'", path.string()), errno));
    }
    if (fd < 0) return std::unexpected(errno_error(fmt::format("Could not open '{}'", path.string()), errno));
    return UniqueFd(fd);
}

}  // namespace

Result<ImageLock> ImageLock::acquire(const std::filesystem::path& path, LockPerms perms, bool create) {
    auto fd = open_for_lock(path, create);
    if (!fd) return std::unexpected(fd.error());
    struct stat st{};
    if (::fstat(fd->get(), &st) != 0) return fail_errno(fmt::format("Could not open '{}'", path.string()));

    std::lock_guard lk(g_mu);
    std::shared_ptr<detail::LockedFile> f;
    auto key = std::pair{st.st_dev, st.st_ino};
    if (auto it = g_files.find(key); it != g_files.end()) f = it->second.lock();
    if (!f) {
        f = std::make_shared<detail::LockedFile>();
        f->fd = std::move(*fd);
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        g_files[key] = f;
    }
    ImageLock out;
    out.id_ = g_next_id++;
    if (!f->supported) {
        out.file_ = f;
        return out;
    }
    f->users[out.id_] = perms;
    if (!f->apply()) {
        const int err = errno;
        f->users.erase(out.id_);
        if (no_lock_support(err) && f->locked_perm == 0 && f->locked_unshared == 0) {
            f->supported = false;  // QEMU's locking=auto on a file system without OFD locks
            out.file_ = f;
            return out;
        }
        (void)f->apply();
        return std::unexpected(errno_error(fmt::format("Failed to lock '{}'", path.string()), err));
    }
    if (auto ok = f->check(perms, path.string()); !ok) {
        f->users.erase(out.id_);
        (void)f->apply();
        return std::unexpected(ok.error());
    }
    out.file_ = f;
    return out;
}

ImageLock::ImageLock(ImageLock&& o) noexcept : file_(std::move(o.file_)), id_(o.id_) { o.id_ = 0; }

ImageLock& ImageLock::operator=(ImageLock&& o) noexcept {
    if (this != &o) {
        release();
        file_ = std::move(o.file_);
        id_ = o.id_;
        o.id_ = 0;
    }
    return *this;
}

ImageLock::~ImageLock() { release(); }

void ImageLock::release() {
    if (!file_) return;
    std::lock_guard lk(g_mu);
    file_->users.erase(id_);
    if (file_->supported && !file_->users.empty()) (void)file_->apply();
    // The last user: dropping the descriptor (below) releases every byte.
    if (file_.use_count() == 1) g_files.erase({file_->dev, file_->ino});
    file_.reset();
    id_ = 0;
}

Status check_image_lock(const std::filesystem::path& path, LockPerms perms) {
    auto l = ImageLock::acquire(path, perms);
    if (!l) return std::unexpected(l.error());
    return {};
}

}  // namespace vireo::storage
