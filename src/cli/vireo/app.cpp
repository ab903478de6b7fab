#include "cli/vireo/app.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <optional>

#include "cli/vireo/commands.hpp"
#include "cli/vireo/session.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::cli {

namespace {

constexpr std::string_view kUsage =
    "\n"
    "vireo [options]... [<command_string>]\n"
    "vireo [options]... <command> [args...]\n"
    "\n"
    "  options:\n"
    "    -c | --connect=URI      hypervisor connection URI\n"
    "    -h | --help             this help\n"
    "    -q | --quiet            quiet mode\n"
    "    -r | --readonly         connect readonly\n"
    "    -v | --version          program version\n"
    "\n"
    "  commands (non interactive mode):\n"
    "\n";

struct Invocation {
    GlobalOptions options;
    std::vector<std::string> words;  // the command and its arguments
    bool help = false;
    bool version = false;
};

// Global options come before the command, as in virsh.
std::optional<Invocation> parse_global(int argc, char** argv) {
    Invocation inv;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-c" || arg == "--connect") {
            if (i + 1 >= argc) {
                fmt::print(stderr, "error: option '{}' requires an argument\n", arg);
                return std::nullopt;
            }
            inv.options.uri = argv[++i];
        } else if (arg.starts_with("--connect=")) {
            inv.options.uri = arg.substr(10);
        } else if (arg == "-r" || arg == "--readonly") {
            inv.options.readonly = true;
        } else if (arg == "-q" || arg == "--quiet") {
            inv.options.quiet = true;
        } else if (arg == "-h" || arg == "--help") {
            inv.help = true;
        } else if (arg == "-v" || arg == "--version") {
            inv.version = true;
        } else if (arg == "--") {
            ++i;
            break;
        } else if (arg.starts_with("-") && arg.size() > 1) {
            fmt::print(stderr, "error: unsupported option '{}'. See --help.\n", arg);
            return std::nullopt;
        } else {
            break;
        }
    }
    for (; i < argc; ++i) inv.words.emplace_back(argv[i]);
    return inv;
}

void print_usage() {
    fmt::print("{}", kUsage);
    for (const auto& spec : command_table())
        if (!spec.group.empty()) fmt::print("    {:<30} {}\n", spec.name, spec.summary);
    fmt::print("\n  (specify help <command> for details about the command)\n\n");
}

int run_string(Session& session, std::string_view text) {
    auto commands = split_commands(text);
    if (!commands) {
        session.error(commands.error().message);
        return 1;
    }
    int rc = 0;
    for (const auto& words : *commands) {
        rc = run_command(session, words);
        if (session.quit_requested) break;
    }
    return rc;
}

// The interactive shell: one command line at a time until quit/exit or end
// of input. Banner and prompt only on a terminal, so piped input gives clean output.
int run_shell(Session& session) {
    const bool tty = ::isatty(STDIN_FILENO) == 1;
    if (tty && !session.quiet())
        fmt::print("Welcome to vireo, the virtualization interactive terminal.\n\n"
                   "Type:  'help' for help with commands\n"
                   "       'quit' to quit\n\n");
    int rc = 0;
    std::string line;
    for (;;) {
        if (tty) {
            fmt::print("vireo # ");
            std::fflush(stdout);
        }
        if (!read_stdin_line(line)) {
            if (tty) fmt::print("\n");
            break;
        }
        rc = run_string(session, line);
        if (session.quit_requested) break;
    }
    return rc;
}

int run(int argc, char** argv) {
    auto inv = parse_global(argc, argv);
    if (!inv) return 1;
    if (inv->help) {
        print_usage();
        return 0;
    }
    if (inv->version) {
        fmt::print("{}\n", VIREO_VERSION);
        return 0;
    }
    if (!inv->words.empty() && inv->words.front() == "_complete") {
        for (const auto& c : complete_words({inv->words.begin() + 1, inv->words.end()})) fmt::print("{}\n", c);
        return 0;
    }
    Session session(inv->options);
    if (inv->words.empty()) return run_shell(session);
    // One argument holding a whole command string: "start demo; list".
    if (inv->words.size() == 1 && inv->words.front().find_first_of(" \t;") != std::string::npos)
        return run_string(session, inv->words.front());
    return run_command(session, inv->words);
}

}  // namespace

int run_vireo(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        fmt::print(stderr, "error: internal error: {}\n", e.what());
        return 1;
    }
}

}  // namespace vireo::cli
