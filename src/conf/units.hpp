// libvirt's memory units (https://libvirt.org/formatdomain.html#memory-allocation).
//
// Units: b/bytes; KB (1000) / k, KiB (1024); MB / M, MiB; GB / G, GiB; TB / T,
// TiB; PB / P, PiB; EB / E, EiB. Single-letter and *iB units are powers of
// 1024, the two-letter *B units powers of 1000. Case-insensitive, as libvirt.
// The empty unit means the element's default (KiB for <memory>).
#pragma once

#include <cstdint>
#include <string_view>

#include "util/error.hpp"

namespace vireo::conf {

// Bytes per one `unit`; Unsupported/InvalidArg error for an unknown unit.
Result<std::uint64_t> unit_multiplier(std::string_view unit);

// value * unit in bytes, with overflow detection ("value too large").
Result<std::uint64_t> scale_to_bytes(std::uint64_t value, std::string_view unit,
                                     std::string_view default_unit = "KiB");

// value * unit rounded up to whole KiB (libvirt stores memory in KiB).
Result<std::uint64_t> scale_to_kib(std::uint64_t value, std::string_view unit,
                                   std::string_view default_unit = "KiB");

// Parse "1024", "4G", "512 MiB", "2GiB" into bytes; bare numbers use
// default_unit.
Result<std::uint64_t> parse_size(std::string_view text, std::string_view default_unit = "b");

}  // namespace vireo::conf
