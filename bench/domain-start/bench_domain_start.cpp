// vireo-bench-domain-start bare|bare-hugepages GUEST_DIR WORKDIR RUNS
//   The floor of bench/domain-start/run: QEMU alone with the same kind of
//   command line as vireo's (no -S, its serial into a file, QMP to see it
//   running). vireo itself is measured by the run script, through vireod.
//   bare-hugepages runs QEMU with the environment vireo gives the QEMUs it
//   starts (qemu_environment(): its heap on transparent huge pages), the
//   floor of vireo's start; bare is QEMU as a user (or libvirt) runs it.
// vireo-bench-domain-start marker FILE
//   Wait until FILE holds VIREO-GUEST-READY (the run script's poller for
//   vireo and libvirt: the same 5 ms file poll as bare, in one process),
//   and print the guest's uptime from the marker line: "uptime=<seconds>".
// bare prints one line per run: "running=<seconds> marker=<seconds>
// uptime=<seconds>", where running = start request until QEMU runs the
// vCPUs, marker = until the guest printed VIREO-GUEST-READY on its serial
// port, uptime = the guest kernel's own uptime in that line.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "qemu/command_line.hpp"
#include "qemu/process.hpp"
#include "qemu/qmp.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace vireo;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Wait until `file` holds the boot marker; the guest's uptime (seconds since
// its kernel started) that the marker line reports, or nullopt at timeout.
std::optional<double> wait_marker(const fs::path& file, std::chrono::seconds timeout) {
    static const std::regex marker(R"(VIREO-GUEST-READY uptime=([0-9.]+) )");
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        std::smatch m;
        if (auto t = files::read(file); t && std::regex_search(*t, m, marker)) return std::stod(m[1].str());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
}

int run_bare(const fs::path& guest, const fs::path& work, int runs, bool hugepages) {
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
        // bare-hugepages: the environment vireo gives the QEMUs it starts.
        spec.set_env = qemu::qemu_environment(hugepages, std::getenv("GLIBC_TUNABLES"));
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
        if (running < 0) return 1;
        auto uptime = wait_marker(serial, std::chrono::seconds(180));
        if (!uptime) return 1;
        double marker = since(t0);
        std::printf("running=%.3f marker=%.3f uptime=%.3f\n", running, marker, *uptime);
        std::fflush(stdout);
        (void)qemu::terminate_process(*proc, std::chrono::seconds(5), false);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // marker FILE: wait (up to 180 s) until FILE holds the boot marker, polling
    // as run_bare does, so that every side is timed by the same cheap poller.
    if (argc == 3 && std::string(argv[1]) == "marker") {
        auto uptime = wait_marker(argv[2], std::chrono::seconds(180));
        if (!uptime) return 1;
        std::printf("uptime=%.3f\n", *uptime);
        return 0;
    }
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s bare|bare-hugepages GUEST_DIR WORKDIR RUNS | marker FILE\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    int runs = std::atoi(argv[4]);
    if (mode == "bare" || mode == "bare-hugepages") return run_bare(argv[2], argv[3], runs, mode != "bare");
    return 2;
}
