// The option words qemu-img's image options use: sizes ("10G", qemu_strtosz)
// and the -o creation options of raw and qcow2 images.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "storage/image.hpp"

namespace vireo::storage {

// qemu_strtosz: "10G", "512", "1.5M", "4k" (binary units).
Result<uint64_t> parse_size(const std::string& s);

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

}  // namespace vireo::storage
