// Bash completion support: `vireo _complete <words...>` prints candidates,
// one per line; completion/vireo.bash filters them by the current word.
#include <algorithm>

#include "cli/vireo/app.hpp"
#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"
#include "driver/keycodes.hpp"

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

// Names of the snapshots of `domain`; silent on failure.
std::vector<std::string> snapshot_names(const std::string& uri, const std::string& domain) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto all = (*conn)->call<driver::ops::SnapshotList>({.ref = domain});
    if (!all) return {};
    std::vector<std::string> names;
    for (const auto& s : *all) names.push_back(s.name);
    return names;
}

// The disk targets (vda, ...) of `domain`, for the disk verbs; silent on failure.
std::vector<std::string> disk_targets(const std::string& uri, const std::string& domain) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto disks = (*conn)->domain_disks(domain, false);
    if (!disks) return {};
    std::vector<std::string> names;
    for (const auto& d : *disks) names.push_back(d.target);
    return names;
}

bool is_disk_verb(std::string_view verb) { return verb == "domblkstat" || verb == "domblkinfo" || verb == "blockresize"; }

// The first word that is neither an option nor an option's value: the domain.
std::string first_positional(const CommandSpec& spec, const std::vector<std::string>& args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i].starts_with("--")) {
            const std::string_view name = std::string_view(args[i]).substr(2);
            for (const auto& o : spec.options)
                if (o.name == name && o.type != OptType::Bool) ++i;  // its value
            continue;
        }
        return args[i];
    }
    return {};
}

// Names of the storage pools on the connection (for <pool> arguments); silent on failure.
std::vector<std::string> pool_names(const std::string& uri) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto all = (*conn)->pools().list_pools();
    if (!all) return {};
    std::vector<std::string> names;
    for (const auto& p : *all) names.push_back(p.name);
    return names;
}

// Names of the volumes in the pool given with --pool on the command line.
std::vector<std::string> volume_names(const std::vector<std::string>& args, const std::string& uri) {
    auto at = std::find(args.begin(), args.end(), "--pool");
    if (at == args.end() || at + 1 == args.end()) return {};
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto vols = (*conn)->pools().list_volumes(*(at + 1));
    if (!vols) return {};
    std::vector<std::string> names;
    for (const auto& v : *vols) names.push_back(v.name);
    return names;
}

// Ids of the running jobs (for job-abort); silent on failure.
std::vector<std::string> job_ids(const std::string& uri) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto jobs = (*conn)->call<driver::ops::JobList>({});
    if (!jobs) return {};
    std::vector<std::string> ids;
    for (const auto& j : *jobs) ids.push_back(std::to_string(j.id));
    return ids;
}

// Names of the networks / host interfaces on the connection; silent on failure.
std::vector<std::string> network_names(const std::string& uri) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto all = (*conn)->call<driver::ops::NetworkList>({});
    if (!all) return {};
    std::vector<std::string> names;
    for (const auto& n : *all) names.push_back(n.name);
    return names;
}

std::vector<std::string> interface_names(const std::string& uri) {
    auto conn = open_connection(uri.empty() ? default_connection_uri() : uri, true);
    if (!conn) return {};
    auto all = (*conn)->call<driver::ops::InterfaceList>({});
    if (!all) return {};
    std::vector<std::string> names;
    for (const auto& i : *all) names.push_back(i.name);
    return names;
}

// The words net-update takes as its command and section.
std::vector<std::string> update_words(std::string_view option) {
    std::vector<std::string> out;
    if (option == "command") {
        out.emplace_back("add");
        for (const auto& [v, name] : driver::ops::EnumNames<driver::NetworkUpdateCommand>::values) out.emplace_back(name);
    } else {
        for (const auto& [v, name] : driver::ops::EnumNames<driver::NetworkUpdateSection>::values) out.emplace_back(name);
    }
    return out;
}

bool is_pool_option(std::string_view name) { return name == "pool" || name == "inputpool"; }

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
            if (opt.name == prev && opt.type != OptType::Bool) {
                if (opt.name == "domain") return domain_names(uri);
                if (is_disk_verb(spec.name) && (opt.name == "device" || opt.name == "path")) {
                    const std::string dom = first_positional(spec, {args.begin(), args.end() - 1});
                    return dom.empty() ? std::vector<std::string>{} : disk_targets(uri, dom);
                }
                if (opt.name == "from" && spec.name == "snapshot-list") {
                    auto dom = std::find_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
                    return dom != args.end() ? snapshot_names(uri, *dom) : std::vector<std::string>{};
                }
                if (is_pool_option(opt.name)) return pool_names(uri);
                if (opt.name == "network") return network_names(uri);
                if (opt.name == "interface" || (opt.name == "bridge" && spec.name == "iface-unbridge"))
                    return interface_names(uri);
                if (spec.name == "net-update" && (opt.name == "command" || opt.name == "section")) return update_words(opt.name);
                if (spec.name == "send-key" && opt.name == "codeset") return driver::keycodeset_names();
                if (spec.name == "domdisplay" && opt.name == "type") return {"vnc", "spice"};
                return {};
            }
    }
    // First positional of a verb that takes a domain.
    const bool takes_domain = std::any_of(spec.options.begin(), spec.options.end(),
                                          [](const OptSpec& o) { return o.name == "domain" && o.positional; });
    const bool has_positional =
        std::any_of(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
    if (takes_domain && !has_positional) return domain_names(uri);
    // Disk verbs: a disk of the domain given first.
    if (is_disk_verb(spec.name)) {
        const auto words = std::count_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
        if (words == 1) return disk_targets(uri, first_positional(spec, args));
    }
    // snapshot-* verbs: a snapshot of the domain given first.
    if (spec.name.starts_with("snapshot-")) {
        const bool takes_snapshot = std::any_of(spec.options.begin(), spec.options.end(),
                                                [](const OptSpec& o) { return o.name == "snapshotname" && o.positional; });
        auto first = std::find_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
        const auto words = std::count_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
        if (first != args.end() && takes_snapshot && words == 1) return snapshot_names(uri, *first);
    }
    if (spec.name == "job-abort" && !has_positional) return job_ids(uri);
    // send-key: the keys after the domain (names of the codeset given, linux by default).
    if (spec.name == "send-key" && has_positional) {
        auto at = std::find(args.begin(), args.end(), "--codeset");
        auto set = driver::keycodeset_from_name(at != args.end() && at + 1 != args.end() ? *(at + 1) : "linux");
        return set ? driver::keycode_names(*set) : std::vector<std::string>{};
    }
    // Storage verbs: the pool they start with, or a volume of the --pool given
    // (whose name is not a positional word).
    const auto words_given = std::count_if(args.begin(), args.end(), [](const std::string& w) { return !w.starts_with("-"); });
    const auto pool_values = std::count(args.begin(), args.end(), std::string("--pool"));
    if (words_given == pool_values && !spec.options.empty() && spec.options.front().positional) {
        if (spec.options.front().name == "pool") return pool_names(uri);
        if (spec.options.front().name == "vol") return volume_names(args, uri);
    }
    // Network verbs: the network first, then net-update's command and section;
    // interface verbs: the interface (iface-unbridge: the bridge).
    if (!spec.options.empty() && spec.options.front().positional) {
        const auto& first = spec.options.front().name;
        if (first == "network" && words_given == 0) return network_names(uri);
        if (spec.name == "net-update" && words_given == 1) return update_words("command");
        if (spec.name == "net-update" && words_given == 2) return update_words("section");
        if ((first == "interface" || (first == "bridge" && spec.name == "iface-unbridge")) && words_given == 0)
            return interface_names(uri);
    }
    if (spec.name == "help" && !has_positional) {
        for (const auto& s : command_table())
            if (!s.group.empty()) out.emplace_back(s.name);
    }
    return out;
}

}  // namespace

std::vector<std::string> complete_words(const std::vector<std::string>& words) {
    if (words.empty()) return {};
    const std::string& current = words.back();
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
