// Verb tables and virsh-style argument parsing for the vireo CLI.
//
// Every verb is described by a CommandSpec: its options (name, type, help,
// whether it may be given positionally) and the function that runs it. One
// parser serves every verb, so the syntax is the same everywhere, as in virsh:
//   vireo start demo --paused          positional and options in any order
//   vireo start --domain demo          the same, named
//   vireo dominfo --domain=demo        --name=value form
//   vireo desc demo some new text      trailing words gathered by an Argv option
// and help is generated from the same table (`vireo help start`, `start --help`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::cli {

class Session;

enum class OptType {
    Bool,    // --flag
    String,  // --name <string>
    Number,  // --name <number>  (non-negative integer)
    Argv,    // every remaining positional word, and each --name <word> (at most one per verb, last)
};

struct OptSpec {
    std::string_view name;  // without the leading "--"
    OptType type = OptType::Bool;
    std::string_view help;
    bool required = false;
    bool positional = false;  // may be given without "--name"
};

struct Args;
using CommandFn = int (*)(Session&, const Args&);

struct CommandSpec {
    std::string_view name;
    std::string_view group;  // section in `vireo help`
    std::string_view summary;
    std::string_view description;
    std::vector<OptSpec> options;
    CommandFn run = nullptr;
    bool needs_connection = true;
    bool modifies = false;  // refused on a read-only (-r) connection
};

// Parsed arguments of one invocation of a verb.
struct Args {
    std::map<std::string, std::string, std::less<>> values;  // options given (bools map to "")
    std::vector<std::string> rest;                           // words gathered by the Argv option

    [[nodiscard]] bool has(std::string_view name) const { return values.contains(name); }
    // Value of a string option, or `fallback` when absent.
    [[nodiscard]] std::string get(std::string_view name, std::string_view fallback = {}) const;
    // Value of a number option (validated by the parser).
    [[nodiscard]] std::optional<std::uint64_t> number(std::string_view name) const;
};

// Parse the words after the verb name. `--help` yields an Args holding "help".
// Errors are worded as virsh's ("command 'list' doesn't support option --x").
Result<Args> parse_args(const CommandSpec& spec, const std::vector<std::string>& words);

// The help page of one verb (NAME / SYNOPSIS / DESCRIPTION / OPTIONS).
std::string command_help(const CommandSpec& spec);
// One-line synopsis: "start <domain> [--console] [--paused]".
std::string command_synopsis(const CommandSpec& spec);

}  // namespace vireo::cli
