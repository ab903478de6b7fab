// save / managedsave / restore: QEMU's migration stream into a file that
// starts with a header carrying the domain XML (save_image.hpp).
#include <unistd.h>

#include <thread>

#include "qemu/qemu_driver_impl.hpp"
#include "qemu/save_image.hpp"

namespace vireo::qemu {

using nlohmann::json;

namespace {

// Poll the outgoing migration until it ends.
Status wait_migration(QmpClient& qmp) {
    for (;;) {
        auto st = qmp.execute("query-migrate");
        if (!st) return std::unexpected(st.error());
        std::string status = st->value("status", "");
        if (status == "completed") return {};
        if (status == "failed" || status == "cancelled")
            return fail(ErrorCode::Hypervisor, "QEMU could not write the saved state: {}", st->value("error-desc", status));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
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
    header.compression = cfg.save_compression ? SaveCompression::QemuCompress : SaveCompression::None;
    auto fd = create_save_file(path, header, true);
    if (!fd) {
        resume();
        return failed(fd.error());
    }
    auto cleanup_file = [&] { ::unlink(path.c_str()); };

    json caps = json::array({{{"capability", "compress"}, {"state", cfg.save_compression}}});
    Status migrated = [&]() -> Status {
        if (auto r = priv->qmp->execute("migrate-set-capabilities", {{"capabilities", caps}}); !r)
            return std::unexpected(r.error());
        if (auto r = priv->qmp->execute_with_fd("getfd", {{"fdname", "vireo-save"}}, fd->get()); !r)
            return std::unexpected(r.error());
        if (auto r = priv->qmp->execute("migrate", {{"uri", "fd:vireo-save"}}); !r) return std::unexpected(r.error());
        VIREO_TRY(wait_migration(*priv->qmp));
        if (::fsync(fd->get()) != 0) return fail_errno(fmt::format("fsync '{}'", path.string()));
        return {};
    }();
    fd->reset();
    if (!migrated) {
        cleanup_file();
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
    src.compressed = header.compression == SaveCompression::QemuCompress;
    src.was_running = header.was_running;
    return src;
}

}  // namespace vireo::qemu
