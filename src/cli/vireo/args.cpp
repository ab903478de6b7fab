#include <charconv>

#include "cli/vireo/command.hpp"

namespace vireo::cli {

namespace {

const OptSpec* find_option(const CommandSpec& spec, std::string_view name) {
    for (const auto& opt : spec.options)
        if (opt.name == name) return &opt;
    return nullptr;
}

std::string_view type_placeholder(OptType type) { return type == OptType::Number ? "<number>" : "<string>"; }

bool is_number(std::string_view text) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

Status store(const CommandSpec& spec, const OptSpec& opt, std::string value, Args& args) {
    if (args.values.contains(opt.name))
        return fail(ErrorCode::InvalidArg, "option --{} already seen", opt.name);
    if (opt.type == OptType::Number && !is_number(value))
        return fail(ErrorCode::InvalidArg, "Numeric value '{}' for <{}> option is malformed or out of range", value,
                    opt.name);
    (void)spec;
    args.values.emplace(std::string(opt.name), std::move(value));
    return {};
}

// A word that is not an option fills the next positional option not yet set,
// or joins the Argv option's words.
Status store_positional(const CommandSpec& spec, std::string word, Args& args) {
    for (const auto& opt : spec.options) {
        if (!opt.positional || opt.type == OptType::Argv || args.values.contains(opt.name)) continue;
        return store(spec, opt, std::move(word), args);
    }
    for (const auto& opt : spec.options) {
        if (opt.type != OptType::Argv) continue;
        args.values[std::string(opt.name)];
        args.rest.push_back(std::move(word));
        return {};
    }
    return fail(ErrorCode::InvalidArg, "unexpected data '{}'", word);
}

}  // namespace

std::string Args::get(std::string_view name, std::string_view fallback) const {
    auto it = values.find(name);
    return it == values.end() ? std::string(fallback) : it->second;
}

std::optional<std::uint64_t> Args::number(std::string_view name) const {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    std::uint64_t value = 0;
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
    return value;
}

Result<Args> parse_args(const CommandSpec& spec, const std::vector<std::string>& words) {
    Args args;
    bool options_ended = false;
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& word = words[i];
        if (options_ended || !word.starts_with("--") || word == "--") {
            if (word == "--" && !options_ended) {
                options_ended = true;
                continue;
            }
            VIREO_TRY(store_positional(spec, word, args));
            continue;
        }
        std::string name = word.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "help") {
            Args help;
            help.values["help"];
            return help;
        }
        const OptSpec* opt = find_option(spec, name);
        if (opt == nullptr)
            return fail(ErrorCode::InvalidArg, "command '{}' doesn't support option --{}", spec.name, name);
        if (opt->type == OptType::Argv) {  // --diskspec X --diskspec Y, --mountpoint /a: each one more word, as virsh
            if (!inline_value) {
                if (i + 1 >= words.size()) return fail(ErrorCode::InvalidArg, "expected syntax: --{} <string>", name);
                inline_value = words[++i];
            }
            args.values[std::string(opt->name)];
            args.rest.push_back(std::move(*inline_value));
            continue;
        }
        if (opt->type == OptType::Bool) {
            if (inline_value) return fail(ErrorCode::InvalidArg, "option --{} takes no value", name);
            VIREO_TRY(store(spec, *opt, "", args));
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= words.size())
                return fail(ErrorCode::InvalidArg, "expected syntax: --{} {}", name, type_placeholder(opt->type));
            inline_value = words[++i];
        }
        VIREO_TRY(store(spec, *opt, std::move(*inline_value), args));
    }
    for (const auto& opt : spec.options)
        if (opt.required && !args.values.contains(opt.name))
            return fail(ErrorCode::InvalidArg, "command '{}' requires <{}> option", spec.name, opt.name);
    return args;
}

std::string command_synopsis(const CommandSpec& spec) {
    std::string out(spec.name);
    for (const auto& opt : spec.options) {
        out += ' ';
        std::string item;
        switch (opt.type) {
            case OptType::Bool: item = fmt::format("--{}", opt.name); break;
            case OptType::Argv: item = fmt::format("<{}>...", opt.name); break;
            default:
                item = opt.positional ? fmt::format("<{}>", opt.name)
                                      : fmt::format("--{} {}", opt.name, type_placeholder(opt.type));
        }
        out += opt.required ? item : fmt::format("[{}]", item);
    }
    return out;
}

std::string command_help(const CommandSpec& spec) {
    std::string out = fmt::format("  NAME\n    {} - {}\n\n  SYNOPSIS\n    {}\n\n", spec.name, spec.summary,
                                  command_synopsis(spec));
    if (!spec.description.empty()) {
        out += "  DESCRIPTION\n";
        std::string_view text = spec.description;
        while (!text.empty()) {
            auto nl = text.find('\n');
            out += fmt::format("    {}\n", text.substr(0, nl));
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        }
        out += '\n';
    }
    if (!spec.options.empty()) {
        out += "  OPTIONS\n";
        for (const auto& opt : spec.options) {
            std::string left;
            switch (opt.type) {
                case OptType::Bool: left = fmt::format("--{}", opt.name); break;
                case OptType::Argv: left = fmt::format("<{}>", opt.name); break;
                default:
                    left = fmt::format(fmt::runtime(opt.positional ? "[--{}] {}" : "--{} {}"), opt.name,
                                       type_placeholder(opt.type));
            }
            out += fmt::format("    {:<15}  {}\n", left, opt.help);
        }
        out += '\n';
    }
    out += '\n';
    return out;
}

}  // namespace vireo::cli
