#include "qemu/save_compressor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

#include "util/path_search.hpp"

extern char** environ;

namespace vireo::qemu {

namespace {

struct FormatName {
    SaveCompression format;
    std::string_view name;
};

constexpr std::array kFormats{
    FormatName{SaveCompression::None, "raw"},   FormatName{SaveCompression::Gzip, "gzip"},
    FormatName{SaveCompression::Bzip2, "bzip2"}, FormatName{SaveCompression::Xz, "xz"},
    FormatName{SaveCompression::Lzop, "lzop"},  FormatName{SaveCompression::Zstd, "zstd"},
};

// What a filter wrote on stderr, trimmed to something a message can carry.
std::string read_stderr(int fd) {
    std::string out(2048, '\0');
    ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

// A copy of `fd` numbered 3 or more, so that the child's dup2 onto 0, 1 and
// 2 cannot clobber one of its own sources.
Result<UniqueFd> above_stdio(int fd) {
    UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!copy) return fail_errno("duplicate a descriptor for the compressor");
    return copy;
}

Result<FilterProcess> start_filter(SaveCompression format, bool decompress, int input, int output) {
    auto program = find_compressor(format);
    if (!program) return std::unexpected(program.error());
    std::vector<std::string> args{decompress ? "-dc" : "-c"};
    if (format == SaveCompression::Zstd) args.push_back("-q");
    return FilterProcess::start(*program, args, input, output);
}

}  // namespace

std::optional<SaveCompression> parse_save_image_format(std::string_view name) {
    for (const auto& f : kFormats)
        if (f.name == name) return f.format;
    return std::nullopt;
}

std::string_view save_image_format_name(SaveCompression format) {
    for (const auto& f : kFormats)
        if (f.format == format) return f.name;
    return "unknown";
}

std::string_view save_image_format_names() { return "raw, gzip, bzip2, xz, lzop, zstd"; }

std::string_view compressor_program(SaveCompression format) {
    return format == SaveCompression::None ? "" : save_image_format_name(format);
}

Result<std::filesystem::path> find_compressor(SaveCompression format) {
    const std::string_view program = compressor_program(format);
    if (program.empty())
        return fail(ErrorCode::InvalidArg, "save image format '{}' has no compressor program",
                    save_image_format_name(format));
    if (auto found = find_executable(program, path_dirs({"/usr/bin", "/bin"}))) return *found;
    return fail(ErrorCode::NotFound, "save_image_format '{}' needs the '{}' program, not found in PATH",
                save_image_format_name(format), program);
}

FilterProcess::FilterProcess(FilterProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), program_(std::move(o.program_)), stderr_(std::move(o.stderr_)) {}

FilterProcess& FilterProcess::operator=(FilterProcess&& o) noexcept {
    if (this != &o) {
        kill();
        pid_ = std::exchange(o.pid_, -1);
        program_ = std::move(o.program_);
        stderr_ = std::move(o.stderr_);
    }
    return *this;
}

FilterProcess::~FilterProcess() { kill(); }

Result<FilterProcess> FilterProcess::start(const std::filesystem::path& program, const std::vector<std::string>& args,
                                           int input, int output) {
    FilterProcess f;
    f.program_ = program.filename().string();
    f.stderr_.reset(::memfd_create("vireo-filter-stderr", MFD_CLOEXEC));
    if (!f.stderr_) return fail_errno(fmt::format("create the stderr buffer of '{}'", f.program_));
    auto in = above_stdio(input);
    if (!in) return std::unexpected(in.error());
    auto out = above_stdio(output);
    if (!out) return std::unexpected(out.error());
    auto err = above_stdio(f.stderr_.get());
    if (!err) return std::unexpected(err.error());

    std::vector<std::string> argv_store{program.string()};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    // dup2 onto 0/1/2 clears close-on-exec there; every other descriptor of
    // the daemon is close-on-exec, so the filter holds only these three (in
    // particular not the pipe end whose closing tells it the stream ended).
    posix_spawn_file_actions_adddup2(&actions, in->get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out->get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err->get(), 2);
    // Default signal handling and an empty mask, whatever the daemon set
    // (it ignores SIGPIPE; a filter whose reader died should die of it).
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return std::unexpected(errno_error(fmt::format("start '{}'", program.string()), rc));
    f.pid_ = pid;
    return f;
}

Status FilterProcess::wait() {
    if (pid_ <= 0) return {};
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
        if (errno != EINTR) {
            pid_ = -1;
            return fail_errno(fmt::format("wait for '{}'", program_));
        }
    }
    pid_ = -1;
    return exit_status(status);
}

std::optional<Status> FilterProcess::poll() {
    if (pid_ <= 0) return Status{};
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return std::nullopt;
    pid_ = -1;
    if (r < 0) return fail_errno(fmt::format("wait for '{}'", program_));
    return exit_status(status);
}

std::optional<Status> FilterProcess::poll_for(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto done = poll()) return done;
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Status FilterProcess::exit_status(int status) const {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    std::string how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                      : WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                            : std::string("failed");
    std::string text = stderr_ ? read_stderr(stderr_.get()) : "";
    return fail(ErrorCode::System, "'{}' {}{}{}", program_, how, text.empty() ? "" : ": ", text);
}

void FilterProcess::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

Result<FilterProcess> start_compressor(SaveCompression format, int input, int output) {
    return start_filter(format, false, input, output);
}

Result<FilterProcess> start_decompressor(SaveCompression format, int input, int output) {
    return start_filter(format, true, input, output);
}

Status finish_through_filter(std::optional<FilterProcess>& filter, Status transfer, std::string_view role) {
    const std::string failed = fmt::format("the {} failed", role);
    if (!filter) return transfer;
    if (!transfer) {
        if (auto done = filter->poll_for(std::chrono::seconds(1)); done && !*done)
            return std::unexpected(done->error().context(failed));
        return transfer;
    }
    if (auto done = filter->wait(); !done) return std::unexpected(done.error().context(failed));
    return {};
}

}  // namespace vireo::qemu
