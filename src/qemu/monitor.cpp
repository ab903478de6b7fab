#include "qemu/monitor.hpp"

#include <array>
#include <utility>

namespace vireo::qemu {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 16> kRunStates{{
    {RunState::Debug, "debug"},
    {RunState::InMigrate, "inmigrate"},
    {RunState::InternalError, "internal-error"},
    {RunState::IoError, "io-error"},
    {RunState::Paused, "paused"},
    {RunState::PostMigrate, "postmigrate"},
    {RunState::Prelaunch, "prelaunch"},
    {RunState::FinishMigrate, "finish-migrate"},
    {RunState::RestoreVm, "restore-vm"},
    {RunState::Running, "running"},
    {RunState::SaveVm, "save-vm"},
    {RunState::Shutdown, "shutdown"},
    {RunState::Suspended, "suspended"},
    {RunState::Watchdog, "watchdog"},
    {RunState::GuestPanicked, "guest-panicked"},
    {RunState::Colo, "colo"},
}};

constexpr std::array<std::pair<MigrationStatus, std::string_view>, 14> kMigrationStatuses{{
    {MigrationStatus::None, "none"},
    {MigrationStatus::Setup, "setup"},
    {MigrationStatus::Cancelling, "cancelling"},
    {MigrationStatus::Cancelled, "cancelled"},
    {MigrationStatus::Active, "active"},
    {MigrationStatus::PostcopyActive, "postcopy-active"},
    {MigrationStatus::PostcopyPaused, "postcopy-paused"},
    {MigrationStatus::PostcopyRecover, "postcopy-recover"},
    {MigrationStatus::Completed, "completed"},
    {MigrationStatus::Failed, "failed"},
    {MigrationStatus::Colo, "colo"},
    {MigrationStatus::PreSwitchover, "pre-switchover"},
    {MigrationStatus::Device, "device"},
    {MigrationStatus::WaitUnplug, "wait-unplug"},
}};

template <class E, std::size_t N>
E from_name(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view name, E unknown) {
    for (const auto& [value, text] : table)
        if (text == name) return value;
    return unknown;
}

template <class E, std::size_t N>
std::string_view to_name(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
    for (const auto& [v, text] : table)
        if (v == value) return text;
    return "unknown";
}

std::string string_field(const json& obj, const char* key) {
    if (!obj.is_object()) return "";
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::uint64_t uint_field(const json& obj, const char* key) {
    if (!obj.is_object()) return 0;
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return 0;
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
    return static_cast<std::uint64_t>(std::max(0.0, it->get<double>()));
}

Error malformed(std::string_view command, std::string_view what) {
    return Error{ErrorCode::Protocol, fmt::format("QEMU's answer to '{}' is malformed: {}", command, what)};
}

}  // namespace

RunState parse_run_state(std::string_view name) { return from_name(kRunStates, name, RunState::Unknown); }
std::string_view run_state_name(RunState s) { return to_name(kRunStates, s); }

MigrationStatus parse_migration_status(std::string_view name) {
    return from_name(kMigrationStatuses, name, MigrationStatus::Unknown);
}
std::string_view migration_status_name(MigrationStatus s) { return to_name(kMigrationStatuses, s); }

MonitorEvent MonitorEvent::shutdown(bool guest, std::string reason) {
    MonitorEvent ev = of(EventKind::Shutdown);
    ev.guest = guest;
    ev.reason = std::move(reason);
    return ev;
}

MonitorEvent MonitorEvent::of(EventKind kind) {
    static constexpr std::array<std::pair<EventKind, std::string_view>, 10> names{{
        {EventKind::Shutdown, "SHUTDOWN"},
        {EventKind::Powerdown, "POWERDOWN"},
        {EventKind::Reset, "RESET"},
        {EventKind::Stop, "STOP"},
        {EventKind::Resume, "RESUME"},
        {EventKind::GuestPanicked, "GUEST_PANICKED"},
        {EventKind::Migration, "MIGRATION"},
        {EventKind::DeviceDeleted, "DEVICE_DELETED"},
        {EventKind::VserportChange, "VSERPORT_CHANGE"},
        {EventKind::MemoryDeviceSizeChange, "MEMORY_DEVICE_SIZE_CHANGE"},
    }};
    MonitorEvent ev;
    ev.kind = kind;
    for (const auto& [k, n] : names)
        if (k == kind) ev.name = std::string(n);
    return ev;
}

MonitorEvent parse_event(const QmpEvent& raw) {
    MonitorEvent ev;
    ev.name = raw.name;
    ev.timestamp = raw.timestamp;
    const json& d = raw.data;
    auto guest = [&] { return d.is_object() && d.value("guest", false); };
    if (raw.name == "SHUTDOWN") {
        ev.kind = EventKind::Shutdown;
        ev.guest = guest();
        ev.reason = string_field(d, "reason");
        // QEMU before 4.0 sent no reason; a guest flag alone still tells who.
        if (ev.reason.empty()) ev.reason = ev.guest ? "guest-shutdown" : "host-signal";
    } else if (raw.name == "RESET") {
        ev.kind = EventKind::Reset;
        ev.guest = guest();
        ev.reason = string_field(d, "reason");
    } else if (raw.name == "POWERDOWN") {
        ev.kind = EventKind::Powerdown;
    } else if (raw.name == "STOP") {
        ev.kind = EventKind::Stop;
    } else if (raw.name == "RESUME") {
        ev.kind = EventKind::Resume;
    } else if (raw.name == "GUEST_PANICKED") {
        ev.kind = EventKind::GuestPanicked;
        ev.action = string_field(d, "action");
    } else if (raw.name == "MIGRATION") {
        ev.kind = EventKind::Migration;
        ev.migration = parse_migration_status(string_field(d, "status"));
    } else if (raw.name == "DEVICE_DELETED") {
        ev.kind = EventKind::DeviceDeleted;
        ev.device = string_field(d, "device");
    } else if (raw.name == "VSERPORT_CHANGE") {
        ev.kind = EventKind::VserportChange;
        ev.device = string_field(d, "id");
        ev.open = d.is_object() && d.value("open", false);
    } else if (raw.name == "MEMORY_DEVICE_SIZE_CHANGE") {
        ev.kind = EventKind::MemoryDeviceSizeChange;
        ev.device = string_field(d, "id");
        ev.size = d.is_object() ? d.value("size", std::uint64_t{0}) : 0;
    }
    return ev;
}

Result<std::shared_ptr<Monitor>> Monitor::open(UniqueFd fd, std::chrono::milliseconds greeting_timeout,
                                               EventHandler on_event, CloseHandler on_close,
                                               std::chrono::milliseconds command_timeout) {
    auto deleted = std::make_shared<DeletedDevices>();
    QmpClient::EventHandler raw_handler = [h = std::move(on_event), deleted](const QmpEvent& raw) {
        MonitorEvent ev = parse_event(raw);
        if (ev.kind == EventKind::DeviceDeleted) {
            // A device's child (no id) concerns nobody; a device a detach
            // waits for is its business; the rest was released late.
            if (ev.device.empty()) return;
            std::lock_guard lk(deleted->mutex);
            if (deleted->waiting.contains(ev.device)) {
                deleted->ids.insert(ev.device);
                deleted->cv.notify_all();
                return;
            }
        }
        if (h) h(ev);
    };
    auto client = QmpClient::open(std::move(fd), greeting_timeout, std::move(raw_handler), std::move(on_close));
    if (!client) return std::unexpected(client.error());
    return std::make_shared<Monitor>(std::move(*client), command_timeout, std::move(deleted));
}

Result<std::shared_ptr<Monitor>> Monitor::connect(const std::filesystem::path& path,
                                                  std::chrono::milliseconds greeting_timeout, EventHandler on_event,
                                                  CloseHandler on_close, std::chrono::milliseconds command_timeout) {
    auto fd = connect_unix(path);
    if (!fd) return std::unexpected(fd.error());
    return open(std::move(*fd), greeting_timeout, std::move(on_event), std::move(on_close), command_timeout);
}

Monitor::Monitor(std::unique_ptr<QmpClient> transport, std::chrono::milliseconds command_timeout,
                 std::shared_ptr<DeletedDevices> deleted)
    : qmp_(std::move(transport)), timeout_(command_timeout),
      deleted_(deleted ? std::move(deleted) : std::make_shared<DeletedDevices>()) {}

Result<json> Monitor::run(std::string_view command, const json& arguments, int fd) {
    return fd >= 0 ? qmp_->execute_with_fd(command, arguments, fd, timeout_) : qmp_->execute(command, arguments, timeout_);
}

namespace {
Status done(const Result<json>& r) {
    if (!r) return std::unexpected(r.error());
    return {};
}
}  // namespace

Status Monitor::stop() { return done(run("stop")); }
Status Monitor::cont() { return done(run("cont")); }
Status Monitor::system_reset() { return done(run("system_reset")); }
Status Monitor::system_powerdown() { return done(run("system_powerdown")); }
Status Monitor::quit() { return done(run("quit")); }
Status Monitor::watchdog_set_action(std::string_view action) { return done(run("watchdog-set-action", {{"action", action}})); }

Status Monitor::set_link(std::string_view device, bool up) { return done(run("set_link", {{"name", device}, {"up", up}})); }

Status Monitor::screendump_png(const std::filesystem::path& path, std::string_view device, std::optional<unsigned> head) {
    nlohmann::json args = {{"filename", path.string()}, {"format", "png"}};
    if (!device.empty()) args["device"] = device;
    if (head) args["head"] = *head;
    return done(run("screendump", args));
}

Status Monitor::send_key(const std::vector<unsigned>& qnums, unsigned hold_ms) {
    nlohmann::json keys = nlohmann::json::array();
    for (unsigned k : qnums) keys.push_back({{"type", "number"}, {"data", k}});
    nlohmann::json args = {{"keys", keys}};
    if (hold_ms) args["hold-time"] = hold_ms;
    return done(run("send-key", args));
}

Result<StatusInfo> Monitor::query_status() {
    auto r = run("query-status");
    if (!r) return std::unexpected(r.error());
    if (!r->is_object()) return std::unexpected(malformed("query-status", "not an object"));
    StatusInfo out;
    out.state = parse_run_state(string_field(*r, "status"));
    out.running = r->value("running", false);
    return out;
}

Result<std::vector<ChardevInfo>> Monitor::query_chardev() {
    auto r = run("query-chardev");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-chardev", "not an array"));
    std::vector<ChardevInfo> out;
    for (const auto& c : *r) {
        if (!c.is_object()) return std::unexpected(malformed("query-chardev", "an entry is not an object"));
        ChardevInfo info;
        info.label = string_field(c, "label");
        info.filename = string_field(c, "filename");
        info.frontend_open = c.value("frontend-open", false);
        out.push_back(std::move(info));
    }
    return out;
}

const BlockDeviceInfo* block_of(const std::vector<BlockDeviceInfo>& blocks, std::string_view alias) {
    const std::string prefix = "/machine/peripheral/" + std::string(alias);
    for (const auto& b : blocks)
        if (!b.node.empty() && (b.qdev == prefix || b.qdev.starts_with(prefix + "/"))) return &b;
    return nullptr;
}

Result<Monitor::MediumInfo> Monitor::query_medium(std::string_view device) {
    auto r = run("query-block");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-block", "not an array"));
    MediumInfo out;
    for (const auto& b : *r) {
        // virtio devices answer with their backend's QOM path, usb-storage
        // with its inner SCSI disk's ("/machine/peripheral/ID/ID.0/legacy[0]").
        const std::string qdev = string_field(b, "qdev");
        const bool ours = qdev == device || qdev == fmt::format("/machine/peripheral/{}/virtio-backend", device) ||
                          qdev.starts_with(fmt::format("/machine/peripheral/{}/{}.0/", device, device));
        if (!b.is_object() || !ours) continue;
        out.found = true;
        out.tray_open = b.value("tray_open", false);
        if (b.contains("inserted") && b["inserted"].is_object()) out.node = string_field(b["inserted"], "node-name");
    }
    return out;
}

Status Monitor::blockdev_open_tray(std::string_view device, bool force) {
    return done(run("blockdev-open-tray", {{"id", device}, {"force", force}}));
}
Status Monitor::blockdev_close_tray(std::string_view device) { return done(run("blockdev-close-tray", {{"id", device}})); }
Status Monitor::blockdev_remove_medium(std::string_view device) { return done(run("blockdev-remove-medium", {{"id", device}})); }
Status Monitor::blockdev_insert_medium(std::string_view device, std::string_view node) {
    return done(run("blockdev-insert-medium", {{"id", device}, {"node-name", node}}));
}
Status Monitor::blockdev_add(const nlohmann::json& args) { return done(run("blockdev-add", args)); }
Status Monitor::blockdev_del(std::string_view node) { return done(run("blockdev-del", {{"node-name", node}})); }

Status Monitor::device_add(const nlohmann::json& args) { return done(run("device_add", args)); }

Status Monitor::device_del(std::string_view id) { return done(run("device_del", {{"id", id}})); }

Status Monitor::netdev_add(const nlohmann::json& args) { return done(run("netdev_add", args)); }

Status Monitor::netdev_del(std::string_view id) { return done(run("netdev_del", {{"id", id}})); }

Status Monitor::object_add(const nlohmann::json& args) { return done(run("object-add", args)); }

Status Monitor::object_del(std::string_view id) { return done(run("object-del", {{"id", id}})); }

Result<std::string> Monitor::chardev_add(const nlohmann::json& args) {
    auto r = run("chardev-add", args);
    if (!r) return std::unexpected(r.error());
    if (r->is_object() && r->contains("pty")) return string_field(*r, "pty");
    return std::string();
}

Status Monitor::chardev_remove(std::string_view id) { return done(run("chardev-remove", {{"id", id}})); }

bool Monitor::wait_device_deleted(std::string_view id, std::chrono::milliseconds timeout) {
    std::unique_lock lk(deleted_->mutex);
    const bool seen = deleted_->cv.wait_for(lk, timeout, [&] { return deleted_->ids.contains(id) || closed(); });
    if (auto w = deleted_->waiting.find(id); w != deleted_->waiting.end()) deleted_->waiting.erase(w);
    if (!seen || !deleted_->ids.contains(id)) return false;
    deleted_->ids.erase(deleted_->ids.find(id));
    return true;
}

void Monitor::forget_device_deleted(std::string_view id) {
    std::lock_guard lk(deleted_->mutex);
    if (auto it = deleted_->ids.find(id); it != deleted_->ids.end()) deleted_->ids.erase(it);
    deleted_->waiting.emplace(id);
}

void Monitor::keep_late_node(std::string_view id, std::string node) {
    std::lock_guard lk(deleted_->mutex);
    deleted_->late_nodes.insert_or_assign(std::string(id), std::move(node));
}

std::string Monitor::take_late_node(std::string_view id) {
    std::lock_guard lk(deleted_->mutex);
    auto it = deleted_->late_nodes.find(id);
    if (it == deleted_->late_nodes.end()) return {};
    std::string node = std::move(it->second);
    deleted_->late_nodes.erase(it);
    return node;
}

Result<std::vector<GuestThread>> Monitor::query_cpus_fast() {
    auto r = run("query-cpus-fast");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-cpus-fast", "not an array"));
    std::vector<GuestThread> out;
    for (const auto& c : *r) {
        if (!c.is_object() || !c.contains("cpu-index") || !c.contains("thread-id"))
            return std::unexpected(malformed("query-cpus-fast", "an entry has no cpu-index or thread-id"));
        out.push_back({c["cpu-index"].get<unsigned>(), "", c["thread-id"].get<int>()});
    }
    return out;
}

Result<std::vector<GuestThread>> Monitor::query_iothreads() {
    auto r = run("query-iothreads");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-iothreads", "not an array"));
    std::vector<GuestThread> out;
    for (const auto& c : *r) {
        if (!c.is_object() || !c.contains("thread-id"))
            return std::unexpected(malformed("query-iothreads", "an entry has no thread-id"));
        out.push_back({0, string_field(c, "id"), c["thread-id"].get<int>()});
    }
    return out;
}

Result<std::vector<MemoryDeviceInfo>> Monitor::query_memory_devices() {
    auto r = run("query-memory-devices");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-memory-devices", "not an array"));
    std::vector<MemoryDeviceInfo> out;
    for (const auto& m : *r) {
        if (!m.is_object() || !m.contains("data") || !m["data"].is_object()) continue;
        const std::string type = string_field(m, "type");
        if (type != "dimm" && type != "virtio-mem") continue;
        const auto& d = m["data"];
        MemoryDeviceInfo info;
        info.type = type;
        info.id = string_field(d, "id");
        info.addr = d.value(type == "dimm" ? "addr" : "memaddr", std::uint64_t{0});
        info.slot = d.value("slot", 0u);
        info.size = d.value("size", std::uint64_t{0});
        out.push_back(std::move(info));
    }
    return out;
}

Result<std::vector<HotpluggableCpu>> Monitor::query_hotpluggable_cpus() {
    auto r = run("query-hotpluggable-cpus");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-hotpluggable-cpus", "not an array"));
    std::vector<HotpluggableCpu> out;
    for (const auto& c : *r) {
        if (!c.is_object() || !c.contains("props") || !c["props"].is_object())
            return std::unexpected(malformed("query-hotpluggable-cpus", "an entry has no props"));
        out.push_back({string_field(c, "type"), c["props"], string_field(c, "qom-path"), c.value("vcpus-count", 1u)});
    }
    return out;
}

Status Monitor::balloon(std::uint64_t bytes) { return done(run("balloon", {{"value", bytes}})); }

Result<std::uint64_t> Monitor::query_balloon() {
    auto r = run("query-balloon");
    if (!r) return std::unexpected(r.error());
    if (!r->is_object() || !r->contains("actual") || !(*r)["actual"].is_number_unsigned())
        return std::unexpected(malformed("query-balloon", "no 'actual' size"));
    return (*r)["actual"].get<std::uint64_t>();
}

Result<nlohmann::json> Monitor::qom_get(std::string_view path, std::string_view property) {
    return run("qom-get", {{"path", path}, {"property", property}});
}

Status Monitor::qom_set(std::string_view path, std::string_view property, const nlohmann::json& value) {
    return done(run("qom-set", {{"path", path}, {"property", property}, {"value", value}}));
}

Result<std::vector<BlockDeviceInfo>> Monitor::query_block() {
    auto r = run("query-block");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-block", "not an array"));
    std::vector<BlockDeviceInfo> out;
    for (const auto& b : *r) {
        if (!b.is_object()) continue;
        BlockDeviceInfo info;
        info.qdev = string_field(b, "qdev");
        if (auto in = b.find("inserted"); in != b.end() && in->is_object()) {
            info.node = string_field(*in, "node-name");
            info.file = string_field(*in, "file");
            info.format = string_field(*in, "drv");
            info.read_only = in->value("ro", false);
            if (auto img = in->find("image"); img != in->end() && img->is_object()) {
                if (auto snaps = img->find("snapshots"); snaps != img->end() && snaps->is_array())
                    for (const auto& sn : *snaps)
                        if (sn.is_object()) info.snapshots.push_back(string_field(sn, "name"));
                info.virtual_size = uint_field(*img, "virtual-size");
                if (auto a = img->find("actual-size"); a != img->end() && a->is_number_unsigned())
                    info.actual_size = a->get<std::uint64_t>();
            }
        }
        out.push_back(std::move(info));
    }
    return out;
}

Result<std::vector<BlockStatsInfo>> Monitor::query_blockstats() {
    auto r = run("query-blockstats");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-blockstats", "not an array"));
    std::vector<BlockStatsInfo> out;
    for (const auto& b : *r) {
        if (!b.is_object()) continue;
        auto st = b.find("stats");
        if (st == b.end() || !st->is_object()) return std::unexpected(malformed("query-blockstats", "an entry without stats"));
        BlockStatsInfo info;
        info.qdev = string_field(b, "qdev");
        info.node = string_field(b, "node-name");
        info.rd_bytes = uint_field(*st, "rd_bytes");
        info.wr_bytes = uint_field(*st, "wr_bytes");
        info.rd_operations = uint_field(*st, "rd_operations");
        info.wr_operations = uint_field(*st, "wr_operations");
        info.flush_operations = uint_field(*st, "flush_operations");
        info.rd_total_time_ns = uint_field(*st, "rd_total_time_ns");
        info.wr_total_time_ns = uint_field(*st, "wr_total_time_ns");
        info.flush_total_time_ns = uint_field(*st, "flush_total_time_ns");
        if (auto parent = b.find("parent"); parent != b.end() && parent->is_object())
            if (auto ps = parent->find("stats"); ps != parent->end() && ps->is_object())
                if (auto w = ps->find("wr_highest_offset"); w != ps->end() && w->is_number_unsigned())
                    info.file_wr_highest_offset = w->get<std::uint64_t>();
        out.push_back(std::move(info));
    }
    return out;
}

Status Monitor::block_resize(std::string_view node, std::uint64_t bytes) {
    return done(run("block_resize", {{"node-name", node}, {"size", bytes}}));
}

Status Monitor::block_commit(std::string_view job_id, std::string_view device, std::string_view top, std::string_view base,
                             std::uint64_t speed) {
    nlohmann::json args = {{"job-id", job_id}, {"device", device}, {"base-node", base}, {"auto-dismiss", false}};
    if (!top.empty()) args["top-node"] = top;
    if (speed) args["speed"] = speed;
    return done(run("block-commit", args));
}

Status Monitor::block_stream(std::string_view job_id, std::string_view device, std::string_view base, std::uint64_t speed) {
    nlohmann::json args = {{"job-id", job_id}, {"device", device}, {"auto-dismiss", false}};
    if (!base.empty()) args["base-node"] = base;
    if (speed) args["speed"] = speed;
    return done(run("block-stream", args));
}

Status Monitor::blockdev_mirror(std::string_view job_id, std::string_view device, std::string_view target, std::string_view sync,
                                std::uint64_t speed) {
    nlohmann::json args = {{"job-id", job_id}, {"device", device}, {"target", target}, {"sync", sync}, {"auto-dismiss", false}};
    if (speed) args["speed"] = speed;
    return done(run("blockdev-mirror", args));
}

Status Monitor::block_job_complete(std::string_view job_id) { return done(run("block-job-complete", {{"device", job_id}})); }

Status Monitor::block_job_cancel(std::string_view job_id, bool force) {
    return done(run("block-job-cancel", {{"device", job_id}, {"force", force}}));
}

Status Monitor::block_job_set_speed(std::string_view job_id, std::uint64_t speed) {
    return done(run("block-job-set-speed", {{"device", job_id}, {"speed", speed}}));
}

Result<std::vector<BlockJobProgress>> Monitor::query_block_jobs() {
    auto r = run("query-block-jobs");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-block-jobs", "not an array"));
    std::vector<BlockJobProgress> out;
    for (const auto& j : *r) {
        if (!j.is_object()) continue;
        out.push_back({string_field(j, "device"), string_field(j, "type"), uint_field(j, "offset"), uint_field(j, "len"),
                       uint_field(j, "speed"), j.value("ready", false), string_field(j, "status"), string_field(j, "error")});
    }
    return out;
}

Result<std::vector<NamedBlockNode>> Monitor::query_named_block_nodes() {
    auto r = run("query-named-block-nodes", {{"flat", true}});
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-named-block-nodes", "not an array"));
    std::vector<NamedBlockNode> out;
    for (const auto& n : *r)
        if (n.is_object()) out.push_back({string_field(n, "node-name"), string_field(n, "drv"), string_field(n, "file")});
    return out;
}

Status Monitor::snapshot_save(std::string_view job_id, std::string_view tag, std::string_view vmstate,
                              const std::vector<std::string>& devices) {
    return done(run("snapshot-save", {{"job-id", job_id}, {"tag", tag}, {"vmstate", vmstate}, {"devices", devices}}));
}

Status Monitor::snapshot_load(std::string_view job_id, std::string_view tag, std::string_view vmstate,
                              const std::vector<std::string>& devices) {
    return done(run("snapshot-load", {{"job-id", job_id}, {"tag", tag}, {"vmstate", vmstate}, {"devices", devices}}));
}

Status Monitor::snapshot_delete(std::string_view job_id, std::string_view tag, const std::vector<std::string>& devices) {
    return done(run("snapshot-delete", {{"job-id", job_id}, {"tag", tag}, {"devices", devices}}));
}

Status Monitor::blockdev_snapshot(const std::vector<std::pair<std::string, std::string>>& node_overlay) {
    nlohmann::json actions = nlohmann::json::array();
    for (const auto& [node, overlay] : node_overlay)
        actions.push_back({{"type", "blockdev-snapshot"}, {"data", {{"node", node}, {"overlay", overlay}}}});
    return done(run("transaction", {{"actions", actions}}));
}

Result<std::vector<QemuJobInfo>> Monitor::query_jobs() {
    auto r = run("query-jobs");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-jobs", "not an array"));
    std::vector<QemuJobInfo> out;
    for (const auto& j : *r) {
        if (!j.is_object()) continue;
        out.push_back({string_field(j, "id"), string_field(j, "type"), string_field(j, "status"), string_field(j, "error")});
    }
    return out;
}

Status Monitor::job_dismiss(std::string_view job_id) { return done(run("job-dismiss", {{"id", job_id}})); }

Status Monitor::migrate(std::string_view uri) { return done(run("migrate", {{"uri", uri}})); }
Status Monitor::migrate_cancel() { return done(run("migrate_cancel")); }
Status Monitor::migrate_incoming(std::string_view uri) { return done(run("migrate-incoming", {{"uri", uri}})); }

Result<MigrationInfo> Monitor::query_migrate() {
    auto r = run("query-migrate");
    if (!r) return std::unexpected(r.error());
    if (!r->is_object()) return std::unexpected(malformed("query-migrate", "not an object"));
    MigrationInfo out;
    // Before any migration QEMU answers {} (no status): that is "none".
    std::string status = string_field(*r, "status");
    out.status = status.empty() ? MigrationStatus::None : parse_migration_status(status);
    out.error_desc = string_field(*r, "error-desc");
    if (auto ram = r->find("ram"); ram != r->end() && ram->is_object()) {
        out.ram_transferred = uint_field(*ram, "transferred");
        out.ram_remaining = uint_field(*ram, "remaining");
        out.ram_total = uint_field(*ram, "total");
        if (auto m = ram->find("mbps"); m != ram->end() && m->is_number()) out.mbps = m->get<double>();
        out.dirty_pages_rate = uint_field(*ram, "dirty-pages-rate");
        out.page_size = uint_field(*ram, "page-size");
        out.dirty_sync_count = uint_field(*ram, "dirty-sync-count");
        out.postcopy_requests = uint_field(*ram, "postcopy-requests");
        out.duplicate = uint_field(*ram, "duplicate");
        out.normal = uint_field(*ram, "normal");
        out.normal_bytes = uint_field(*ram, "normal-bytes");
    }
    out.expected_downtime = uint_field(*r, "expected-downtime");
    out.downtime = uint_field(*r, "downtime");
    out.setup_time = uint_field(*r, "setup-time");
    return out;
}

Status Monitor::getfd(std::string_view name, int fd) { return done(run("getfd", {{"fdname", name}}, fd)); }

Status Monitor::closefd(std::string_view name) { return done(run("closefd", {{"fdname", name}})); }

Result<QemuVersionInfo> Monitor::query_version() {
    auto r = run("query-version");
    if (!r) return std::unexpected(r.error());
    if (!r->is_object() || !r->contains("qemu") || !(*r)["qemu"].is_object())
        return std::unexpected(malformed("query-version", "no 'qemu' object"));
    const json& q = (*r)["qemu"];
    QemuVersionInfo out;
    out.major = q.value("major", 0);
    out.minor = q.value("minor", 0);
    out.micro = q.value("micro", 0);
    out.package = string_field(*r, "package");
    return out;
}

Result<std::vector<MachineInfo>> Monitor::query_machines() {
    auto r = run("query-machines");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-machines", "not an array"));
    std::vector<MachineInfo> out;
    for (const auto& m : *r) {
        if (!m.is_object()) continue;
        MachineInfo mi;
        mi.name = string_field(m, "name");
        mi.alias = string_field(m, "alias");
        mi.is_default = m.value("is-default", false);
        mi.cpu_max = m.value("cpu-max", 1);
        mi.deprecated = m.value("deprecated", false);
        if (!mi.name.empty()) out.push_back(std::move(mi));
    }
    return out;
}

Result<std::vector<std::string>> Monitor::qom_list_types(std::string_view implements, bool abstract) {
    auto r = run("qom-list-types", {{"implements", implements}, {"abstract", abstract}});
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("qom-list-types", "not an array"));
    std::vector<std::string> out;
    for (const auto& t : *r)
        if (auto name = string_field(t, "name"); !name.empty()) out.push_back(std::move(name));
    return out;
}

Result<std::vector<std::string>> Monitor::query_cpu_definitions() {
    auto r = run("query-cpu-definitions");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-cpu-definitions", "not an array"));
    std::vector<std::string> out;
    for (const auto& c : *r)
        if (auto name = string_field(c, "name"); !name.empty()) out.push_back(std::move(name));
    return out;
}

Result<QmpSchema> Monitor::query_qmp_schema() {
    auto r = run("query-qmp-schema");
    if (!r) return std::unexpected(r.error());
    if (!r->is_array()) return std::unexpected(malformed("query-qmp-schema", "not an array"));
    QmpSchema out;
    for (const auto& entry : *r) {
        std::string meta = string_field(entry, "meta-type");
        if (meta == "command") out.commands.insert(string_field(entry, "name"));
        else if (meta == "event") out.events.insert(string_field(entry, "name"));
    }
    out.entries = std::move(*r);
    return out;
}

const json& Monitor::greeting() const { return qmp_->greeting(); }
bool Monitor::closed() const { return qmp_->closed(); }
void Monitor::close() { qmp_->close(); }

}  // namespace vireo::qemu
