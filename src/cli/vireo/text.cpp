#include "cli/vireo/text.hpp"

#include <cstdio>
#include <cstdlib>

#include <algorithm>

namespace vireo::cli {

bool read_stdin_line(std::string& line) {
    char* buf = nullptr;
    std::size_t cap = 0;
    const ssize_t n = ::getline(&buf, &cap, stdin);
    if (n < 0) {
        std::free(buf);
        line.clear();
        return false;
    }
    auto len = static_cast<std::size_t>(n);
    if (len > 0 && buf[len - 1] == '\n') --len;
    line.assign(buf, len);
    std::free(buf);
    return true;
}

std::size_t display_width(std::string_view text) {
    // Count bytes that do not continue a multi-byte sequence.
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string Table::render(bool with_header) const {
    const std::size_t columns = header_.size();
    std::vector<std::size_t> widths(columns, 0);
    // Without the header (-q), only the rows set the widths, as in virsh.
    if (with_header)
        for (std::size_t c = 0; c < columns; ++c) widths[c] = display_width(header_[c]);
    for (const auto& row : rows_)
        for (std::size_t c = 0; c < columns && c < row.size(); ++c)
            widths[c] = std::max(widths[c], display_width(row[c]));

    auto line = [&](const std::vector<std::string>& cells) {
        std::string out = " ";
        for (std::size_t c = 0; c < columns; ++c) {
            const std::string& cell = c < cells.size() ? cells[c] : std::string();
            out += cell;
            if (c + 1 < columns) out += std::string(widths[c] - display_width(cell) + 3, ' ');
        }
        out += '\n';
        return out;
    };

    std::string out;
    if (with_header) {
        out += line(header_);
        std::size_t rule = 0;
        for (auto w : widths) rule += w + 3;
        out += std::string(rule, '-') + '\n';
    }
    for (const auto& row : rows_) out += line(row);
    return out;
}

Result<std::vector<CommandWords>> split_commands(std::string_view line) {
    std::vector<CommandWords> commands;
    CommandWords current;
    std::string word;
    bool in_word = false;

    auto end_word = [&] {
        if (in_word) current.push_back(std::move(word));
        word.clear();
        in_word = false;
    };
    auto end_command = [&] {
        end_word();
        if (!current.empty()) commands.push_back(std::move(current));
        current.clear();
    };

    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '\'') {
            const auto close = line.find(c, i + 1);
            if (close == std::string_view::npos) return fail(ErrorCode::InvalidArg, "missing '");
            word += line.substr(i + 1, close - i - 1);
            in_word = true;
            i = close;
        } else if (c == '"') {
            // Inside double quotes a backslash escapes the next character.
            std::size_t j = i + 1;
            for (; j < line.size() && line[j] != '"'; ++j) {
                if (line[j] == '\\' && j + 1 < line.size()) ++j;
                word += line[j];
            }
            if (j >= line.size()) return fail(ErrorCode::InvalidArg, "missing \"");
            in_word = true;
            i = j;
        } else if (c == '\\') {
            if (i + 1 < line.size()) word += line[++i];
            in_word = true;
        } else if (c == ' ' || c == '\t') {
            end_word();
        } else if (c == ';' || c == '\n') {
            end_command();
        } else if (c == '#' && !in_word) {
            const auto nl = line.find('\n', i);
            if (nl == std::string_view::npos) break;
            i = nl - 1;
        } else {
            word += c;
            in_word = true;
        }
    }
    end_command();
    return commands;
}

std::string shell_quote(std::string_view word) {
    if (!word.empty() && word.find_first_of(" \t'\"\\;#") == std::string_view::npos) return std::string(word);
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

}  // namespace vireo::cli
