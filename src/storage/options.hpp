// The option words qemu-img's image options use: sizes ("10G", qemu_strtosz)
// and the -o creation options of raw and qcow2 images.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "storage/image.hpp"

namespace vireo::storage {

// qemu_strtosz: "10G", "512", "1.5M", "4k" (binary units).
Result<uint64_t> parse_size(const std::string& s);

// The value types of -o options, as QEMU parses them before anything else.
enum class OptionType { String, Size, Number, Bool };
struct CreateOptionDesc {
    std::string_view name;
    OptionType type;
    std::string_view default_value;  // printed when not given ("" = not printed)
};
// The creation options of a `fmt` image in the order qemu-img prints them
// in its "Formatting ..." line (the format's, then the file protocol's).
std::vector<CreateOptionDesc> create_option_order(ImageFormat fmt);
// The first check of -o values: known names, and values of their type
// ("Parameter 'x' expects ..."); values a format checks at creation
// (compat, compression_type, preallocation) pass here.
Status check_create_option_types(ImageFormat fmt, const std::map<std::string, std::string>& o);
// Secret objects by id (qemu's --object secret,id=...,data=|file=): the
// values that key-secret, encrypt.key-secret, new-secret and old-secret
// name.
using Secrets = std::map<std::string, std::string>;

// The value of secret `id`, or QEMU's "No secret with id 'x'".
Result<std::string> lookup_secret(const Secrets& secrets, const std::string& id);

// Creation options for a `fmt` image from -o values (size, preallocation,
// compat, cluster_size, refcount_bits, lazy_refcounts, extended_l2,
// compression_type, backing_file, backing_fmt, data_file, data_file_raw;
// LUKS's key-secret, cipher-alg, cipher-mode, ivgen-alg, ivgen-hash-alg,
// hash-alg, iter-time, and the same under encrypt. for qcow2 with
// encrypt.format; vmdk's subformat, adapter_type, hwversion,
// toolsversion, zeroed_grain), with qemu-img's messages ("Invalid
// parameter 'x'"). Secrets named are looked up in `secrets`.
Result<CreateOptions> parse_create_options(ImageFormat fmt, const std::map<std::string, std::string>& o,
                                           const Secrets& secrets = {});

// One option as `-o help` lists it: name, value type, description.
struct OptionHelp {
    std::string_view name, type, description;
};

// The -o options of creating a `fmt` image, sorted by name, as qemu-img
// lists them; `with_file`: with the file protocol's options merged in (what
// qemu-img lists when the image's file name is given).
std::vector<OptionHelp> create_option_help(ImageFormat fmt, bool with_file);

// The options amend takes for a `fmt` image (Unsupported for raw:
// "Format driver 'raw' does not support option amendment").
Result<std::vector<OptionHelp>> amend_option_help(ImageFormat fmt);

}  // namespace vireo::storage
