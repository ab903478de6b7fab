// Session: the state one vireo process (or one interactive shell) works with:
// the global options, the connection (opened on first use and kept, so that
// `vireo -c test:///default "start demo; list"` sees its own changes), and
// the output conventions (stdout for results, "error: ..." on stderr).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "driver/driver.hpp"
#include "util/error.hpp"

namespace vireo::cli {

struct GlobalOptions {
    std::string uri;  // empty: the default URI
    bool readonly = false;
    bool quiet = false;
};

// Open a connection for the CLI: client::connect() for every URI once the
// client library is built; before that, test:///default in-process only.
Result<std::unique_ptr<driver::Driver>> open_connection(std::string_view uri, bool readonly);
// The URI used when -c is not given ($VIREO_DEFAULT_URI, $LIBVIRT_DEFAULT_URI, qemu:///session).
std::string default_connection_uri();

class Session {
public:
    explicit Session(GlobalOptions options) : options_(std::move(options)) {}

    [[nodiscard]] const GlobalOptions& options() const { return options_; }
    [[nodiscard]] bool quiet() const { return options_.quiet; }
    [[nodiscard]] std::string uri() const;

    // The connection, opened on first use; on failure prints virsh's
    // "error: failed to connect to the hypervisor" and returns nullptr.
    driver::Driver* conn();
    // A connection for calls made while conn() is busy with a long one
    // (save --verbose polls the job's progress): a daemon connection
    // answers one call at a time, so this is a second one to the same URI;
    // the in-process test driver is shared instead (a second one would be
    // another host). nullptr, silently, when it cannot be opened.
    driver::Driver* side_conn();

    // Results go to stdout.
    template <class... A>
    void out(fmt::format_string<A...> f, A&&... a) {
        fmt::print(stdout, f, std::forward<A>(a)...);
    }
    // Informational messages ("Domain 'x' started"), suppressed by -q.
    template <class... A>
    void info(fmt::format_string<A...> f, A&&... a) {
        if (!options_.quiet) fmt::print(stdout, f, std::forward<A>(a)...);
    }
    // "error: <line>" on stderr.
    void error(std::string_view line);
    // virsh's two-line form: "error: <headline>" then "error: <reason>".
    void error(std::string_view headline, const Error& cause);

    // Resolve a domain reference (name, uuid or id); on failure prints
    // "error: failed to get domain 'x'" and returns nullopt.
    std::optional<driver::DomainSummary> domain(std::string_view ref);

    // Set by `quit`/`exit`: the shell stops after the current command.
    bool quit_requested = false;

private:
    GlobalOptions options_;
    std::unique_ptr<driver::Driver> driver_;
    std::unique_ptr<driver::Driver> side_;
};

}  // namespace vireo::cli
