// TestDriver: the in-memory driver behind test:///default, as libvirt's test
// driver. Runs inside the client process; every instance is independent and
// its state lives only as long as the instance (one connection).
//
// It starts with a fixed sample host and one running domain:
//   host:   x86_64, 8 CPUs (1 node, 2 sockets x 2 cores x 2 threads), 1400 MHz,
//           3 GiB, hostname of the real machine, hypervisor "Test 1.0"
//   domain: "test", id 1, uuid 6695eb01-f6a4-8304-79aa-97f2502e193f,
//           8 GiB max / 2 GiB current memory, 2 vCPUs, one disk vda, one
//           network interface, one serial console; running (booted)
// Guests are <domain type='qemu'> (the XML model has no 'test' type, and
// this keeps definitions portable between test:/// and qemu:///); nothing
// is ever executed and no file except save images is written.
//
// Every lifecycle operation makes libvirt's state transitions and publishes
// the matching events:
//   start           -> running/booted       Started/Booted
//   start --paused  -> paused/user          Started/Booted, Suspended/Paused
//   suspend         -> paused/user          Suspended/Paused
//   resume          -> running/unpaused     Resumed/Unpaused
//   shutdown        -> shut off/shutdown    Shutdown/Finished, Stopped/Shutdown
//   reboot, reset   -> stays running        (no lifecycle event)
//   destroy         -> shut off/destroyed   Stopped/Destroyed
//   save <file>     -> shut off/saved       Stopped/Saved   (file holds the XML)
//   restore <file>  -> running/restored     Started/Restored
//   managedsave     -> shut off/saved       Stopped/Saved   (next start restores)
//   define          -> Defined/Added|Updated; undefine -> Undefined/Removed
//   create          -> running/booted       Started/Booted (transient: removed when it stops)
// Errors read as libvirt's: "Domain not found: no domain with matching name
// 'x'", "Requested operation is not valid: domain 'x' is not running", ...
// Every modifying call takes the domain's job (registry.hpp), so concurrent
// callers get libvirt's serialisation and Busy errors; queries never wait.
// The console is a socketpair whose far end behaves like a guest shell that
// answers each line with "test console: <line>".
#pragma once

#include <memory>
#include <string>

#include "driver/driver.hpp"

namespace vireo::testdrv {

class TestDriver final : public driver::Driver {
public:
    // An instance with the sample host and the "test" domain. Its storage is
    // a PoolManager without persistence, with a running dir pool
    // "default-pool" (as libvirt's test:///default) in a private temp dir
    // that is removed with the driver.
    explicit TestDriver(std::string uri = "test:///default");
    ~TestDriver() override;
    TestDriver(const TestDriver&) = delete;
    TestDriver& operator=(const TestDriver&) = delete;

    struct Impl;

private:
    void install();
    std::unique_ptr<Impl> impl_;
};

// A fresh test:///default connection.
std::unique_ptr<driver::Driver> make_test_driver();

}  // namespace vireo::testdrv
