// Key codes for send-key (virsh send-key, virDomainSendKey): the codesets
// a caller may name keys in, the names of the Linux codeset (KEY_A, ...),
// and the translation to QEMU's key numbers (qnum: XT scancodes, with the
// 0xe0-prefixed keys as 0x80 | code), which QMP send-key takes.
//
// Codesets: linux, xt, atset1, xt_kbd, qnum. libvirt's others (atset2,
// atset3, os_x, usb, win32) are refused by name.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace vireo::driver {

enum class KeyCodeset { Linux, Xt, Atset1, XtKbd, Qnum };

// "linux" -> Linux, ...; virsh's error for a name it does not know,
// Unsupported for libvirt's codesets vireo does not translate.
Result<KeyCodeset> keycodeset_from_name(std::string_view name);
std::string_view keycodeset_name(KeyCodeset set);

// The code of a key name in `set` (only the Linux codeset has names, as in
// libvirt: "KEY_A" -> 30); nullopt for an unknown name.
std::optional<unsigned> keycode_from_name(KeyCodeset set, std::string_view name);

// Every name of `set` (KEY_ESC, ...), for completion; empty without names.
std::vector<std::string> keycode_names(KeyCodeset set);
// The codesets' names.
std::vector<std::string> keycodeset_names();

// QEMU's number for `code` of `set`; nullopt when the key has none.
std::optional<unsigned> keycode_to_qnum(KeyCodeset set, unsigned code);

// The key list of the send-key operation: decimal codes, comma-separated
// ("29,56,111"); InvalidArg for anything else, and for an empty list or
// more than kMaxSendKeys keys.
std::string join_keycodes(const std::vector<unsigned>& codes);
Result<std::vector<unsigned>> split_keycodes(std::string_view text);

// At most this many keys in one send-key (libvirt's VIR_DOMAIN_SEND_KEY_MAX_KEYS).
inline constexpr unsigned kMaxSendKeys = 16;

}  // namespace vireo::driver
