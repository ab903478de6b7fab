// Bash completion support: `vireo _complete <words...>` prints candidates,
// one per line; completion/vireo.bash filters them by the current word.
#include <algorithm>

#include "cli/vireo/app.hpp"
#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"

namespace vireo::cli {

namespace {

constexpr std::string_view kGlobalOptions[] = {"--connect", "--readonly", "--quiet", "--help", "--version"};

// Names of the domains on the connection; silent on any failure (a
// completion must never print errors into the user's command line).
std::vector<std::string> domain_names(const std::string& uri) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto all = (*conn)->list_domains();
    if (!all) return {};
    std::vector<std::string> names;
    for (const auto& d : *all) names.push_back(d.name);
    return names;
}

std::vector<std::string> verb_candidates(const CommandSpec& spec, const std::vector<std::string>& args,
                                         const std::string& current, const std::string& uri) {
    std::vector<std::string> out;
    if (current.starts_with("-")) {
        for (const auto& opt : spec.options)
            if (opt.type != OptType::Argv &&
                std::find(args.begin(), args.end(), fmt::format("--{}", opt.name)) == args.end())
                out.push_back(fmt::format("--{}", opt.name));
        out.emplace_back("--help");
        return out;
    }
    // The word after an option that takes a value.
    if (!args.empty() && args.back().starts_with("--")) {
        const std::string_view prev = std::string_view(args.back()).substr(2);
        for (const auto& opt : spec.options)
            if (opt.name == prev && opt.type != OptType::Bool)
                return opt.name == "domain" ? domain_names(uri) : std::vector<std::string>{};
    }
    // First positional of a verb that takes a domain.
    const bool takes_domain = std::any_of(spec.options.begin(), spec.options.end(),
                                          [](const OptSpec& o) { return o.name == "domain" && o.positional; });
    const bool has_positional =
        std::any_of(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
    if (takes_domain && !has_positional) return domain_names(uri);
    if (spec.name == "help" && !has_positional) {
        for (const auto& s : command_table())
            if (!s.group.empty()) out.emplace_back(s.name);
    }
    return out;
}

}  // namespace

std::vector<std::string> complete_words(const std::vector<std::string>& words) {
    if (words.empty()) return {};
    const std::string current = words.back();
    std::string uri;
    std::size_t i = 0;
    // Skip the global options (and -c's argument).
    for (; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "-c" || w == "--connect") {
            if (i + 2 < words.size()) uri = words[++i];
            else return {};  // completing the URI itself: nothing to offer
        } else if (w.starts_with("--connect=")) {
            uri = w.substr(10);
        } else if (!w.starts_with("-")) {
            break;
        }
    }
    std::vector<std::string> out;
    if (i + 1 >= words.size()) {  // completing the verb (or a global option)
        if (current.starts_with("-"))
            for (auto o : kGlobalOptions) out.emplace_back(o);
        else
            for (const auto& spec : command_table())
                if (!spec.group.empty()) out.emplace_back(spec.name);
    } else if (const CommandSpec* spec = find_command(words[i]); spec != nullptr) {
        out = verb_candidates(*spec, {words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end() - 1}, current,
                              uri);
    }
    std::erase_if(out, [&](const std::string& c) { return !c.starts_with(current); });
    return out;
}

}  // namespace vireo::cli
