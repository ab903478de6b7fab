// Guest isolation in system mode: the DAC identity each QEMU runs as, the
// files given to it for the run (and back), its mount namespace.
//
//   prepare   prepare_security: the identity (a per-guest id, the shared
//             qemu.conf user, or the seclabel's), written into the live
//             definition as libvirt's <seclabel model='dac'>; what this
//             driver cannot do is refused here.
//   launch    apply_security: the files given (owner journal first), the
//             access check as the identity, the namespace plan; undone by
//             restore_labels.
//   the end   restore_labels (finish_instance, failed starts, a restarted
//             daemon finding the journal of a dead QEMU); the id is freed
//             with the instance's devices (release_devices).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "qemu/command_line.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "qemu/swtpm.hpp"
#include "security/mount_ns.hpp"

namespace vireo::qemu {

namespace fs = std::filesystem;

namespace {

// The seclabel of the DAC model: model 'dac', or no model (libvirt applies
// such a label to the first security driver, here the only one).
conf::SecLabel* dac_seclabel(conf::DomainDef& def) {
    for (auto& l : def.seclabels)
        if (l.model == "dac" || l.model.empty()) return &l;
    return nullptr;
}

const conf::SecLabel* dac_seclabel(const conf::DomainDef& def) {
    for (const auto& l : def.seclabels)
        if (l.model == "dac" || l.model.empty()) return &l;
    return nullptr;
}

// The daemon's directory `dir` searchable by everyone (o+x, nothing
// listable or writable): a guest's QEMU user reaches the files given to it
// inside (console log, sockets) and no others.
void make_searchable(const fs::path& dir) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0011) != 0011)
        (void)::chmod(dir.c_str(), (st.st_mode & 07777) | 0011);
}

// A chardev file QEMU writes: made now (owner root, 0600) so it can be given.
Status make_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return fail_errno(fmt::format("cannot create '{}'", path));
    ::close(fd);
    return {};
}

}  // namespace

Status QemuDriverImpl::prepare_security(const std::string& name, conf::DomainDef& live, LaunchPlan& plan) {
    for (const auto& l : live.seclabels)
        if (!l.model.empty() && l.model != "dac" && l.model != "none")
            return fail(ErrorCode::Unsupported,
                        "unsupported configuration: security model '{}' is not available on this host (no SELinux or "
                        "AppArmor: the only security model is 'dac')",
                        l.model);
    if (!cfg.system_mode) return {};  // a session QEMU runs as its user, unchanged
    conf::SecLabel* label = dac_seclabel(live);
    // <seclabel type='none'/> of any model: QEMU runs as the daemon's user
    // and nothing is relabelled (as libvirt).
    for (const auto& l : live.seclabels)
        if (l.type == "none") return {};
    if (label && label->type == "static") {
        if (label->label.empty())
            return fail(ErrorCode::InvalidArg, "a static DAC seclabel needs a <label> (+UID:+GID or user:group)");
        auto id = security::parse_dac_label(label->label);
        if (!id) return std::unexpected(id.error().context("seclabel"));
        plan.identity = *id;
        // libvirt's default for a static label: the files are left as they are.
        plan.relabel = label->relabel == "yes" && cfg.dynamic_ownership;
    } else {
        if (label && label->relabel == "no")
            return fail(ErrorCode::Unsupported, "a dynamic DAC seclabel with relabel='no' is not supported yet");
        if (shared_identity) {
            plan.identity = *shared_identity;
        } else {
            auto uid = guest_ids.allocate(name);
            if (!uid) return std::unexpected(uid.error());
            plan.identity = security::Identity{*uid, static_cast<gid_t>(*uid), {}};
            plan.dynamic_id = true;
        }
        plan.relabel = cfg.dynamic_ownership;
    }
    if (!label) label = &live.seclabels.emplace_back();
    label->type = plan.dynamic_id || (label->type.empty() || label->type == "dynamic") ? "dynamic" : "static";
    label->model = "dac";
    label->relabel = plan.relabel ? "yes" : "no";
    label->label = security::label_text(*plan.identity);
    label->imagelabel = label->label;
    if (plan.identity->uid == 0) return {};
    // What QEMU would make in directories only root may write.
    const auto& d = live.devices;
    for (const auto* list : {&d.serials, &d.consoles})
        for (const auto& c : *list)
            if (c.type == "unix" && c.source_path.empty() && c.source_mode != "connect") {
                if (plan.dynamic_id) guest_ids.release(plan.identity->uid);
                return fail(ErrorCode::Unsupported,
                            "a <{} type='unix'> without <source path> is not supported yet when QEMU runs as {} (give "
                            "it a source path in a directory that user can write)",
                            c.kind.empty() ? "serial" : c.kind, label->label);
            }
    return {};
}

void QemuDriverImpl::release_identity(const std::string& name, const conf::DomainDef& live) {
    const conf::SecLabel* l = dac_seclabel(live);
    if (!l || l->type != "dynamic" || shared_identity) return;
    auto id = security::parse_dac_label(l->label);
    if (id && guest_ids.owner_of(id->uid) == name) guest_ids.release(id->uid);
}

void QemuDriverImpl::reserve_identity(const std::string& name, const conf::DomainDef& live) {
    const conf::SecLabel* l = dac_seclabel(live);
    if (!l || l->type != "dynamic" || shared_identity) return;
    auto id = security::parse_dac_label(l->label);
    if (!id) return;
    const auto& r = guest_ids.range();
    if (id->uid >= r.first && id->uid <= r.last && !guest_ids.reserve(id->uid, name))
        spdlog::error("domain '{}': its QEMU runs as {}, which another running domain also has", name, l->label);
}

Status QemuDriverImpl::apply_security(LaunchPlan& plan, const Uuid& uuid) {
    if (!cfg.system_mode) return {};
    const conf::DomainDef& live = *plan.live.def;
    std::vector<std::string> give;                 // chowned to the identity for the run
    std::vector<security::AccessNeed> needs;       // checked as the identity
    auto own = [&](const std::string& path, std::string what) {
        give.push_back(path);
        needs.push_back({path, true, std::move(what)});
    };
    auto read = [&](const std::string& path, std::string what) {
        if (!path.empty()) needs.push_back({path, false, std::move(what)});
    };
    if (plan.identity && plan.identity->uid != 0) {
        for (const auto& disk : live.devices.disks) {
            // The live definition keeps pool/volume; the path is the resolved one.
            std::string path = disk.type == "file" ? disk.source.file : disk.type == "block" ? disk.source.dev : "";
            for (std::size_t i = 0; path.empty() && disk.type == "volume" && i < plan.for_qemu_disks.size(); ++i)
                if (plan.for_qemu_disks[i].first == disk.target_dev) path = plan.for_qemu_disks[i].second;
            const std::string what = fmt::format("disk '{}'", disk.target_dev);
            if (!path.empty()) {
                // Another running guest's image: never taken from it.
                struct stat st{};
                if (::stat(path.c_str(), &st) == 0 && st.st_uid != plan.identity->uid) {
                    if (auto other = guest_ids.owner_of(st.st_uid); other && *other != plan.name)
                        return fail(ErrorCode::InvalidState, "{}: '{}' is in use by domain '{}' (it belongs to its QEMU user +{}:+{})",
                                    what, path, *other, st.st_uid, st.st_gid);
                }
                // Shared between guests: each needs to open it, none may own it.
                const bool give_it = plan.relabel && !disk.shareable;
                if (disk.readonly || disk.device == "cdrom") read(path, what);
                else if (give_it) own(path, what);
                else needs.push_back({path, true, what});
            }
            // The backing chain is opened read-only: readable, never given away
            // (guests on overlays of one base image all read it).
            for (const conf::BackingStore* b = &disk.backing; b && b->present && !b->type.empty();
                 b = b->chain.empty() ? nullptr : &b->chain.front())
                read(b->type == "file" ? b->source.file : b->source.dev, what + " backing image");
        }
        const auto& os = live.os;
        read(os.kernel, "kernel");
        read(os.initrd, "initrd");
        read(os.dtb, "dtb");
        read(os.loader, "loader");
        if (!os.nvram.empty()) {
            if (plan.relabel) own(os.nvram, "NVRAM");
            else needs.push_back({os.nvram, true, "NVRAM"});
        }
        // Files QEMU writes: the first serial's console log, file chardevs
        // and chardev logs (made now when missing, so that they can be given).
        std::vector<std::pair<std::string, std::string>> written;
        const auto& d = live.devices;
        bool first_serial = true;
        for (const auto* list : {&d.serials, &d.consoles, &d.channels})
            for (const auto& c : *list) {
                const std::string what = fmt::format("{} '{}'", c.kind.empty() ? "chardev" : c.kind, c.info.alias);
                if (c.type == "file" && !c.source_path.empty()) written.emplace_back(c.source_path, what);
                if (!c.log_file.empty()) written.emplace_back(c.log_file, what + " log");
                else if (list == &d.serials && first_serial) written.emplace_back(console_log(plan.name).string(), "console log");
                if (list == &d.serials) first_serial = false;
                // A generated channel's directory, where QEMU makes its socket.
                const std::string base = channel_dir().string() + "/";
                if (c.type == "unix" && c.source_path.starts_with(base)) {
                    const std::string dir = fs::path(c.source_path).parent_path().string();
                    give.push_back(dir);
                    needs.push_back({dir, true, what + " directory"});
                }
            }
        for (const auto& [path, what] : written) {
            VIREO_TRY(make_file(path));
            if (plan.relabel) give.push_back(path);
            needs.push_back({path, true, what});
        }
        // Sockets of helpers QEMU connects to.
        for (const auto& tpm : live.devices.tpms)
            if (tpm.backend_type == "emulator") {
                const std::string sock = swtpm_socket_path(plan.prefix, tpm.info.alias);
                give.push_back(sock);
                needs.push_back({sock, true, "TPM socket"});
            }
        for (const auto& nic : live.devices.interfaces)
            if (nic.type == "user" && nic.backend_type == "passt") {
                const std::string sock = passt_socket_path(plan.prefix, nic.info.alias);
                give.push_back(sock);
                needs.push_back({sock, true, fmt::format("interface '{}' socket", nic.info.alias)});
            }
        make_searchable(cfg.rundir);
        make_searchable(cfg.logdir);
        // Every directory from a channel's up to the daemon's run dir (or
        // the configured channel dir), e.g. run/qemu/channel/target: QEMU's
        // user must pass through them to reach the directory it was given.
        const fs::path channel_top = cfg.channeldir.empty() ? cfg.rundir : channel_dir();
        for (const auto& path : give)
            if (path.starts_with(channel_dir().string() + "/"))
                for (fs::path dir = fs::path(path).parent_path();
                     dir.string().size() >= channel_top.string().size() && dir != dir.parent_path(); dir = dir.parent_path())
                    make_searchable(dir);
        std::sort(give.begin(), give.end());
        give.erase(std::unique(give.begin(), give.end()), give.end());
        VIREO_TRY(security::give_files(give, *plan.identity, owner_journal(plan.prefix)));
        if (auto ok = security::check_access(*plan.identity, needs); !ok) {
            restore_labels(plan.prefix);
            return std::unexpected(ok.error());
        }
    }
    (void)uuid;
    if (cfg.mount_namespace) {
        bool tun = false;
        for (const auto& nic : live.devices.interfaces) tun = tun || nic_uses_tap(nic);
        auto mounts = security::MountSetup::prepare(security::dev_entries(plan.argv, plan.kvm, tun),
                                                    security::tmp_entries(plan.argv));
        if (!mounts) {
            restore_labels(plan.prefix);
            return std::unexpected(mounts.error());
        }
        plan.mounts = std::make_shared<security::MountSetup>(std::move(*mounts));
    }
    return {};
}

Status QemuDriverImpl::admit_disk(const conf::DomainDef& live, const conf::Disk& disk, const std::string& prefix) {
    if (!cfg.system_mode) return {};
    const conf::SecLabel* l = dac_seclabel(live);
    if (!l || l->label.empty()) return {};  // runs as the daemon's user
    auto id = security::parse_dac_label(l->label);
    if (!id) return std::unexpected(id.error().context("the running domain's seclabel"));
    const std::string path = disk.type == "file" ? disk.source.file : disk.type == "block" ? disk.source.dev : "";
    if (path.empty()) return {};
    if (disk.type == "block" && cfg.mount_namespace)
        return fail(ErrorCode::Unsupported,
                    "adding the block device '{}' to a running guest's private /dev is not supported yet "
                    "(namespaces = [] in qemu.conf turns the private /dev off)",
                    path);
    if (id->uid == 0) return {};
    const std::string what = fmt::format("disk '{}'", disk.target_dev);
    const bool writable = !disk.readonly && disk.device != "cdrom";
    if (writable && !disk.shareable && l->relabel == "yes") {
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0 && st.st_uid != id->uid)
            if (auto other = guest_ids.owner_of(st.st_uid); other && *other != live.name)
                return fail(ErrorCode::InvalidState, "{}: '{}' is in use by domain '{}'", what, path, *other);
        VIREO_TRY(security::give_files({path}, *id, owner_journal(prefix)));
    }
    return security::check_access(*id, {{path, writable, what}});
}

Status QemuDriverImpl::admit_channel(const conf::DomainDef& live, const conf::CharDev& ch, const std::string& prefix) {
    const std::string base = channel_dir().string() + "/";
    const bool generated = ch.type == "unix" && ch.source_path.starts_with(base);
    if (generated) VIREO_TRY(make_channel_dirs(live));
    if (!cfg.system_mode || !generated) return {};
    const conf::SecLabel* l = dac_seclabel(live);
    if (!l || l->label.empty()) return {};  // runs as the daemon's user
    auto id = security::parse_dac_label(l->label);
    if (!id) return std::unexpected(id.error().context("the running domain's seclabel"));
    if (id->uid == 0) return {};
    // As at start: QEMU's user makes the socket in the channel's directory
    // and passes through those above it.
    const fs::path dir = fs::path(ch.source_path).parent_path();
    const fs::path channel_top = cfg.channeldir.empty() ? cfg.rundir : channel_dir();
    for (fs::path d = dir.parent_path(); d.string().size() >= channel_top.string().size() && d != d.parent_path(); d = d.parent_path())
        make_searchable(d);
    const std::string what = fmt::format("channel '{}' directory", ch.info.alias);
    VIREO_TRY(security::give_files({dir.string()}, *id, owner_journal(prefix)));
    return security::check_access(*id, {{dir.string(), true, what}});
}

void QemuDriverImpl::restore_labels(const std::string& prefix) {
    if (auto r = security::restore_files(owner_journal(prefix)); !r)
        spdlog::error("{}", r.error().full_message());
}

}  // namespace vireo::qemu
