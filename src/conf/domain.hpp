// The domain definition: libvirt's <domain> XML as a typed C++ model.
//
// Model overview
// --------------
// DomainDef mirrors libvirt's domain XML (https://libvirt.org/formatdomain.html)
// element by element. Values that libvirt spells as enumerations are kept as
// the XML spelling (std::string, e.g. Disk::device == "cdrom"); the parser
// checks them against the accepted set, so a parsed DomainDef only holds valid
// spellings. An empty string / std::nullopt means "the element or attribute
// was absent" and is not written back. Numbers are numbers; memory sizes are
// always KiB (units are converted on input, <... unit='KiB'> on output, as
// libvirt does).
//
// parse_domain_xml() is strict: every element and attribute is either modelled
// here or refused with ErrorCode::Unsupported ("unsupported configuration:
// ..."), naming the element path and line. Nothing is silently dropped, so
// format_domain_xml(parse_domain_xml(x)) never loses configuration.
// The one exception is <metadata>, whose children are kept verbatim.
//
// Modelled (everything else is "unsupported configuration"): name, uuid,
// genid, title, description, metadata, maxMemory/memory/currentMemory (all
// units), memoryBacking (hugepages with pages, nosharepages, locked, discard,
// source, access, allocation), vcpu, iothreads, iothreadids, cputune
// (shares, period, quota, vcpupin, emulatorpin, iothreadpin), numatune
// (memory, memnode), resource/partition, os (type, firmware, loader,
// nvram, boot, bootmenu, kernel, initrd, cmdline, dtb, smbios, bios),
// features (acpi, apic, pae, hap, vmport, smm, pmu, ioapic, hyperv/kvm
// sub-features, ...), cpu (modes, model, vendor, topology, features, numa
// cells, cache), clock + timers, on_*, pm, seclabel, sysinfo (smbios), and the devices
// emulator, disk, controller, filesystem, interface, serial, parallel,
// console, channel, input, tpm, graphics, sound, audio, video, redirdev,
// watchdog, memballoon, rng, panic, memory (dimm). Values newer than libvirt 9.0's schema
// (Debian 12) are refused so that output always passes virt-xml-validate.
//
// Errors name the line and the XPath-like path of the offending node:
//   XML error: line 14: /domain/devices/disk[2]/target/@bus: unsupported bus
//   'foo' (expected one of virtio, sata, scsi, ide, usb)
//
// Life cycle of a definition (what the daemon/driver does with it):
//   parse_domain_xml  -> validate_domain -> assign_addresses_and_aliases
//   -> store format_domain_xml(def) (inactive) ... at start, format with
//   FormatFlags{.live = true, .id = N} for the live XML.
// parse_domain_xml already calls validate_domain unless ParseFlags::no_validate.
// assign_addresses_and_aliases is idempotent: addresses the user gave (or a
// previous run assigned) are kept, so output is stable across dumpxml/define.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/error.hpp"
#include "util/uuid.hpp"

namespace vireo::conf {

// A device's <address>. type "" = none given (to be assigned).
// Supported types: pci, drive, virtio-serial, usb, isa.
struct DeviceAddress {
    std::string type;
    // pci
    unsigned domain = 0, bus = 0, slot = 0, function = 0;
    std::string multifunction;  // "on"/"off"/"" (pci)
    // drive (controller, bus, target, unit), virtio-serial (controller, bus, port)
    unsigned controller = 0, target = 0, unit = 0;
    std::string port;  // usb "1" / "1.2", virtio-serial "1"
    // isa
    std::string iobase, irq;
    // dimm: slot in `slot`, base address ("0x100000000", "" = not known)
    std::string base;
    [[nodiscard]] bool empty() const { return type.empty(); }
    friend bool operator==(const DeviceAddress&, const DeviceAddress&) = default;
};

// Common to every device: <alias name=.../>, <address .../>, <boot order=.../>.
struct DeviceInfo {
    std::string alias;  // "virtio-disk0"; user aliases start with "ua-"
    DeviceAddress address;
    std::optional<unsigned> boot_order;
};

// <disk type='file|block|volume|network' device='disk|cdrom|floppy|lun'>
struct DiskSource {
    std::string file;                    // type=file
    std::string dev;                     // type=block
    std::string pool, volume, mode;      // type=volume
    std::string protocol, name;          // type=network (nbd, iscsi, rbd, http, https, ...)
    struct Host {
        std::string name, port, transport, socket;
    };
    std::vector<Host> hosts;             // type=network
    std::string startup_policy;          // startupPolicy (cdrom/floppy)
    std::string index;                   // index='N' (backing chain numbering)
    [[nodiscard]] bool empty() const {
        return file.empty() && dev.empty() && pool.empty() && volume.empty() && protocol.empty();
    }
};
struct BackingStore {
    bool present = false;  // <backingStore/> given (possibly empty = "no backing")
    std::string type;      // file/block/network/volume; empty for <backingStore/>
    std::string format;    // <format type='qcow2'/>
    DiskSource source;
    std::string index;
    std::vector<BackingStore> chain;  // nested backingStore (0 or 1 element)
};
struct Disk {
    std::string type = "file";  // file, block, volume, network
    std::string device = "disk";  // disk, cdrom, floppy, lun
    std::string snapshot;         // snapshot='' attribute (internal/external/no)
    // <driver>
    std::string driver_name;      // "qemu"
    std::string driver_type;      // raw, qcow2, vmdk, ...
    std::string cache, io, discard, detect_zeroes, error_policy, rerror_policy;
    std::string driver_iothread, driver_queues;
    DiskSource source;
    BackingStore backing;
    std::string target_dev;       // vda, sda, hda, fda
    std::string target_bus;       // virtio, sata, scsi, ide, usb, fdc
    std::string target_tray;      // open/closed (cdrom)
    std::string target_removable;
    bool readonly = false;
    bool shareable = false;
    bool transient = false;
    std::string serial, wwn;
    DeviceInfo info;
};

// <controller type=... index=... model=...>
struct Controller {
    std::string type;   // pci, usb, sata, scsi, ide, virtio-serial, fdc
    unsigned index = 0;  // absent in the XML: the smallest free index of the type
    std::string model;  // pci-root, pcie-root, pcie-root-port, pci-bridge,
                        // pcie-to-pci-bridge, qemu-xhci, piix3-uhci, ich9-ehci1,
                        // virtio-scsi, lsilogic, ...
    std::string ports, vectors;  // usb ports / virtio-serial ports & vectors
    // <target chassis=.. port=.. busNr=.../> for pcie-root-port etc.
    std::optional<unsigned> target_chassis;
    std::optional<unsigned> target_chassis_nr;  // pci-bridge <target chassisNr=.../>
    std::string target_port;     // "0x10"
    std::string target_busnr;
    std::string model_name;      // <model name='pcie-root-port'/>
    std::string driver_queues, driver_iothread;
    std::string master_startport;  // USB companion controllers: <master startport=/>
    DeviceInfo info;
};

// <interface type='network|bridge|user|ethernet|direct'>
struct Interface {
    std::string type = "user";
    std::string mac;            // aa:bb:cc:dd:ee:ff, generated (52:54:00:...) when absent
    std::string source_network, source_bridge, source_portgroup;
    std::string source_portid;  // live only: the network port's uuid
    std::string source_dev;     // direct: the host interface the macvtap sits on
    std::string source_mode;    // direct: vepa (default), bridge, private, passthrough
    std::string target_dev;     // tap name (ethernet / live)
    std::string target_managed; // ethernet: "no" = an existing tap vireo neither creates nor removes
    std::string backend_type;   // user: "passt" (<backend type='passt'/>) or "" (QEMU's slirp)
    std::string model;          // virtio, e1000e, e1000, rtl8139
    std::string driver_name, driver_queues;
    std::string link_state;     // up/down
    std::string mtu;
    DeviceInfo info;
};

// Character devices: <serial>, <console>, <channel>, <parallel>.
struct CharDev {
    std::string kind;           // element name: serial, console, channel
    std::string type = "pty";   // pty, file, unix, tcp, udp, spicevmc, qemu-vdagent, null, stdio, vc
    // <source .../>
    std::string source_path;    // pty (live), file, unix
    std::string source_mode;    // unix/tcp: bind|connect
    std::string source_host, source_service;
    // udp: the local end, <source mode='bind' host=.. service=../> beside
    // the remote <source mode='connect' .../> (source_host/source_service)
    std::string source_bind_host, source_bind_service;
    std::string source_append;  // file append='on'
    std::string protocol_type;  // tcp: raw|telnet
    // <target .../>
    std::string target_type;    // serial: isa-serial/pci-serial/usb-serial;
                                // console: serial/virtio; channel: virtio/guestfwd
    std::optional<unsigned> target_port;
    std::string target_name;    // channel: org.qemu.guest_agent.0
    std::string target_state;   // channel (live): connected/disconnected
    std::string target_model;   // <target><model name='isa-serial'/></target>
    std::string target_address, target_guestfwd_port;  // guestfwd
    std::string log_file, log_append;
    // qemu-vdagent: <source><clipboard copypaste='yes'/><mouse mode='client'/></source>
    std::string vdagent_copypaste;  // yes/no
    std::string vdagent_mouse;      // client/server
    DeviceInfo info;
};

struct Input {
    std::string type;  // tablet, mouse, keyboard, evdev, passthrough
    std::string bus;   // usb, ps2, virtio, xen
    std::string model;
    DeviceInfo info;
};

struct Graphics {
    std::string type;      // vnc, spice
    std::string port;      // "5900" / "-1"
    std::string tls_port;  // spice tlsPort
    std::string autoport;  // yes/no
    std::string listen;    // listen='127.0.0.1' attribute
    std::string passwd, passwd_valid_to, keymap, connected, default_mode;
    std::string websocket, share_policy;
    struct Listen {
        std::string type;  // address, network, none, socket
        std::string address, network, socket;
    };
    std::vector<Listen> listens;
    std::string image_compression;  // spice <image compression=.../>
    std::string gl_enable, gl_rendernode;
    DeviceInfo info;
};

struct Video {
    std::string model_type;  // virtio, qxl, vga, bochs, cirrus, ramfb, none
    std::string vram, ram, vgamem, vram64, heads, primary;
    std::string accel3d;
    DeviceInfo info;
};

struct Sound {
    std::string model;  // ich9, ich6, ac97, es1370, sb16, usb
    std::string audio_id;  // <audio id='N'/> child: which audio backend
    DeviceInfo info;
};

// <audio id='1' type='none|spice|pulseaudio|...'/> (host audio backend)
struct Audio {
    std::string id;
    std::string type;
};

// <seclabel type='dynamic|static|none' model='dac|selinux|apparmor|none'>
struct SecLabel {
    std::string type, model, relabel;
    std::string label, imagelabel, baselabel;
};

struct Memballoon {
    std::string model = "virtio";  // virtio, none
    std::string autodeflate, free_page_reporting;
    std::string stats_period;
    DeviceInfo info;
};

struct Rng {
    std::string model = "virtio";
    std::string backend_model = "random";  // random, egd, builtin
    std::string backend_path;              // /dev/urandom (random)
    std::string rate_bytes, rate_period;
    DeviceInfo info;
};

struct Watchdog {
    std::string model;   // i6300esb, ib700 (diag288 / itco: unsupported)
    std::string action;  // reset, shutdown, poweroff, pause, none, dump, inject-nmi
    DeviceInfo info;
};

struct Panic {
    std::string model;   // isa, hyperv (pseries, s390, pvpanic: unsupported)
    DeviceInfo info;
};

struct Tpm {
    std::string model;           // tpm-tis, tpm-crb
    std::string backend_type;    // emulator, passthrough
    std::string backend_version; // 2.0, 1.2
    std::string backend_device;  // passthrough path
    DeviceInfo info;
};

struct Filesystem {
    std::string type = "mount";
    std::string accessmode;        // passthrough, mapped, squash
    std::string driver_type;       // virtiofs, path, handle
    std::string driver_queue;
    std::string binary_path;       // <binary path=.../> (virtiofs)
    std::string source_dir;        // <source dir=.../>
    std::string target_dir;        // <target dir=.../> (mount tag)
    bool readonly = false;
    DeviceInfo info;
};

// <redirdev bus='usb' type='spicevmc'/> (USB redirection over SPICE / tcp)
struct Redirdev {
    std::string bus = "usb";
    std::string type = "spicevmc";  // spicevmc, tcp
    std::string source_host, source_service, source_mode;
    std::string protocol;  // tcp: <protocol type='raw|telnet'/>
    DeviceInfo info;
};

// <hub type='usb'>: a USB hub (libvirt adds one when the USB devices
// outnumber the controllers' ports).
struct Hub {
    std::string type = "usb";
    DeviceInfo info;
};

// <memory model='dimm'>: a pc-dimm memory module (memory hotplug, with
// <maxMemory>). Sizes in KiB. address type='dimm' (slot, base).
struct MemoryDevice {
    std::string model = "dimm";   // dimm, virtio-mem (nvdimm, virtio-pmem: unsupported)
    std::string access, discard;  // shared/private, yes/no
    std::uint64_t target_size_kib = 0;
    std::optional<unsigned> target_node;
    // virtio-mem: its block size, the size the guest is asked to plug, and
    // (live) the size it has plugged, as QEMU last reported it.
    std::uint64_t block_kib = 0, requested_kib = 0;
    std::optional<std::uint64_t> current_kib;
    DeviceInfo info;              // dimm: address.type "dimm", slot, base; virtio-mem: a PCI address
};

struct Devices {
    std::string emulator;
    std::vector<Disk> disks;
    std::vector<Controller> controllers;
    std::vector<Filesystem> filesystems;
    std::vector<Interface> interfaces;
    std::vector<CharDev> serials, parallels, consoles, channels;
    std::vector<Input> inputs;
    std::vector<Tpm> tpms;
    std::vector<Graphics> graphics;
    std::vector<Sound> sounds;
    std::vector<Audio> audios;
    std::vector<Video> videos;
    std::vector<Redirdev> redirdevs;
    std::vector<Hub> hubs;
    std::vector<Watchdog> watchdogs;
    std::optional<Memballoon> memballoon;
    std::vector<Rng> rngs;
    std::vector<Panic> panics;
    std::vector<MemoryDevice> memories;
};

struct OsDef {
    std::string type = "hvm";
    std::string arch;     // x86_64, i686, aarch64, ...
    std::string machine;  // pc, q35, pc-q35-7.2, pc-i440fx-7.2, microvm
    std::string firmware; // "efi" / "bios" / ""
    std::vector<std::pair<std::string, std::string>> firmware_features;  // <firmware><feature enabled name/>
    // <loader readonly='yes' type='pflash' secure='no'>path</loader>
    std::string loader, loader_readonly, loader_type, loader_secure;
    std::string nvram, nvram_template;
    std::vector<std::string> boot_devs;  // <boot dev='hd|cdrom|network|fd'/>
    std::string bootmenu_enable, bootmenu_timeout;
    std::string kernel, initrd, cmdline, dtb;
    std::string smbios_mode;
    std::string bios_useserial, bios_reboot_timeout;
};

// One <features> child. Attributes are kept as given (e.g. state='on',
// eoi='on', driver='kvm'); only known feature names are accepted, and children
// (hyperv/kvm sub-features) only where libvirt has them.
struct Feature {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attrs;
    std::vector<Feature> children;
};

struct CpuDef {
    std::string mode;    // host-passthrough, host-model, custom, maximum ("" = absent)
    std::string match;   // exact, minimum, strict
    std::string check;   // none, partial, full
    std::string migratable;
    std::string model, model_fallback, vendor;
    struct Feature {
        std::string policy;  // force, require, optional, disable, forbid
        std::string name;
    };
    std::vector<Feature> features;
    // <topology sockets dies cores threads/> (clusters is newer than libvirt 9.0's schema: unsupported)
    std::optional<unsigned> sockets, dies, clusters, cores, threads;
    struct NumaCell {
        std::string id, cpus, memory_kib, memAccess;
        std::string discard;  // yes/no
    };
    std::vector<NumaCell> numa;
    std::string cache_mode, cache_level;
    bool present = false;  // <cpu> given at all
};

struct Timer {
    std::string name;        // rtc, pit, hpet, kvmclock, hypervclock, tsc
    std::string present;     // yes/no
    std::string tickpolicy;  // delay, catchup, merge, discard
    std::string track;       // boot, guest, wall
    std::string frequency, mode;
};
struct ClockDef {
    std::string offset;      // utc, localtime, timezone, variable ("" = absent)
    std::string timezone, adjustment, basis;
    std::vector<Timer> timers;
};

// <sysinfo type='smbios'>: the SMBIOS tables the guest sees (with
// <os><smbios mode='sysinfo'/>). Entries keep the document's order.
struct SysinfoEntry {
    std::string name, value;
    friend bool operator==(const SysinfoEntry&, const SysinfoEntry&) = default;
};
struct Sysinfo {
    bool present = false;
    std::string type = "smbios";  // smbios (fwcfg: unsupported)
    std::vector<SysinfoEntry> bios;     // vendor, version, date, release
    std::vector<SysinfoEntry> system;   // manufacturer, product, version, serial, uuid, sku, family
    std::vector<std::vector<SysinfoEntry>> base_boards;  // manufacturer, product, version, serial, asset, location
    std::vector<SysinfoEntry> chassis;  // manufacturer, version, serial, asset, sku
    std::vector<std::string> oem_strings;
};

struct PmDef {
    std::string suspend_to_mem, suspend_to_disk;  // enabled='yes|no'
};

// <memoryBacking>: how guest RAM is allocated on the host.
struct HugePage {
    std::uint64_t size_kib = 0;  // 0 = the host's default huge page size
    std::string nodeset;         // guest NUMA cells it applies to ("" = all)
};
struct MemoryBacking {
    bool present = false;
    bool hugepages = false;
    std::vector<HugePage> pages;
    bool nosharepages = false, locked = false, discard = false;
    std::string source_type;         // file, anonymous, memfd
    std::string access_mode;         // shared, private
    std::string allocation_mode;     // immediate, ondemand
    std::optional<unsigned> allocation_threads;
};

// <cputune>: host CPU affinity of the vCPU, emulator and iothread threads
// (applied after start), and the cgroup CPU controls (shares, period,
// quota; refused at start until cgroups exist).
struct CpuTune {
    bool present = false;
    std::optional<std::uint64_t> shares, period;
    std::optional<std::int64_t> quota;
    struct Pin {
        unsigned id = 0;      // vcpu / iothread id
        std::string cpuset;   // libvirt's spelling ("0-1,3")
    };
    std::vector<Pin> vcpupins;
    std::string emulatorpin;  // cpuset, "" = none
    std::vector<Pin> iothreadpins;
};

// <numatune>: host NUMA binding of guest memory.
struct NumaTune {
    bool present = false;
    std::string memory_mode;       // strict, preferred, interleave, restrictive ("" = no <memory>)
    std::string memory_nodeset;    // host nodes, libvirt's spelling
    std::string memory_placement;  // static, auto
    struct MemNode {
        unsigned cellid = 0;
        std::string mode, nodeset;
    };
    std::vector<MemNode> memnodes;
};

// One vCPU of <vcpus> (<vcpu id enabled hotpluggable order/>).
struct VcpuState {
    bool enabled = true;
    std::string hotpluggable;  // "yes", "no", "" (not said)
    unsigned order = 0;        // the order the vCPUs came up in (1 = first), 0 = not said
    friend bool operator==(const VcpuState&, const VcpuState&) = default;
};

struct DomainDef {
    std::string type = "kvm";     // kvm, qemu
    std::optional<int> id;        // runtime id (live XML only)
    std::string name;
    Uuid uuid;                    // generated when absent
    std::string genid;            // "" absent; an empty <genid/> is generated at parse
    std::string title, description;
    std::string metadata_xml;     // verbatim inner XML of <metadata>
    bool metadata_present = false;
    // xmlns:prefix='uri' declarations on <domain> (kept so that namespaced
    // metadata written with a root-declared prefix stays well-formed).
    std::vector<std::pair<std::string, std::string>> root_namespaces;

    // Memory in KiB.
    std::uint64_t memory_kib = 0;           // <memory>
    std::optional<std::uint64_t> current_memory_kib;  // <currentMemory>
    std::optional<std::uint64_t> max_memory_kib;      // <maxMemory>
    std::optional<unsigned> max_memory_slots;
    MemoryBacking memory_backing;

    unsigned vcpus = 1;                   // <vcpu>N</vcpu> (maximum)
    std::optional<unsigned> vcpus_current;
    // <vcpus>: each vCPU's state, index = vCPU id, written once a definition
    // names its vCPUs one by one (a <vcpus> element, setvcpu, a live vCPU
    // hotplug); empty otherwise. When set, it has `vcpus` entries and
    // vcpus_current counts the enabled ones (sync_vcpus_current).
    std::vector<VcpuState> vcpu_states;
    std::string vcpu_placement;           // static, auto
    std::string vcpu_cpuset;
    unsigned iothreads = 0;
    std::vector<unsigned> iothread_ids;  // <iothreadids><iothread id=N/> (filled to `iothreads` at define)
    CpuTune cputune;
    NumaTune numatune;
    std::string resource_partition;  // <resource><partition>/machine</partition></resource>

    Sysinfo sysinfo;
    OsDef os;
    std::vector<Feature> features;
    bool features_present = false;
    CpuDef cpu;
    ClockDef clock;
    std::string on_poweroff, on_reboot, on_crash;
    PmDef pm;
    Devices devices;
    std::vector<SecLabel> seclabels;
};

struct ParseFlags {
    // Skip validate_domain() (parse only). The default validates.
    bool no_validate = false;
    // The document is a live status document. Informational today: runtime
    // values (id=, aliases, pty paths, graphics ports, tap names) are always
    // accepted and kept, and FormatFlags decides whether they are written.
    bool live = false;
};

struct FormatFlags {
    // Live XML: include id='N' on <domain>, aliases and runtime values
    // (graphics port, pty paths). Inactive XML (false) leaves them out,
    // except user aliases (ua-*).
    bool live = false;
    // The running domain's id, written as <domain id='N'> when live
    // (falls back to DomainDef::id).
    std::optional<int> id;
};

// vcpus_current from vcpu_states (nothing without them): the number of
// enabled vCPUs, none when all are.
void sync_vcpus_current(DomainDef& def);

// vcpu_states (when there are any) made to fit `vcpus` and vcpus_current
// after setvcpus: new vCPUs disabled and hotpluggable, the lowest disabled
// ones enabled or the highest enabled ones disabled, the order forgotten.
void fit_vcpu_states(DomainDef& def);

// The persistent definition with the vCPUs `ids` enabled or disabled one
// by one (setvcpu --config): each becomes hotpluggable, the order is
// forgotten, as libvirt does. vCPU 0, an id beyond the maximum, or a change
// that would leave non-hotpluggable enabled vCPUs after a changed one is
// refused, `def` untouched.
Result<DomainDef> with_vcpus_enabled(const DomainDef& def, const std::vector<unsigned>& ids, bool enable);

// Parse (and, unless flags.no_validate, validate) a domain document.
// Errors: ErrorCode::XmlError for malformed/invalid XML, ErrorCode::Unsupported
// for valid libvirt configuration vireo does not implement.
Result<DomainDef> parse_domain_xml(std::string_view xml, ParseFlags flags = {});

// One device document (attach-device / detach-device --file): its root
// element's name ("disk", "interface", ...), for the verbs to say which
// kinds they take; XmlError for a malformed document.
Result<std::string> device_xml_kind(std::string_view xml);

// One <disk> document, parsed by the domain parser's own disk parser (what
// it does not model is refused the same way). Not validated against a
// domain: with_disk_attached does that.
Result<Disk> parse_disk_xml(std::string_view xml);

// `def` with `disk` added exactly as a cold define of a document holding it
// would: placed in libvirt's disk order, then assign_addresses_and_aliases
// (defaults, drive/PCI address, alias), validated before and after. A target
// the domain has ("target vdb already exists"), an address another device
// uses, or an alias taken is refused, `def` untouched.
Result<DomainDef> with_disk_attached(const DomainDef& def, Disk disk);

// The index of the disk whose target is `target` (detach-device,
// detach-disk also by source path), or the device alias `alias`
// (detach-device-alias). NotFound naming it otherwise.
Result<std::size_t> find_disk_for_detach(const DomainDef& def, std::string_view target_or_source);
Result<std::size_t> find_disk_by_alias(const DomainDef& def, std::string_view alias);

// One <interface> document, parsed by the domain parser's own interface
// parser (attach-device, attach-interface, detach-device).
Result<Interface> parse_domain_interface_xml(std::string_view xml);

// `def` with `nic` added as a cold define of a document holding it would
// place it: after the domain's NICs, then assign_addresses_and_aliases
// (PCI address, alias netN), validated before and after. Its MAC must be
// set (assign_unique_macs); a MAC another NIC of the domain has is refused,
// `def` untouched.
Result<DomainDef> with_interface_attached(const DomainDef& def, Interface nic);

// update-device with an <interface>: `def` with the NIC of the document's
// MAC (the only NIC when the document has none) changed. Live, only its link
// state may change (QEMU's set_link); any other field the document sets to
// another value is refused, naming it. For the persistent definition the
// document replaces the NIC, keeping its MAC, and its alias and address when
// the document has none.
Result<DomainDef> with_interface_updated(const DomainDef& def, Interface update, bool live);

// The NIC detach-device / detach-interface means: the one with `mac`, or,
// with no MAC, the only one of `type` ("" = any type). NotFound when none
// matches; InvalidArg when several do and no MAC tells them apart.
Result<std::size_t> find_interface_for_detach(const DomainDef& def, std::string_view mac, std::string_view type);

// What an <interface> document of detach-device / detach-interface selects
// by: its type and its <mac address> (either may be empty). The rest of the
// document (a whole NIC as dumpxml shows it, or only these two) is not read.
struct InterfaceSelector {
    std::string type, mac;
};
Result<InterfaceSelector> parse_interface_selector_xml(std::string_view xml);
Result<std::size_t> find_interface_by_alias(const DomainDef& def, std::string_view alias);

// A CPU list ("0-3,^2,5") as a sorted set; nullopt when malformed.
std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text);
// The reverse, libvirt's spelling: "0-1,3".
std::string format_cpu_list(const std::vector<unsigned>& cpus);

// The host CPUs a definition lets vCPU `id` run on: its <vcpupin>, else
// <vcpu cpuset>; "" when nothing restricts it (every host CPU).
std::string vcpu_pinning(const DomainDef& def, unsigned id);
// The same for the emulator threads: <emulatorpin>, else <vcpu cpuset>.
std::string emulator_pinning(const DomainDef& def);

// The libvirt-format document for `def`.
std::string format_domain_xml(const DomainDef& def, FormatFlags flags = {});

// Semantic checks beyond syntax: safe name, memory sizes, duplicate target
// devs/aliases/addresses, boot order conflicts, vcpu counts.
Status validate_domain(const DomainDef& def);

// What the host can run, for the define-time checks and defaults that
// depend on it. The driver provides it from its emulator probing (src/host,
// src/qemu/probe): conf itself never looks at the host or runs anything.
struct DefineHost {
    // The emulator binary that runs guests of `arch` here, "" when none.
    std::function<std::string(std::string_view arch)> emulator_for;
    // `machine` as `emulator` names it: the canonical machine type ("pc" ->
    // "pc-i440fx-7.2"; "" -> the emulator's default machine), or an error
    // naming the machine when the emulator does not have it.
    std::function<Result<std::string>(std::string_view emulator, std::string_view machine)> canonical_machine;
};

// The host-dependent part of define, before assign_addresses_and_aliases:
// an architecture is accepted only when an emulator here runs it ("No
// emulator found for arch 'aarch64'"), <emulator> defaults to that one and
// the machine type is canonicalised, as libvirt does.
Status apply_define_host(DomainDef& def, const DefineHost& host);

// libvirt's define-time defaults (QEMU driver, x86): the defaults it fills
// in and prints (<boot dev='hd'/>, the default <cpu> model, disk drivers,
// NIC and video models, an <audio> backend, the balloon, PS/2 inputs, ...),
// its implicit controllers in its order, and PCI (i440fx and q35, with
// pcie-root-ports and bridges added as needed), USB (hubs added as needed),
// drive and virtio-serial addresses for the devices without one, then the
// device aliases. Idempotent: what is assigned is kept by a later call.
// Fails as libvirt's define does, naming the device, when the document's
// own addresses conflict with each other or with the chipset's devices, and
// for architectures other than x86_64 and i686.
Status assign_addresses_and_aliases(DomainDef& def);

// Give every <interface> without a MAC a random 52:54:00:xx:xx:xx one that
// `in_use` rejects and no other interface of `def` has (libvirt's prefix;
// unique among the connection's domains when `in_use` knows their MACs).
// Run before assign_addresses_and_aliases, which would pick one without
// looking. `random` supplies the three random bytes (tests pass their own).
void assign_unique_macs(DomainDef& def, const std::function<bool(std::string_view)>& in_use,
                        const std::function<std::array<std::uint8_t, 3>()>& random = {});

// The ids of the domain's iothreads: <iothreadids> and then the lowest
// unused ids up to <iothreads> (libvirt's numbering, 1-based).
std::vector<unsigned> domain_iothread_ids(const DomainDef& def);

// True when the machine type is a q35 / PCIe machine (q35, pc-q35-*).
bool is_q35_machine(std::string_view machine);

// The first <console> / <serial> etc. lookups used by drivers.
const Disk* find_disk_by_target(const DomainDef& def, std::string_view target_dev);

}  // namespace vireo::conf
