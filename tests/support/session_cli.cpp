#include "support/session_cli.hpp"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <thread>

#include "support/guest.hpp"
#include "util/files.hpp"

namespace vireo::test {

SessionCli::SessionCli(std::filesystem::path root)
    : root_(std::move(root)),
      env_{"env",
           "VIREO_RUNTIME_DIR=" + (root_ / "run").string(),
           "VIREO_CONFIG_DIR=" + (root_ / "config").string(),
           "VIREO_CACHE_DIR=" + (root_ / "cache").string(),
           "VIREO_DAEMON_PATH=" + (bin_dir() / "vireod").string(),
           "VIREO_DEFAULT_URI=qemu:///session",
           "LIBVIRT_DEFAULT_URI="} {}

std::vector<std::string> SessionCli::argv(const std::vector<std::string>& args, const std::string& extra_env) const {
    std::vector<std::string> out = env_;
    if (!extra_env.empty()) out.push_back(extra_env);
    out.push_back((bin_dir() / "vireo").string());
    out.insert(out.end(), args.begin(), args.end());
    return out;
}

CommandResult SessionCli::operator()(const std::vector<std::string>& args, const std::string& input) const {
    return run(argv(args), input);
}

void SessionCli::destroy_guests() const {
    for (const auto& name : split_lines((*this)({"list", "--name"}).out))
        if (!name.empty()) (*this)({"destroy", name});
}

void SessionCli::stop_daemon() const {
    using namespace std::chrono_literals;
    auto pid = files::read(runtime_dir() / "vireod.pid");
    if (!pid) return;
    const int p = std::atoi(pid->c_str());
    if (p <= 1) return;
    ::kill(p, SIGTERM);
    for (int i = 0; i < 100 && ::kill(p, 0) == 0; ++i) std::this_thread::sleep_for(50ms);
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
        out.push_back(text.substr(start, nl - start));
    return out;
}

bool SessionCli::on_console(const std::string& name, const std::string& command, const std::string& expect,
                            std::chrono::seconds timeout, std::string* output) const {
    using namespace std::chrono_literals;
    auto console = QemuProcess::start(argv({"console", name}));
    if (!console) return false;
    struct KeepOutput {
        QemuProcess& p;
        std::string* out;
        ~KeepOutput() {
            if (out) *out = p.output();
        }
    } keep{*console, output};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool typed = false;
    while (std::chrono::steady_clock::now() < deadline) {
        // Typed once the shell answers: a shell still starting may eat it.
        if (!typed) {
            console->send("\n");
            if (!console->wait_for(std::regex("vireo-guest# "), 5s)) continue;
            console->send(command + "\n");
            typed = true;
        }
        if (console->wait_for(std::regex(expect), 5s)) return true;
    }
    return false;
}

void SessionGuestTest::SetUp() {
    VIREO_REQUIRE_GUEST();
    if (!std::filesystem::exists(bin_dir() / "vireod")) VIREO_SKIP("vireod is not built");
    in_use_ = true;
}

void SessionGuestTest::TearDown() {
    if (!in_use_) return;
    cli_.destroy_guests();
    cli_.stop_daemon();
}

}  // namespace vireo::test
