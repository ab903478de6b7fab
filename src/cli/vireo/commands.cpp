#include "cli/vireo/commands.hpp"

#include "cli/vireo/session.hpp"

namespace vireo::cli {

bool check_impact_options(Session& s, const Args& a) {
    for (std::string_view other : {"live", "config", "persistent"}) {
        if (a.has("current") && a.has(other)) {
            s.error(fmt::format("Options --current and --{} are mutually exclusive", other));
            return false;
        }
    }
    return true;
}

const std::vector<CommandSpec>& command_table() {
    static const std::vector<CommandSpec> table = [] {
        std::vector<CommandSpec> t;
        t.reserve(160);  // every verb (about 110) without reallocation
        add_domain_commands(t);
        add_domain_interface_commands(t);
        add_block_commands(t);
        add_media_commands(t);
        add_device_commands(t);
        add_display_commands(t);
        add_lifecycle_commands(t);
        add_job_commands(t);
        add_snapshot_commands(t);
        add_vcpu_memory_commands(t);
        add_agent_commands(t);
        add_interactive_commands(t);
        add_pool_commands(t);
        add_volume_commands(t);
        add_network_commands(t);
        add_interface_commands(t);
        add_host_commands(t);
        add_shell_commands(t);
        return t;
    }();
    return table;
}

const CommandSpec* find_command(std::string_view name) {
    for (const auto& spec : command_table())
        if (spec.name == name) return &spec;
    return nullptr;
}

int run_command(Session& session, const CommandWords& words) {
    if (words.empty()) return 0;
    const CommandSpec* spec = find_command(words.front());
    if (spec == nullptr) {
        session.error(fmt::format("unknown command: '{}'", words.front()));
        return 1;
    }
    auto args = parse_args(*spec, {words.begin() + 1, words.end()});
    if (!args) {
        session.error(args.error().message);
        return 1;
    }
    if (args->has("help")) {
        session.out("{}", command_help(*spec));
        return 0;
    }
    if (spec->modifies && session.options().readonly) {
        session.error(fmt::format("operation forbidden: read only access prevents '{}'", spec->name));
        return 1;
    }
    const int rc = spec->run(session, *args);
    std::fflush(stdout);
    return rc;
}

}  // namespace vireo::cli
