#include "driver/persistence.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <pugixml.hpp>
#include <spdlog/spdlog.h>

namespace vireo::driver {

namespace fs = std::filesystem;

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

Persistence::Persistence(fs::path confdir, fs::path rundir)
    : store_(ObjectKind::Domain, std::move(confdir), std::move(rundir)) {}

Status Persistence::prepare() const { return store_.prepare(); }

Status Persistence::save_config(std::string_view name, std::string_view xml) const {
    return store_.save_config(name, xml);
}

Status Persistence::remove_config(std::string_view name) const { return store_.remove_config(name); }

LoadReport Persistence::load_configs() const {
    LoadReport report;
    report.skipped = store_.load_configs([&](ObjectStore::Document& doc) -> Status {
        auto def = make_definition(doc.text);
        if (!def) return std::unexpected(def.error());
        if (def->def->name != doc.name)
            return fail(ErrorCode::XmlError, "it defines domain '{}', not '{}'", def->def->name, doc.name);
        // Kept lazily from here on, as the registry keeps it: the model of
        // this file is freed before the next file is parsed (no parsed
        // model per domain left behind in the heap by a daemon start).
        def->def = DefinitionModel::lazy(def->xml, def->def.facts());
        const bool autostart_flag = store_.autostart(doc.name);
        report.definitions.push_back(LoadedDefinition{std::move(doc.name), std::move(*def), autostart_flag});
        return {};
    });
    // The store visits in name order already; kept sorted whatever it does.
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
    return store_.set_autostart(name, enabled);
}

bool Persistence::autostart(std::string_view name) const { return store_.autostart(name); }

Status Persistence::write_status(std::string_view name, const RuntimeStatus& status) const {
    VIREO_TRY(store_.check_name(name));
    auto text = format_runtime_status(status);
    if (!text) return std::unexpected(text.error().context(fmt::format("cannot write status of domain '{}'", name)));
    return store_.save_status(name, *text);
}

Result<RuntimeStatus> Persistence::read_status(std::string_view name) const {
    auto text = store_.read_status(name);
    if (!text) return std::unexpected(text.error());
    auto status = parse_runtime_status(*text);
    if (!status)
        return std::unexpected(status.error().context(fmt::format("cannot read '{}'", status_path(name).string())));
    return status;
}

Status Persistence::remove_status(std::string_view name) const { return store_.remove_status(name); }

std::vector<std::string> Persistence::status_names() const { return store_.status_names(); }

}  // namespace vireo::driver
