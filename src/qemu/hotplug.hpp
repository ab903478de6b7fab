// Disk hotplug through the typed monitor, as libvirt does with -blockdev:
// attach = blockdev-add of the disk's node chain (the start path's own
// -blockdev arguments, command_line.hpp disk_hotplug_args) then device_add;
// detach = device_del, wait for the guest to release the device
// (DEVICE_DELETED), then blockdev-del of its nodes.
#pragma once

#include <chrono>
#include <string>

#include "conf/domain.hpp"
#include "qemu/command_line.hpp"
#include "qemu/memory_backends.hpp"
#include "qemu/monitor.hpp"
#include "util/error.hpp"

namespace vireo::qemu {

// virsh's detach timeout: how long the guest has to release a device.
inline constexpr std::chrono::milliseconds kDetachTimeout{5000};

// The node name prefix of a disk hotplugged under `alias`: unique while the
// alias is (the start path's nodes are "vireo-<n>-..."), short enough for
// QEMU's 31-character node names.
std::string hotplug_node_prefix(const std::string& alias);

// The source files the disk reads (its own and its explicit backing
// chain's): each must exist, as at start. NotFound naming the first missing.
Status check_disk_source_exists(const conf::Disk& disk);

// Add the nodes then the device; on any failure, what was added is removed
// again and the error returned.
Status attach_disk_live(Monitor& mon, const DiskHotplug& args);

// Ask the guest to release the disk `disk` (its alias is its device id) and
// wait at most `timeout`. True: the device is gone and its nodes deleted.
// False: the guest did not release it in time; nothing else was changed.
// When the guest keeps it, its top node stays with the monitor
// (keep_late_node) for a late release.
Result<bool> detach_disk_live(Monitor& mon, const conf::Disk& disk, std::chrono::milliseconds timeout);
// What goes once the guest released the disk: its nodes below `top` (its
// top format node; "" = none), errors logged.
void release_disk_nodes(Monitor& mon, const conf::Disk& disk, const std::string& top);

// NIC hotplug: the tap (and vhost-net) descriptors handed over with getfd
// under their names, netdev_add, device_add, then the link state; on any
// failure what was added is removed again (descriptors QEMU did not take
// closed) and the error returned.
Status attach_nic_live(Monitor& mon, const NicHotplug& args, const std::vector<std::pair<std::string, int>>& fds,
                       const conf::Interface& nic);

// Ask the guest to release the NIC (device_del of its alias) and wait at
// most `timeout`; then its netdev goes. False: the guest kept it, nothing
// else was changed.
Result<bool> detach_nic_live(Monitor& mon, const conf::Interface& nic, std::chrono::milliseconds timeout);
// What goes once the guest released the NIC: its netdev (errors logged).
void release_nic_backend(Monitor& mon, const conf::Interface& nic);

// Memory module hotplug: its backend object (object-add) then its pc-dimm
// or virtio-mem-pci (device_add); the backend is deleted again when the
// device fails. Then where the guest sees it: `live`'s dimm gets its
// <address type='dimm' slot base>, a virtio-mem its <current>, from
// query-memory-devices.
Status attach_memory_live(Monitor& mon, const MemoryModuleArgs& args, conf::DomainDef& live);

// Ask the guest to release the module (device_del of its alias) and wait at
// most `timeout`; then its backend object goes. False: the guest kept it,
// nothing else was changed.
Result<bool> detach_memory_live(Monitor& mon, const conf::MemoryDevice& mem, std::chrono::milliseconds timeout);
// What goes once the guest released the module: its backend object.
void release_memory_backend(Monitor& mon, const conf::MemoryDevice& mem);

// An <rng>, <input>, <watchdog> or <channel> hotplug: its objects
// (object-add) or its chardev (chardev-add), then a watchdog's action
// (watchdog-set-action), then its device (device_add; the objects and the
// chardev removed again when it fails). The pty path QEMU opened for a pty
// chardev ("" for the others).
Result<std::string> attach_device_live(Monitor& mon, const DeviceHotplug& args);

// Ask the guest to release the device (device_del of its alias) and wait at
// most `timeout`; then an RNG's backend object goes. False: the guest kept
// it, nothing else was changed.
Result<bool> detach_device_live(Monitor& mon, const conf::PluggableDevice& dev, std::chrono::milliseconds timeout);
// What goes once the guest released the device: an RNG's backend object, a
// channel's chardev.
void release_device_backend(Monitor& mon, const conf::PluggableDevice& dev);

}  // namespace vireo::qemu
