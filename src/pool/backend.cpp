// The registry of pool backends by type name.
#include "pool/backend.hpp"

#include <functional>
#include <map>

namespace vireo::pool {

namespace {

struct Entry {
    std::function<std::unique_ptr<Backend>()> make;  // null: known but not available here
    std::string_view why_not;
};

const std::map<std::string_view, Entry>& registry() {
    static const std::map<std::string_view, Entry> r = {
        {"dir", {make_dir_backend, ""}},
        {"fs", {make_fs_backend, ""}},
        {"disk", {make_disk_backend, ""}},
        {"logical", {nullptr, "LVM needs device-mapper, which this host's kernel does not provide"}},
        {"netfs", {nullptr, "this host has no NFS client support in its kernel"}},
        {"iscsi", {nullptr, "this host has no iSCSI initiator"}},
    };
    return r;
}

}  // namespace

Result<std::unique_ptr<Backend>> make_backend(std::string_view type) {
    auto it = registry().find(type);
    if (it == registry().end())
        return fail(ErrorCode::Unsupported, "storage pool type '{}' is not supported (supported: dir, fs, disk)", type);
    if (!it->second.make)
        return fail(ErrorCode::Unsupported, "storage pool type '{}' is not available: {}", type, it->second.why_not);
    return it->second.make();
}

}  // namespace vireo::pool
