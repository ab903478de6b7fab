// The vireo program: global options, then one command, a command string
// ("start demo; list"), or the interactive shell when no command is given.
#pragma once

#include <string>
#include <vector>

namespace vireo::cli {

// Entry point of the vireo executable; returns the exit status.
int run_vireo(int argc, char** argv);

// Candidates for bash completion of `words` (the command line after
// "vireo", the last word being the one under the cursor, possibly empty):
// global options, verbs, a verb's options, or domain names.
std::vector<std::string> complete_words(const std::vector<std::string>& words);

}  // namespace vireo::cli
