#include "cli/vireo/job_format.hpp"

#include <fmt/format.h>

#include "cli/vireo/text.hpp"

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
        number(out, info.status == driver::JobStatus::Completed ? "Total downtime:" : "Expected downtime:",
               m->downtime_ms, "ms");
        number(out, "Setup time:", m->setup_time_ms, "ms");
    }
    if (!info.error.empty()) out += fmt::format("{:<17} {}\n", "Error message:", info.error);
    return out + "\n";
}

std::string format_job_info(const driver::JobInfo& info, bool completed_asked, bool anystats) {
    using driver::JobStatus;
    const bool running = info.status == JobStatus::Bounded || info.status == JobStatus::Unbounded;
    const bool done = completed_asked && info.status == JobStatus::Completed;
    if (anystats || running || done) return format_job_info(info);
    std::string out;
    line(out, "Job type:", driver::job_status_name(info.status));
    return out + "\n";
}

std::string format_job_raw(const driver::JobInfo& info) {
    std::string out = fmt::format("Job type: {}\n\n", static_cast<int>(info.status));
    auto put = [&](std::string_view name, auto value) { out += fmt::format("{}: {}\n", name, value); };
    if (info.status != driver::JobStatus::None) {
        put("operation", static_cast<int>(info.operation));
        put("time_elapsed", info.elapsed.count());
        if (const auto& m = info.migration) {
            put("downtime", m->downtime_ms);
            put("setup_time", m->setup_time_ms);
        }
        if (info.data_total || info.data_processed || info.data_remaining) {
            put("data_total", info.data_total);
            put("data_processed", info.data_processed);
            put("data_remaining", info.data_remaining);
        }
        if (info.mem_total || info.mem_processed || info.mem_remaining) {
            put("memory_total", info.mem_total);
            put("memory_processed", info.mem_processed);
            put("memory_remaining", info.mem_remaining);
            put("memory_bps", info.mem_bps);
        }
        if (const auto& m = info.migration) {
            put("memory_constant", m->constant_pages);
            put("memory_normal", m->normal_pages);
            put("memory_normal_bytes", m->normal_bytes);
            put("memory_dirty_rate", m->dirty_rate);
            put("memory_iteration", m->iteration);
            put("memory_postcopy_requests", m->postcopy_requests);
            put("memory_page_size", m->page_size);
        }
        if (!info.error.empty()) put("errmsg", info.error);
    }
    return out + "\n";
}

std::string format_job_list(const std::vector<driver::JobInfo>& jobs, bool with_header) {
    Table table({"Id", "Operation", "Progress", "Elapsed", "Object"});
    for (const auto& j : jobs) {
        const bool known = j.data_total > 0 || j.mem_total > 0;
        table.add_row({std::to_string(j.id), std::string(driver::job_operation_name(j.operation)),
                       known ? fmt::format("{} %", job_percent(j)) : "-",
                       fmt::format("{:.1f} s", static_cast<double>(j.elapsed.count()) / 1000.0), j.object});
    }
    return table.render(with_header);
}

nlohmann::json job_json(const driver::JobInfo& info) {
    nlohmann::json j = {
        {"id", info.id},
        {"status", driver::job_status_key(info.status)},
        {"operation", driver::job_operation_key(info.operation)},
        {"object", info.object},
        {"phase", info.phase},
        {"elapsed_ms", static_cast<std::uint64_t>(info.elapsed.count())},
        {"data_total", info.data_total},
        {"data_processed", info.data_processed},
        {"data_remaining", info.data_remaining},
        {"memory_total", info.mem_total},
        {"memory_processed", info.mem_processed},
        {"memory_remaining", info.mem_remaining},
        {"memory_bps", info.mem_bps},
        {"error", info.error},
    };
    if (const auto& m = info.migration)
        j["migration"] = {{"dirty_rate", m->dirty_rate},         {"page_size", m->page_size},
                          {"iteration", m->iteration},           {"postcopy_requests", m->postcopy_requests},
                          {"constant_pages", m->constant_pages}, {"normal_pages", m->normal_pages},
                          {"normal_bytes", m->normal_bytes},     {"downtime_ms", m->downtime_ms},
                          {"setup_time_ms", m->setup_time_ms}};
    return j;
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
