#include "client/connect.hpp"

#include <cstdlib>

#include "client/remote_driver.hpp"
#include "client/session_daemon.hpp"
#include "client/transport.hpp"
#include "client/uri.hpp"
#include "testdrv/test_driver.hpp"

namespace vireo::client {

std::string default_uri() {
    for (const char* var : {"VIREO_DEFAULT_URI", "LIBVIRT_DEFAULT_URI"}) {
        const char* v = std::getenv(var);
        if (v && *v) return v;
    }
    return "qemu:///session";
}

Result<std::unique_ptr<driver::Driver>> connect(std::string_view uri_text, const ConnectOptions& options) {
    auto uri = parse_uri(uri_text);
    if (!uri) return std::unexpected(uri.error());
    if (uri->driver == "test") {
        if (!uri->transport.empty())
            return fail(ErrorCode::Unsupported, "the test driver runs in-process; use test:///default");
        return testdrv::make_test_driver();
    }
    auto transport = make_transport(*uri, options.read_only);
    if (!transport) return std::unexpected(transport.error());
    auto remote = std::make_unique<RemoteDriver>(uri->text, *transport);
    auto opened = remote->open();
    // The session daemon is started on demand, but only for the implicit
    // socket: an explicit ?socket= or qemu+unix:// names a daemon someone runs.
    const bool may_autostart = uri->is_session() && uri->transport.empty() && !uri->param("socket") &&
                               options.autostart_daemon;
    if (!opened && may_autostart && opened.error().code == ErrorCode::Connection) {
        auto started = ensure_session_daemon();
        if (!started) return std::unexpected(started.error().context("failed to connect to the hypervisor"));
        opened = remote->open();
    }
    if (!opened) return std::unexpected(opened.error().context("failed to connect to the hypervisor"));
    return std::unique_ptr<driver::Driver>(std::move(remote));
}

}  // namespace vireo::client
