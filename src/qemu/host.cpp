#include "qemu/host.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/fd.hpp"

namespace vireo::qemu {

namespace {
constexpr unsigned long kKvmGetApiVersion = 0xAE00;  // _IO(KVMIO, 0x00)
constexpr int kKvmApiVersion = 12;
}  // namespace

Status check_kvm_usable() {
    constexpr std::string_view hint = "; use <domain type='qemu'> (TCG emulation) instead";
    std::error_code ec;
    // PVM ("kvm_pvm") exposes /dev/kvm but runs only PVM-aware guest kernels:
    // an ordinary guest hangs, so it does not count as KVM for vireo.
    if (std::filesystem::exists("/sys/module/kvm_pvm", ec))
        return fail(ErrorCode::Unsupported,
                    "KVM on this host is PVM (paravirtualized KVM), which cannot run standard guests{}", hint);
    UniqueFd fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) return fail(ErrorCode::Unsupported, "KVM is not available on this host (no /dev/kvm){}", hint);
        return fail(ErrorCode::Unsupported, "KVM is not usable: cannot open /dev/kvm: {}{}", std::strerror(err), hint);
    }
    int v = ::ioctl(fd.get(), kKvmGetApiVersion, 0);
    if (v != kKvmApiVersion)
        return fail(ErrorCode::Unsupported, "KVM is not usable: /dev/kvm reports API version {} (expected {}){}", v,
                    kKvmApiVersion, hint);
    return {};
}

}  // namespace vireo::qemu
