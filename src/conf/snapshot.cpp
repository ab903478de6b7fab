// <domainsnapshot> parse/format and the snapshot tree (see snapshot.hpp).
#include "conf/snapshot.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "conf/xml_reader.hpp"
#include "conf/xml_writer.hpp"
#include "util/assign.hpp"

namespace vireo::conf {

using xml::XmlElement;

namespace {

// Text of an optional single child; `present` says whether it was there.
Result<std::optional<std::string>> text_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return std::optional<std::string>();
    std::string t = c->text();
    if (c->has_element_children()) return std::unexpected(c->xml_error("", "expected text only"));
    VIREO_TRY(c->finish());
    return std::optional<std::string>(std::move(t));
}

bool is_abs_path(std::string_view p) { return !p.empty() && p.front() == '/'; }

Status parse_memory(XmlElement& e, SnapshotDef& def) {
    VIREO_ASSIGN(def.memory, e.attr_enum("snapshot", {"no", "internal", "external"}, "memory snapshot mode"));
    def.memory_file = e.attr_or_empty("file");
    if (!def.memory_file.empty()) {
        if (def.memory.empty()) def.memory = "external";
        if (def.memory != "external")
            return std::unexpected(e.xml_error("@file", fmt::format("a memory file is only for snapshot='external', not '{}'", def.memory)));
        if (!is_abs_path(def.memory_file)) return std::unexpected(e.xml_error("@file", fmt::format("memory file '{}' must be an absolute path", def.memory_file)));
    } else if (def.memory == "external") {
        return std::unexpected(e.xml_error("@file", "an external memory snapshot needs a file"));
    }
    if (def.memory.empty()) return std::unexpected(e.xml_error("@snapshot", "missing memory snapshot mode"));
    return e.finish();
}

Status parse_disk(XmlElement& e, SnapshotDisk& d) {
    d.name = e.attr_or_empty("name");
    if (d.name.empty()) return std::unexpected(e.xml_error("@name", "missing disk name"));
    VIREO_ASSIGN(d.snapshot, e.attr_enum("snapshot", {"no", "internal", "external", "manual"}, "disk snapshot mode"));
    VIREO_ASSIGN(d.type, e.attr_enum("type", {"file", "block"}, "disk snapshot type", {"network"}));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("source"));
    if (c) {
        const std::string attr = d.type == "block" ? "dev" : "file";
        d.source = c->attr_or_empty(attr);
        if (!d.source.empty() && !is_abs_path(d.source))
            return std::unexpected(c->xml_error("@" + attr, fmt::format("snapshot source '{}' must be an absolute path", d.source)));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("driver"));
    if (c) {
        VIREO_ASSIGN(d.driver_type, c->attr_enum("type", {"qcow2", "raw", "qed", "vmdk", "vpc", "vdi", "vhdx", "luks"}, "snapshot driver type"));
        VIREO_TRY(c->finish());
    }
    // An external target (source, driver or type) makes the mode external,
    // as libvirt infers it; any other mode with one is a contradiction.
    const bool has_target = !d.source.empty() || !d.driver_type.empty() || !d.type.empty();
    if (has_target) {
        if (d.snapshot.empty()) d.snapshot = "external";
        if (d.snapshot != "external")
            return std::unexpected(e.xml_error("@snapshot", fmt::format("disk '{}': a source or driver is only for snapshot='external', not '{}'", d.name, d.snapshot)));
    }
    return e.finish();
}

Status parse_root(XmlElement& root, SnapshotDef& def, SnapshotParseFlags flags) {
    std::optional<std::string> t;
    VIREO_ASSIGN(t, text_child(root, "name"));
    if (t) {
        def.name = *t;
        VIREO_TRY(validate_snapshot_name(def.name));
    }
    VIREO_ASSIGN(t, text_child(root, "description"));
    if (t) def.description = *t;

    // What the snapshot records rather than what it is asked to be.
    auto only_redefine = [&](std::string_view element) -> Status {
        std::optional<XmlElement> c;
        VIREO_ASSIGN(c, root.child(element));
        if (c && !flags.redefine)
            return std::unexpected(c->xml_error("", fmt::format("<{}> is recorded by the snapshot and allowed only with --redefine", element)));
        return {};
    };
    for (std::string_view e : {"state", "creationTime", "parent", "domain"}) VIREO_TRY(only_redefine(e));

    if (flags.redefine) {
        VIREO_ASSIGN(t, text_child(root, "state"));
        if (!t) return std::unexpected(root.xml_error("", "missing <state> of a redefined snapshot"));
        static constexpr std::string_view kStates[] = {"running", "blocked", "paused", "shutdown", "shutoff", "crashed", "disk-snapshot"};
        if (std::find(std::begin(kStates), std::end(kStates), *t) == std::end(kStates))
            return std::unexpected(root.xml_error("", fmt::format("invalid snapshot state '{}'", *t)));
        def.state = *t;
        VIREO_ASSIGN(t, text_child(root, "creationTime"));
        if (t) {
            std::int64_t v = 0;
            auto [p, ec] = std::from_chars(t->data(), t->data() + t->size(), v);
            if (ec != std::errc() || p != t->data() + t->size() || v < 0)
                return std::unexpected(root.xml_error("", fmt::format("invalid creationTime '{}': expected seconds since the epoch", *t)));
            def.creation_time = v;
        }
        std::optional<XmlElement> c;
        VIREO_ASSIGN(c, root.child("parent"));
        if (c) {
            VIREO_ASSIGN(t, text_child(*c, "name"));
            if (!t || t->empty()) return std::unexpected(c->xml_error("", "missing parent <name>"));
            def.parent = *t;
            VIREO_TRY(c->finish());
        }
        VIREO_ASSIGN(c, root.child("domain"));
        if (c) {
            c->consume_all();
            pugi::xml_document copy;
            copy.append_copy(c->node());
            struct Sink : pugi::xml_writer {
                std::string s;
                void write(const void* data, std::size_t size) override { s.append(static_cast<const char*>(data), size); }
            } sink;
            copy.save(sink, "  ", pugi::format_default | pugi::format_no_declaration);
            auto dom = parse_domain_xml(sink.s);
            if (!dom) return std::unexpected(Error{dom.error().code, fmt::format("{}: {}", c->path(), dom.error().message)});
            def.domain = std::move(*dom);
        }
    }

    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, root.child("memory"));
    if (c) VIREO_TRY(parse_memory(*c, def));
    VIREO_ASSIGN(c, root.child("disks"));
    if (c) {
        def.disks_present = true;
        for (auto& d : c->children("disk")) {
            SnapshotDisk disk;
            VIREO_TRY(parse_disk(d, disk));
            for (const auto& other : def.disks)
                if (other.name == disk.name) return std::unexpected(d.xml_error("@name", fmt::format("disk '{}' is named twice", disk.name)));
            def.disks.push_back(std::move(disk));
        }
        VIREO_TRY(c->finish());
    }
    return root.finish();
}

}  // namespace

bool SnapshotDef::is_external() const {
    if (memory == "external") return true;
    return std::any_of(disks.begin(), disks.end(), [](const SnapshotDisk& d) { return d.snapshot == "external"; });
}

bool SnapshotDef::is_internal() const {
    if (memory == "internal") return true;
    return std::any_of(disks.begin(), disks.end(), [](const SnapshotDisk& d) { return d.snapshot == "internal"; });
}

std::string default_external_snapshot_path(std::string_view disk_path, std::string_view snapshot_name) {
    const std::size_t slash = disk_path.rfind('/');
    const std::size_t base = slash == std::string_view::npos ? 0 : slash + 1;
    const std::size_t dot = disk_path.rfind('.');
    // A dot that starts the file name (".disk") is not a suffix.
    const std::string_view stem = dot != std::string_view::npos && dot > base ? disk_path.substr(0, dot) : disk_path;
    return fmt::format("{}.{}", stem, snapshot_name);
}

Status validate_snapshot_name(std::string_view name) {
    if (name.empty()) return fail(ErrorCode::XmlError, "snapshot name must not be empty");
    if (name == "." || name == "..") return fail(ErrorCode::XmlError, "invalid snapshot name '{}'", name);
    for (char ch : name) {
        if (ch == '/') return fail(ErrorCode::XmlError, "invalid snapshot name '{}': it must not contain '/'", name);
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
            return fail(ErrorCode::XmlError, "invalid snapshot name: it must not contain control characters");
    }
    if (name.front() == '.') return fail(ErrorCode::XmlError, "invalid snapshot name '{}': it must not start with '.'", name);
    return {};
}

Result<SnapshotDef> parse_snapshot_xml(std::string_view text, SnapshotParseFlags flags) {
    xml::Document d;
    auto el = xml::open_document(d, text, "domainsnapshot");
    if (!el) return std::unexpected(el.error());
    SnapshotDef def;
    VIREO_TRY(parse_root(*el, def, flags));
    return def;
}

std::string format_snapshot_xml(const SnapshotDef& def) {
    xml::Node root("domainsnapshot");
    root.add_text("name", def.name);
    root.add_text("description", def.description);
    root.add_text("state", def.state);
    if (!def.parent.empty()) root.add("parent").add_text("name", def.parent);
    if (def.creation_time) root.add_text("creationTime", std::to_string(*def.creation_time));
    if (!def.memory.empty()) root.add("memory").attr("snapshot", def.memory).attr("file", def.memory_file);
    if (def.disks_present || !def.disks.empty()) {
        xml::Node& disks = root.add("disks");
        disks.keep_open = true;
        for (const auto& d : def.disks) {
            xml::Node& n = disks.add("disk");
            n.attr("name", d.name).attr("snapshot", d.snapshot).attr("type", d.type);
            if (!d.driver_type.empty()) n.add("driver").attr("type", d.driver_type);
            if (!d.source.empty()) n.add("source").attr(d.type == "block" ? "dev" : "file", d.source);
        }
    }
    std::string out = root.str();
    if (def.domain) {
        // The domain document, indented one level, before </domainsnapshot>.
        const std::string dom = format_domain_xml(*def.domain);
        std::string indented;
        std::size_t start = 0;
        while (start < dom.size()) {
            std::size_t nl = dom.find('\n', start);
            if (nl == std::string::npos) nl = dom.size();
            if (nl > start) indented += "  " + dom.substr(start, nl - start);
            indented += '\n';
            start = nl + 1;
        }
        if (out.ends_with("/>\n")) {  // no other child: open the root
            out.resize(out.size() - 3);
            out += ">\n" + indented + "</domainsnapshot>\n";
        } else {
            out.insert(out.size() - std::string_view("</domainsnapshot>\n").size(), indented);
        }
    }
    return out;
}

SnapshotTree::SnapshotTree(const std::map<std::string, std::string>& parents) {
    for (auto& [name, parent] : parents) parents_.emplace(name, parent);
    for (auto& [name, parent] : parents_)
        if (!parent.empty() && !parents_.contains(parent)) parent.clear();
}

bool SnapshotTree::contains(std::string_view name) const { return parents_.find(name) != parents_.end(); }

std::string SnapshotTree::parent(std::string_view name) const {
    auto it = parents_.find(name);
    return it == parents_.end() ? std::string() : it->second;
}

std::vector<std::string> SnapshotTree::names() const {
    std::vector<std::string> out;
    for (const auto& [name, parent] : parents_) out.push_back(name);
    return out;
}

std::vector<std::string> SnapshotTree::roots() const { return children(""); }

std::vector<std::string> SnapshotTree::children(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [child, parent] : parents_)
        if (parent == name) out.push_back(child);
    return out;
}

std::vector<std::string> SnapshotTree::descendants(std::string_view name) const {
    std::vector<std::string> out = children(name);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto more = children(out[i]);
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

std::vector<std::string> SnapshotTree::leaves() const {
    std::vector<std::string> out;
    for (const auto& [name, parent] : parents_)
        if (children(name).empty()) out.push_back(name);
    return out;
}

// virsh's tree drawing: a node, "  |" above its first child, "+- " before
// each child, '|' continuing beside all but the last child, and a blank
// (indented) line after the last leaf of a branch.
std::string SnapshotTree::render() const {
    std::string out;
    struct Walk {
        const SnapshotTree& t;
        std::string& out;
        void node(const std::string& name, bool root, bool last, std::string& indent) {
            out += indent + (root ? "" : "+- ") + name + "\n";
            if (!root) indent += last ? "  " : "| ";
            auto kids = t.children(name);
            if (!kids.empty()) out += indent + "  |\n";
            indent += "  ";
            for (std::size_t i = 0; i < kids.size(); ++i) node(kids[i], false, i + 1 == kids.size(), indent);
            indent.resize(indent.size() - 2);
            if (kids.empty() && last) out += indent + "\n";
            if (!root) indent.resize(indent.size() - 2);
        }
    } walk{*this, out};
    for (const auto& r : roots()) {
        std::string indent;
        walk.node(r, true, true, indent);
    }
    return out;
}

}  // namespace vireo::conf
