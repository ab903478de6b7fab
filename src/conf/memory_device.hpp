// Memory modules plugged into and out of a domain definition
// (attach-device / detach-device of <memory model='dimm'>, attach-device and
// update-device of <memory model='virtio-mem'>).
#pragma once

#include <cstddef>
#include <string_view>

#include "conf/domain.hpp"
#include "util/error.hpp"

namespace vireo::conf {

// One <memory> device document (attach-device, detach-device): parsed by
// the domain parser's own memory device parser (models vireo does not
// implement refused by name).
Result<MemoryDevice> parse_memory_device_xml(std::string_view xml);

// `def` with memory module `mem` plugged in as libvirt does it: refused
// without <maxMemory>, when the memory would exceed it, or when every slot
// is taken; otherwise added (the lowest free slot, alias dimm<slot>) and the
// memory total grown by it (<currentMemory> too when it was the total: a
// running guest gets the whole module). `def` untouched on error.
Result<DomainDef> with_memory_attached(const DomainDef& def, MemoryDevice mem);

// The module a detach-device document means: same model, size and node (and
// slot and base, when the document gives them), or the module `alias`
// (detach-device-alias). NotFound otherwise.
Result<std::size_t> find_memory_for_detach(const DomainDef& def, const MemoryDevice& mem);
Result<std::size_t> find_memory_by_alias(const DomainDef& def, std::string_view alias);
// A virtio-mem cannot be unplugged (libvirt refuses it); a dimm can.
Status check_memory_unpluggable(const MemoryDevice& mem);
// update-device of a memory device: the virtio-mem the document names (its
// alias, else its PCI address, else its model, size and node) with the
// document's <requested>; anything else changed is refused as libvirt 9.0
// refuses it ("cannot modify memory ..."). `def` untouched on error.
Result<DomainDef> with_memory_updated(const DomainDef& def, const MemoryDevice& update);
// `def` without its module `index`, the memory total shrunk by it.
DomainDef with_memory_detached(const DomainDef& def, std::size_t index);

}  // namespace vireo::conf
