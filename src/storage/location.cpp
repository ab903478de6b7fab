#include "storage/location.hpp"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vireo::storage {

namespace {

using Flat = std::map<std::string, std::string>;

// QEMU's qdict_flatten: nested objects become dotted keys; scalars become
// strings ("on"/"off" for booleans).
Status flatten(const nlohmann::json& j, const std::string& prefix, Flat& out) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
        const auto& v = it.value();
        if (v.is_object()) VIREO_TRY(flatten(v, key, out));
        else if (v.is_string()) out[key] = v.get<std::string>();
        else if (v.is_boolean()) out[key] = v.get<bool>() ? "on" : "off";
        else if (v.is_number_integer()) out[key] = std::to_string(v.get<int64_t>());
        else if (v.is_number_unsigned()) out[key] = std::to_string(v.get<uint64_t>());
        else if (v.is_array()) return fail(ErrorCode::InvalidArg, "Invalid option '{}': lists are not supported", key);
        else if (!v.is_null()) out[key] = v.dump();
    }
    return {};
}

// Take a key out of the map (empty: absent).
std::optional<std::string> take(Flat& m, const std::string& key) {
    auto it = m.find(key);
    if (it == m.end()) return std::nullopt;
    std::string v = it->second;
    m.erase(it);
    return v;
}

// The options of an nbd node under `prefix` ("" or "file.").
Result<NbdAddress> nbd_from(Flat& m, const std::string& p) {
    if (auto f = take(m, p + "filename")) return parse_nbd_uri(*f);
    NbdAddress a;
    auto type = take(m, p + "server.type");
    auto path = take(m, p + "server.path");
    auto host = take(m, p + "server.host");
    auto port = take(m, p + "server.port");
    // The older flat options.
    if (!path) path = take(m, p + "path");
    if (!host) host = take(m, p + "host");
    if (!port) port = take(m, p + "port");
    if (auto e = take(m, p + "export")) a.export_name = *e;
    if (!type) type = path ? "unix" : "inet";
    if (*type == "unix") {
        if (!path) return fail(ErrorCode::InvalidArg, "Parameter 'path' is missing");
        a.unix_socket = true;
        a.path = *path;
    } else if (*type == "inet") {
        if (!host) return fail(ErrorCode::InvalidArg, "Parameter 'host' is missing");
        a.host = *host;
        if (port) a.port = *port;
    } else {
        return fail(ErrorCode::InvalidArg, "Parameter 'type' does not accept value '{}'", *type);
    }
    return a;
}

// The protocol layer of a location under `p`: a local file or an NBD export.
Status protocol_from(Flat& m, const std::string& p, const std::string& driver, ImageLocation& loc) {
    if (driver == "file" || driver == "host_device") {
        auto f = take(m, p + "filename");
        if (!f) return fail(ErrorCode::InvalidArg, "Parameter 'filename' is missing");
        loc.path = *f;
        return {};
    }
    if (driver == "nbd") {
        auto a = nbd_from(m, p);
        if (!a) return std::unexpected(a.error());
        loc.nbd = *a;
        return {};
    }
    if (is_qemu_driver_name(driver)) return fail(ErrorCode::Unsupported, "Unknown driver '{}'", driver);
    return fail(ErrorCode::InvalidArg, "Unknown driver '{}'", driver);
}

// A filename given to a format driver ("filename" or "file.filename"
// without a driver): a path, or a protocol name it is parsed as.
Status location_from_filename(const std::string& f, ImageLocation& loc) {
    if (is_nbd_name(f)) {
        auto a = parse_nbd_uri(f);
        if (!a) return std::unexpected(a.error());
        loc.nbd = *a;
    } else {
        loc.path = f.starts_with("file:") ? f.substr(5) : f;
    }
    return {};
}

Result<ImageLocation> interpret(Flat m) {
    ImageLocation loc;
    const std::string driver = take(m, "driver").value_or("");
    if (auto ro = take(m, "read-only")) loc.read_only = *ro == "on" || *ro == "true";
    (void)take(m, "node-name");  // a name for the node: nothing to do here
    if (driver == "file" || driver == "host_device" || driver == "nbd") {
        VIREO_TRY(protocol_from(m, "", driver, loc));
        loc.format = ImageFormat::Raw;
        loc.label = driver;
    } else {
        if (!driver.empty()) {
            auto f = parse_driver(driver);
            if (!f) return std::unexpected(f.error());
            loc.format = *f;
        }
        if (auto f = m.find("file"); f != m.end())
            return fail(ErrorCode::NotFound, "Cannot find device='{}' nor node-name='{}'", f->second, f->second);
        const std::string file_driver = take(m, "file.driver").value_or("");
        if (!file_driver.empty()) {
            VIREO_TRY(protocol_from(m, "file.", file_driver, loc));
        } else if (auto fn = take(m, "file.filename")) {
            VIREO_TRY(location_from_filename(*fn, loc));
        } else if (auto fn2 = take(m, "filename")) {
            VIREO_TRY(location_from_filename(*fn2, loc));
        } else {
            return fail(ErrorCode::InvalidArg, "A block device must be specified for \"file\"");
        }
    }
    if (!m.empty()) {
        const std::string& key = m.begin()->first;
        if (loc.label.empty())
            return fail(ErrorCode::InvalidArg, "Block format '{}' does not support the option '{}'",
                        loc.format ? format_name(*loc.format) : std::string_view("raw"), key);
        return fail(ErrorCode::InvalidArg, "Block protocol '{}' does not support the option '{}'", loc.label, key);
    }
    return loc;
}

}  // namespace

bool is_location_name(std::string_view name) {
    return name.starts_with("json:") || name.starts_with("file:") || is_nbd_name(name);
}

Result<ImageLocation> parse_location(std::string_view name) {
    if (name.starts_with("json:")) {
        auto j = nlohmann::json::parse(name.substr(5), nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return fail(ErrorCode::InvalidArg, "Could not parse the JSON options");
        Flat m;
        VIREO_TRY(flatten(j, "", m));
        return interpret(std::move(m));
    }
    ImageLocation loc;
    VIREO_TRY(location_from_filename(std::string(name), loc));
    return loc;
}

Result<std::string> image_opts_to_json(std::string_view opts) {
    // QemuOpts syntax: key=value pairs, ",," a literal comma; a first item
    // without '=' is the implied "file" option.
    nlohmann::json j = nlohmann::json::object();
    std::string cur;
    std::vector<std::string> parts;
    for (size_t i = 0; i < opts.size(); ++i) {
        if (opts[i] == ',' && i + 1 < opts.size() && opts[i + 1] == ',') {
            cur += ',';
            ++i;
        } else if (opts[i] == ',') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += opts[i];
        }
    }
    parts.push_back(cur);
    for (size_t k = 0; k < parts.size(); ++k) {
        const auto& p = parts[k];
        if (p.empty()) continue;
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (k == 0) j["file"] = p;
            else j[p] = "on";
        } else {
            j[p.substr(0, eq)] = p.substr(eq + 1);
        }
    }
    return "json:" + j.dump();
}

}  // namespace vireo::storage
