// libvirt's remote protocol: the public facts vireod needs, declared here in
// our own compact form (program numbers, message types, procedure numbers,
// error numbers and domains, event numbers, flags). Procedure numbers are
// the stable ABI of the protocol; message layouts are in procedures.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::rpc {

inline constexpr std::uint32_t kRemoteProgram = 0x20008086;
inline constexpr std::uint32_t kKeepaliveProgram = 0x6b656570;
inline constexpr std::uint32_t kProtocolVersion = 1;

// The keepalive program's procedures (both are messages without a body).
inline constexpr int kKeepalivePing = 1;
inline constexpr int kKeepalivePong = 2;

enum class MessageType : std::uint32_t { Call = 0, Reply = 1, Message = 2, Stream = 3, CallWithFds = 4, ReplyWithFds = 5, StreamHole = 6 };
enum class MessageStatus : std::uint32_t { Ok = 0, Error = 1, Continue = 2 };

// Procedures of the remote program that vireod serves (remote_procedure).
enum class Proc : int {
    ConnectOpen = 1,
    ConnectClose = 2,
    ConnectGetType = 3,
    ConnectGetVersion = 4,
    ConnectGetMaxVcpus = 5,
    NodeGetInfo = 6,
    ConnectGetCapabilities = 7,
    DomainCreate = 9,
    DomainCreateXml = 10,
    DomainDefineXml = 11,
    DomainDestroy = 12,
    DomainGetXmlDesc = 14,
    DomainGetAutostart = 15,
    DomainGetInfo = 16,
    DomainGetMaxMemory = 17,
    DomainGetOsType = 19,
    ConnectListDefinedDomains = 21,
    DomainLookupById = 22,
    DomainLookupByName = 23,
    DomainLookupByUuid = 24,
    ConnectNumOfDefinedDomains = 25,
    DomainReboot = 27,
    DomainResume = 28,
    DomainSetAutostart = 29,
    DomainShutdown = 33,
    DomainSuspend = 34,
    DomainUndefine = 35,
    ConnectListDomains = 37,
    ConnectNumOfDomains = 51,
    DomainRestore = 54,
    DomainSave = 55,
    ConnectGetHostname = 59,
    ConnectSupportsFeature = 60,
    AuthList = 66,
    ConnectGetUri = 110,
    DomainGetSecurityLabel = 121,
    NodeGetSecurityModel = 122,
    ConnectIsSecure = 149,
    DomainIsActive = 150,
    DomainIsPersistent = 151,
    ConnectGetLibVersion = 157,
    DomainManagedSave = 182,
    DomainHasManagedSaveImage = 183,
    DomainManagedSaveRemove = 184,
    DomainCreateWithFlags = 196,
    DomainIsUpdated = 202,
    DomainGetState = 212,
    DomainUndefineFlags = 231,
    DomainSaveFlags = 232,
    DomainRestoreFlags = 233,
    DomainDestroyFlags = 234,
    DomainShutdownFlags = 258,
    ConnectListAllDomains = 273,
    ConnectDomainEventCallbackRegisterAny = 316,
    ConnectDomainEventCallbackDeregisterAny = 317,
    DomainEventCallbackLifecycle = 318,  // a message from the daemon
    DomainDefineXmlFlags = 350,

    // Devices (hotplug).
    DomainAttachDevice = 8,
    DomainDetachDevice = 13,
    DomainAttachDeviceFlags = 160,
    DomainDetachDeviceFlags = 161,
    DomainUpdateDeviceFlags = 174,

    // vCPUs and memory (vcpu_memory.cpp).
    DomainGetMaxVcpus = 18,
    DomainGetVcpus = 20,
    DomainPinVcpu = 26,
    DomainSetMaxMemory = 30,
    DomainSetMemory = 31,
    DomainSetVcpus = 32,
    DomainMemoryStats = 159,
    DomainSetVcpusFlags = 199,
    DomainGetVcpusFlags = 200,
    DomainSetMemoryFlags = 204,
    DomainPinVcpuFlags = 225,
    DomainGetVcpuPinInfo = 230,
    DomainPinEmulator = 279,
    DomainGetEmulatorPinInfo = 280,
    NodeGetCpuMap = 293,
    DomainSetMemoryStatsPeriod = 308,
    DomainSetVcpu = 384,

    // Disks (block.cpp).
    DomainBlockStats = 64,
    DomainGetBlockInfo = 194,
    DomainBlockStatsFlags = 243,
    DomainBlockResize = 251,
    DomainBlockJobAbort = 237,
    DomainGetBlockJobInfo = 238,
    DomainBlockJobSetSpeed = 239,
    DomainBlockPull = 240,
    DomainBlockRebase = 266,
    DomainBlockCommit = 290,

    // The guest agent (agent.cpp).
    DomainGetHostname = 277,
    DomainGetTime = 337,
    DomainSetTime = 338,
    DomainFsFreeze = 335,
    DomainFsThaw = 336,
    DomainGetFsInfo = 349,
    DomainSetUserPassword = 357,
    DomainGetGuestVcpus = 371,
    DomainSetGuestVcpus = 372,
    DomainGetGuestInfo = 418,
    DomainAgentSetResponseTimeout = 420,

    // Close callbacks and the connection-closed message.
    ConnectRegisterCloseCallback = 360,
    ConnectUnregisterCloseCallback = 361,
    // Device events (callback family; messages from the daemon).
    DomainEventCallbackDeviceRemoved = 333,
    DomainEventCallbackDeviceRemovalFailed = 367,
    DomainEventCallbackAgentLifecycle = 348,
    DomainEventMemoryDeviceSizeChange = 438,  // a callback event despite its name
    // The serial console (a stream), refused until it is served.
    DomainOpenConsole = 201,

    // Storage pools.
    ConnectNumOfStoragePools = 71,
    ConnectListStoragePools = 72,
    ConnectNumOfDefinedStoragePools = 73,
    ConnectListDefinedStoragePools = 74,
    StoragePoolCreateXml = 76,
    StoragePoolDefineXml = 77,
    StoragePoolCreate = 78,
    StoragePoolBuild = 79,
    StoragePoolDestroy = 80,
    StoragePoolDelete = 81,
    StoragePoolUndefine = 82,
    StoragePoolRefresh = 83,
    StoragePoolLookupByName = 84,
    StoragePoolLookupByUuid = 85,
    StoragePoolLookupByVolume = 86,
    StoragePoolGetInfo = 87,
    StoragePoolGetXmlDesc = 88,
    StoragePoolGetAutostart = 89,
    StoragePoolSetAutostart = 90,
    StoragePoolNumOfVolumes = 91,
    StoragePoolListVolumes = 92,
    StoragePoolIsActive = 154,
    StoragePoolIsPersistent = 155,
    ConnectListAllStoragePools = 281,
    StoragePoolListAllVolumes = 282,
    StoragePoolLookupByTargetPath = 391,

    // Storage volumes.
    StorageVolCreateXml = 93,
    StorageVolDelete = 94,
    StorageVolLookupByName = 95,
    StorageVolLookupByKey = 96,
    StorageVolLookupByPath = 97,
    StorageVolGetInfo = 98,
    StorageVolGetXmlDesc = 99,
    StorageVolGetPath = 100,
    StorageVolCreateXmlFrom = 125,
    StorageVolWipe = 165,
    StorageVolUpload = 208,    // a stream: client -> daemon
    StorageVolDownload = 209,  // a stream: daemon -> client
    StorageVolWipePattern = 259,
    StorageVolResize = 260,
    StorageVolGetInfoFlags = 378,

    // Virtual networks (network.cpp).
    ConnectListDefinedNetworks = 36,
    ConnectListNetworks = 38,
    NetworkCreate = 39,
    NetworkCreateXml = 40,
    NetworkDefineXml = 41,
    NetworkDestroy = 42,
    NetworkGetXmlDesc = 43,
    NetworkGetAutostart = 44,
    NetworkGetBridgeName = 45,
    NetworkLookupByName = 46,
    NetworkLookupByUuid = 47,
    NetworkSetAutostart = 48,
    NetworkUndefine = 49,
    ConnectNumOfDefinedNetworks = 50,
    ConnectNumOfNetworks = 52,
    NetworkIsActive = 152,
    NetworkIsPersistent = 153,
    ConnectListAllNetworks = 283,
    NetworkUpdate = 291,
    ConnectNetworkEventRegisterAny = 313,
    ConnectNetworkEventDeregisterAny = 314,
    NetworkEventLifecycle = 315,  // a message from the daemon
    NetworkGetDhcpLeases = 341,

    // Domain capabilities (virsh domcapabilities, virt-install).
    ConnectGetDomainCapabilities = 342,
};

// virErrorNumber values vireod answers with.
enum class ErrNum : int {
    InternalError = 1,
    NoSupport = 3,
    InvalidArg = 8,
    OperationFailed = 9,
    XmlError = 27,
    DomExist = 28,
    OperationDenied = 29,
    SystemError = 38,
    Rpc = 39,
    NoDomain = 42,
    NoNetwork = 43,
    NoStoragePool = 49,
    NoStorageVol = 50,
    OperationInvalid = 55,
    OperationTimeout = 68,
    ResourceBusy = 87,  // not used: libvirt answers a held job with OperationTimeout
};

// virErrorDomain values beyond driver::ops::LibvirtDomain.
inline constexpr int kFromRpc = 7;
inline constexpr int kFromRemote = 13;
inline constexpr int kErrorLevel = 2;  // VIR_ERR_ERROR

// virConnectSupportsFeature numbers (the driver features remote clients ask).
inline constexpr int kFeatureProgramKeepalive = 10;
inline constexpr int kFeatureRemoteEventCallback = 14;
inline constexpr int kFeatureRemoteCloseCallback = 15;

// virDomainEventID values served (the others are answered "not supported").
inline constexpr int kEventIdLifecycle = 0;
inline constexpr int kEventIdDeviceRemoved = 15;
inline constexpr int kEventIdDeviceRemovalFailed = 22;
inline constexpr int kEventIdAgentLifecycle = 18;
inline constexpr int kEventIdMemoryDeviceSizeChange = 26;

// virConnectDomainEventAgentLifecycleState / ...Reason values.
inline constexpr int kAgentConnected = 1, kAgentDisconnected = 2;
inline constexpr int kAgentReasonChannel = 2;  // the guest opened or closed the channel

// virConnectListAllDomains flags.
namespace list_flags {
inline constexpr std::uint32_t Active = 1, Inactive = 2, Persistent = 4, Transient = 8, Running = 16, Paused = 32,
                               Shutoff = 64, Other = 128, ManagedSave = 256, NoManagedSave = 512, Autostart = 1024,
                               NoAutostart = 2048;
}

// Flags of single domain calls.
inline constexpr std::uint32_t kXmlSecure = 1, kXmlInactive = 2;
inline constexpr std::uint32_t kStartPaused = 1, kStartForceBoot = 8;
inline constexpr std::uint32_t kDefineValidate = 1;
inline constexpr std::uint32_t kDestroyGraceful = 1;
inline constexpr std::uint32_t kShutdownAcpi = 1, kShutdownAgent = 2;
inline constexpr std::uint32_t kUndefineManagedSave = 1, kUndefineNvram = 4, kUndefineKeepNvram = 8, kUndefineTpm = 32,
                               kUndefineKeepTpm = 64;

// virConnectListAllStoragePools flags: state pairs, then one bit per pool type.
namespace pool_flags {
inline constexpr std::uint32_t Inactive = 1, Active = 2, Persistent = 4, Transient = 8, Autostart = 16,
                               NoAutostart = 32;
// The type bits from 64 up, in libvirt's order.
inline constexpr const char* kTypes[] = {"dir",  "fs",       "netfs",   "logical", "disk",     "iscsi",
                                         "scsi", "mpath",    "rbd",     "sheepdog", "gluster", "zfs",
                                         "vstorage", "iscsi-direct"};
inline constexpr std::uint32_t kFirstType = 64;
}  // namespace pool_flags

// virConnectListAllNetworks flags: the same state pairs as the pools'.
namespace net_flags {
inline constexpr std::uint32_t Inactive = 1, Active = 2, Persistent = 4, Transient = 8, Autostart = 16,
                               NoAutostart = 32;
}
inline constexpr std::uint32_t kNetXmlInactive = 1;  // VIR_NETWORK_XML_INACTIVE
inline constexpr std::uint32_t kNetUpdateLive = 1, kNetUpdateConfig = 2;
inline constexpr int kNetworkEventIdLifecycle = 0;  // VIR_NETWORK_EVENT_ID_LIFECYCLE
inline constexpr std::uint32_t kNetworkListMax = 16384;
inline constexpr std::uint32_t kDhcpLeasesMax = 65536;

// Flags of pool and volume calls.
inline constexpr std::uint32_t kPoolXmlInactive = 1;                  // VIR_STORAGE_XML_INACTIVE
inline constexpr std::uint32_t kPoolCreateWithBuild = 1, kPoolCreateOverwrite = 2, kPoolCreateNoOverwrite = 4;
inline constexpr std::uint32_t kPoolBuildRepair = 1, kPoolBuildResize = 2, kPoolBuildNoOverwrite = 4,
                               kPoolBuildOverwrite = 8;
inline constexpr std::uint32_t kVolCreatePreallocMetadata = 1, kVolCreateReflink = 2;
inline constexpr std::uint32_t kVolGetPhysical = 1;
inline constexpr std::uint32_t kVolResizeAllocate = 1, kVolResizeDelta = 2, kVolResizeShrink = 4;
inline constexpr std::uint32_t kVolStreamSparse = 1;  // VIR_STORAGE_VOL_{UP,DOWN}LOAD_SPARSE_STREAM
// virStorageVolWipeAlgorithm values vireo serves.
inline constexpr std::uint32_t kWipeZero = 0, kWipeRandom = 8, kWipeTrim = 9;

// Bounds of lists (REMOTE_DOMAIN_LIST_MAX, auth types).
inline constexpr std::uint32_t kDomainListMax = 16384;
inline constexpr std::uint32_t kPoolListMax = 16384;
inline constexpr std::uint32_t kVolListMax = 16384;

// Stream data packets vireod sends carry at most this many bytes (libvirt's
// VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX, what its own daemon sends).
inline constexpr std::size_t kStreamChunk = 262120;

// The largest packet either side accepts, and the smallest (length + header).
inline constexpr std::uint32_t kMaxPacket = 32u << 20;
inline constexpr std::uint32_t kHeaderSize = 24;
inline constexpr std::uint32_t kMinPacket = 4 + kHeaderSize;

}  // namespace vireo::rpc
