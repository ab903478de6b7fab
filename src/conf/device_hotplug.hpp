// Devices plugged into and out of a domain definition by one generic shape
// (attach-device / detach-device / detach-device-alias of <rng>, <input>,
// <watchdog>, <channel>): one device document parsed by the domain parser's own device
// parser, added where a cold define would put it, found again for detach.
#pragma once

#include <cstddef>
#include <string_view>
#include <variant>

#include "conf/domain.hpp"
#include "util/error.hpp"

namespace vireo::conf {

// The device kinds the generic attach/detach handles.
// CharDev: a <channel> (serials and consoles are not pluggable).
using PluggableDevice = std::variant<Rng, Input, Watchdog, CharDev>;

// Which list of a definition's <devices> holds a kind, and its element name.
template <class Device>
struct PluggableKind;
template <>
struct PluggableKind<Rng> {
    static constexpr auto list = &Devices::rngs;
    static constexpr std::string_view name = "rng";
};
template <>
struct PluggableKind<Input> {
    static constexpr auto list = &Devices::inputs;
    static constexpr std::string_view name = "input";
};
template <>
struct PluggableKind<Watchdog> {
    static constexpr auto list = &Devices::watchdogs;
    static constexpr std::string_view name = "watchdog";
};
template <>
struct PluggableKind<CharDev> {
    static constexpr auto list = &Devices::channels;
    static constexpr std::string_view name = "channel";
};

// True for an element name the generic attach/detach handles.
bool is_pluggable_kind(std::string_view element);

// One <rng>, <input>, <watchdog> or <channel> document.
Result<PluggableDevice> parse_pluggable_device_xml(std::string_view xml);

// `def` with `dev` added as a cold define places it (libvirt's address and
// alias; the document's own address and alias checked against the
// domain's); libvirt's refusals (a second watchdog, a channel the domain
// has already). `def` untouched on error.
Result<DomainDef> with_device_attached(const DomainDef& def, PluggableDevice dev);

// The device of `def` a detach-device document means (the same kind-defining
// fields; its alias and address too when the document gives them), else
// libvirt's NotFound.
Result<std::size_t> find_device_for_detach(const DomainDef& def, const PluggableDevice& dev);

}  // namespace vireo::conf
