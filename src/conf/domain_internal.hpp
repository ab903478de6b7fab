// Internal helpers shared by the domain parse/validate/defaults files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/domain.hpp"
#include "conf/xml_reader.hpp"
#include "conf/xml_writer.hpp"

namespace vireo::conf {

// A semantic problem found by validation: the node path ("/domain/devices/
// disk[2]/target/@dev") lets parse_domain_xml add the line number.
struct ValidationProblem {
    ErrorCode code;
    std::string path;
    std::string message;
};

std::optional<ValidationProblem> find_validation_problem(const DomainDef& def);

// Decimal TCP port text -> number (nullopt if not a number).
std::optional<unsigned> xml_port(std::string_view text);

// Controller::index while a controller written without index='N' waits for
// one (parse_domain_xml gives it the smallest free index, as libvirt does).
inline constexpr unsigned kAutoIndex = ~0u;

// libvirt's drive index of a target name: "vda" -> 0, "sdb" -> 1,
// "hdaa" -> 26; -1 for a name that is not one.
int disk_name_index(std::string_view dev);

// The device order libvirt's parser gives: each controller inserted before
// the first one of its type with a higher index (else at the end), each
// disk among the disks of its written bus by drive index; then controllers
// without an index get the smallest free one. Run by parse_domain_xml after
// validation (whose paths name elements in document order).
void order_devices_like_libvirt(Devices& d);

// The address assignment part of assign_addresses_and_aliases
// (domain_address.cpp): virtio-serial ports, PCI slots (adding PCI
// controllers), USB ports (adding hubs), in libvirt's order.
Status assign_device_addresses(DomainDef& def);

// Machine families the defaults distinguish.
enum class MachineFamily { I440fx, Q35, Microvm, Other };
MachineFamily machine_family(std::string_view machine);

// The resource parts (domain_tuning.cpp): <memoryBacking>, <iothreadids>,
// <cputune>, <numatune>, <memory model='dimm'> devices.
Status parse_memory_backing(xml::XmlElement& e, MemoryBacking& mb);
Status parse_iothreadids(xml::XmlElement& e, std::vector<unsigned>& ids);
// <vcpus> of a domain whose maximum is `max` (vcpu ids 0..max-1).
Status parse_vcpus(xml::XmlElement& e, unsigned max, std::vector<VcpuState>& states);
Status parse_cputune(xml::XmlElement& e, CpuTune& ct);
Status parse_numatune(xml::XmlElement& e, NumaTune& nt, std::string_view vcpu_placement);
Status parse_memory_device(xml::XmlElement& e, MemoryDevice& m,
                           const std::function<Status(xml::XmlElement&, DeviceInfo&)>& parse_info);
void format_memory_backing(xml::Node& root, const MemoryBacking& mb);
void format_iothreads(xml::Node& root, const DomainDef& def, bool with_ids);
void format_vcpus(xml::Node& root, const DomainDef& def);
void format_cputune(xml::Node& root, const CpuTune& ct);
void format_numatune(xml::Node& root, const NumaTune& nt);
void format_memory_device(xml::Node& devices, const MemoryDevice& m,
                          const std::function<void(xml::Node&, const DeviceInfo&)>& format_info);
std::optional<ValidationProblem> find_tuning_problem(const DomainDef& def);
// iothread ids filled in, a NUMA guest's memory total, dimm slots and aliases.
void fill_tuning_defaults(DomainDef& def);

}  // namespace vireo::conf
