// save / managedsave / restore: QEMU's migration stream into a file that
// starts with a header carrying the domain XML (save_image.hpp), through a
// compressor program when save_image_format asks for one
// (save_compressor.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "qemu/qemu_driver_impl.hpp"
#include "qemu/save_compressor.hpp"
#include "qemu/save_image.hpp"

namespace vireo::qemu {

Result<bool> migration_completed(QmpClient& qmp, std::string_view failure) {
    auto st = qmp.execute("query-migrate");
    if (!st) return std::unexpected(st.error());
    std::string status = st->value("status", "");
    if (status == "completed") return true;
    if (status == "failed" || status == "cancelled")
        return fail(ErrorCode::Hypervisor, "{}: {}", failure, st->value("error-desc", status));
    return false;
}

namespace {

// Poll the outgoing migration until it ends.
Status wait_migration(QmpClient& qmp) {
    for (;;) {
        auto done = migration_completed(qmp, "QEMU could not write the saved state");
        if (!done) return std::unexpected(done.error());
        if (*done) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Hand `fd` to QEMU and migrate into it until the stream is complete.
Status send_migration(QmpClient& qmp, int fd) {
    if (auto r = qmp.execute_with_fd("getfd", {{"fdname", "vireo-save"}}, fd); !r) return std::unexpected(r.error());
    if (auto r = qmp.execute("migrate", {{"uri", "fd:vireo-save"}}); !r) return std::unexpected(r.error());
    return wait_migration(qmp);
}

}  // namespace

Status QemuDriverImpl::save(JobGuard& job, const std::filesystem::path& path, const std::string& detail) {
    const auto& obj = job.ptr();
    auto failed = [&](const Error& e) {
        return std::unexpected(e.context(fmt::format("failed to save domain '{}'", obj->name())));
    };
    auto run = running(*obj);
    if (!run) return std::unexpected(run.error());
    auto priv = run->priv;
    const bool was_running = run->state == DomainState::Running;
    std::string xml = obj->with([](DomainFields& f) { return f.current().xml; });
    // A missing compressor program is found before the guest is touched.
    const SaveCompression format = cfg.save_image_format;
    if (format != SaveCompression::None) {
        if (auto program = find_compressor(format); !program) return failed(program.error());
    }

    obj->with([&](DomainFields&) { priv->job_owns_state = true; });
    auto give_back = [&] { obj->with([&](DomainFields&) { priv->job_owns_state = false; }); };

    // Pause first: the saved memory must be the state of one instant.
    if (was_running) {
        if (auto r = priv->qmp->execute("stop"); !r) {
            give_back();
            return failed(r.error());
        }
    }
    auto resume = [&] {
        if (was_running) (void)priv->qmp->execute("cont");
        give_back();
    };

    SaveHeader header;
    header.xml = xml;
    header.was_running = was_running;
    header.compression = format;
    auto fd = create_save_file(path, header, true);
    if (!fd) {
        resume();
        return failed(fd.error());
    }

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
        Status sent = send_migration(*priv->qmp, to_qemu);
        pipe_write.reset();  // QEMU closed its copy at the end: the compressor sees EOF
        VIREO_TRY(finish_through_filter(compressor, std::move(sent), "save image compressor"));
        if (::fsync(fd->get()) != 0) return fail_errno(fmt::format("fsync '{}'", path.string()));
        return {};
    }();
    fd->reset();
    if (!migrated) {
        ::unlink(path.c_str());  // no partial image is left behind
        resume();
        return failed(migrated.error());
    }
    auto k = kill_and_finish(obj, priv->instance, false, "saved", EventType::Stopped, detail);
    if (!k) return failed(k.error());
    return {};
}

Result<QemuDriverImpl::RestoreSource> QemuDriverImpl::open_restore(const std::filesystem::path& path,
                                                                    DomainDefinition& definition) {
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
    // The decompressor starts with QEMU (start()); its absence is told now.
    if (header.compression != SaveCompression::None) {
        if (auto program = find_compressor(header.compression); !program)
            return std::unexpected(program.error().context(fmt::format("cannot restore from '{}'", path.string())));
    }
    src.was_running = header.was_running;
    return src;
}

}  // namespace vireo::qemu
