// Image names beyond plain paths, as QEMU takes them: "file:<path>", NBD
// URIs ("nbd://host:port/export", "nbd+unix:///export?socket=path",
// "nbd:unix:<path>"), "json:{...}" (block options as JSON, nested or with
// dotted keys), and --image-opts strings ("driver=qcow2,file.filename=x").
// open_image() understands all of them, so every command and backing file
// name does.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "storage/image.hpp"
#include "storage/nbd.hpp"

namespace vireo::storage {

// Where an image is and which format it was named with.
struct ImageLocation {
    std::optional<ImageFormat> format;  // named by a "driver" option
    std::string label;                  // the format info reports when a protocol driver was named ("nbd", "file")
    std::optional<std::filesystem::path> path;
    std::optional<NbdAddress> nbd;
    bool read_only = false;             // "read-only": "on"
};

// Whether `name` is one of the forms above rather than a plain path.
bool is_location_name(std::string_view name);

// The location a name gives, with QEMU's messages for what it refuses
// ("Unknown driver", "Block format 'qcow2' does not support the option").
Result<ImageLocation> parse_location(std::string_view name);

// An --image-opts string (key=value pairs, ",," a literal comma, the first
// without a key meaning "file") as the equivalent "json:" name.
Result<std::string> image_opts_to_json(std::string_view opts);

}  // namespace vireo::storage
