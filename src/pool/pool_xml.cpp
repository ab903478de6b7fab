// parse_pool_xml / format_pool_xml (see pool_xml.hpp).
#include "pool/pool_xml.hpp"

#include <fmt/format.h>

#include "pool/xml_common.hpp"
#include "util/files.hpp"

namespace vireo::pool {

using xmlc::XmlElement;

namespace {

// fs and disk pools name their device; dir has an empty <source/>.
Status parse_source(XmlElement& src, PoolDef& def) {
    for (auto& dev : src.children("device")) {
        auto path = dev.attr("path");
        if (!path || path->empty()) return std::unexpected(dev.xml_error("@path", "missing device path"));
        std::string part_separator;
        VIREO_ASSIGN(part_separator, dev.attr_enum("part_separator", {"yes", "no"}, "part_separator value"));
        // Live free ranges of a dumped disk pool are ignored, as libvirt does.
        for (auto& extent : dev.children("freeExtent")) extent.consume_all();
        VIREO_TRY(dev.finish());
        def.devices.push_back(*path);
        def.device_part_separators.push_back(std::move(part_separator));
    }
    std::optional<XmlElement> fmt_el;
    VIREO_ASSIGN(fmt_el, src.child("format"));
    if (fmt_el) {
        if (def.type == "fs") {
            VIREO_ASSIGN(def.source_format,
                     fmt_el->attr_enum("type", {"auto", "ext2", "ext3", "ext4", "xfs", "vfat"}, "filesystem format",
                                       {"ufs", "iso9660", "udf", "gfs", "gfs2", "hfs+", "ocfs2", "vmfs"}));
        } else if (def.type == "disk") {
            VIREO_ASSIGN(def.source_format, fmt_el->attr_enum("type", {"unknown", "dos", "gpt"}, "partition table format",
                                                          {"dvh", "mac", "bsd", "pc98", "sun", "lvm2"}));
        } else {
            def.source_format = fmt_el->attr("type").value_or("");
        }
        VIREO_TRY(fmt_el->finish());
    }
    std::optional<XmlElement> dir;
    VIREO_ASSIGN(dir, src.child("dir"));
    if (dir) {
        def.source_dir = dir->attr_or_empty("path");
        VIREO_TRY(dir->finish());
    }
    std::optional<XmlElement> host;
    VIREO_ASSIGN(host, src.child("host"));
    if (host) {
        def.source_host = host->attr_or_empty("name");
        host->attr("port");
        VIREO_TRY(host->finish());
    }
    VIREO_ASSIGN(def.source_name, xmlc::parse_text_child(src, "name"));
    return src.finish();
}

Status parse_target(XmlElement& t, PoolDef& def) {
    std::optional<XmlElement> path;
    VIREO_ASSIGN(path, t.child("path"));
    if (!path) return std::unexpected(t.xml_error("", "missing <path>: the directory that holds the pool's volumes"));
    def.target_path = path->text();
    VIREO_TRY(path->finish());
    if (def.target_path.empty() || def.target_path[0] != '/')
        return std::unexpected(path->xml_error("", fmt::format("target path '{}' must be an absolute path", def.target_path)));
    // libvirt stores the path without a trailing slash
    while (def.target_path.size() > 1 && def.target_path.back() == '/') def.target_path.pop_back();
    std::optional<XmlElement> perms;
    VIREO_ASSIGN(perms, t.child("permissions"));
    if (perms) VIREO_ASSIGN(def.target_perms, xmlc::parse_permissions(*perms));
    return t.finish();
}

// What each type needs beyond the schema.
Status check_type_requirements(XmlElement& root, const PoolDef& def) {
    if (def.type == "dir") {
        if (!def.devices.empty()) return std::unexpected(root.xml_error("source/device", "a dir pool has no source device"));
        return {};
    }
    if (def.type == "fs" || def.type == "disk") {
        if (def.devices.size() != 1)
            return std::unexpected(root.xml_error(
                "source/device", fmt::format("a {} pool needs exactly one <device path='...'/> in <source> (found {})",
                                             def.type, def.devices.size())));
        if (def.devices[0].empty() || def.devices[0][0] != '/')
            return std::unexpected(root.xml_error("source/device/@path",
                                                  fmt::format("device path '{}' must be absolute", def.devices[0])));
    }
    return {};
}

}  // namespace

Result<PoolDef> parse_pool_xml(std::string_view text) {
    xmlc::Document d;
    auto opened = xmlc::open_document(d, text, "pool");
    if (!opened) return std::unexpected(opened.error());
    XmlElement& root = *opened;
    PoolDef def;
    VIREO_ASSIGN(def.type, root.attr_enum("type", {"dir", "fs", "disk", "logical", "netfs", "iscsi"}, "pool type",
                                      {"iscsi-direct", "scsi", "mpath", "rbd", "sheepdog", "gluster", "zfs", "vstorage"}));
    if (def.type.empty()) return std::unexpected(root.xml_error("@type", "missing pool type (dir, fs or disk)"));

    std::optional<XmlElement> name;
    VIREO_ASSIGN(name, root.child("name"));
    if (!name) return std::unexpected(root.xml_error("", "missing <name>"));
    def.name = name->text();
    VIREO_TRY(name->finish());
    if (!files::is_safe_name(def.name))
        return std::unexpected(name->xml_error("", fmt::format("invalid pool name '{}': it must be a single path component "
                                                               "(no '/', not '.' or '..', not empty)", def.name)));

    std::optional<XmlElement> uuid;
    VIREO_ASSIGN(uuid, root.child("uuid"));
    if (uuid) {
        std::string t = uuid->text();
        VIREO_TRY(uuid->finish());
        auto u = Uuid::parse(t);
        if (!u) return std::unexpected(uuid->xml_error("", fmt::format("malformed uuid '{}'", t)));
        def.uuid = *u;
    } else {
        def.uuid = Uuid::generate();
    }
    // Live figures from a dumped document are ignored, as libvirt does.
    for (auto n : {"capacity", "allocation", "available"}) {
        std::optional<std::uint64_t> ignored;
        VIREO_ASSIGN(ignored, xmlc::parse_scaled_child(root, n));
    }
    std::optional<XmlElement> features;
    VIREO_ASSIGN(features, root.child("features"));
    if (features) {
        std::optional<XmlElement> cow;
        VIREO_ASSIGN(cow, features->child("cow"));
        if (cow) {
            VIREO_ASSIGN(def.features_cow, cow->attr_enum("state", {"yes", "no"}, "cow state"));
            if (def.features_cow.empty()) return std::unexpected(cow->xml_error("@state", "missing cow state (yes or no)"));
            VIREO_TRY(cow->finish());
        }
        VIREO_TRY(features->finish());
    }

    std::optional<XmlElement> source;
    VIREO_ASSIGN(source, root.child("source"));
    if (source) VIREO_TRY(parse_source(*source, def));

    std::optional<XmlElement> target;
    VIREO_ASSIGN(target, root.child("target"));
    if (!target) return std::unexpected(root.xml_error("", "missing <target> with the pool's <path>"));
    VIREO_TRY(parse_target(*target, def));

    VIREO_TRY(check_type_requirements(root, def));
    VIREO_TRY(root.finish());
    return def;
}

std::string format_pool_xml(const PoolDef& def, const std::optional<PoolSizes>& sizes) {
    conf::xml::Node root("pool");
    root.attr("type", def.type);
    root.add_text("name", def.name);
    root.add_text("uuid", def.uuid.str());
    std::uint64_t cap = sizes ? sizes->capacity : 0, alloc = sizes ? sizes->allocation : 0,
                  avail = sizes ? sizes->available : 0;
    xmlc::add_bytes(root, "capacity", cap);
    xmlc::add_bytes(root, "allocation", alloc);
    xmlc::add_bytes(root, "available", avail);
    if (!def.features_cow.empty()) root.add("features").add("cow").attr("state", def.features_cow);
    auto& src = root.add("source");
    if (!def.source_host.empty()) src.add("host").attr("name", def.source_host);
    for (std::size_t i = 0; i < def.devices.size(); ++i) {
        const auto& dev = def.devices[i];
        auto& device = src.add("device");
        device.attr("path", dev);
        if (i < def.device_part_separators.size()) device.attr("part_separator", def.device_part_separators[i]);
        // Only a disk pool has extents, and it has one device.
        if (sizes && def.devices.size() == 1)
            for (const auto& extent : sizes->free_extents)
                device.add("freeExtent").attr("start", std::to_string(extent.start)).attr("end", std::to_string(extent.end));
    }
    if (!def.source_dir.empty()) src.add("dir").attr("path", def.source_dir);
    src.add_text("name", def.source_name);
    if (!def.source_format.empty()) src.add("format").attr("type", def.source_format);
    auto& target = root.add("target");
    target.add_text("path", def.target_path);
    if (auto perms = xmlc::format_permissions(def.target_perms)) target.children.push_back(std::move(*perms));
    return root.str();
}

}  // namespace vireo::pool
