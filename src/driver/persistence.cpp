#include "driver/persistence.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <sstream>

#include <pugixml.hpp>
#include <spdlog/spdlog.h>

#include "util/files.hpp"

namespace vireo::driver {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kXmlSuffix = ".xml";

// "<name>.xml" -> "name"; nullopt for anything else (temp files of
// write_atomic start with '.', and are never definitions).
std::optional<std::string> name_of_file(const fs::path& p) {
    const std::string file = p.filename().string();
    if (file.size() <= kXmlSuffix.size() || file.front() == '.' || !file.ends_with(kXmlSuffix)) return std::nullopt;
    return file.substr(0, file.size() - kXmlSuffix.size());
}

}  // namespace

// ---------------------------------------------------------------------------
// RuntimeStatus

std::optional<std::string> RuntimeStatus::get(std::string_view key) const {
    auto it = values.find(std::string(key));
    if (it == values.end()) return std::nullopt;
    return it->second;
}

std::optional<std::int64_t> RuntimeStatus::get_int(std::string_view key) const {
    auto text = get(key);
    if (!text || text->empty()) return std::nullopt;
    std::int64_t v = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, v);
    if (ec != std::errc{} || ptr != end) return std::nullopt;
    return v;
}

Result<std::string> format_runtime_status(const RuntimeStatus& status) {
    pugi::xml_document doc;
    auto root = doc.append_child("domstatus");
    root.append_attribute("version") = 1;
    for (const auto& [key, value] : status.values) {
        auto v = root.append_child("value");
        v.append_attribute("key") = key.c_str();
        v.text().set(value.c_str());
    }
    if (!status.live_xml.empty()) {
        pugi::xml_document live;
        auto parsed = live.load_buffer(status.live_xml.data(), status.live_xml.size());
        if (!parsed) return fail(ErrorCode::XmlError, "live definition is not valid XML: {}", parsed.description());
        if (!live.document_element()) return fail(ErrorCode::XmlError, "live definition has no root element");
        root.append_copy(live.document_element());
    }
    std::ostringstream out;
    doc.save(out, "  ");
    return out.str();
}

Result<RuntimeStatus> parse_runtime_status(std::string_view text) {
    pugi::xml_document doc;
    auto parsed = doc.load_buffer(text.data(), text.size());
    if (!parsed)
        return fail(ErrorCode::Corrupt, "status document is not valid XML: {} at offset {}", parsed.description(),
                    parsed.offset);
    auto root = doc.child("domstatus");
    if (!root) return fail(ErrorCode::Corrupt, "status document has no <domstatus> root element");
    RuntimeStatus status;
    for (auto node : root.children()) {
        const std::string_view tag = node.name();
        if (tag == "value") {
            const char* key = node.attribute("key").value();
            if (*key == '\0') return fail(ErrorCode::Corrupt, "status document has a <value> without a key");
            status.values[key] = node.text().get();
        } else if (node.type() == pugi::node_element) {
            if (!status.live_xml.empty())
                return fail(ErrorCode::Corrupt, "status document has more than one definition");
            std::ostringstream out;
            node.print(out, "  ");
            status.live_xml = out.str();
        }
    }
    return status;
}

// ---------------------------------------------------------------------------
// Persistence

Persistence::Persistence(fs::path confdir, fs::path rundir) : confdir_(std::move(confdir)), rundir_(std::move(rundir)) {}

fs::path Persistence::config_path(std::string_view name) const { return confdir_ / (std::string(name) + ".xml"); }

fs::path Persistence::autostart_path(std::string_view name) const {
    return confdir_ / "autostart" / (std::string(name) + ".xml");
}

fs::path Persistence::status_path(std::string_view name) const { return rundir_ / (std::string(name) + ".xml"); }

Status Persistence::check_name(std::string_view name) const {
    if (!files::is_safe_name(name)) return fail(ErrorCode::InvalidArg, "invalid domain name '{}' for a file name", name);
    return {};
}

Status Persistence::prepare() const {
    VIREO_TRY(files::make_dirs(confdir_ / "autostart", 0755));
    VIREO_TRY(files::make_dirs(rundir_, 0700));
    return {};
}

Status Persistence::save_config(std::string_view name, std::string_view xml) const {
    VIREO_TRY(check_name(name));
    VIREO_TRY(files::make_dirs(confdir_, 0755));
    if (auto st = files::write_atomic(config_path(name), xml, 0600); !st)
        return std::unexpected(st.error().context(fmt::format("cannot save the definition of domain '{}'", name)));
    return {};
}

Status Persistence::remove_config(std::string_view name) const {
    VIREO_TRY(check_name(name));
    VIREO_TRY(set_autostart(name, false));
    if (auto st = files::remove_durable(config_path(name)); !st)
        return std::unexpected(st.error().context(fmt::format("cannot remove the definition of domain '{}'", name)));
    return {};
}

LoadReport Persistence::load_configs() const {
    LoadReport report;
    std::error_code ec;
    fs::directory_iterator it(confdir_, ec);
    if (ec) {
        if (ec != std::errc::no_such_file_or_directory) {
            report.skipped.push_back(fmt::format("{}: cannot list directory: {}", confdir_.string(), ec.message()));
            spdlog::warn("{}", report.skipped.back());
        }
        return report;
    }
    auto skip = [&](const fs::path& p, std::string why) {
        report.skipped.push_back(fmt::format("{}: {}", p.string(), why));
        spdlog::warn("skipping domain definition {}", report.skipped.back());
    };
    // increment(ec) rather than a range-for: a directory that changes or
    // becomes unreadable mid-way must not throw.
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const fs::path p = it->path();
        auto name = name_of_file(p);
        std::error_code type_ec;
        if (!name || !it->is_regular_file(type_ec)) continue;
        auto text = files::read(p);
        if (!text) {
            skip(p, text.error().full_message());
            continue;
        }
        auto def = make_definition(*text);
        if (!def) {
            skip(p, def.error().full_message());
            continue;
        }
        if (def->def->name != *name) {
            skip(p, fmt::format("it defines domain '{}', not '{}'", def->def->name, *name));
            continue;
        }
        // Kept lazily from here on, as the registry keeps it: the model of
        // this file is freed before the next file is parsed (no parsed
        // model per domain left behind in the heap by a daemon start).
        def->def = DefinitionModel::lazy(def->xml, def->def.facts());
        report.definitions.push_back(LoadedDefinition{*name, std::move(*def), autostart(*name)});
    }
    if (ec) skip(confdir_, fmt::format("cannot list directory: {}", ec.message()));
    std::ranges::sort(report.definitions, {}, &LoadedDefinition::name);
    return report;
}

LoadReport Persistence::load_into(DomainRegistry& registry) const {
    LoadReport report = load_configs();
    std::vector<LoadedDefinition> loaded;
    for (auto& d : report.definitions) {
        auto added = registry.define(d.definition);  // a copy: shares the XML and the model
        if (!added) {
            report.skipped.push_back(fmt::format("{}: {}", config_path(d.name).string(), added.error().message));
            spdlog::warn("skipping domain definition {}", report.skipped.back());
            continue;
        }
        const bool autostart_flag = d.autostart;
        added->object->with([&](DomainFields& f) { f.autostart = autostart_flag; });
        loaded.push_back(std::move(d));
    }
    report.definitions = std::move(loaded);
    return report;
}

Status Persistence::set_autostart(std::string_view name, bool enabled) const {
    VIREO_TRY(check_name(name));
    const fs::path link = autostart_path(name);
    const fs::path dir = link.parent_path();
    if (enabled) {
        VIREO_TRY(files::make_dirs(dir, 0755));
        // Build the link under a temporary name, then rename it into place,
        // so the link is either absent or complete.
        const fs::path tmp = dir / fmt::format(".{}.tmp{}", link.filename().string(), ::getpid());
        ::unlink(tmp.c_str());
        const std::string target = "../" + std::string(name) + ".xml";
        if (::symlink(target.c_str(), tmp.c_str()) != 0)
            return fail_errno(fmt::format("cannot create autostart link '{}'", tmp.string()));
        if (::rename(tmp.c_str(), link.c_str()) != 0) {
            auto err = fail_errno(fmt::format("cannot create autostart link '{}'", link.string()));
            ::unlink(tmp.c_str());
            return err;
        }
        return files::sync_dir(dir);
    }
    struct stat st{};
    if (::lstat(link.c_str(), &st) != 0) {
        if (errno == ENOENT) return {};
        return fail_errno(fmt::format("cannot inspect autostart link '{}'", link.string()));
    }
    return files::remove_durable(link);
}

bool Persistence::autostart(std::string_view name) const {
    struct stat st{};
    return files::is_safe_name(name) && ::lstat(autostart_path(name).c_str(), &st) == 0;
}

Status Persistence::write_status(std::string_view name, const RuntimeStatus& status) const {
    VIREO_TRY(check_name(name));
    auto text = format_runtime_status(status);
    if (!text) return std::unexpected(text.error().context(fmt::format("cannot write status of domain '{}'", name)));
    VIREO_TRY(files::make_dirs(rundir_, 0700));
    if (auto st = files::write_atomic(status_path(name), *text, 0600); !st)
        return std::unexpected(st.error().context(fmt::format("cannot write status of domain '{}'", name)));
    return {};
}

Result<RuntimeStatus> Persistence::read_status(std::string_view name) const {
    VIREO_TRY(check_name(name));
    const fs::path p = status_path(name);
    auto text = files::read(p);
    if (!text) return std::unexpected(text.error());
    auto status = parse_runtime_status(*text);
    if (!status) return std::unexpected(status.error().context(fmt::format("cannot read '{}'", p.string())));
    return status;
}

Status Persistence::remove_status(std::string_view name) const {
    VIREO_TRY(check_name(name));
    return files::remove_durable(status_path(name));
}

std::vector<std::string> Persistence::status_names() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(rundir_, ec), end; !ec && it != end; it.increment(ec)) {
        if (auto name = name_of_file(it->path()); name && it->is_regular_file(ec)) names.push_back(*name);
    }
    std::ranges::sort(names);
    return names;
}

}  // namespace vireo::driver
