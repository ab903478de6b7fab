#include "driver/keycodes.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace vireo::driver {

namespace {

struct LinuxKey {
    unsigned code;
    std::string_view name;  // without KEY_
    unsigned qnum;
};

// The Linux input codes of a PC keyboard (linux/input-event-codes.h) and
// their XT scancodes. Codes 1..83 are the scancodes themselves.
constexpr std::array<LinuxKey, 118> kLinuxKeys{{
    {1, "ESC", 0x01},        {2, "1", 0x02},          {3, "2", 0x03},           {4, "3", 0x04},
    {5, "4", 0x05},          {6, "5", 0x06},          {7, "6", 0x07},           {8, "7", 0x08},
    {9, "8", 0x09},          {10, "9", 0x0a},         {11, "0", 0x0b},          {12, "MINUS", 0x0c},
    {13, "EQUAL", 0x0d},     {14, "BACKSPACE", 0x0e}, {15, "TAB", 0x0f},        {16, "Q", 0x10},
    {17, "W", 0x11},         {18, "E", 0x12},         {19, "R", 0x13},          {20, "T", 0x14},
    {21, "Y", 0x15},         {22, "U", 0x16},         {23, "I", 0x17},          {24, "O", 0x18},
    {25, "P", 0x19},         {26, "LEFTBRACE", 0x1a}, {27, "RIGHTBRACE", 0x1b}, {28, "ENTER", 0x1c},
    {29, "LEFTCTRL", 0x1d},  {30, "A", 0x1e},         {31, "S", 0x1f},          {32, "D", 0x20},
    {33, "F", 0x21},         {34, "G", 0x22},         {35, "H", 0x23},          {36, "J", 0x24},
    {37, "K", 0x25},         {38, "L", 0x26},         {39, "SEMICOLON", 0x27},  {40, "APOSTROPHE", 0x28},
    {41, "GRAVE", 0x29},     {42, "LEFTSHIFT", 0x2a}, {43, "BACKSLASH", 0x2b},  {44, "Z", 0x2c},
    {45, "X", 0x2d},         {46, "C", 0x2e},         {47, "V", 0x2f},          {48, "B", 0x30},
    {49, "N", 0x31},         {50, "M", 0x32},         {51, "COMMA", 0x33},      {52, "DOT", 0x34},
    {53, "SLASH", 0x35},     {54, "RIGHTSHIFT", 0x36}, {55, "KPASTERISK", 0x37}, {56, "LEFTALT", 0x38},
    {57, "SPACE", 0x39},     {58, "CAPSLOCK", 0x3a},  {59, "F1", 0x3b},         {60, "F2", 0x3c},
    {61, "F3", 0x3d},        {62, "F4", 0x3e},        {63, "F5", 0x3f},         {64, "F6", 0x40},
    {65, "F7", 0x41},        {66, "F8", 0x42},        {67, "F9", 0x43},         {68, "F10", 0x44},
    {69, "NUMLOCK", 0x45},   {70, "SCROLLLOCK", 0x46}, {71, "KP7", 0x47},       {72, "KP8", 0x48},
    {73, "KP9", 0x49},       {74, "KPMINUS", 0x4a},   {75, "KP4", 0x4b},        {76, "KP5", 0x4c},
    {77, "KP6", 0x4d},       {78, "KPPLUS", 0x4e},    {79, "KP1", 0x4f},        {80, "KP2", 0x50},
    {81, "KP3", 0x51},       {82, "KP0", 0x52},       {83, "KPDOT", 0x53},      {86, "102ND", 0x56},
    {87, "F11", 0x57},       {88, "F12", 0x58},       {89, "RO", 0x73},         {92, "HENKAN", 0x79},
    {94, "MUHENKAN", 0x7b},  {96, "KPENTER", 0x9c},   {97, "RIGHTCTRL", 0x9d},  {98, "KPSLASH", 0xb5},
    {99, "SYSRQ", 0x54},     {100, "RIGHTALT", 0xb8}, {102, "HOME", 0xc7},      {103, "UP", 0xc8},
    {104, "PAGEUP", 0xc9},   {105, "LEFT", 0xcb},     {106, "RIGHT", 0xcd},     {107, "END", 0xcf},
    {108, "DOWN", 0xd0},     {109, "PAGEDOWN", 0xd1}, {110, "INSERT", 0xd2},    {111, "DELETE", 0xd3},
    {113, "MUTE", 0xa0},     {114, "VOLUMEDOWN", 0xae}, {115, "VOLUMEUP", 0xb0}, {116, "POWER", 0xde},
    {117, "KPEQUAL", 0x59},  {119, "PAUSE", 0xc6},    {124, "YEN", 0x7d},       {125, "LEFTMETA", 0xdb},
    {126, "RIGHTMETA", 0xdc}, {127, "COMPOSE", 0xdd}, {142, "SLEEP", 0xdf},     {143, "WAKEUP", 0xe3},
    {158, "BACK", 0xea},     {159, "FORWARD", 0xe9},
}};

constexpr std::array<std::pair<KeyCodeset, std::string_view>, 5> kCodesets{{
    {KeyCodeset::Linux, "linux"}, {KeyCodeset::Xt, "xt"}, {KeyCodeset::Atset1, "atset1"},
    {KeyCodeset::XtKbd, "xt_kbd"}, {KeyCodeset::Qnum, "qnum"},
}};

}  // namespace

Result<KeyCodeset> keycodeset_from_name(std::string_view name) {
    for (const auto& [set, text] : kCodesets)
        if (text == name) return set;
    if (name == "rfb") return KeyCodeset::Qnum;  // libvirt's old name of qnum
    for (std::string_view other : {"atset2", "atset3", "os_x", "usb", "win32"})
        if (other == name) return fail(ErrorCode::Unsupported, "unsupported configuration: codeset '{}' is not supported by vireo", name);
    return fail(ErrorCode::InvalidArg, "unknown codeset: '{}'", name);
}

std::string_view keycodeset_name(KeyCodeset set) {
    for (const auto& [s, text] : kCodesets)
        if (s == set) return text;
    return "";
}

std::optional<unsigned> keycode_from_name(KeyCodeset set, std::string_view name) {
    if (set != KeyCodeset::Linux || !name.starts_with("KEY_")) return std::nullopt;
    name.remove_prefix(4);
    for (const auto& k : kLinuxKeys)
        if (k.name == name) return k.code;
    return std::nullopt;
}

std::vector<std::string> keycode_names(KeyCodeset set) {
    std::vector<std::string> out;
    if (set != KeyCodeset::Linux) return out;
    for (const auto& k : kLinuxKeys) out.push_back("KEY_" + std::string(k.name));
    return out;
}

std::vector<std::string> keycodeset_names() {
    std::vector<std::string> out;
    for (const auto& [set, text] : kCodesets) out.emplace_back(text);
    return out;
}

std::optional<unsigned> keycode_to_qnum(KeyCodeset set, unsigned code) {
    switch (set) {
        case KeyCodeset::Linux:
            for (const auto& k : kLinuxKeys)
                if (k.code == code) return k.qnum;
            return std::nullopt;
        case KeyCodeset::Xt:
            if (code >= 1 && code <= 0x7f) return code;
            return std::nullopt;
        case KeyCodeset::Atset1:
            // 0xe0-prefixed codes are written 0xe0NN
            if (code >= 1 && code <= 0x7f) return code;
            if ((code & 0xff00) == 0xe000 && (code & 0xff) >= 1 && (code & 0xff) <= 0x7f) return 0x80 | (code & 0x7f);
            return std::nullopt;
        case KeyCodeset::XtKbd:
        case KeyCodeset::Qnum:
            if (code >= 1 && code <= 0xff) return code;
            return std::nullopt;
    }
    return std::nullopt;
}

std::string join_keycodes(const std::vector<unsigned>& codes) {
    std::string out;
    for (unsigned c : codes) out += (out.empty() ? "" : ",") + std::to_string(c);
    return out;
}

Result<std::vector<unsigned>> split_keycodes(std::string_view text) {
    std::vector<unsigned> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        unsigned v = 0;
        auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size())
            return fail(ErrorCode::InvalidArg, "invalid argument: invalid key code '{}'", item);
        out.push_back(v);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    if (out.empty() || out.size() > kMaxSendKeys)
        return fail(ErrorCode::InvalidArg, "invalid argument: nkeycodes in virDomainSendKey must be in range [1, {}]", kMaxSendKeys);
    return out;
}

}  // namespace vireo::driver
