// The verbs of the vireo CLI and how one command line is run.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/vireo/command.hpp"
#include "cli/vireo/text.hpp"

namespace vireo::cli {

// Every verb, in help order.
const std::vector<CommandSpec>& command_table();
const CommandSpec* find_command(std::string_view name);

// Run one command (verb + words) in `session`; returns its exit status
// (0 success, 1 failure, as virsh).
int run_command(Session& session, const CommandWords& words);

// Each file adds its verbs to the table.
void add_host_commands(std::vector<CommandSpec>& table);
void add_domain_commands(std::vector<CommandSpec>& table);
void add_domain_interface_commands(std::vector<CommandSpec>& table);  // domif* (commands_domif.cpp)
void add_block_commands(std::vector<CommandSpec>& table);             // domblkstat, domblkinfo, blockresize (commands_block.cpp)
void add_media_commands(std::vector<CommandSpec>& table);             // change-media (commands_media.cpp)
void add_device_commands(std::vector<CommandSpec>& table);            // attach-/detach-device, -disk (commands_devices.cpp)
void add_vcpu_memory_commands(std::vector<CommandSpec>& table);      // vcpu*, setvcpus, setmem, dommemstat
void add_agent_commands(std::vector<CommandSpec>& table);            // qemu-agent-command, domtime, domhostname
void add_display_commands(std::vector<CommandSpec>& table);
void add_lifecycle_commands(std::vector<CommandSpec>& table);
void add_interactive_commands(std::vector<CommandSpec>& table);
void add_shell_commands(std::vector<CommandSpec>& table);
void add_console_command(std::vector<CommandSpec>& table);
void add_pool_commands(std::vector<CommandSpec>& table);
void add_volume_commands(std::vector<CommandSpec>& table);
void add_job_commands(std::vector<CommandSpec>& table);
void add_network_commands(std::vector<CommandSpec>& table);
void add_interface_commands(std::vector<CommandSpec>& table);  // iface-* (commands_interface.cpp)
void add_snapshot_commands(std::vector<CommandSpec>& table);   // snapshot-* (commands_snapshot.cpp)

// Shared option specs.
inline constexpr OptSpec kDomainOpt{"domain", OptType::String, "domain name, id or uuid", true, true};
inline constexpr OptSpec kJsonOpt{"json", OptType::Bool, "print JSON instead of the table (for scripts)", false, false};
// --live/--config/--current/--persistent of the verbs that change a domain
// (resolved by the daemon, driver/impact.hpp).
inline constexpr OptSpec kPersistentOpt{"persistent", OptType::Bool, "make live change persistent"};
inline constexpr OptSpec kConfigOpt{"config", OptType::Bool, "affect next boot"};
inline constexpr OptSpec kLiveOpt{"live", OptType::Bool, "affect running domain"};
inline constexpr OptSpec kCurrentOpt{"current", OptType::Bool, "affect current domain"};
// virsh's exclusive pairs among them (--current with any other); false
// after printing the error.
bool check_impact_options(Session& s, const Args& a);

// The edit loop of `edit` and `pool-edit` (commands_interactive.cpp): the
// XML goes to $VISUAL/$EDITOR in a temporary file, a changed text goes back
// through `redefine` (which returns the object's name) and, on an error, the
// user may edit again, as in virsh.
struct XmlEdit {
    std::string original;  // the current (inactive) definition
    std::string name;      // the object's name before editing
    bool validate = true;
    std::function<std::string(std::string_view name)> label;  // "Domain 'web'", "Pool p1"
    std::function<Result<std::string>(std::string_view xml, bool validate)> redefine;
    // Where a verb words its outcome otherwise (snapshot-edit): the lines
    // printed for an unchanged text and for a redefined one (from the names
    // before and after; an empty line prints nothing). Default:
    // "<label> XML configuration not changed./edited." (label is only
    // used there, so a verb giving both lines leaves it unset).
    std::function<std::string(std::string_view name)> not_changed_message;
    std::function<std::string(std::string_view before, std::string_view after)> edited_message;
    // Redefine an unchanged text too (snapshot-edit --current makes it current).
    bool redefine_unchanged = false;
};
int edit_xml(Session& session, const XmlEdit& edit);

// Attach the terminal to a domain's serial console (console.cpp).
int attach_console(Session& session, const std::string& domain, std::string_view device);

}  // namespace vireo::cli
