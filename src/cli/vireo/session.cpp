#include "cli/vireo/session.hpp"

#include "client/connect.hpp"
#include "client/uri.hpp"

namespace vireo::cli {

Result<std::unique_ptr<driver::Driver>> open_connection(std::string_view uri, bool readonly) {
    client::ConnectOptions options;
    options.read_only = readonly;
    return client::connect(uri, options);
}

std::string default_connection_uri() { return client::default_uri(); }

std::string Session::uri() const { return options_.uri.empty() ? default_connection_uri() : options_.uri; }

driver::Driver* Session::conn() {
    if (driver_) return driver_.get();
    auto opened = open_connection(uri(), options_.readonly);
    if (!opened) {
        // connect() may already say it; virsh's form puts the reason on its own line.
        constexpr std::string_view kHeadline = "failed to connect to the hypervisor";
        std::string reason = opened.error().full_message();
        if (reason.starts_with(kHeadline) && reason.size() > kHeadline.size() + 2)
            reason.erase(0, kHeadline.size() + 2);
        error(kHeadline);
        error(reason);
        return nullptr;
    }
    driver_ = std::move(*opened);
    return driver_.get();
}

driver::Driver* Session::side_conn() {
    if (side_) return side_.get();
    auto parsed = client::parse_uri(uri());
    if (parsed && parsed->driver == "test") return conn();
    auto opened = open_connection(uri(), options_.readonly);
    if (!opened) return nullptr;
    side_ = std::move(*opened);
    return side_.get();
}

void Session::error(std::string_view line) {
    std::fflush(stdout);
    fmt::print(stderr, "error: {}\n", line);
}

void Session::error(std::string_view headline, const Error& cause) {
    error(headline);
    error(cause.full_message());
}

std::optional<driver::DomainSummary> Session::domain(std::string_view ref) {
    auto* d = conn();
    if (d == nullptr) return std::nullopt;
    auto found = d->lookup_domain(ref);
    if (found) return *found;
    if (found.error().code == ErrorCode::NoDomain)
        error(fmt::format("failed to get domain '{}'", ref));
    else
        error(fmt::format("failed to get domain '{}'", ref), found.error());
    return std::nullopt;
}

}  // namespace vireo::cli
