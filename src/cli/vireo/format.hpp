// Output formats of the vireo CLI, kept apart from the verbs so that they can
// be tested on their own. Layouts follow virsh's byte for byte where virsh
// has the verb; --json forms are vireo's own (documented in docs/cli.md).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver/driver.hpp"

namespace vireo::cli {

// Which domains `list` shows (virsh's list flags).
struct ListFilter {
    bool active = true;    // running, paused, ... (id >= 0)
    bool inactive = false; // shut off
    bool persistent = false, transient = false;      // neither: both
    bool autostart = false, no_autostart = false;    // neither: both
    bool with_managed_save = false, without_managed_save = false;
    bool state_running = false, state_paused = false, state_shutoff = false, state_other = false;  // none: any
};

// The domains matching `filter`, active ones first by id, then inactive by name.
std::vector<driver::DomainSummary> select_domains(std::vector<driver::DomainSummary> all, const ListFilter& filter);

// "running", or "running (booted)" with the reason.
std::string format_state(const driver::DomainSummary& d, bool with_reason);

// virsh dominfo's block ("Id:             1\nName: ...") without the trailing blank line.
// The security part of dominfo, as virsh prints it: the host's model
// (capabilities' <secmodel>) and the running domain's label.
struct SecurityInfo {
    std::string model = "none";
    std::string doi = "0";
    std::string label;  // "+UID:+GID" while running under DAC, else empty
};
std::string format_dominfo(const driver::DomainSummary& d, const SecurityInfo& security = {});
// virsh nodeinfo's block without the trailing blank line.
std::string format_nodeinfo(const driver::NodeInfo& n);
// virsh version's block without the trailing blank line.
std::string format_version(const driver::VersionInfo& v, bool with_daemon);
// "event 'lifecycle' for domain 'demo': Started Booted", optionally
// prefixed by "2026-11-24 10:00:00.123+0000: ".
std::string format_event(const driver::DomainEvent& e, bool timestamp);

nlohmann::json domain_json(const driver::DomainSummary& d);
nlohmann::json nodeinfo_json(const driver::NodeInfo& n);
nlohmann::json disk_json(const driver::DiskInfo& d);
nlohmann::json interface_json(const driver::InterfaceInfo& i);

}  // namespace vireo::cli
