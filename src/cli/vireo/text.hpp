// Text helpers of the vireo CLI: virsh's table layout and its command-line
// tokenizer (used by the interactive shell and by `vireo "cmd1; cmd2"`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::cli {

// Width of a UTF-8 string in terminal columns (one per code point).
std::size_t display_width(std::string_view text);

// A table laid out as virsh lays out its tables:
//    Id   Name   State
//   ----------------------
//    1    test   running
// a leading space, columns padded to their widest cell and separated by
// three spaces, the last column unpadded, and a rule as wide as the columns
// plus three per column. A trailing blank line is added by the caller.
class Table {
public:
    explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    // `with_header` false is the -q (quiet) form: rows only.
    [[nodiscard]] std::string render(bool with_header = true) const;

private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

// One command: its words after quote and escape processing.
using CommandWords = std::vector<std::string>;

// Split a command string as virsh's shell does: words separated by blanks,
// 'single' and "double" quotes, backslash escapes, commands separated by ';'
// or newlines, '#' at the start of a word begins a comment to the end of line.
// Empty commands are dropped. An unterminated quote is an error.
Result<std::vector<CommandWords>> split_commands(std::string_view line);

// Quote a word for display in a shell-like command line when needed.
std::string shell_quote(std::string_view word);

// Read one line from stdin into `line`, without its '\n' (as std::getline
// does). False at end of input with nothing read. C stdio instead of
// std::cin: no <iostream> in the CLI spares every run the iostream and
// locale start-up.
bool read_stdin_line(std::string& line);

}  // namespace vireo::cli
