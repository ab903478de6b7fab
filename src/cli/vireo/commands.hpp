// The verbs of the vireo CLI and how one command line is run.
#pragma once

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
void add_lifecycle_commands(std::vector<CommandSpec>& table);
void add_interactive_commands(std::vector<CommandSpec>& table);
void add_shell_commands(std::vector<CommandSpec>& table);
void add_console_command(std::vector<CommandSpec>& table);

// Shared option specs.
inline constexpr OptSpec kDomainOpt{"domain", OptType::String, "domain name, id or uuid", true, true};
inline constexpr OptSpec kJsonOpt{"json", OptType::Bool, "print JSON instead of the table (for scripts)", false, false};

// Attach the terminal to a domain's serial console (console.cpp).
int attach_console(Session& session, const std::string& domain, std::string_view device);

}  // namespace vireo::cli
