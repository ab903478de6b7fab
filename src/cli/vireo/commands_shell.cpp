// Verbs of vireo itself: help, quit, exit.
#include <algorithm>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

// Groups in the order `vireo help` shows them, with their help keyword.
constexpr std::pair<std::string_view, std::string_view> kGroups[] = {
    {"Domain Management", "domain"},      {"Domain Monitoring", "monitor"}, {"Domain Events", "events"},
    {"Host and Hypervisor", "host"},      {"Interface", "interface"},       {"Networking", "network"},
    {"Snapshot", "snapshot"},             {"Storage Pool", "pool"},         {"Storage Volume", "volume"},
    {"Vireo itself", "vireo"},
};

std::string group_listing(std::string_view group, std::string_view keyword) {
    std::vector<const CommandSpec*> specs;
    for (const auto& spec : command_table())
        if (spec.group == group) specs.push_back(&spec);
    std::sort(specs.begin(), specs.end(), [](auto* a, auto* b) { return a->name < b->name; });
    std::string out = fmt::format(" {} (help keyword '{}'):\n", group, keyword);
    for (const auto* spec : specs) out += fmt::format("    {:<30} {}\n", spec->name, spec->summary);
    return out + "\n";
}

int cmd_help(Session& s, const Args& a) {
    const std::string topic = a.get("command");
    if (topic.empty()) {
        s.out("Grouped commands:\n\n");
        for (const auto& [group, keyword] : kGroups) s.out("{}", group_listing(group, keyword));
        return 0;
    }
    if (const CommandSpec* spec = find_command(topic); spec != nullptr && !spec->group.empty()) {
        s.out("{}", command_help(*spec));
        return 0;
    }
    for (const auto& [group, keyword] : kGroups)
        if (topic == keyword) {
            s.out("{}", group_listing(group, keyword));
            return 0;
        }
    s.error(fmt::format("command or command group '{}' doesn't exist", topic));
    return 1;
}

int cmd_quit(Session& s, const Args&) {
    s.quit_requested = true;
    return 0;
}

}  // namespace

void add_shell_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Vireo itself";
    t.push_back({"help", g, "print help", "Prints global help, command specific help, or help for a\ngroup of related commands",
                 {{"command", OptType::String, "Prints global help, command specific help, or help for a group of related commands", false, true}},
                 cmd_help, false});
    t.push_back({"quit", g, "quit this interactive terminal", "", {}, cmd_quit, false});
    t.push_back({"exit", g, "quit this interactive terminal", "", {}, cmd_quit, false});
}

}  // namespace vireo::cli
