// vireod: the vireo daemon. Parses options and runs daemon::run_daemon.
// CLI11 trips GCC 12's -Wnull-dereference in its own headers (a middle-end
// warning that system-header suppression does not cover).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <CLI/CLI.hpp>

#include "daemon/daemon.hpp"
#include "storage/crypto.hpp"
#include "wire/openapi.hpp"

namespace {

int run(int argc, char** argv) {
    using vireo::client::DaemonMode;
    // Volumes may be encrypted images (storage/crypto.hpp).
    vireo::storage::crypto::enable_openssl();
    vireo::daemon::DaemonOptions o;
    // Hidden test knob, so that tests of the session auto-start (where the
    // client spawns the daemon) can have it serve the test driver.
    if (const char* d = std::getenv("VIREO_DAEMON_DRIVER"); d && *d) o.driver = d;
    CLI::App app{"vireod: the vireo virtualization daemon"};
    bool session = false, system = false;
    unsigned timeout = 0;
    std::string socket, ro_socket, config_dir, run_dir, log_file, libvirt_socket, libvirt_ro_socket;
    app.add_flag("--session", session, "run as the per-user session daemon (default)");
    app.add_flag("--system", system, "run as the system daemon (root)");
    app.add_flag("-d,--daemonize", o.daemonize, "detach and run in the background");
    auto* timeout_opt = app.add_option("-t,--timeout", timeout,
                                       "exit after this many idle seconds with no client and no running guest "
                                       "(0 = never; default 120 in session mode, never in system mode)");
    app.add_option("--socket", socket, "path of the read-write API socket");
    app.add_option("--ro-socket", ro_socket, "path of the read-only API socket (system mode)");
    app.add_option("--libvirt-socket", libvirt_socket,
                   "also serve libvirt's remote protocol (virsh -c 'qemu+unix:///session?socket=PATH') here");
    app.add_option("--libvirt-ro-socket", libvirt_ro_socket, "a read-only socket for libvirt's remote protocol");
    app.add_flag("--no-libvirt-sockets", o.no_libvirt_sockets, "do not serve libvirt's remote protocol at all");
    app.add_option("--config-dir", config_dir, "directory of the persistent domain definitions");
    app.add_option("--run-dir", run_dir, "directory of the runtime state of running domains");
    app.add_option("--log-file", log_file, "log file");
    app.add_flag("-v,--verbose", o.verbose, "log every request");
    // Hidden: the daemon's own tests serve the in-memory test driver.
    app.add_option("--driver", o.driver, "driver to serve: qemu or test")
        ->check(CLI::IsMember({"qemu", "test"}))
        ->group("");
    app.add_option("--socket-group", o.socket_group, "group of the read-write socket in system mode")->group("");
    app.add_option("--job-threads", o.job_threads, "worker threads for jobs")->group("");
    bool print_openapi = false;
    app.add_flag("--print-openapi", print_openapi,
                 "print the API's OpenAPI document (docs/api/openapi.yaml, generated from the operation table) and exit");
    CLI11_PARSE(app, argc, argv);
    if (print_openapi) {
        const std::string yaml = vireo::wire::openapi_yaml();
        return std::fwrite(yaml.data(), 1, yaml.size(), stdout) == yaml.size() ? 0 : 1;
    }
    if (session && system) {
        std::fputs("vireod: --session and --system are mutually exclusive\n", stderr);
        return 2;
    }
    o.mode = system ? DaemonMode::System : DaemonMode::Session;
    if (timeout_opt->count() > 0) o.timeout_s = timeout;
    o.socket = socket;
    o.ro_socket = ro_socket;
    o.config_dir = config_dir;
    o.run_dir = run_dir;
    o.log_file = log_file;
    o.libvirt_socket = libvirt_socket;
    o.libvirt_ro_socket = libvirt_ro_socket;
    return vireo::daemon::run_daemon(o);
}

}  // namespace

// Errors are values inside the daemon; this catch is the last line of
// defence (an allocation failure while parsing arguments, a bug), so that the
// process says why it stopped instead of calling std::terminate.
int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vireod: internal error: %s\n", e.what());
    } catch (...) {
        std::fputs("vireod: internal error: unknown exception\n", stderr);
    }
    return 1;
}

