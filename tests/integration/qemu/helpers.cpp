#include "helpers.hpp"

#include <poll.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/guest.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;

namespace vireo::qemu::test {

QemuDriverConfig config_in(const fs::path& root) {
    QemuDriverConfig c;
    c.confdir = root / "conf";
    c.rundir = root / "run";
    c.cachedir = root / "cache";
    c.logdir = root / "log";
    c.savedir = root / "save";
    c.autostart = false;
    c.destroy_grace = std::chrono::seconds(5);
    return c;
}

std::unique_ptr<QemuDriver> make_driver(const fs::path& root) {
    auto d = make_qemu_driver(config_in(root));
    if (!d) {
        ADD_FAILURE() << d.error().full_message();
        return nullptr;
    }
    return std::move(*d);
}

std::string guest_xml(const std::string& name, const std::string& extra_devices, const std::string& cmdline_extra,
                      const std::string& extra_top) {
    return vireo::test::guest_domain_xml(name, extra_devices, cmdline_extra, extra_top);
}

std::optional<std::smatch> wait_file(const fs::path& file, const std::regex& pattern, std::chrono::milliseconds timeout,
                                     std::string* content) {
    static thread_local std::string text;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto r = files::read(file);
        text = r ? *r : "";
        std::smatch m;
        if (std::regex_search(text, m, pattern)) {
            if (content) *content = text;
            return m;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            if (content) *content = text;
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

std::vector<int> qemu_pids_for(const std::string& name) {
    std::vector<int> out;
    std::string needle = "guest=" + name + ",";
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::string pid = e.path().filename().string();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        auto stat = files::read(e.path() / "stat");
        if (!stat) continue;
        auto close = stat->rfind(')');
        if (close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z') continue;
        auto cmd = files::read(e.path() / "cmdline");
        if (!cmd) continue;
        std::string c = *cmd;
        for (char& ch : c)
            if (ch == '\0') ch = ' ';
        if (c.find("qemu-system") != std::string::npos && c.find(needle) != std::string::npos)
            out.push_back(std::stoi(pid));
    }
    return out;
}

std::vector<std::string> files_starting_with(const fs::path& dir, const std::string& prefix) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path().filename().string());
    return out;
}

bool Console::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buf_.find(needle) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char chunk[4096];
        ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
        if (n <= 0) return false;
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
}

bool Console::wait_shell(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!shell_ready_ && std::chrono::steady_clock::now() < deadline) {
        buf_.clear();
        if (::write(fd_.get(), "\n", 1) != 1) return false;
        shell_ready_ = wait_for(vireo::test::kGuestPrompt, std::chrono::seconds(2));
    }
    return shell_ready_;
}

std::optional<std::string> Console::run(const std::string& command, std::chrono::milliseconds timeout) {
    if (!wait_shell(timeout)) return std::nullopt;
    // A unique end marker, so earlier output and the echo cannot confuse us.
    static int counter = 0;
    std::string marker = fmt::format("@@END{}@@", ++counter);
    std::string line = fmt::format("{}; echo '{}'\n", command, marker.substr(0, 2) + "'" + "'" + marker.substr(2));
    buf_.clear();
    if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) return std::nullopt;
    // The echoed command has the marker split by '' so only real output matches.
    if (!wait_for(marker + "\r\n", timeout) && !wait_for(marker + "\n", std::chrono::milliseconds(1))) return std::nullopt;
    std::string out = buf_.substr(0, buf_.find(marker + "\r\n") != std::string::npos ? buf_.find(marker + "\r\n")
                                                                                    : buf_.find(marker + "\n"));
    // Drop the echoed command line.
    auto nl = out.find('\n');
    out = nl == std::string::npos ? "" : out.substr(nl + 1);
    std::erase(out, '\r');
    return out;
}

bool Console::send(const std::string& command) {
    if (!wait_shell(std::chrono::seconds(30))) return false;
    buf_.clear();
    const std::string line = command + "\n";
    if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) return false;
    return wait_for(command + "\r\n", std::chrono::seconds(30));
}

void EventLog::add(const driver::DomainEvent& e) {
    std::lock_guard lk(mutex_);
    // A memory device's size follows its alias: "MemoryDeviceSizeChange/virtiomem0/131072".
    if (e.type == driver::EventType::MemoryDeviceSizeChange)
        events_.emplace_back(e.domain, fmt::format("{}/{}/{}", driver::event_name(e.type), e.detail, e.size_kib));
    else
        events_.emplace_back(e.domain, fmt::format("{}/{}", driver::event_name(e.type), e.detail));
}

std::vector<std::string> EventLog::for_domain(const std::string& name) const {
    std::lock_guard lk(mutex_);
    std::vector<std::string> out;
    for (const auto& [d, what] : events_)
        if (d == name) out.push_back(what);
    return out;
}

bool EventLog::wait_for(const std::string& name, const std::string& what, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto v = for_domain(name);
        if (std::find(v.begin(), v.end(), what) != v.end()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int count_boot_markers(const std::string& text) {
    static const std::regex marker(vireo::test::kGuestReadyPattern);
    return static_cast<int>(std::distance(std::sregex_iterator(text.begin(), text.end(), marker), std::sregex_iterator()));
}

GuestFixture::~GuestFixture() {
    // Never leave a guest behind, whatever the test did.
    if (drv)
        if (auto all = drv->list_domains())
            for (const auto& d : *all)
                if (d.state != driver::DomainState::Shutoff) (void)drv->destroy_domain(d.name, {});
}

void GuestFixture::open(const std::function<void(QemuDriverConfig&)>& configure) {
    auto cfg = config_in(tmp.path());
    if (configure) configure(cfg);
    auto d = make_qemu_driver(std::move(cfg));
    ASSERT_TRUE(d) << d.error().full_message();
    drv = std::move(*d);
    auto s = drv->subscribe([this](const driver::DomainEvent& e) { events.add(e); });
    ASSERT_TRUE(s);
    sub = std::move(*s);
}

void GuestFixture::close() {
    sub.reset();
    drv.reset();
}

void GuestFixture::define_and_start(const std::string& name, const std::string& extra, const std::string& cmdline_extra,
                                    const std::string& extra_top) {
    auto d = drv->define_domain(guest_xml(name, extra, cmdline_extra, extra_top), true);
    ASSERT_TRUE(d) << d.error().full_message();
    auto st = drv->start_domain(name, {});
    ASSERT_TRUE(st) << st.error().full_message();
}

void GuestFixture::wait_ready(const std::string& name, int count) {
    auto deadline = std::chrono::steady_clock::now() + kBoot;
    std::string text;
    for (;;) {
        auto r = files::read(drv->console_log_path(name));
        text = r ? *r : "";
        if (count_boot_markers(text) >= count) return;
        if (std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "boot marker not seen " << count << " time(s) from '" << name << "'; console:\n" << text;
}

driver::DomainSummary GuestFixture::info(const std::string& name) {
    auto d = drv->lookup_domain(name);
    EXPECT_TRUE(d) << d.error().full_message();
    return d ? *d : driver::DomainSummary{};
}

Console GuestFixture::console(const std::string& name) {
    auto fd = drv->open_console(name, "");
    EXPECT_TRUE(fd) << fd.error().full_message();
    return Console(fd ? std::move(*fd) : UniqueFd());
}

std::vector<std::string> backing_chain(const fs::path& image) {
    auto r = vireo::test::run({"qemu-img", "info", "-U", "--backing-chain", "--output=json", image.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& layer : j) out.push_back(fs::path(layer.value("filename", "")).filename().string());
    return out;
}

}  // namespace vireo::qemu::test
