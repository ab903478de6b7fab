// vireo-bench-domain-start MODE GUEST_DIR WORKDIR RUNS
//   MODE vireo: start the test guest through QemuDriver (in-process: the
//        figure is the driver's own cost, without the daemon/CLI hop).
//   MODE bare:  QEMU alone with the same kind of command line (no -S, its
//        serial into a file, QMP to see it running).
// Prints one line per run: "running=<seconds> marker=<seconds>", where
// running = start request until QEMU runs the vCPUs, marker = until the
// guest printed VIREO-GUEST-READY on its serial port.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "qemu/process.hpp"
#include "qemu/qemu_driver.hpp"
#include "qemu/qmp.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace vireo;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool wait_marker(const fs::path& file, std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (auto t = files::read(file); t && t->find("VIREO-GUEST-READY") != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

std::string domain_xml(const fs::path& guest) {
    return fmt::format(R"(<domain type='qemu'>
  <name>benchdom</name>
  <uuid>3f0b6c1e-2a4d-4e8f-9b1a-7c5d2e6f8a90</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{0}/vmlinuz</kernel>
    <initrd>{0}/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>)",
                       guest.string());
}

int run_vireo(const fs::path& guest, const fs::path& work, int runs) {
    qemu::QemuDriverConfig cfg;
    cfg.confdir = work / "conf";
    cfg.rundir = work / "run";
    cfg.cachedir = work / "cache";
    cfg.logdir = work / "log";
    cfg.autostart = false;
    auto drv = qemu::make_qemu_driver(cfg);
    if (!drv) {
        std::fprintf(stderr, "%s\n", drv.error().full_message().c_str());
        return 1;
    }
    if (auto d = (*drv)->define_domain(domain_xml(guest), true); !d) {
        std::fprintf(stderr, "%s\n", d.error().full_message().c_str());
        return 1;
    }
    // The capabilities probe is cached on disk; warm it as a daemon would have.
    (void)(*drv)->version();
    for (int i = 0; i < runs; ++i) {
        fs::remove((*drv)->console_log_path("benchdom"));
        auto t0 = Clock::now();
        if (auto s = (*drv)->start_domain("benchdom", {}); !s) {
            std::fprintf(stderr, "%s\n", s.error().full_message().c_str());
            return 1;
        }
        double running = since(t0);
        if (!wait_marker((*drv)->console_log_path("benchdom"), std::chrono::seconds(180))) return 1;
        double marker = since(t0);
        std::printf("running=%.3f marker=%.3f\n", running, marker);
        std::fflush(stdout);
        (void)(*drv)->destroy_domain("benchdom", {});
    }
    return 0;
}

int run_bare(const fs::path& guest, const fs::path& work, int runs) {
    fs::create_directories(work);
    for (int i = 0; i < runs; ++i) {
        fs::path serial = work / "bare-serial.log", sock = work / "bare.qmp";
        fs::remove(serial);
        auto t0 = Clock::now();
        qemu::SpawnSpec spec;
        spec.argv = {"/usr/bin/qemu-system-x86_64", "-name", "guest=benchbare", "-no-user-config", "-nodefaults",
                     "-machine", "pc,usb=off,dump-guest-core=off", "-accel", "tcg,thread=multi", "-m", "256",
                     "-smp", "1", "-display", "none", "-kernel", (guest / "vmlinuz").string(), "-initrd",
                     (guest / "initrd.img").string(), "-append", "console=ttyS0 quiet panic=-1", "-chardev",
                     "file,id=s0,path=" + serial.string(), "-device", "isa-serial,chardev=s0", "-qmp",
                     "unix:" + sock.string() + ",server=on,wait=off"};
        spec.log_path = work / "bare.log";
        auto proc = qemu::spawn_detached(spec);
        if (!proc) return 1;
        // Running: QMP answers query-status with "running".
        double running = -1;
        while (running < 0 && since(t0) < 30) {
            if (auto c = qemu::QmpClient::connect(sock, std::chrono::seconds(5))) {
                if (auto st = (*c)->execute("query-status"); st && st->value("status", "") == "running")
                    running = since(t0);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        }
        if (running < 0 || !wait_marker(serial, std::chrono::seconds(180))) return 1;
        double marker = since(t0);
        std::printf("running=%.3f marker=%.3f\n", running, marker);
        std::fflush(stdout);
        (void)qemu::terminate_process(*proc, std::chrono::seconds(5), false);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s vireo|bare GUEST_DIR WORKDIR RUNS\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    int runs = std::atoi(argv[4]);
    if (mode == "vireo") return run_vireo(argv[2], argv[3], runs);
    if (mode == "bare") return run_bare(argv[2], argv[3], runs);
    return 2;
}
