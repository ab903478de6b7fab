// parse_volume_xml / format_volume_xml (see volume_xml.hpp).
#include "pool/volume_xml.hpp"

#include <fmt/format.h>

#include "pool/xml_common.hpp"
#include "util/files.hpp"

namespace vireo::pool {

using xmlc::XmlElement;

namespace {

// File formats libvirt knows that vireo's image engine does not write.

Status parse_features(XmlElement& e, VolumeDef& def) {
    std::optional<XmlElement> lazy;
    VIREO_ASSIGN(lazy, e.child("lazy_refcounts"));
    if (lazy) {
        VIREO_TRY(lazy->finish());
        def.lazy_refcounts = true;
    }
    std::optional<XmlElement> ext;
    VIREO_ASSIGN(ext, e.child("extended_l2"));
    if (ext) return std::unexpected(ext->unsupported("", "extended_l2 volumes are not supported by vireo's storage driver"));
    return e.finish();
}

Status parse_format_child(XmlElement& parent, std::string& out) {
    std::optional<XmlElement> f;
    VIREO_ASSIGN(f, parent.child("format"));
    if (!f) return {};
    VIREO_ASSIGN(out, f->attr_enum("type",
                               {"raw", "qcow2", "none", "linux", "fat16", "fat32", "linux-swap", "linux-lvm", "linux-raid", "extended"},
                               "volume format",
                               {"bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow", "qcow", "qed", "vmdk",
                                "vhdx", "luks", "dir"}));
    if (out.empty()) return std::unexpected(f->xml_error("@type", "missing format type (raw or qcow2)"));
    return f->finish();
}

Status parse_target(XmlElement& t, VolumeDef& def) {
    VIREO_ASSIGN(def.path, xmlc::parse_text_child(t, "path"));  // ignored on create, as libvirt
    VIREO_TRY(parse_format_child(t, def.format));
    std::optional<XmlElement> perms;
    VIREO_ASSIGN(perms, t.child("permissions"));
    if (perms) VIREO_ASSIGN(def.perms, xmlc::parse_permissions(*perms));
    std::optional<XmlElement> ts;
    VIREO_ASSIGN(ts, t.child("timestamps"));
    if (ts) ts->consume_all();  // output only
    std::optional<XmlElement> enc;
    VIREO_ASSIGN(enc, t.child("encryption"));
    if (enc) return std::unexpected(enc->unsupported("", "encrypted volumes are not supported by vireo"));
    VIREO_ASSIGN(def.compat, xmlc::parse_text_child(t, "compat"));
    if (!def.compat.empty() && def.compat != "0.10" && def.compat != "1.1")
        return std::unexpected(t.xml_error("compat", fmt::format("unsupported qcow2 compat '{}' (expected 0.10 or 1.1)", def.compat)));
    std::optional<XmlElement> nocow;
    VIREO_ASSIGN(nocow, t.child("nocow"));
    if (nocow) {
        VIREO_TRY(nocow->finish());
        def.nocow = true;
    }
    std::optional<XmlElement> cs;
    VIREO_ASSIGN(cs, t.child("clusterSize"));
    if (cs) {
        std::uint64_t v = 0;
        VIREO_ASSIGN(v, xmlc::parse_scaled(*cs));
        if (v < 512 || v > (2u << 20) || (v & (v - 1)) != 0)
            return std::unexpected(cs->xml_error("", fmt::format("invalid cluster size {}: expected a power of two between 512 and 2 MiB", v)));
        def.cluster_size = static_cast<std::uint32_t>(v);
    }
    std::optional<XmlElement> features;
    VIREO_ASSIGN(features, t.child("features"));
    if (features) VIREO_TRY(parse_features(*features, def));
    return t.finish();
}

Status parse_backing(XmlElement& b, VolumeDef& def) {
    VIREO_ASSIGN(def.backing_path, xmlc::parse_text_child(b, "path"));
    if (def.backing_path.empty()) return std::unexpected(b.xml_error("", "missing <path> of the backing volume"));
    VIREO_TRY(parse_format_child(b, def.backing_format));
    std::optional<XmlElement> perms;
    VIREO_ASSIGN(perms, b.child("permissions"));
    if (perms) perms->consume_all();
    std::optional<XmlElement> ts;
    VIREO_ASSIGN(ts, b.child("timestamps"));
    if (ts) ts->consume_all();
    return b.finish();
}

}  // namespace

Result<VolumeDef> parse_volume_xml(std::string_view text) {
    xmlc::Document d;
    auto opened = xmlc::open_document(d, text, "volume");
    if (!opened) return std::unexpected(opened.error());
    XmlElement& root = *opened;
    VolumeDef def;
    std::string type;
    VIREO_ASSIGN(type, root.attr_enum("type", {"file", "block"}, "volume type", {"dir", "network", "netdir", "ploop"}));
    if (type == "block") def.type = driver::VolumeType::Block;

    std::optional<XmlElement> name;
    VIREO_ASSIGN(name, root.child("name"));
    if (!name) return std::unexpected(root.xml_error("", "missing <name>"));
    def.name = name->text();
    VIREO_TRY(name->finish());
    if (!files::is_safe_name(def.name))
        return std::unexpected(name->xml_error("", fmt::format("invalid volume name '{}': it must be a single file name "
                                                               "(no '/', not '.' or '..', not empty)", def.name)));
    VIREO_ASSIGN(def.key, xmlc::parse_text_child(root, "key"));
    std::optional<XmlElement> source;
    VIREO_ASSIGN(source, root.child("source"));
    if (source) source->consume_all();  // output only (partition extents)

    VIREO_ASSIGN(def.capacity, xmlc::parse_scaled_child(root, "capacity"));
    VIREO_ASSIGN(def.allocation, xmlc::parse_scaled_child(root, "allocation"));
    std::optional<std::uint64_t> physical;
    VIREO_ASSIGN(physical, xmlc::parse_scaled_child(root, "physical"));

    std::optional<XmlElement> target;
    VIREO_ASSIGN(target, root.child("target"));
    if (target) VIREO_TRY(parse_target(*target, def));
    std::optional<XmlElement> backing;
    VIREO_ASSIGN(backing, root.child("backingStore"));
    if (backing) VIREO_TRY(parse_backing(*backing, def));
    VIREO_TRY(root.finish());

    if (def.format == "raw" && !def.backing_path.empty())
        return std::unexpected(root.xml_error("backingStore", "a raw volume cannot have a backing store; use format qcow2"));
    if (!def.capacity && def.backing_path.empty())
        return std::unexpected(root.xml_error("", "missing <capacity>: the volume's size (e.g. <capacity unit='G'>10</capacity>)"));
    if (def.format == "raw" && (def.cluster_size || def.lazy_refcounts || !def.compat.empty()))
        return std::unexpected(root.xml_error("target", "compat, clusterSize and lazy_refcounts apply to qcow2 volumes only"));
    return def;
}

std::string format_volume_xml(const VolumeDef& def) {
    conf::xml::Node root("volume");
    root.attr("type", driver::volume_type_name(def.type));
    root.add_text("name", def.name);
    root.add_text("key", def.key);
    if (!def.source_device.empty()) {
        auto& dev = root.add("source").add("device");
        dev.attr("path", def.source_device);
        dev.add("extent").attr("start", std::to_string(def.extent_start)).attr("end", std::to_string(def.extent_end));
    }
    xmlc::add_bytes(root, "capacity", def.capacity.value_or(0));
    xmlc::add_bytes(root, "allocation", def.allocation.value_or(0));
    xmlc::add_bytes(root, "physical", def.physical);
    {
        auto& target = root.add("target");
        target.add_text("path", def.path);
        if (!def.format.empty()) target.add("format").attr("type", def.format);
        if (auto perms = xmlc::format_permissions(def.perms)) target.children.push_back(std::move(*perms));
        target.add_text("compat", def.compat);
        if (def.cluster_size) target.add("clusterSize").attr("unit", "B").set_text(std::to_string(*def.cluster_size));
        if (def.lazy_refcounts) target.add("features").add("lazy_refcounts");
    }
    if (!def.backing_path.empty()) {
        auto& b = root.add("backingStore");
        b.add_text("path", def.backing_path);
        if (!def.backing_format.empty()) b.add("format").attr("type", def.backing_format);
    }
    return root.str();
}

}  // namespace vireo::pool
