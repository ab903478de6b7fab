#include "qemu/qemu_conf.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <optional>
#include <variant>

#include "qemu/save_compressor.hpp"
#include "util/files.hpp"

namespace vireo::qemu {

namespace {

using Value = std::variant<std::string, long long, std::vector<std::string>>;

struct Setting {
    std::string key;
    Value value;
};

bool is_key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// A quoted string at the start of `s` (after the opening quote): its text,
// and `s` advanced past the closing quote.
Result<std::string> take_string(std::string_view& s) {
    std::string out;
    while (!s.empty()) {
        char c = s.front();
        s.remove_prefix(1);
        if (c == '"') return out;
        if (c == '\\') {
            if (s.empty()) break;
            c = s.front();
            s.remove_prefix(1);
        }
        out += c;
    }
    return fail(ErrorCode::InvalidArg, "unterminated string (a '\"' is missing)");
}

// One line: nullopt for blank and comment lines.
Result<std::optional<Setting>> parse_line(std::string_view line) {
    line = trim(line);
    if (line.empty() || line.front() == '#') return std::nullopt;
    std::size_t k = 0;
    while (k < line.size() && is_key_char(line[k])) ++k;
    if (k == 0) return fail(ErrorCode::InvalidArg, "expected 'key = value', found '{}'", line);
    Setting st;
    st.key = std::string(line.substr(0, k));
    std::string_view rest = trim(line.substr(k));
    if (rest.empty() || rest.front() != '=')
        return fail(ErrorCode::InvalidArg, "expected '=' after '{}'", st.key);
    rest = trim(rest.substr(1));
    if (rest.empty()) return fail(ErrorCode::InvalidArg, "'{}' has no value", st.key);
    if (rest.front() == '"') {
        rest.remove_prefix(1);
        auto text = take_string(rest);
        if (!text) return std::unexpected(text.error());
        st.value = std::move(*text);
    } else if (rest.front() == '[') {
        // A list of quoted strings on this line: [ "a", "b" ] or [].
        rest = trim(rest.substr(1));
        std::vector<std::string> items;
        while (!rest.empty() && rest.front() != ']') {
            if (rest.front() != '"')
                return fail(ErrorCode::InvalidArg, "'{}': a list holds quoted strings, not '{}'", st.key, rest);
            rest.remove_prefix(1);
            auto text = take_string(rest);
            if (!text) return std::unexpected(text.error());
            items.push_back(std::move(*text));
            rest = trim(rest);
            if (!rest.empty() && rest.front() == ',') rest = trim(rest.substr(1));
        }
        if (rest.empty()) return fail(ErrorCode::InvalidArg, "'{}': the list has no closing ']'", st.key);
        rest.remove_prefix(1);
        st.value = std::move(items);
    } else {
        std::size_t n = 0;
        if (rest.front() == '-') ++n;
        while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
        if (n == 0 || (n == 1 && rest.front() == '-'))
            return fail(ErrorCode::InvalidArg, "'{}': the value must be a quoted string or a number, not '{}'",
                        st.key, rest);
        errno = 0;
        long long v = std::strtoll(std::string(rest.substr(0, n)).c_str(), nullptr, 10);
        if (errno == ERANGE) return fail(ErrorCode::InvalidArg, "'{}': number out of range", st.key);
        st.value = v;
        rest.remove_prefix(n);
    }
    rest = trim(rest);
    if (!rest.empty() && rest.front() != '#')
        return fail(ErrorCode::InvalidArg, "unexpected '{}' after the value of '{}'", rest, st.key);
    return st;
}

Status apply(const Setting& st, QemuDriverConfig& cfg) {
    if (st.key == "save_image_format") {
        const auto* text = std::get_if<std::string>(&st.value);
        if (!text) return fail(ErrorCode::InvalidArg, "save_image_format must be a quoted string");
        auto format = parse_save_image_format(*text);
        if (!format)
            return fail(ErrorCode::InvalidArg, "save_image_format '{}' is not a save image format (one of: {})",
                        *text, save_image_format_names());
        cfg.save_image_format = *format;
        return {};
    }
    if (st.key == "malloc_hugepages") {
        const auto* number = std::get_if<long long>(&st.value);
        if (!number || (*number != 0 && *number != 1))
            return fail(ErrorCode::InvalidArg, "malloc_hugepages must be 0 or 1");
        cfg.malloc_hugepages = *number == 1;
        return {};
    }
    if (st.key == "user" || st.key == "group") {
        const auto* text = std::get_if<std::string>(&st.value);
        if (!text || text->empty() || text->find(':') != std::string::npos)
            return fail(ErrorCode::InvalidArg, "{} must be a quoted account name or \"+N\"", st.key);
        (st.key == "user" ? cfg.dac_user : cfg.dac_group) = *text;
        return {};
    }
    if (st.key == "guest_id_range") {
        const auto* text = std::get_if<std::string>(&st.value);
        if (!text) return fail(ErrorCode::InvalidArg, "guest_id_range must be a quoted \"FIRST-LAST\"");
        auto range = security::parse_id_range(*text);
        if (!range) return std::unexpected(range.error());
        cfg.guest_id_range = *range;
        return {};
    }
    if (st.key == "dynamic_ownership") {
        const auto* number = std::get_if<long long>(&st.value);
        if (!number || (*number != 0 && *number != 1))
            return fail(ErrorCode::InvalidArg, "dynamic_ownership must be 0 or 1");
        cfg.dynamic_ownership = *number == 1;
        return {};
    }
    if (st.key == "namespaces") {
        const auto* list = std::get_if<std::vector<std::string>>(&st.value);
        if (!list) return fail(ErrorCode::InvalidArg, "namespaces must be a list: [ \"mount\" ] or []");
        for (const auto& ns : *list)
            if (ns != "mount")
                return fail(ErrorCode::InvalidArg, "namespaces: '{}' is not a namespace vireo makes (only \"mount\")", ns);
        cfg.mount_namespace = !list->empty();
        return {};
    }
    return fail(ErrorCode::InvalidArg,
                "unknown setting '{}' (known: save_image_format, malloc_hugepages, user, group, guest_id_range, "
                "dynamic_ownership, namespaces)",
                st.key);
}

}  // namespace

Status parse_qemu_conf(std::string_view text, std::string_view origin, QemuDriverConfig& cfg) {
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        auto parsed = parse_line(line);
        Status applied = parsed ? (*parsed ? apply(**parsed, cfg) : Status{}) : Status(std::unexpected(parsed.error()));
        if (!applied)
            return fail(ErrorCode::InvalidArg, "{}:{}: {}", origin, line_no, applied.error().message);
    }
    return {};
}

Status load_qemu_conf(const std::filesystem::path& file, QemuDriverConfig& cfg) {
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0 && errno == ENOENT) return {};
    auto text = files::read(file);
    if (!text) return std::unexpected(text.error().context(fmt::format("cannot read '{}'", file.string())));
    return parse_qemu_conf(*text, file.string(), cfg);
}

}  // namespace vireo::qemu
