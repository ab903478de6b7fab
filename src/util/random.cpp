#include "util/random.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>

namespace vireo {

namespace {

// /dev/urandom, for a kernel without getrandom() (older than 3.17).
bool read_urandom(std::uint8_t* p, std::size_t len) {
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    while (len > 0) {
        ssize_t n = ::read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    ::close(fd);
    return len == 0;
}

}  // namespace

void random_bytes(std::span<std::uint8_t> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
        } else if (errno != EINTR) {
            if (read_urandom(out.data() + done, out.size() - done)) return;
        }
    }
}

}  // namespace vireo
