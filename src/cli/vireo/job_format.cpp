#include "cli/vireo/job_format.hpp"

#include <fmt/format.h>

namespace vireo::cli {

namespace {

void line(std::string& out, std::string_view label, std::string_view value) {
    out += fmt::format("{:<17} {:<12}\n", label, value);
}

void number(std::string& out, std::string_view label, std::uint64_t value, std::string_view unit = {}) {
    if (unit.empty())
        out += fmt::format("{:<17} {:<12}\n", label, value);
    else
        out += fmt::format("{:<17} {:<12} {}\n", label, value, unit);
}

void size(std::string& out, std::string_view label, std::uint64_t bytes, std::string_view per = {}) {
    out += fmt::format("{:<17} {}{}\n", label, format_job_size(bytes), per);
}

}  // namespace

std::string format_job_size(std::uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.3f} {}", value, kUnits[unit]);
}

std::string format_job_info(const driver::JobInfo& info) {
    std::string out;
    line(out, "Job type:", driver::job_status_name(info.status));
    if (info.status == driver::JobStatus::None) return out + "\n";
    line(out, "Operation:", driver::job_operation_name(info.operation));
    number(out, "Time elapsed:", static_cast<std::uint64_t>(info.elapsed.count()), "ms");
    if (info.data_total || info.data_processed || info.data_remaining) {
        size(out, "Data processed:", info.data_processed);
        size(out, "Data remaining:", info.data_remaining);
        size(out, "Data total:", info.data_total);
    }
    if (info.mem_total || info.mem_processed || info.mem_remaining) {
        size(out, "Memory processed:", info.mem_processed);
        size(out, "Memory remaining:", info.mem_remaining);
        size(out, "Memory total:", info.mem_total);
    }
    if (info.mem_bps) size(out, "Memory bandwidth:", info.mem_bps, "/s");
    if (const auto& m = info.migration) {
        number(out, "Dirty rate:", m->dirty_rate, "pages/s");
        number(out, "Page size:", m->page_size, "bytes");
        number(out, "Iteration:", m->iteration);
        number(out, "Postcopy requests:", m->postcopy_requests);
        number(out, "Constant pages:", m->constant_pages);
        number(out, "Normal pages:", m->normal_pages);
        size(out, "Normal data:", m->normal_bytes);
        number(out, "Expected downtime:", m->expected_downtime_ms, "ms");
        number(out, "Setup time:", m->setup_time_ms, "ms");
    }
    if (!info.error.empty()) out += fmt::format("{:<17} {}\n", "Error message:", info.error);
    return out + "\n";
}

int job_percent(const driver::JobInfo& info) {
    std::uint64_t total = info.data_total ? info.data_total : info.mem_total;
    std::uint64_t remaining = info.data_total ? info.data_remaining : info.mem_remaining;
    if (info.status == driver::JobStatus::Completed) return 100;
    if (total == 0) return 0;
    if (remaining > total) remaining = total;
    return static_cast<int>(100 * (total - remaining) / total);
}

std::string format_job_progress(std::string_view label, int percent) {
    return fmt::format("\r{}: [{:3} %]", label, percent);
}

}  // namespace vireo::cli
