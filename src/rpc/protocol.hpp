// libvirt's remote protocol: the public facts vireod needs, declared here in
// our own compact form (program numbers, message types, procedure numbers,
// error numbers and domains, event numbers, flags). Procedure numbers are
// the stable ABI of the protocol; message layouts are in procedures.cpp.
#pragma once

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

// virDomainEventID: the only one served so far.
inline constexpr int kEventIdLifecycle = 0;

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

// Bounds of lists (REMOTE_DOMAIN_LIST_MAX, auth types).
inline constexpr std::uint32_t kDomainListMax = 16384;

// The largest packet either side accepts, and the smallest (length + header).
inline constexpr std::uint32_t kMaxPacket = 32u << 20;
inline constexpr std::uint32_t kHeaderSize = 24;
inline constexpr std::uint32_t kMinPacket = 4 + kHeaderSize;

}  // namespace vireo::rpc
