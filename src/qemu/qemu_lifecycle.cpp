// Starting QEMU in phases (prepare, launch, connect, incoming, resume),
// reattaching to running QEMU processes after a driver restart, autostart.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "qemu/command_line.hpp"
#include "qemu/firmware.hpp"
#include "qemu/host.hpp"
#include "qemu/qemu_driver_impl.hpp"
#include "qemu/resources.hpp"
#include "qemu/save_compressor.hpp"
#include "qemu/tuning.hpp"
#include "util/files.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::qemu {

namespace fs = std::filesystem;
using Command = Expectation::Command;

namespace {

std::string now_stamp() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return fmt::format("{}.{:03d}+0000", buf, ms);
}

std::uint64_t size_of_file(const fs::path& p) {
    std::error_code ec;
    auto s = fs::file_size(p, ec);
    return ec ? 0 : s;
}

// QEMU's own words from the log, after `offset`: each line without the
// "-msg timestamp=on" prefix.
std::string qemu_error_text(const fs::path& log, std::uint64_t offset) {
    auto text = files::read(log);
    if (!text || text->size() <= offset) return "";
    std::string tail = text->substr(static_cast<std::size_t>(offset));
    std::string out;
    std::size_t pos = 0;
    while (pos < tail.size()) {
        auto nl = tail.find('\n', pos);
        std::string line = tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? tail.size() : nl + 1;
        // "2026-11-24T10:00:00.123456Z qemu-system-x86_64: ..." -> drop the stamp.
        if (line.size() > 28 && line[4] == '-' && line[10] == 'T') {
            auto sp = line.find(' ');
            if (sp != std::string::npos) line = line.substr(sp + 1);
        }
        if (line.empty()) continue;
        if (!out.empty()) out += '\n';
        out += line;
    }
    return out;
}

Status check_disk_sources(const conf::DomainDef& def) {
    auto check = [](const conf::Disk& d, const std::string& type, const conf::DiskSource& src) -> Status {
        std::string path = type == "file" ? src.file : type == "block" ? src.dev : "";
        if (path.empty()) return {};
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0) return {};
        int err = errno;
        if (err == ENOENT)
            return fail(ErrorCode::NotFound, "disk '{}': source '{}' does not exist", d.target_dev, path);
        return std::unexpected(errno_error(fmt::format("disk '{}': source '{}'", d.target_dev, path), err));
    };
    for (const auto& d : def.devices.disks) {
        if (d.source.startup_policy == "optional") continue;
        VIREO_TRY(check(d, d.type, d.source));
        const conf::BackingStore* b = &d.backing;
        while (b && b->present && !b->type.empty()) {
            VIREO_TRY(check(d, b->type, b->source));
            b = b->chain.empty() ? nullptr : &b->chain.front();
        }
    }
    return {};
}

Result<fs::path> choose_emulator(const conf::DomainDef& def, const QemuDriverConfig& cfg) {
    fs::path emulator = !def.devices.emulator.empty() ? fs::path(def.devices.emulator) : cfg.qemu_binary;
    if (emulator.empty()) {
        auto found = find_qemu_binary(def.os.arch.empty() ? "x86_64" : def.os.arch);
        if (!found) return std::unexpected(found.error());
        emulator = *found;
    }
    if (::access(emulator.c_str(), X_OK) != 0)
        return fail(ErrorCode::NotFound, "emulator '{}' not found or not executable", emulator.string());
    return emulator;
}

}  // namespace

conf::DefineHost QemuDriverImpl::define_host() {
    conf::DefineHost host;
    host.emulator_for = [this](std::string_view arch) -> std::string {
        if (arch == "x86_64" && !cfg.qemu_binary.empty()) return cfg.qemu_binary.string();
        // libvirt's names: i686 guests run in qemu-system-i386
        auto found = find_qemu_binary(arch == "i686" ? std::string_view("i386") : arch);
        return found ? found->string() : std::string();
    };
    host.canonical_machine = [this](std::string_view emulator, std::string_view machine) -> Result<std::string> {
        // An emulator that is not there is reported at start, naming it.
        if (::access(std::string(emulator).c_str(), X_OK) != 0) return std::string(machine);
        auto qcaps = caps.get(emulator);
        if (!qcaps) return std::unexpected(qcaps.error());
        const MachineType* m = (*qcaps)->find_machine(machine);
        if (!m) return fail(ErrorCode::Unsupported, "unsupported configuration: emulator '{}' does not support machine type '{}'", emulator, machine);
        return m->name;
    };
    return host;
}

namespace {

bool has_pty_chardevs(const conf::DomainDef& def) {
    const auto& d = def.devices;
    for (const auto* list : {&d.serials, &d.consoles, &d.channels})
        for (const auto& c : *list)
            if (c.type == "pty") return true;
    return false;
}

// `def` with the pty paths QEMU reports for its pty character devices
// (chardev id "char" + alias, as the command line names them).
conf::DomainDef with_pty_paths(conf::DomainDef def, const std::vector<ChardevInfo>& chardevs) {
    auto path_of = [&](const conf::CharDev& c) -> std::string {
        for (const auto& info : chardevs)
            if (info.label == "char" + c.info.alias) return info.pty_path();
        return "";
    };
    auto& d = def.devices;
    for (auto* list : {&d.serials, &d.consoles, &d.channels})
        for (auto& c : *list)
            if (c.type == "pty")
                if (std::string p = path_of(c); !p.empty()) c.source_path = p;
    // A serial console is its serial port.
    for (std::size_t i = 0; i < d.consoles.size() && i < d.serials.size(); ++i)
        if (d.consoles[i].target_type == "serial" && d.consoles[i].type == "pty") d.consoles[i].source_path = d.serials[i].source_path;
    return def;
}

// The lifecycle policy of a definition, libvirt's defaults where unset.
LifecyclePolicy policy_of(const conf::DomainDef& def) {
    LifecyclePolicy p;
    if (!def.on_poweroff.empty()) p.on_poweroff = def.on_poweroff;
    if (!def.on_reboot.empty()) p.on_reboot = def.on_reboot;
    if (!def.on_crash.empty()) p.on_crash = def.on_crash;
    return p;
}

// QEMU's words about a failed start (from its log after `offset`), or ours:
// `ours_first` when our error is the cause and QEMU's words only a detail
// (a restore whose image cannot be read).
Error start_error(const Error& why, const fs::path& log, std::uint64_t offset, bool ours_first) {
    std::string text = qemu_error_text(log, offset);
    // Its note of our SIGTERM is no error text.
    if (text.find("terminating on signal") != std::string::npos) text.clear();
    if (text.empty()) return why;
    if (ours_first) return Error{why.code, fmt::format("{} (QEMU: {})", why.message, text)};
    return Error{ErrorCode::Hypervisor, text};
}

}  // namespace

int LaunchPlan::fd_number(std::string_view fd_name) const {
    for (std::size_t i = 0; i < fds.size(); ++i)
        if (fds[i].name == fd_name) return kMonitorFd + 1 + static_cast<int>(i);
    return -1;
}

// Everything that can be checked is checked here, before anything is
// created, so that these failures leave no file and no process behind.
Result<LaunchPlan> QemuDriverImpl::prepare(const std::shared_ptr<DomainObject>& obj, const DomainDefinition& definition,
                                           StartOptions& options) {
    const conf::DomainDef& src = *definition.def;
    auto accel = accelerator_for(src);
    if (!accel) return std::unexpected(accel.error());
    if (*accel == "kvm") VIREO_TRY(check_kvm_usable());
    auto emulator = choose_emulator(src, cfg);
    if (!emulator) return std::unexpected(emulator.error());
    auto qcaps = caps.get(*emulator);
    if (!qcaps) return std::unexpected(qcaps.error());
    VIREO_TRY(check_disk_sources(src));
    // <disk type='volume'>: QEMU gets the volume's path; the live XML keeps
    // pool/volume (as libvirt's does).
    conf::DomainDef resolved = src;
    LaunchPlan plan;
    VIREO_TRY(resolve_volume_disks(resolved, &plan.volume_paths));
    if (!plan.volume_paths.empty()) VIREO_TRY(check_disk_sources(resolved));

    conf::DomainDef live = src;
    // Aliases (and addresses) as the live XML and the command line need them,
    // whether or not the model we were given has them (a definition rebuilt
    // from its inactive XML has none: aliases are live-only). Idempotent.
    VIREO_TRY(conf::assign_addresses_and_aliases(live));
    const MachineType* machine = (*qcaps)->find_machine(live.os.machine);
    if (!machine)
        return fail(ErrorCode::Unsupported, "machine type '{}' is not supported by {}", live.os.machine,
                    emulator->string());
    live.os.machine = machine->name;
    if (live.os.arch.empty()) live.os.arch = (*qcaps)->arch;
    live.devices.emulator = emulator->string();
    // <os firmware='efi'>: the firmware is chosen now, from QEMU's
    // descriptors, as libvirt 9.0 does at start (the inactive XML keeps
    // the request); an explicit loader learns its NVRAM template.
    if (live.os.firmware == "efi" || live.os.loader_type == "pflash") {
        auto descriptors = load_firmware_descriptors(cfg.firmware_dirs.empty() ? firmware_search_dirs() : cfg.firmware_dirs);
        if (!descriptors) return std::unexpected(descriptors.error());
        VIREO_TRY(apply_firmware(live, *descriptors, domain_nvram_path(live, cfg.nvramdir).string()));
    }
    auto swtpm = check_tpms(live);
    if (!swtpm) return std::unexpected(swtpm.error());
    // What this host cannot give the guest's memory and threads, refused
    // now, before anything (ports, taps, an identity) is taken for it.
    VIREO_TRY(check_cpusets(live, host_online_cpus()));
    MemoryHost memory_host = read_memory_host();
    VIREO_TRY(check_memory_host(live, memory_host));

    plan.name = obj->name();
    plan.emulator = *emulator;
    plan.caps = *qcaps;
    plan.policy = policy_of(live);
    plan.prefix = runtime_prefix(plan.name, obj->uuid());
    plan.monitor_path = plan.prefix + ".monitor";
    plan.fds = std::move(options.fds);
    plan.swtpm_programs = std::move(*swtpm);
    VIREO_TRY(prepare_nics(live, plan));
    // The id first: the guest agent's socket path names it (as libvirt's).
    plan.id = registry.allocate_id();
    live.id = plan.id;
    VIREO_TRY(prepare_channels(live, plan.id));
    VIREO_TRY(prepare_graphics(live, plan));
    const auto& serials = live.devices.serials;
    if (!serials.empty() && serials.front().type == "unix" && serials.front().source_mode != "connect")
        plan.console_socket = !serials.front().source_path.empty() ? serials.front().source_path
                                                                   : serial_socket_path(plan.prefix, serials.front().info.alias);

    CommandLineOptions opts;
    opts.memory_host = std::move(memory_host);
    opts.emulator = *emulator;
    opts.caps = plan.caps.get();
    opts.monitor_fd = LaunchPlan::kMonitorFd;
    for (const auto& fd : plan.fds) opts.passed_fds[fd.name] = plan.fd_number(fd.name);
    opts.runtime_prefix = plan.prefix;
    opts.console_log = console_log(plan.name);
    opts.incoming_defer = options.restore != nullptr;
    // The live definition (aliases, addresses) with the volumes resolved.
    conf::DomainDef for_qemu = live;
    auto& disks = for_qemu.devices.disks;
    for (std::size_t i = 0; i < disks.size() && i < resolved.devices.disks.size(); ++i) {
        if (disks[i].type != "volume") continue;
        disks[i].type = resolved.devices.disks[i].type;
        disks[i].source = resolved.devices.disks[i].source;
        disks[i].driver_type = resolved.devices.disks[i].driver_type;
    }
    for (std::size_t i = 0; i < disks.size(); ++i)
        if (live.devices.disks[i].type == "volume")
            plan.for_qemu_disks.emplace_back(disks[i].target_dev, disks[i].type == "block" ? disks[i].source.dev : disks[i].source.file);
    plan.kvm = *accel == "kvm";
    // Who QEMU runs as (the live <seclabel>); a failure frees what it took.
    if (auto sec = prepare_security(plan.name, live, plan); !sec) {
        release_devices(live);
        return std::unexpected(sec.error());
    }
    auto argv = build_command_line(for_qemu, opts);
    if (!argv) {
        release_devices(live);
        return std::unexpected(argv.error());
    }
    plan.argv = std::move(*argv);
    plan.live = driver::make_definition(std::move(live));
    return plan;
}

Status QemuDriverImpl::start(const std::shared_ptr<DomainObject>& obj, const DomainDefinition& definition,
                             StartOptions options) {
    const std::string name = obj->name();
    auto failed = [&](const Error& e) { return std::unexpected(e.context(fmt::format("failed to start domain '{}'", name))); };
    driver::AsyncJob* job = options.job;
    const RestoreSource* restore = options.restore;
    auto phase = [&](std::string_view what) {
        if (job) job->set_phase(std::string(what));
    };

    // --- prepare: every check, nothing created --------------------------------------
    phase("preparing");
    auto plan = prepare(obj, definition, options);
    if (!plan) return failed(plan.error());

    // --- launch: the runtime files and the process ------------------------------------
    phase("launching");
    VIREO_TRY(files::make_dirs(cfg.rundir, 0700));
    VIREO_TRY(files::make_dirs(cfg.logdir, 0700));
    // The per-domain UEFI variable store, from its template the first time;
    // it is kept across starts (undefine --nvram removes it).
    if (const auto& os = plan->live.def->os; os.loader_type == "pflash" && !os.nvram.empty())
        if (auto made = ensure_nvram(os.nvram, os.nvram_template); !made) return failed(made.error());
    auto listener = listen_unix(plan->monitor_path);
    if (!listener) return failed(listener.error());
    // The NICs' host side (taps, macvtaps, network ports, passt): from here
    // on a failure before the instance is installed undoes them.
    if (auto made = make_channel_dirs(*plan->live.def); !made) {
        release_devices(*plan->live.def);
        remove_runtime_files(name, plan->prefix);
        return failed(made.error());
    }
    if (auto nics = plug_nics(*plan); !nics) {
        release_devices(*plan->live.def);
        remove_runtime_files(name, plan->prefix);
        return failed(nics.error());
    }
    // An emulated TPM's swtpm listens before QEMU connects to it.
    if (auto tpm = start_swtpm(*plan, obj->uuid()); !tpm) {
        unplug_nics(name, *plan->live.def, plan->passt);
        release_devices(*plan->live.def);
        remove_runtime_files(name, plan->prefix);
        return failed(tpm.error());
    }
    // The guest's files to its QEMU user, the access check, the namespace.
    if (auto sec = apply_security(*plan, obj->uuid()); !sec) {
        stop_swtpm(plan->swtpm);
        unplug_nics(name, *plan->live.def, plan->passt);
        release_devices(*plan->live.def);
        remove_runtime_files(name, plan->prefix);
        return failed(sec.error());
    }
    const DomainDefinition launched = plan->live;
    const fs::path log = log_file(name);
    {
        std::ofstream out(log, std::ios::app);
        out << fmt::format("{}: starting up vireo {}, QEMU {}\n{}\n", now_stamp(), VIREO_VERSION,
                           plan->caps->version_string(), shell_join(plan->argv));
    }
    const std::uint64_t log_offset = size_of_file(log);
    SpawnSpec spec;
    spec.argv = plan->argv;
    spec.log_path = log;
    spec.fds.push_back({listener->get(), LaunchPlan::kMonitorFd, "monitor"});
    for (const auto& fd : plan->fds) spec.fds.push_back({fd.fd.get(), plan->fd_number(fd.name), fd.name});
    spec.pid_path = plan->prefix + ".pid";
    spec.set_env = qemu_environment(cfg.malloc_hugepages, std::getenv("GLIBC_TUNABLES"));
    if (plan->identity && plan->identity->uid != 0) spec.run_as = &*plan->identity;
    spec.mounts = plan->mounts.get();
    auto proc = processes->spawn(spec);
    listener->reset();
    plan->fds.clear();  // QEMU holds its own copies now
    if (!proc) {
        restore_labels(plan->prefix);
        stop_swtpm(plan->swtpm);
        unplug_nics(name, *launched.def, plan->passt);
        release_devices(*launched.def);
        remove_runtime_files(name, plan->prefix);
        return failed(proc.error());
    }
    const std::uint64_t instance = next_instance++;

    // --- connect: the monitor, then the instance is installed ---------------------------
    // Until it is installed, a failure kills QEMU and removes the files here.
    auto abort_launch = [&](const Error& why) {
        (void)processes->terminate(*proc, std::chrono::milliseconds(0), false);
        // QEMU writes its error before exiting; a dead process has flushed.
        Error e = start_error(why, log, log_offset, false);
        restore_labels(plan->prefix);
        stop_swtpm(plan->swtpm);
        unplug_nics(name, *launched.def, plan->passt);
        release_devices(*launched.def);
        remove_runtime_files(name, plan->prefix);
        return failed(e);
    };
    phase("connecting");
    auto conn = connect_unix(plan->monitor_path);
    if (!conn) return abort_launch(conn.error());
    auto monitor = attach_monitor(obj, instance, plan->monitor_path, cfg.start_timeout, std::move(*conn));
    if (!monitor) return abort_launch(monitor.error());
    // The ptys QEMU opened for pty character devices: the live XML shows
    // them, as libvirt's (<source path='/dev/pts/N'/>, the console with its
    // serial port's), and the console attaches to them.
    if (has_pty_chardevs(*plan->live.def)) {
        auto chardevs = (*monitor)->query_chardev();
        if (!chardevs) return abort_launch(chardevs.error());
        plan->live = driver::make_definition(with_pty_paths(*plan->live.def, *chardevs));
    }
    // Where the guest sees its memory modules (live <address type='dimm' base>),
    // and the threads' affinity (<cputune>), before the vCPUs run.
    if (!plan->live.def->devices.memories.empty()) {
        conf::DomainDef with_bases = *plan->live.def;
        if (auto r = refresh_memory_devices(**monitor, with_bases); !r) return abort_launch(r.error());
        plan->live = driver::make_definition(std::move(with_bases));
    }
    if (auto r = apply_thread_affinity(**monitor, *plan->live.def, proc->pid); !r) return abort_launch(r.error());

    auto priv = std::make_shared<QemuPrivate>();
    priv->instance = instance;
    priv->proc = *proc;
    priv->monitor = *monitor;
    priv->runtime_prefix = plan->prefix;
    priv->monitor_path = plan->monitor_path;
    priv->console_socket = plan->console_socket;
    priv->volume_paths = plan->volume_paths;
    priv->passt = plan->passt;
    priv->swtpm = plan->swtpm;
    priv->machine = starting_state(plan->policy);
    // Active (paused, starting up) before the vCPUs run, so that a QEMU death
    // from now on is seen by the machine.
    install(obj, priv, plan->live, plan->id);
    check_monitor(obj, priv);

    // From here on the machine ends the instance (StartAborted): kill QEMU,
    // remove the files, shut off (failed) -- unless it ended already.
    auto abort_start = [&](const Error& why, bool ours_first) -> Status {
        // A destroy may kill QEMU as soon as the domain is active, before
        // this start ends (destroy does not wait for the job to send
        // SIGTERM): then the start did not fail, it was cancelled.
        const bool destroyed = obj->with([&](DomainFields&) { return priv->machine.end == EndCause::Destroyed; });
        (void)apply(obj, priv, in::StartAborted{});
        if (destroyed)
            return failed(Error{ErrorCode::InvalidState,
                                "Requested operation is not valid: the domain was destroyed while it was starting"});
        return failed(start_error(why, log, log_offset, ours_first));
    };

    // NICs whose link starts down.
    if (auto r = apply_link_states(*priv->monitor, *launched.def); !r) return abort_start(r.error(), false);
    // The balloon's statistics period (<memballoon><stats period='N'/>).
    if (const auto& b = launched.def->devices.memballoon; b && !b->stats_period.empty())
        if (auto r = apply_balloon_period(*priv->monitor, *launched.def); !r) return abort_start(r.error(), false);

    // --- incoming: the saved state of a restore ------------------------------------------
    if (restore) {
        phase("restoring");
        if (auto r = apply(obj, priv, in::Incoming{}); !r) return abort_start(r.error(), true);
        if (auto r = receive_saved_state(*priv->monitor, *restore, job); !r) return abort_start(r.error(), true);
    }

    // --- resume: the vCPUs run (or stay paused) --------------------------------------------
    phase("resuming");
    const bool run = !options.paused && (!restore || restore->was_running);
    const std::string started = restore ? "Restored" : "Booted";
    if (!run) {
        if (auto r = apply(obj, priv, in::StartedPaused{started}); !r) return abort_start(r.error(), false);
        return {};
    }
    if (auto r = apply(obj, priv, in::Resume{restore ? "restored" : "booted", started}); !r)
        return abort_start(r.error(), false);
    auto cont = priv->monitor->cont();
    (void)apply_in_order(obj, priv, in::Reply{Command::Cont, cont.has_value()});
    if (!cont) return abort_start(cont.error(), false);
    // Confirmed by the reply or by QEMU's RESUME, whichever came first --
    // unless QEMU went down meanwhile.
    const bool up = obj->with(
        [&](DomainFields& f) { return qemu_private(f) == priv && priv->machine.phase == Phase::Running; });
    if (!up) return abort_start(Error{ErrorCode::Hypervisor, "QEMU exited while the domain was starting"}, false);
    return {};
}

namespace {

// Whether `pid` is the QEMU that vireo started for the runtime files named by
// `stem` (a domain name or uuid): its command line carries that name or
// uuid. Guards against killing an unrelated process that reused the pid.
bool is_our_qemu(pid_t pid, const std::string& stem) {
    auto read = files::read(fmt::format("/proc/{}/cmdline", pid));
    if (!read) return false;
    const std::string& cmdline = *read;
    if (cmdline.find("qemu-system") == std::string::npos) return false;
    const std::string by_name = "guest=" + stem + ",";
    const std::string by_uuid = std::string("-uuid") + '\0' + stem + '\0';
    return cmdline.find(by_name) != std::string::npos || cmdline.find(by_uuid) != std::string::npos;
}

}  // namespace

void QemuDriverImpl::reap_unfinished_starts(const std::set<std::string>& known_prefixes) {
    // A QEMU whose pid file exists but which has no runtime status was being
    // started (still paused at -S) when the previous daemon died: that start
    // was never acknowledged, so finish it the way a failed start ends, by
    // killing QEMU and removing its files (libvirt does the same).
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cfg.rundir, ec)) {
        // An owner journal without a running instance (the daemon died
        // before its QEMU ran): the files go back to their owners.
        if (e.path().extension() == ".owners" && !known_prefixes.contains((cfg.rundir / e.path().stem()).string()) &&
            !fs::exists(cfg.rundir / (e.path().stem().string() + ".pid"), ec)) {
            restore_labels((cfg.rundir / e.path().stem()).string());
            continue;
        }
        if (e.path().extension() != ".pid") continue;
        const std::string prefix = (cfg.rundir / e.path().stem()).string();
        if (known_prefixes.contains(prefix)) continue;
        std::ifstream in(e.path());
        long pid = -1;
        in >> pid;
        if (pid > 1 && is_our_qemu(static_cast<pid_t>(pid), e.path().stem().string())) {
            spdlog::warn("QEMU pid {} ({}) was starting when the previous daemon stopped; killing it", pid,
                         e.path().stem().string());
            ProcessId proc{static_cast<pid_t>(pid), process_start_time(static_cast<pid_t>(pid)).value_or(0)};
            (void)terminate_process(proc, std::chrono::seconds(1), false);
        }
        restore_labels(prefix);
        ::unlink(e.path().c_str());
        ::unlink((prefix + ".monitor").c_str());
    }
}

namespace {

// The save a dead daemon left in a status, if any.
std::optional<SaveRecord> recorded_save(const driver::RuntimeStatus& st) {
    auto file = st.get("save_file");
    if (!file || file->empty()) return std::nullopt;
    SaveRecord r;
    r.temp_file = *file;
    r.target = st.get("save_target").value_or("");
    r.was_running = st.get_int("save_was_running").value_or(0) != 0;
    r.prior_reason = st.get("save_prior_reason").value_or("user");
    r.written = st.get_int("save_written").value_or(0) != 0;
    return r;
}

// A save whose QEMU is gone: a complete image gets its name, a partial one
// is deleted.
void settle_orphaned_save(const std::optional<SaveRecord>& save) {
    if (!save) return;
    std::error_code ec;
    if (save->written && !save->target.empty() && fs::exists(save->temp_file, ec)) {
        if (::rename(save->temp_file.c_str(), save->target.c_str()) == 0) {
            (void)files::sync_dir(fs::path(save->target).parent_path());
            return;
        }
    }
    if (::unlink(save->temp_file.c_str()) == 0) (void)files::sync_dir(fs::path(save->temp_file).parent_path());
}

}  // namespace

void QemuDriverImpl::reattach_all() {
    int max_id = 0;
    std::set<std::string> known_prefixes;
    for (const auto& name : persistence.status_names()) {
        auto st = persistence.read_status(name);
        if (!st) {
            spdlog::warn("domain '{}': unreadable runtime status: {}", name, st.error().message);
            continue;
        }
        ProcessId proc;
        proc.pid = static_cast<pid_t>(st->get_int("pid").value_or(-1));
        proc.start_time = std::strtoull(st->get("pid_start_time").value_or("0").c_str(), nullptr, 10);
        std::string prefix = st->get("runtime_prefix").value_or((cfg.rundir / name).string());
        known_prefixes.insert(prefix);
        std::string monitor_path = st->get("monitor").value_or(prefix + ".monitor");
        int id = static_cast<int>(st->get_int("id").value_or(0));
        max_id = std::max(max_id, id);
        const std::optional<SaveRecord> save = recorded_save(*st);

        conf::ParseFlags live_flags;
        live_flags.live = true;
        live_flags.no_validate = true;
        if (!processes->alive(proc)) {
            spdlog::info("domain '{}': QEMU (pid {}) is gone; marking it shut off", name, proc.pid);
            settle_orphaned_save(save);
            // Its taps went with it; what outlives QEMU (network ports,
            // macvtaps) goes now.
            if (auto dead = conf::parse_domain_xml(st->live_xml, live_flags)) {
                unplug_nics(name, *dead, {});
                release_devices(*dead);
            }
            restore_labels(prefix);
            remove_runtime_files(name, prefix);
            continue;
        }
        auto parsed = driver::make_definition(st->live_xml, live_flags);
        if (!parsed) {
            spdlog::error("domain '{}': runtime status has an unusable live definition ({}); leaving QEMU pid {} alone",
                          name, parsed.error().message, proc.pid);
            continue;
        }
        DomainDefinition live = driver::make_live_definition(*parsed, id);
        auto obj = registry.find_by_name(name);
        if (!obj) {
            auto added = registry.add_transient(live);
            if (!added) {
                spdlog::error("domain '{}': cannot register running domain: {}", name, added.error().message);
                continue;
            }
            obj = added->object;
        }
        const std::uint64_t instance = next_instance++;
        auto monitor = attach_monitor(obj, instance, monitor_path, std::chrono::seconds(10));
        if (!monitor) {
            spdlog::error("domain '{}': QEMU pid {} is alive but its monitor is unusable ({}); killing it", name,
                          proc.pid, monitor.error().message);
            (void)processes->terminate(proc, std::chrono::seconds(3), false);
            settle_orphaned_save(save);
            unplug_nics(name, *live.def, {});
            release_devices(*live.def);
            restore_labels(prefix);
            remove_runtime_files(name, prefix);
            if (obj->with([](DomainFields& f) { return !f.persistent(); })) registry.remove(obj);
            continue;
        }
        in::Reattach found;
        if (auto status = (*monitor)->query_status()) found.qemu = status->state;
        found.phase = parse_phase(st->get("phase").value_or(""));
        found.state = driver::state_from_name(st->get("state").value_or("")).value_or(DomainState::Paused);
        if (found.state == DomainState::Shutoff || found.state == DomainState::NoState) found.state = DomainState::Paused;
        found.reason = st->get("reason").value_or("unknown");
        found.save = save;

        auto priv = std::make_shared<QemuPrivate>();
        priv->instance = instance;
        priv->proc = proc;
        priv->monitor = *monitor;
        priv->runtime_prefix = prefix;
        priv->monitor_path = monitor_path;
        priv->console_socket = st->get("console_socket").value_or("");
        priv->agent_timeout = static_cast<int>(st->get_int("agent_timeout").value_or(kAgentTimeoutDefault));
        priv->volume_paths = load_volume_paths(name, *st, *live.def);
        // Its taps are QEMU's and still there; the network ports are told again.
        replug_nics(name, *live.def);
        reserve_devices(*live.def);
        priv->machine = starting_state(policy_of(*live.def));
        priv->machine.state = found.state;
        priv->machine.reason = found.reason;
        spdlog::info("domain '{}': reattached to QEMU pid {} ({})", name, proc.pid,
                     found.qemu ? run_state_name(*found.qemu) : "not answering");
        // The machine decides what the recorded phase and QEMU's state mean
        // now: a start that never completed is killed, a save cut short is
        // undone, a poweroff while nobody watched gets its on_poweroff.
        if (auto r = install_with(obj, priv, live, id, found); !r)
            spdlog::error("domain '{}': reattach: {}", name, r.error().full_message());
        check_monitor(obj, priv);
    }
    reap_unfinished_starts(known_prefixes);
    if (max_id + 1 > registry.next_id()) registry.set_next_id(max_id + 1);
}

void QemuDriverImpl::autostart_all() {
    for (const auto& obj : registry.list()) {
        bool want = obj->with([](DomainFields& f) { return f.autostart && !f.active(); });
        if (!want) continue;
        auto job = driver::acquire_job(obj, "start");
        if (!job) continue;
        auto def = obj->with([](DomainFields& f) { return f.config; });
        if (!def || obj->snapshot().active()) continue;
        if (auto s = start(obj, *def, StartOptions{}); !s)
            spdlog::error("autostart of domain '{}' failed: {}", obj->name(), s.error().full_message());
    }
}

}  // namespace vireo::qemu
