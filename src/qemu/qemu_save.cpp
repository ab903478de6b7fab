// save / managedsave / restore: QEMU's migration stream into a file that
// starts with a header carrying the domain XML (save_image.hpp), through a
// compressor program when save_image_format asks for one
// (save_compressor.hpp). Both are async jobs (driver/job.hpp): progress from
// query-migrate, an abort that cancels the migration, a deadline for a QEMU
// that stops answering (the monitor's command timeout on every look).
//
// A save never shows a half-written image under its final name: QEMU writes
// a temporary file beside the target, which is synced and then renamed.
// Failure, abort, destroy or QEMU's death delete it and (when the domain is
// still there) let the guest run again if it ran. The runtime status
// records the save (instance.hpp's SaveRecord), so that a daemon killed
// mid-save undoes it when it restarts (reattach).
#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "qemu/qemu_driver_impl.hpp"
#include "qemu/save_compressor.hpp"
#include "qemu/save_image.hpp"
#include "util/files.hpp"
#include "util/random.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

constexpr std::chrono::milliseconds kPollInterval{50};

// Wakes a wait loop early (the abort hook; must not block).
struct Waker {
    std::mutex m;
    std::condition_variable cv;
    bool woken = false;
    void wake() {
        std::lock_guard lk(m);
        woken = true;
        cv.notify_all();
    }
    void wait(std::chrono::milliseconds timeout) {
        std::unique_lock lk(m);
        cv.wait_for(lk, timeout, [&] { return woken; });
        woken = false;
    }
};

// The abort hook of `job` for the length of one wait: wakes the loop.
class AbortWakeup {
public:
    explicit AbortWakeup(driver::AsyncJob* job) : job_(job), waker_(std::make_shared<Waker>()) {
        if (job_) job_->set_abort_hook([w = waker_] { w->wake(); });
    }
    ~AbortWakeup() {
        if (job_) job_->set_abort_hook(nullptr);
    }
    AbortWakeup(const AbortWakeup&) = delete;
    AbortWakeup& operator=(const AbortWakeup&) = delete;
    void wait(std::chrono::milliseconds timeout) { waker_->wait(timeout); }
    [[nodiscard]] bool aborted() const { return job_ && job_->abort_requested(); }

private:
    driver::AsyncJob* job_;
    std::shared_ptr<Waker> waker_;  // shared: the hook may run while we return
};

// libvirt's words for an aborted job, told as they are (without the
// "failed to save domain" context): virsh prints its own headline above.
Error aborted_error(const driver::AsyncJob* job) {
    return driver::job_aborted_error(job ? job->operation() : driver::JobOperation::Unknown);
}

// What query-migrate says, as libvirt's job statistics: the data is the
// guest's memory (a save has no disks to copy); QEMU's Mbit/s in bytes/s.
void report_memory(driver::AsyncJob& job, const MigrationInfo& info) {
    const auto bps = static_cast<std::uint64_t>(info.mbps * 1e6 / 8);
    job.set_memory(info.ram_transferred, info.ram_remaining, info.ram_total, bps);
    job.set_data(info.ram_transferred, info.ram_remaining, info.ram_total);
    driver::MigrationStats stats;
    stats.dirty_rate = info.dirty_pages_rate;
    stats.page_size = info.page_size;
    stats.iteration = info.dirty_sync_count;
    stats.postcopy_requests = info.postcopy_requests;
    stats.constant_pages = info.duplicate;
    stats.normal_pages = info.normal;
    stats.normal_bytes = info.normal_bytes;
    stats.downtime_ms = info.status == MigrationStatus::Completed ? info.downtime : info.expected_downtime;
    stats.setup_time_ms = info.setup_time;
    job.set_migration(stats);
}

// Follow the outgoing migration until it ends. An abort cancels it (and
// the save ends aborted even if QEMU completed it meanwhile).
Status wait_outgoing(Monitor& monitor, driver::AsyncJob& job) {
    AbortWakeup wakeup(&job);
    bool cancel_sent = false;
    for (;;) {
        if (wakeup.aborted() && !cancel_sent) {
            cancel_sent = true;
            if (auto c = monitor.migrate_cancel(); !c)
                spdlog::warn("cancelling the save's migration: {}", c.error().message);
        }
        auto info = monitor.query_migrate();
        if (!info) return std::unexpected(info.error());
        report_memory(job, *info);
        if (info->ended() && wakeup.aborted()) return std::unexpected(aborted_error(&job));
        if (info->status == MigrationStatus::Completed) return {};
        if (info->status == MigrationStatus::Failed || info->status == MigrationStatus::Cancelled)
            return fail(ErrorCode::Hypervisor, "QEMU could not write the saved state: {}",
                        info->error_desc.empty() ? std::string(migration_status_name(info->status)) : info->error_desc);
        wakeup.wait(kPollInterval);
    }
}

// Hand `fd` to QEMU and migrate into it until the stream is complete.
Status send_migration(Monitor& monitor, int fd, driver::AsyncJob& job) {
    VIREO_TRY(monitor.getfd("vireo-save", fd));
    VIREO_TRY(monitor.migrate("fd:vireo-save"));
    return wait_outgoing(monitor, job);
}

// Where QEMU's incoming stream is read up to (it shares the file offset
// with our descriptor); nullopt when unknown.
std::optional<std::uint64_t> read_position(int fd) {
    off_t pos = ::lseek(fd, 0, SEEK_CUR);
    if (pos < 0) return std::nullopt;
    return static_cast<std::uint64_t>(pos);
}

// Wait for QEMU's incoming migration to end. With a decompressor, its
// failure ends the wait with its own words; and a decompressor that ended
// without QEMU completing means the stream was cut short (QEMU 7.2 may not
// notice the end of a pipe in the middle of a stream: it spins on it).
Status wait_incoming(Monitor& monitor, FilterProcess* decompressor, const RestoreSource& restore,
                     driver::AsyncJob* job) {
    using Clock = std::chrono::steady_clock;
    AbortWakeup wakeup(job);
    std::optional<Clock::time_point> source_ended;
    for (;;) {
        if (wakeup.aborted()) return std::unexpected(aborted_error(job));
        auto info = monitor.query_migrate();
        if (!info) return std::unexpected(info.error());
        if (job && restore.size > restore.data_offset) {
            if (auto pos = read_position(restore.fd.get()); pos && *pos >= restore.data_offset)
                job->set_data(*pos - restore.data_offset, restore.size - restore.data_offset);
        }
        if (info->status == MigrationStatus::Completed) return {};
        if (info->status == MigrationStatus::Failed || info->status == MigrationStatus::Cancelled)
            return fail(ErrorCode::Hypervisor, "restoring the saved state failed: {}",
                        info->error_desc.empty() ? std::string(migration_status_name(info->status)) : info->error_desc);
        if (decompressor && !source_ended) {
            if (auto done = decompressor->poll()) {
                if (!*done) return std::unexpected(done->error().context("the save image decompressor failed"));
                source_ended = Clock::now();
            }
        }
        if (source_ended && Clock::now() - *source_ended > std::chrono::seconds(10))
            return fail(ErrorCode::Corrupt, "the saved state ends before QEMU's migration stream is complete");
        wakeup.wait(std::chrono::milliseconds(20));
    }
}

// A temporary name beside `target`, hidden and unique:
// ".<name>.<random>.vireo-part".
fs::path temporary_path(const fs::path& target) {
    std::uint8_t bytes[6];
    random_bytes(bytes);
    std::string suffix;
    for (auto b : bytes) suffix += fmt::format("{:02x}", b);
    return target.parent_path() / fmt::format(".{}.{}.vireo-part", target.filename().string(), suffix);
}

void discard(const fs::path& file) {
    if (::unlink(file.c_str()) == 0) (void)files::sync_dir(file.parent_path());
}

}  // namespace

void QemuDriverImpl::cancel_migration(Monitor& monitor) {
    auto info = monitor.query_migrate();
    if (!info || !info->in_progress()) return;
    if (auto c = monitor.migrate_cancel(); !c) {
        spdlog::warn("cannot cancel QEMU's migration: {}", c.error().message);
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + cfg.monitor_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        info = monitor.query_migrate();
        if (!info || !info->in_progress()) return;
        std::this_thread::sleep_for(kPollInterval);
    }
}

Status QemuDriverImpl::save(driver::AsyncJobGuard& guard, const fs::path& target) {
    const auto& obj = guard.ptr();
    driver::AsyncJob& job = guard.job();
    auto failed = [&](const Error& e) {
        return std::unexpected(e.context(fmt::format("failed to save domain '{}'", obj->name())));
    };
    auto run = running(*obj);
    if (!run) return std::unexpected(run.error());
    auto priv = run->priv;
    std::string xml = obj->with([](DomainFields& f) { return f.current().xml; });
    // A missing compressor program is found before the guest is touched.
    const SaveCompression format = cfg.save_image_format;
    if (format != SaveCompression::None) {
        if (auto program = find_compressor(format); !program) return failed(program.error());
    }

    // Recorded (status written) before the file exists: a daemon that dies
    // from here on finds the file to delete and the guest to resume.
    job.set_phase("pausing");
    const fs::path temp = temporary_path(target);
    SaveRecord record;
    record.temp_file = temp.string();
    record.target = target.string();
    if (auto r = apply(obj, priv, in::SaveBegin{record}); !r) return failed(r.error());
    const bool was_running = obj->with([&](DomainFields&) { return priv->machine.save && priv->machine.save->was_running; });

    // Every failure from here: no file, and the guest as it was. An abort
    // is told in libvirt's words alone.
    auto give_up = [&](const Error& why) -> Status {
        discard(temp);
        (void)apply(obj, priv, in::SaveFailed{});
        if (job.abort_requested()) return std::unexpected(aborted_error(&job));
        return failed(why);
    };

    // Pause first: the saved memory must be the state of one instant.
    if (was_running) {
        if (auto r = priv->monitor->stop(); !r) return give_up(command_error(*obj, priv, r.error()));
    }
    SaveHeader header;
    header.xml = xml;
    header.was_running = was_running;
    header.compression = format;
    auto fd = create_save_file(temp, header, false);
    if (!fd) return give_up(fd.error().context(fmt::format("cannot write '{}'", target.string())));

    job.set_phase("writing");
    Status migrated = [&]() -> Status {
        // QEMU writes into `to_qemu`: the file itself, or the pipe into the
        // compressor, which writes the file after the header.
        UniqueFd pipe_write;
        std::optional<FilterProcess> compressor;
        int to_qemu = fd->get();
        if (format != SaveCompression::None) {
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("create the pipe to the compressor");
            UniqueFd pipe_read(p[0]);
            pipe_write.reset(p[1]);
            auto started = start_compressor(format, pipe_read.get(), fd->get());
            if (!started) return std::unexpected(started.error());
            compressor = std::move(*started);
            to_qemu = pipe_write.get();
        }
        Status sent = send_migration(*priv->monitor, to_qemu, job);
        pipe_write.reset();  // QEMU closed its copy at the end: the compressor sees EOF
        VIREO_TRY(finish_through_filter(compressor, std::move(sent), "save image compressor"));
        if (::fsync(fd->get()) != 0) return fail_errno(fmt::format("fsync '{}'", temp.string()));
        return {};
    }();
    fd->reset();
    if (!migrated) return give_up(command_error(*obj, priv, migrated.error()));
    if (job.abort_requested()) return give_up(aborted_error(&job));

    // Complete and synced: recorded as such, then it gets its name.
    job.set_phase("finishing");
    if (auto r = apply(obj, priv, in::SaveWritten{}); !r) return give_up(r.error());
    if (::rename(temp.c_str(), target.c_str()) != 0)
        return give_up(errno_error(fmt::format("rename '{}' to '{}'", temp.string(), target.string()), errno));
    (void)files::sync_dir(target.parent_path());
    if (auto r = apply(obj, priv, in::SaveDone{}); !r) {
        // Destroyed between the rename and now: the save did not happen.
        discard(target);
        return failed(r.error());
    }
    return {};
}

Result<RestoreSource> QemuDriverImpl::open_restore(const fs::path& path, DomainDefinition& definition) {
    auto opened = open_save_file(path);
    if (!opened) return std::unexpected(opened.error());
    auto& [header, fd] = *opened;
    conf::ParseFlags flags;
    flags.live = true;
    auto def = driver::make_definition(header.xml, flags);
    if (!def)
        return std::unexpected(def.error().context(fmt::format("save image '{}' holds an unusable definition", path.string())));
    definition = std::move(*def);
    RestoreSource src;
    src.fd = std::move(fd);
    src.compression = header.compression;
    src.data_offset = header.data_offset;
    std::error_code ec;
    src.size = fs::file_size(path, ec);
    // The decompressor starts with QEMU (start()); its absence is told now.
    if (header.compression != SaveCompression::None) {
        if (auto program = find_compressor(header.compression); !program)
            return std::unexpected(program.error().context(fmt::format("cannot restore from '{}'", path.string())));
    }
    src.was_running = header.was_running;
    return src;
}

// Feed a save image's migration stream to QEMU (started with -incoming
// defer): the file itself, or a decompressor's output through a pipe.
Status QemuDriverImpl::receive_saved_state(Monitor& monitor, const RestoreSource& restore, driver::AsyncJob* job) {
    int from_image = restore.fd.get();
    UniqueFd pipe_read;
    std::optional<FilterProcess> decompressor;
    if (restore.compression != SaveCompression::None) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("create the pipe from the decompressor");
        pipe_read.reset(p[0]);
        UniqueFd pipe_write(p[1]);
        auto started = start_decompressor(restore.compression, restore.fd.get(), pipe_write.get());
        if (!started) return std::unexpected(started.error());
        decompressor = std::move(*started);
        from_image = pipe_read.get();
    }
    Status received = [&]() -> Status {
        VIREO_TRY(monitor.getfd("vireo-restore", from_image));
        VIREO_TRY(monitor.migrate_incoming("fd:vireo-restore"));
        return wait_incoming(monitor, decompressor ? &*decompressor : nullptr, restore, job);
    }();
    pipe_read.reset();
    return finish_through_filter(decompressor, std::move(received), "save image decompressor");
}

}  // namespace vireo::qemu
