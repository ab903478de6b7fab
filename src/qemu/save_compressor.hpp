// Save image compression, as libvirt's qemu.conf `save_image_format` does it:
// QEMU writes its migration stream into a pipe, and a compressor program
// (gzip, bzip2, xz, lzop, zstd) between that pipe and the save file writes
// the compressed stream after the save header; restore runs the matching
// decompressor between the file and the pipe QEMU reads. The format is
// recorded in the save header (save_image.hpp), so restore needs no setting.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qemu/save_image.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace vireo::qemu {

// "raw", "gzip", "bzip2", "xz", "lzop", "zstd" <-> SaveCompression.
std::optional<SaveCompression> parse_save_image_format(std::string_view name);
std::string_view save_image_format_name(SaveCompression format);
// The names parse_save_image_format() accepts, for error messages.
std::string_view save_image_format_names();

// The program that (de)compresses `format` ("zstd" for Zstd, ...); empty
// for Raw. Found in PATH at save/restore time; a missing program is an
// error naming the setting and the program.
std::string_view compressor_program(SaveCompression format);
Result<std::filesystem::path> find_compressor(SaveCompression format);

// A running compressor or decompressor: reads `input`, writes `output`.
class FilterProcess {
public:
    FilterProcess() = default;
    FilterProcess(FilterProcess&& o) noexcept;
    FilterProcess& operator=(FilterProcess&& o) noexcept;
    FilterProcess(const FilterProcess&) = delete;
    FilterProcess& operator=(const FilterProcess&) = delete;
    // Kills and reaps a filter nobody waited for.
    ~FilterProcess();

    // Start `program args...` with stdin = input, stdout = output (both are
    // only duplicated: the caller keeps and closes its own descriptors).
    // Its stderr is kept for the error message.
    static Result<FilterProcess> start(const std::filesystem::path& program, const std::vector<std::string>& args,
                                       int input, int output);

    // Wait for it to exit; an error (with what it wrote on stderr) unless it
    // exited with status 0.
    Status wait();
    // Without blocking: nullopt while it runs, else what wait() returns.
    std::optional<Status> poll();
    // poll() for up to `timeout` (a filter whose pipe peer just failed is
    // usually exiting).
    std::optional<Status> poll_for(std::chrono::milliseconds timeout);
    // SIGKILL and reap (no-op when not running).
    void kill();
    [[nodiscard]] bool running() const { return pid_ > 0; }

private:
    Status exit_status(int wait_status) const;
    pid_t pid_ = -1;
    std::string program_;
    UniqueFd stderr_;  // memfd holding the filter's stderr
};

// The compressor for a save (`program -c`) and the decompressor for a
// restore (`program -dc`), started between the two descriptors.
Result<FilterProcess> start_compressor(SaveCompression format, int input, int output);
Result<FilterProcess> start_decompressor(SaveCompression format, int input, int output);

// The outcome of a transfer that went through `filter` (nullopt: none).
// When the transfer failed, a filter that failed first (a full disk, a
// damaged image) is named as the cause; when it succeeded, the filter must
// exit cleanly too. `role` ("save image compressor") names it in errors.
Status finish_through_filter(std::optional<FilterProcess>& filter, Status transfer, std::string_view role);

}  // namespace vireo::qemu
