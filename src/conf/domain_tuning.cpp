// The resource parts of a domain definition: <memoryBacking>, <iothreadids>,
// <cputune>, <numatune> and <memory model='dimm'> devices -- parse, format,
// validation and the define-time defaults libvirt fills in for them (iothread
// ids, the memory total of a NUMA guest, dimm slots and aliases).
//
// Kept apart from domain_parse/format.cpp because they belong together: the
// QEMU driver turns them into memory backends, iothread objects and thread
// affinities (src/qemu/memory_backends.cpp, qemu_tuning.cpp).
#include <algorithm>
#include <bit>
#include <map>
#include <set>

#include <fmt/format.h>

#include "conf/domain.hpp"
#include "conf/domain_internal.hpp"
#include "conf/units.hpp"
#include "conf/xml_reader.hpp"
#include "conf/xml_writer.hpp"
#include "util/assign.hpp"

namespace vireo::conf {

using xml::XmlElement;

namespace {

// A host/guest node or CPU set attribute, normalised to libvirt's spelling
// ("1-2,5-7,^6" -> "1-2,5,7"); `what` names it in the error.
Result<std::string> parse_set_attr(XmlElement& e, std::string_view name, std::string_view what) {
    auto v = e.attr(name);
    if (!v) return std::string();
    auto list = parse_cpu_list(*v);
    if (!list || list->empty())
        return std::unexpected(e.xml_error(fmt::format("@{}", name), fmt::format("Invalid value of '{}': {} ({})", name, *v, what)));
    return format_cpu_list(*list);
}

Result<bool> flag_child(XmlElement& parent, std::string_view name) {
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, parent.child(name));
    if (!c) return false;
    VIREO_TRY(c->finish());
    return true;
}

// <size unit='KiB'>N</size> and friends -> KiB.
Result<std::uint64_t> memory_text_kib(XmlElement& e) {
    const std::string unit = e.attr_or_empty("unit");
    const std::string text = e.text();
    auto value = xml::parse_uint(text);
    if (!value) return std::unexpected(e.xml_error("", fmt::format("invalid memory size '{}': expected a non-negative integer", text)));
    auto kib = scale_to_kib(*value, unit, "KiB");
    if (!kib) return std::unexpected(e.xml_error("@unit", kib.error().message));
    return *kib;
}

}  // namespace

Status parse_memory_backing(XmlElement& e, MemoryBacking& mb) {
    mb.present = true;
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("hugepages"));
    if (c) {
        mb.hugepages = true;
        for (auto& p : c->children("page")) {
            HugePage page;
            auto size = p.attr("size");
            if (!size) return std::unexpected(p.xml_error("@size", "missing hugepage size"));
            auto value = xml::parse_uint(*size);
            if (!value || *value == 0) return std::unexpected(p.xml_error("@size", fmt::format("invalid hugepage size '{}'", *size)));
            auto kib = scale_to_kib(*value, p.attr_or_empty("unit"), "KiB");
            if (!kib) return std::unexpected(p.xml_error("@unit", kib.error().message));
            page.size_kib = *kib;
            VIREO_ASSIGN(page.nodeset, parse_set_attr(p, "nodeset", "hugepage nodeset"));
            VIREO_TRY(p.finish());
            mb.pages.push_back(std::move(page));
        }
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(mb.nosharepages, flag_child(e, "nosharepages"));
    VIREO_ASSIGN(mb.locked, flag_child(e, "locked"));
    VIREO_ASSIGN(mb.discard, flag_child(e, "discard"));
    VIREO_ASSIGN(c, e.child("source"));
    if (c) {
        VIREO_ASSIGN(mb.source_type, c->attr_enum("type", {"file", "anonymous", "memfd"}, "memory source"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("access"));
    if (c) {
        VIREO_ASSIGN(mb.access_mode, c->attr_enum("mode", {"shared", "private"}, "memory access mode"));
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("allocation"));
    if (c) {
        VIREO_ASSIGN(mb.allocation_mode, c->attr_enum("mode", {"immediate", "ondemand"}, "memory allocation mode"));
        VIREO_ASSIGN(mb.allocation_threads, c->attr_uint("threads"));
        VIREO_TRY(c->finish());
    }
    return e.finish();
}

Status parse_iothreadids(XmlElement& e, std::vector<unsigned>& ids) {
    for (auto& t : e.children("iothread")) {
        std::optional<unsigned> id;
        VIREO_ASSIGN(id, t.attr_uint("id"));
        if (!id) return std::unexpected(t.xml_error("@id", "Missing 'id' attribute in <iothread> element"));
        if (*id == 0) return std::unexpected(t.xml_error("@id", "invalid iothread 'id' value '0'"));
        if (std::ranges::find(ids, *id) != ids.end())
            return std::unexpected(t.xml_error("@id", fmt::format("duplicate iothread id '{}' found", *id)));
        VIREO_TRY(t.finish());
        ids.push_back(*id);
    }
    return e.finish();
}

Status parse_vcpus(XmlElement& e, unsigned max, std::vector<VcpuState>& states) {
    // A vCPU <vcpus> does not name is disabled.
    states.assign(max, VcpuState{.enabled = false, .hotpluggable = {}, .order = 0});
    std::vector<bool> seen(max, false);
    for (auto& v : e.children("vcpu")) {
        std::optional<unsigned> id;
        VIREO_ASSIGN(id, v.attr_uint("id"));
        if (!id) return std::unexpected(v.xml_error("@id", "missing vcpu id"));
        if (*id >= max)
            return std::unexpected(v.xml_error("@id", fmt::format("vcpu id must be lower than maximum vcpu count {}", max)));
        if (seen[*id]) return std::unexpected(v.xml_error("@id", fmt::format("duplicate vcpu id '{}'", *id)));
        seen[*id] = true;
        VcpuState& st = states[*id];
        std::string enabled;
        VIREO_ASSIGN(enabled, v.attr_yesno("enabled"));
        if (enabled.empty()) return std::unexpected(v.xml_error("@enabled", "missing vcpu enabled state"));
        st.enabled = enabled == "yes";
        VIREO_ASSIGN(st.hotpluggable, v.attr_yesno("hotpluggable"));
        std::optional<unsigned> order;
        VIREO_ASSIGN(order, v.attr_uint("order"));
        st.order = order.value_or(0);
        VIREO_TRY(v.finish());
    }
    return e.finish();
}

Status parse_cputune(XmlElement& e, CpuTune& ct) {
    ct.present = true;
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("shares"));
    if (c) {
        auto v = xml::parse_uint(c->text());
        if (!v) return std::unexpected(c->xml_error("", "invalid value for cputune shares"));
        ct.shares = v;
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("period"));
    if (c) {
        auto v = xml::parse_uint(c->text());
        if (!v || (*v != 0 && (*v < 1000 || *v > 1000000)))
            return std::unexpected(c->xml_error("", "Value of cputune 'period' must be in range [1000, 1000000]"));
        ct.period = v;
        VIREO_TRY(c->finish());
    }
    VIREO_ASSIGN(c, e.child("quota"));
    if (c) {
        const std::string text = c->text();
        std::int64_t q = 0;
        bool neg = text.starts_with('-');
        auto v = xml::parse_uint(neg ? std::string_view(text).substr(1) : std::string_view(text));
        if (!v) return std::unexpected(c->xml_error("", "invalid value for cputune quota"));
        q = neg ? -static_cast<std::int64_t>(*v) : static_cast<std::int64_t>(*v);
        if (q != 0 && q != -1 && (q < 1000 || q > 17592186044415LL))
            return std::unexpected(c->xml_error("", "Value of cputune 'quota' must be in range [1000, 17592186044415]"));
        ct.quota = q;
        VIREO_TRY(c->finish());
    }
    for (auto& p : e.children("vcpupin")) {
        CpuTune::Pin pin;
        std::optional<unsigned> id;
        VIREO_ASSIGN(id, p.attr_uint("vcpu"));
        if (!id) return std::unexpected(p.xml_error("@vcpu", "missing vcpu id in vcpupin"));
        pin.id = *id;
        VIREO_ASSIGN(pin.cpuset, parse_set_attr(p, "cpuset", "vcpupin cpuset"));
        if (pin.cpuset.empty()) return std::unexpected(p.xml_error("@cpuset", "missing cpuset for vcpupin"));
        if (std::ranges::any_of(ct.vcpupins, [&](const CpuTune::Pin& o) { return o.id == pin.id; }))
            return std::unexpected(p.xml_error("@vcpu", fmt::format("duplicate vcpupin for vcpu '{}'", pin.id)));
        VIREO_TRY(p.finish());
        ct.vcpupins.push_back(std::move(pin));
    }
    std::ranges::stable_sort(ct.vcpupins, {}, &CpuTune::Pin::id);
    VIREO_ASSIGN(c, e.child("emulatorpin"));
    if (c) {
        VIREO_ASSIGN(ct.emulatorpin, parse_set_attr(*c, "cpuset", "emulatorpin cpuset"));
        if (ct.emulatorpin.empty()) return std::unexpected(c->xml_error("@cpuset", "missing cpuset for emulatorpin"));
        VIREO_TRY(c->finish());
    }
    for (auto& p : e.children("iothreadpin")) {
        CpuTune::Pin pin;
        std::optional<unsigned> id;
        VIREO_ASSIGN(id, p.attr_uint("iothread"));
        if (!id) return std::unexpected(p.xml_error("@iothread", "missing iothread id in iothreadpin"));
        if (*id == 0) return std::unexpected(p.xml_error("@iothread", "invalid setting for iothread, must be a positive integer"));
        pin.id = *id;
        VIREO_ASSIGN(pin.cpuset, parse_set_attr(p, "cpuset", "iothreadpin cpuset"));
        if (pin.cpuset.empty()) return std::unexpected(p.xml_error("@cpuset", "missing cpuset for iothreadpin"));
        if (std::ranges::any_of(ct.iothreadpins, [&](const CpuTune::Pin& o) { return o.id == pin.id; }))
            return std::unexpected(p.xml_error("@iothread", fmt::format("Duplicate iothreadpin for same iothread '{}'", pin.id)));
        VIREO_TRY(p.finish());
        ct.iothreadpins.push_back(std::move(pin));
    }
    return e.finish();
}

Status parse_numatune(XmlElement& e, NumaTune& nt, std::string_view vcpu_placement) {
    nt.present = true;
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("memory"));
    if (c) {
        VIREO_ASSIGN(nt.memory_mode, c->attr_enum("mode", {"strict", "preferred", "interleave", "restrictive"}, "numatune memory mode"));
        if (nt.memory_mode.empty()) nt.memory_mode = "strict";
        VIREO_ASSIGN(nt.memory_placement, c->attr_enum("placement", {"static", "auto"}, "numatune placement"));
        VIREO_ASSIGN(nt.memory_nodeset, parse_set_attr(*c, "nodeset", "numatune nodeset"));
        if (nt.memory_placement.empty())
            nt.memory_placement = !nt.memory_nodeset.empty() ? "static" : (vcpu_placement == "auto" ? "auto" : "static");
        if (nt.memory_placement == "static" && nt.memory_nodeset.empty())
            return std::unexpected(c->xml_error("@nodeset", "nodeset for NUMA memory tuning must be set if 'placement' is 'static'"));
        if (nt.memory_placement == "auto")
            return std::unexpected(c->unsupported("@placement", "numatune placement='auto' needs numad, which vireo does not use; give nodeset"));
        VIREO_TRY(c->finish());
    }
    for (auto& m : e.children("memnode")) {
        NumaTune::MemNode mn;
        std::optional<unsigned> id;
        VIREO_ASSIGN(id, m.attr_uint("cellid"));
        if (!id) return std::unexpected(m.xml_error("@cellid", "Missing required cellid attribute in memnode element"));
        mn.cellid = *id;
        if (std::ranges::any_of(nt.memnodes, [&](const NumaTune::MemNode& o) { return o.cellid == mn.cellid; }))
            return std::unexpected(m.xml_error("@cellid", fmt::format("Multiple memnode elements with cellid {}", mn.cellid)));
        VIREO_ASSIGN(mn.mode, m.attr_enum("mode", {"strict", "preferred", "interleave", "restrictive"}, "memnode mode"));
        if (mn.mode.empty()) mn.mode = "strict";
        VIREO_ASSIGN(mn.nodeset, parse_set_attr(m, "nodeset", "memnode nodeset"));
        if (mn.nodeset.empty()) return std::unexpected(m.xml_error("@nodeset", "Missing required nodeset attribute in memnode element"));
        VIREO_TRY(m.finish());
        nt.memnodes.push_back(std::move(mn));
    }
    return e.finish();
}

namespace {

// virtio-mem's <block> and <requested> (both required, as libvirt), and the
// live <current>.
Status parse_virtio_mem_target(XmlElement& target, MemoryDevice& m) {
    const std::pair<const char*, std::uint64_t*> required[] = {{"block", &m.block_kib}, {"requested", &m.requested_kib}};
    for (const auto& [name, field] : required) {
        std::optional<XmlElement> c;
        VIREO_ASSIGN(c, target.child(name));
        if (!c) return std::unexpected(target.xml_error(name, fmt::format("missing <{}> for virtio-mem memory device", name)));
        VIREO_ASSIGN(*field, memory_text_kib(*c));
        VIREO_TRY(c->finish());
    }
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, target.child("current"));
    if (c) {
        std::uint64_t current = 0;
        VIREO_ASSIGN(current, memory_text_kib(*c));
        m.current_kib = current;
        VIREO_TRY(c->finish());
    }
    return {};
}

}  // namespace

Status parse_memory_device(XmlElement& e, MemoryDevice& m, const std::function<Status(XmlElement&, DeviceInfo&)>& parse_info) {
    VIREO_ASSIGN(m.model, e.attr_enum("model", {"dimm", "virtio-mem"}, "memory model", {"nvdimm", "virtio-pmem", "sgx-epc"}));
    if (m.model.empty()) return std::unexpected(e.xml_error("@model", "missing memory model"));
    VIREO_ASSIGN(m.access, e.attr_enum("access", {"shared", "private"}, "memory access"));
    VIREO_ASSIGN(m.discard, e.attr_yesno("discard"));
    std::optional<XmlElement> c;
    VIREO_ASSIGN(c, e.child("target"));
    if (!c) return std::unexpected(e.xml_error("target", "missing <target> for memory device"));
    std::optional<XmlElement> s;
    VIREO_ASSIGN(s, c->child("size"));
    if (!s) return std::unexpected(c->xml_error("size", "missing memory device target size"));
    VIREO_ASSIGN(m.target_size_kib, memory_text_kib(*s));
    if (m.target_size_kib == 0) return std::unexpected(s->xml_error("", "memory device size must be greater than zero"));
    VIREO_TRY(s->finish());
    VIREO_ASSIGN(s, c->child("node"));
    if (s) {
        auto n = xml::parse_uint(s->text());
        if (!n || *n > 0xffffu) return std::unexpected(s->xml_error("", "invalid value of memory device node"));
        m.target_node = static_cast<unsigned>(*n);
        VIREO_TRY(s->finish());
    }
    if (m.model == "virtio-mem") VIREO_TRY(parse_virtio_mem_target(*c, m));
    VIREO_TRY(c->finish());
    VIREO_TRY(parse_info(e, m.info));
    return e.finish();
}

// ---- format ---------------------------------------------------------------

void format_memory_backing(xml::Node& root, const MemoryBacking& mb) {
    if (!mb.present) return;
    xml::Node& n = root.add("memoryBacking");
    if (mb.hugepages) {
        xml::Node& h = n.add("hugepages");
        for (const auto& p : mb.pages)
            h.add("page").attr("size", std::to_string(p.size_kib)).attr("unit", "KiB").attr("nodeset", p.nodeset);
    }
    if (mb.nosharepages) n.add("nosharepages");
    if (mb.locked) n.add("locked");
    if (!mb.source_type.empty()) n.add("source").attr("type", mb.source_type);
    if (!mb.access_mode.empty()) n.add("access").attr("mode", mb.access_mode);
    if (!mb.allocation_mode.empty() || mb.allocation_threads) {
        n.add("allocation").attr("mode", mb.allocation_mode)
            .attr("threads", mb.allocation_threads ? std::to_string(*mb.allocation_threads) : std::string());
    }
    if (mb.discard) n.add("discard");
}

void format_iothreads(xml::Node& root, const DomainDef& def, bool with_ids) {
    if (def.iothreads == 0) return;
    root.add_text("iothreads", std::to_string(def.iothreads));
    if (!with_ids || def.iothread_ids.empty()) return;
    xml::Node& ids = root.add("iothreadids");
    for (unsigned id : def.iothread_ids) ids.add("iothread").attr("id", std::to_string(id));
}

void format_vcpus(xml::Node& root, const DomainDef& def) {
    if (def.vcpu_states.empty()) return;
    xml::Node& list = root.add("vcpus");
    for (std::size_t id = 0; id < def.vcpu_states.size(); ++id) {
        const VcpuState& st = def.vcpu_states[id];
        list.add("vcpu")
            .attr("id", std::to_string(id))
            .attr("enabled", st.enabled ? "yes" : "no")
            .attr("hotpluggable", st.hotpluggable)
            .attr("order", st.order ? std::to_string(st.order) : std::string());
    }
}

void format_cputune(xml::Node& root, const CpuTune& ct) {
    xml::Node n("cputune");
    if (ct.shares) n.add_text("shares", std::to_string(*ct.shares));
    if (ct.period) n.add_text("period", std::to_string(*ct.period));
    if (ct.quota) n.add_text("quota", std::to_string(*ct.quota));
    for (const auto& p : ct.vcpupins) n.add("vcpupin").attr("vcpu", std::to_string(p.id)).attr("cpuset", p.cpuset);
    if (!ct.emulatorpin.empty()) n.add("emulatorpin").attr("cpuset", ct.emulatorpin);
    for (const auto& p : ct.iothreadpins) n.add("iothreadpin").attr("iothread", std::to_string(p.id)).attr("cpuset", p.cpuset);
    root.add_if_nonempty(std::move(n));
}

void format_numatune(xml::Node& root, const NumaTune& nt) {
    xml::Node n("numatune");
    if (!nt.memory_mode.empty()) n.add("memory").attr("mode", nt.memory_mode).attr("nodeset", nt.memory_nodeset);
    for (const auto& m : nt.memnodes)
        n.add("memnode").attr("cellid", std::to_string(m.cellid)).attr("mode", m.mode).attr("nodeset", m.nodeset);
    root.add_if_nonempty(std::move(n));
}

void format_memory_device(xml::Node& devices, const MemoryDevice& m, const std::function<void(xml::Node&, const DeviceInfo&)>& format_info) {
    xml::Node& n = devices.add("memory");
    n.attr("model", m.model).attr("access", m.access).attr("discard", m.discard);
    xml::Node& t = n.add("target");
    t.add("size").attr("unit", "KiB").set_text(std::to_string(m.target_size_kib));
    if (m.target_node) t.add_text("node", std::to_string(*m.target_node));
    if (m.model == "virtio-mem") {
        t.add("block").attr("unit", "KiB").set_text(std::to_string(m.block_kib));
        t.add("requested").attr("unit", "KiB").set_text(std::to_string(m.requested_kib));
        if (m.current_kib) t.add("current").attr("unit", "KiB").set_text(std::to_string(*m.current_kib));
    }
    format_info(n, m.info);
}

// ---- validation --------------------------------------------------------------

namespace {

// The smallest virtio-mem block: the host's transparent huge page size,
// 2 MiB on x86_64 (libvirt's value when it cannot read it).
constexpr std::uint64_t kVirtioMemMinBlockKib = 2048;

// A virtio-mem's sizes as libvirt and QEMU need them: the block a power of
// two of at least a huge page, size and requested whole blocks, requested
// within size.
std::optional<ValidationProblem> find_virtio_mem_problem(const MemoryDevice& m, const std::string& path) {
    if (m.requested_kib > m.target_size_kib)
        return ValidationProblem{ErrorCode::XmlError, path + "/target/requested",
                                 fmt::format("requested size must be smaller than or equal to @size ({}KiB)", m.target_size_kib)};
    if (!std::has_single_bit(m.block_kib))
        return ValidationProblem{ErrorCode::XmlError, path + "/target/block", "block size must be a power of two"};
    if (m.block_kib < kVirtioMemMinBlockKib)
        return ValidationProblem{ErrorCode::XmlError, path + "/target/block",
                                 fmt::format("block size too small, must be at least {}KiB", kVirtioMemMinBlockKib)};
    if (m.requested_kib % m.block_kib != 0)
        return ValidationProblem{ErrorCode::XmlError, path + "/target/requested", "requested size must be an integer multiple of block size"};
    if (m.target_size_kib % m.block_kib != 0)
        return ValidationProblem{ErrorCode::XmlError, path + "/target/size", "size must be an integer multiple of block size"};
    if (!m.info.address.empty() && m.info.address.type != "pci")
        return ValidationProblem{ErrorCode::XmlError, path + "/address/@type",
                                 fmt::format("virtio-mem memory device needs a PCI address, not '{}'", m.info.address.type)};
    return std::nullopt;
}

}  // namespace

std::optional<ValidationProblem> find_tuning_problem(const DomainDef& def) {
    const std::size_t cells = def.cpu.numa.size();
    const auto& mb = def.memory_backing;
    if (mb.hugepages) {
        if (mb.source_type == "anonymous")
            return ValidationProblem{ErrorCode::XmlError, "/domain/memoryBacking/source/@type", "hugepages are not allowed with anonymous memory source"};
        if (mb.allocation_mode == "ondemand")
            return ValidationProblem{ErrorCode::XmlError, "/domain/memoryBacking/allocation/@mode", "hugepages are not allowed with memory allocation ondemand"};
        bool default_page = false;
        for (std::size_t i = 0; i < mb.pages.size(); ++i) {
            const auto& p = mb.pages[i];
            const std::string path = mb.pages.size() > 1 ? fmt::format("/domain/memoryBacking/hugepages/page[{}]", i + 1)
                                                         : std::string("/domain/memoryBacking/hugepages/page");
            if (p.nodeset.empty()) {
                if (default_page)
                    return ValidationProblem{ErrorCode::XmlError, path, "two master hugepages detected: there can be only one default page size (a <page> without nodeset)"};
                default_page = true;
                continue;
            }
            if (cells == 0)
                return ValidationProblem{ErrorCode::XmlError, path + "/@nodeset", "hugepages: node 0 not found (the guest has no NUMA cells)"};
            for (unsigned node : parse_cpu_list(p.nodeset).value_or(std::vector<unsigned>{}))
                if (node >= cells)
                    return ValidationProblem{ErrorCode::XmlError, path + "/@nodeset", fmt::format("hugepages: node {} not found", node)};
        }
    }
    if (mb.allocation_threads && mb.allocation_mode == "ondemand")
        return ValidationProblem{ErrorCode::XmlError, "/domain/memoryBacking/allocation/@threads", "memory allocation threads need mode='immediate'"};
    for (std::size_t i = 0; i < def.numatune.memnodes.size(); ++i) {
        const auto& m = def.numatune.memnodes[i];
        const std::string path = def.numatune.memnodes.size() > 1 ? fmt::format("/domain/numatune/memnode[{}]", i + 1) : std::string("/domain/numatune/memnode");
        if (cells == 0) return ValidationProblem{ErrorCode::XmlError, path, "Element 'memnode' is invalid without any guest NUMA cells"};
        if (m.cellid >= cells)
            return ValidationProblem{ErrorCode::XmlError, path + "/@cellid", "Argument 'cellid' in memnode element must correspond to existing guest's NUMA cell"};
    }
    const unsigned nthreads = std::max<unsigned>(def.iothreads, static_cast<unsigned>(def.iothread_ids.size()));
    for (const auto& p : def.cputune.vcpupins)
        if (p.id >= def.vcpus)
            return ValidationProblem{ErrorCode::XmlError, "/domain/cputune/vcpupin/@vcpu",
                                     fmt::format("vcpupin: vcpu '{}' is beyond the domain's {} vCPUs", p.id, def.vcpus)};
    for (const auto& p : def.cputune.iothreadpins) {
        const bool named = std::ranges::find(def.iothread_ids, p.id) != def.iothread_ids.end();
        if (!named && (def.iothread_ids.size() >= nthreads || p.id > nthreads))
            return ValidationProblem{ErrorCode::XmlError, "/domain/cputune/iothreadpin/@iothread", fmt::format("Cannot find 'iothread' : {}", p.id)};
    }
    const auto& mems = def.devices.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const auto& m = mems[i];
        const std::string path = mems.size() > 1 ? fmt::format("/domain/devices/memory[{}]", i + 1) : std::string("/domain/devices/memory");
        if (!def.max_memory_kib)
            return ValidationProblem{ErrorCode::XmlError, path, "maxMemory has to be specified when using memory devices"};
        if (!m.target_node && cells > 0)
            return ValidationProblem{ErrorCode::Unsupported, path + "/target", "target NUMA node needs to be specified for memory device"};
        if (m.target_node && *m.target_node >= cells)
            return ValidationProblem{ErrorCode::XmlError, path + "/target/node",
                                     fmt::format("can't add memory backend for guest node '{}' as the guest has only '{}' NUMA nodes configured", *m.target_node, cells)};
        if (m.model == "virtio-mem")
            if (auto problem = find_virtio_mem_problem(m, path)) return problem;
        if (m.info.address.type == "dimm" && def.max_memory_slots && m.info.address.slot >= *def.max_memory_slots)
            return ValidationProblem{ErrorCode::XmlError, path + "/address/@slot",
                                     fmt::format("memory device slot '{}' exceeds slots count '{}'", m.info.address.slot, *def.max_memory_slots)};
        for (std::size_t j = 0; j < i; ++j)
            if (m.info.address.type == "dimm" && mems[j].info.address.type == "dimm" && mems[j].info.address.slot == m.info.address.slot)
                return ValidationProblem{ErrorCode::XmlError, path + "/address/@slot",
                                         fmt::format("memory device slot '{}' is already being used by another memory device", m.info.address.slot)};
    }
    const auto dimms = static_cast<std::size_t>(std::ranges::count(mems, std::string("dimm"), &MemoryDevice::model));
    if (def.max_memory_slots && dimms > *def.max_memory_slots)
        return ValidationProblem{ErrorCode::XmlError, "/domain/maxMemory/@slots",
                                 fmt::format("count of memory devices '{}' exceeds slots count '{}'", dimms, *def.max_memory_slots)};
    if (def.max_memory_kib && !mems.empty()) {
        std::uint64_t total = 0;
        for (const auto& m : mems) total += m.target_size_kib;
        std::uint64_t initial = 0;
        for (const auto& c : def.cpu.numa) initial += std::stoull(c.memory_kib.empty() ? "0" : c.memory_kib);
        if (initial + total > *def.max_memory_kib)
            return ValidationProblem{ErrorCode::XmlError, "/domain/maxMemory",
                                     fmt::format("Total size of memory devices exceeds the total memory size ({} KiB > {} KiB)", initial + total, *def.max_memory_kib)};
    }
    return std::nullopt;
}

// ---- define-time defaults ---------------------------------------------------------

void fill_tuning_defaults(DomainDef& def) {
    // <iothreads>N</iothreads> without ids: the lowest unused ids, as libvirt.
    if (def.iothreads < def.iothread_ids.size()) def.iothreads = static_cast<unsigned>(def.iothread_ids.size());
    if (!def.iothread_ids.empty()) {
        for (unsigned id = 1; def.iothread_ids.size() < def.iothreads; ++id)
            if (std::ranges::find(def.iothread_ids, id) == def.iothread_ids.end()) def.iothread_ids.push_back(id);
    }
    // A NUMA guest's memory is its cells' plus its modules'.
    if (!def.cpu.numa.empty()) {
        std::uint64_t total = 0;
        for (const auto& c : def.cpu.numa) total += std::stoull(c.memory_kib.empty() ? "0" : c.memory_kib);
        for (const auto& m : def.devices.memories) total += m.target_size_kib;
        def.memory_kib = total;
        if (def.current_memory_kib && *def.current_memory_kib > total) def.current_memory_kib = total;
    }
    // dimm slots: the lowest free one, then the alias dimm<slot>.
    std::set<unsigned> used;
    for (const auto& m : def.devices.memories)
        if (m.info.address.type == "dimm") used.insert(m.info.address.slot);
    for (auto& m : def.devices.memories) {
        if (m.model != "dimm" || !m.info.address.type.empty()) continue;
        unsigned slot = 0;
        while (used.contains(slot)) ++slot;
        m.info.address.type = "dimm";
        m.info.address.slot = slot;
        used.insert(slot);
    }
    // libvirt 9.0 names a dimm after its slot (dimm<slot>); the lowest free
    // dimm<N> only when that name is taken (an alias given by hand).
    std::set<std::string> aliases;
    for (const auto& m : def.devices.memories)
        if (!m.info.alias.empty()) aliases.insert(m.info.alias);
    unsigned next = 0, next_virtio = 0;
    for (auto& m : def.devices.memories) {
        if (!m.info.alias.empty()) continue;
        if (m.model == "virtio-mem") {  // virtiomem<N>, the lowest free N
            while (aliases.contains(fmt::format("virtiomem{}", next_virtio))) ++next_virtio;
            m.info.alias = fmt::format("virtiomem{}", next_virtio);
            aliases.insert(m.info.alias);
            continue;
        }
        std::string alias = fmt::format("dimm{}", m.info.address.slot);
        while (aliases.contains(alias)) alias = fmt::format("dimm{}", next++);
        m.info.alias = alias;
        aliases.insert(m.info.alias);
    }
}

std::vector<unsigned> domain_iothread_ids(const DomainDef& def) {
    std::vector<unsigned> ids = def.iothread_ids;
    for (unsigned id = 1; ids.size() < def.iothreads; ++id)
        if (std::ranges::find(ids, id) == ids.end()) ids.push_back(id);
    return ids;
}

void sync_vcpus_current(DomainDef& def) {
    if (def.vcpu_states.empty()) return;
    const auto enabled = static_cast<unsigned>(std::ranges::count(def.vcpu_states, true, &VcpuState::enabled));
    def.vcpus_current = enabled == def.vcpus ? std::nullopt : std::optional<unsigned>(enabled);
}

void fit_vcpu_states(DomainDef& def) {
    auto& states = def.vcpu_states;
    if (states.empty()) return;
    states.resize(def.vcpus, VcpuState{.enabled = false, .hotpluggable = "yes", .order = 0});
    const unsigned wanted = def.vcpus_current.value_or(def.vcpus);
    auto enabled = static_cast<unsigned>(std::ranges::count(states, true, &VcpuState::enabled));
    for (auto& st : states) {
        st.order = 0;
        if (enabled < wanted && !st.enabled) {
            st.enabled = true;
            ++enabled;
        }
    }
    for (auto it = states.rbegin(); it != states.rend() && enabled > wanted; ++it)
        if (it->enabled) {
            *it = {.enabled = false, .hotpluggable = "yes", .order = 0};
            --enabled;
        }
}

Result<DomainDef> with_vcpus_enabled(const DomainDef& def, const std::vector<unsigned>& ids, bool enable) {
    for (unsigned id : ids) {
        if (id == 0) return fail(ErrorCode::InvalidArg, "invalid argument: vCPU '0' can't be modified");
        if (id >= def.vcpus) return fail(ErrorCode::InvalidArg, "invalid argument: vcpu {} is not present in persistent config", id);
    }
    DomainDef next = def;
    auto& states = next.vcpu_states;
    if (states.empty()) {
        const unsigned current = def.vcpus_current.value_or(def.vcpus);
        for (unsigned id = 0; id < def.vcpus; ++id) states.push_back({.enabled = id < current, .hotpluggable = {}, .order = 0});
    }
    // vCPUs that cannot be hotplugged come up first: none may stay enabled
    // after a changed one.
    if (!ids.empty()) {
        const unsigned first = std::ranges::min(ids);
        for (unsigned id = first + 1; id < def.vcpus; ++id)
            if (std::ranges::find(ids, id) == ids.end() && states[id].enabled && states[id].hotpluggable == "no")
                return fail(ErrorCode::InvalidArg,
                            "invalid argument: vcpu '{}' can't be modified as it is followed by non-hotpluggable online vcpus", first);
    }
    for (auto& st : states) st.order = 0;
    for (unsigned id : ids) states[id] = {.enabled = enable, .hotpluggable = "yes", .order = 0};
    sync_vcpus_current(next);
    return next;
}

}  // namespace vireo::conf
