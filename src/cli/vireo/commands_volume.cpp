// Storage volume verbs, as virsh has them: vol-create, vol-create-as,
// vol-create-from, vol-clone, vol-delete, vol-wipe, vol-resize, vol-upload,
// vol-download, vol-info, vol-list, vol-path, vol-name, vol-key, vol-pool,
// vol-dumpxml.
#include "cli/vireo/commands.hpp"
#include "cli/vireo/pool_format.hpp"
#include "cli/vireo/session.hpp"
#include "cli/vireo/storage_lookup.hpp"
#include "cli/vireo/transfer.hpp"
#include "util/files.hpp"

namespace vireo::cli {

namespace {

constexpr OptSpec kVolOpt{"vol", OptType::String, "vol name, key or path", true, true};
constexpr OptSpec kVolPoolOpt{"pool", OptType::String, "pool name or uuid"};
constexpr OptSpec kPreallocOpt{"prealloc-metadata", OptType::Bool,
                               "preallocate metadata (for qcow2 instead of full allocation)"};
constexpr OptSpec kReflinkOpt{"reflink", OptType::Bool, "use btrfs COW lightweight copy"};
constexpr OptSpec kPrintXmlOpt{"print-xml", OptType::Bool, "print XML document, but don't define/create"};

std::optional<driver::VolumeSummary> named_volume(Session& s, const Args& a) {
    return find_volume(s, a.get("vol"), a.get("pool"));
}

std::optional<std::uint64_t> size_option(Session& s, const Args& a, std::string_view name) {
    auto size = parse_size(a.get(name));
    if (size) return *size;
    s.error(fmt::format("Malformed size {}", a.get(name)), size.error());
    return std::nullopt;
}

driver::VolumeCreateFlags create_flags(const Args& a) {
    driver::VolumeCreateFlags flags;
    flags.prealloc_metadata = a.has("prealloc-metadata");
    flags.reflink = a.has("reflink");
    return flags;
}

int cmd_vol_create(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    const std::string file = a.get("file");
    auto xml = files::read(file);
    if (!xml) {
        s.error(fmt::format("Failed to open file '{}'", file), xml.error());
        return 1;
    }
    auto vol = pool_api(s)->create_volume(pool->name, *xml, create_flags(a));
    if (!vol) {
        s.error(fmt::format("Failed to create vol from {}", file), vol.error());
        return 1;
    }
    s.info("Vol {} created from {}\n\n", vol->name, file);
    return 0;
}

int cmd_vol_create_as(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    VolumeXmlSpec spec;
    spec.name = a.get("name");
    auto capacity = size_option(s, a, "capacity");
    if (!capacity) return 1;
    spec.capacity = *capacity;
    if (a.has("allocation")) {
        auto allocation = size_option(s, a, "allocation");
        if (!allocation) return 1;
        spec.allocation = allocation;
    }
    spec.format = a.get("format");
    if (a.has("backing-vol")) {
        // As virsh: the backing volume by name in this pool, else by key or path.
        auto backing = find_volume(s, a.get("backing-vol"), pool->name);
        if (!backing) return 1;
        spec.backing_path = backing->path;
        // Without --backing-vol-format the backing volume's own format is
        // written down, so that the image never has its format probed.
        spec.backing_format = a.get("backing-vol-format", backing->format);
    }
    const std::string xml = build_volume_xml(spec);
    if (a.has("print-xml")) {
        s.out("{}\n", xml);
        return 0;
    }
    auto vol = pool_api(s)->create_volume(pool->name, xml, create_flags(a));
    if (!vol) {
        s.error(fmt::format("Failed to create vol {}", spec.name), vol.error());
        return 1;
    }
    s.info("Vol {} created\n\n", vol->name);
    return 0;
}

int cmd_vol_create_from(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    auto input = find_volume(s, a.get("vol"), a.get("inputpool"), "inputpool");
    if (!input) return 1;
    const std::string file = a.get("file");
    auto xml = files::read(file);
    if (!xml) {
        s.error(fmt::format("Failed to open file '{}'", file), xml.error());
        return 1;
    }
    auto vol = pool_api(s)->create_volume_from(pool->name, *xml, input->pool, input->name, create_flags(a));
    if (!vol) {
        s.error(fmt::format("Failed to create vol from {}", file), vol.error());
        return 1;
    }
    s.info("Vol {} created from input vol {}\n\n", vol->name, input->name);
    return 0;
}

int cmd_vol_clone(Session& s, const Args& a) {
    auto source = named_volume(s, a);
    if (!source) return 1;
    auto* api = pool_api(s);
    auto source_xml = api->volume_xml(source->pool, source->name);
    if (!source_xml) {
        s.error(fmt::format("Failed to clone vol from {}", source->name), source_xml.error());
        return 1;
    }
    auto xml = clone_volume_xml(*source_xml, a.get("newname"));
    if (!xml) {
        s.error(fmt::format("Failed to clone vol from {}", source->name), xml.error());
        return 1;
    }
    if (a.has("print-xml")) {
        s.out("{}\n", *xml);
        return 0;
    }
    auto vol = api->create_volume_from(source->pool, *xml, source->pool, source->name, create_flags(a));
    if (!vol) {
        s.error(fmt::format("Failed to clone vol from {}", source->name), vol.error());
        return 1;
    }
    s.info("Vol {} cloned from {}\n\n", vol->name, source->name);
    return 0;
}

int cmd_vol_delete(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    if (auto st = pool_api(s)->delete_volume(vol->pool, vol->name); !st) {
        s.error(fmt::format("Failed to delete vol {}", a.get("vol")), st.error());
        return 1;
    }
    s.info("Vol {} deleted\n\n", a.get("vol"));
    return 0;
}

// virsh's algorithm names; vireo does the ones it can do honestly.
Result<driver::WipeAlgorithm> wipe_algorithm(std::string_view name) {
    if (name.empty() || name == "zero") return driver::WipeAlgorithm::Zero;
    if (name == "random") return driver::WipeAlgorithm::Random;
    if (name == "trim") return driver::WipeAlgorithm::Trim;
    static constexpr std::string_view kPatterns[] = {"nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7",
                                                     "pfitzner33"};
    for (auto p : kPatterns)
        if (name == p)
            return fail(ErrorCode::Unsupported,
                        "wipe algorithm '{}' is not supported by vireo (use zero, random or trim)", name);
    return fail(ErrorCode::InvalidArg, "Unsupported algorithm '{}'", name);
}

int cmd_vol_wipe(Session& s, const Args& a) {
    auto algorithm = wipe_algorithm(a.get("algorithm"));
    if (!algorithm) {
        s.error(algorithm.error().message);
        return 1;
    }
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    if (auto st = pool_api(s)->wipe_volume(vol->pool, vol->name, *algorithm); !st) {
        s.error(fmt::format("Failed to wipe vol {}", a.get("vol")), st.error());
        return 1;
    }
    s.info("Vol {} wiped\n\n", a.get("vol"));
    return 0;
}

int cmd_vol_resize(Session& s, const Args& a) {
    std::string text = a.get("capacity");
    driver::VolumeResizeFlags flags;
    flags.delta = a.has("delta");
    flags.shrink = a.has("shrink");
    flags.allocate = a.has("allocate");
    // A negative size is the convenient spelling of "--delta --shrink": the API
    // takes the amount to remove as a positive number.
    if (text.starts_with('-')) {
        if (!flags.delta || !flags.shrink) {
            s.error("negative size requires --delta and --shrink");
            return 1;
        }
        text.erase(0, 1);
    }
    auto capacity = parse_size(text);
    if (!capacity) {
        s.error(fmt::format("Malformed size {}", a.get("capacity")), capacity.error());
        return 1;
    }
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    const std::string_view how = flags.delta ? "by" : "to";
    if (auto st = pool_api(s)->resize_volume(vol->pool, vol->name, *capacity, flags); !st) {
        s.error(fmt::format("Failed to change size of volume '{}' {} {}", vol->name, how, a.get("capacity")),
                st.error());
        return 1;
    }
    s.info("Size of volume '{}' successfully changed {} {}\n\n", vol->name, how, a.get("capacity"));
    return 0;
}

driver::TransferRange transfer_range(const Args& a) {
    driver::TransferRange range;
    range.offset = a.number("offset").value_or(0);
    range.length = a.number("length").value_or(0);
    range.sparse = a.has("sparse");
    return range;
}

int cmd_vol_upload(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    const std::string file = a.get("file");
    auto st = upload_file(*pool_api(s), *vol, file, transfer_range(a), !s.quiet());
    if (!st) {
        s.error(fmt::format("cannot upload to volume {}", a.get("vol")), st.error());
        return 1;
    }
    return 0;
}

int cmd_vol_download(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    const std::string file = a.get("file");
    auto st = download_file(*pool_api(s), *vol, file, transfer_range(a), !s.quiet());
    if (!st) {
        s.error(fmt::format("cannot download from volume {}", a.get("vol")), st.error());
        return 1;
    }
    return 0;
}

int cmd_vol_info(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    if (a.has("json"))
        s.out("{}\n", volume_json(*vol).dump(2));
    else
        s.out("{}\n", format_volume_info(*vol, a.has("bytes"), a.has("physical")));
    return 0;
}

int cmd_vol_list(Session& s, const Args& a) {
    auto pool = find_pool(s, a.get("pool"));
    if (!pool) return 1;
    auto vols = pool_api(s)->list_volumes(pool->name);
    if (!vols) {
        s.error("Failed to list volumes", vols.error());
        return 1;
    }
    if (a.has("json")) {
        nlohmann::json out = nlohmann::json::array();
        std::sort(vols->begin(), vols->end(), [](const auto& x, const auto& y) { return x.name < y.name; });
        for (const auto& v : *vols) out.push_back(volume_json(v));
        s.out("{}\n", out.dump(2));
        return 0;
    }
    s.out("{}\n", format_volume_table(std::move(*vols), a.has("details"), !s.quiet()));
    return 0;
}

int cmd_vol_path(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    s.out("{}\n\n", vol->path);
    return 0;
}

int cmd_vol_name(Session& s, const Args& a) {
    auto vol = find_volume(s, a.get("vol"), "");
    if (!vol) return 1;
    s.out("{}\n\n", vol->name);
    return 0;
}

int cmd_vol_key(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    s.out("{}\n\n", vol->key);
    return 0;
}

int cmd_vol_pool(Session& s, const Args& a) {
    auto vol = find_volume(s, a.get("vol"), "");
    if (!vol) return 1;
    if (!a.has("uuid")) {
        s.out("{}\n\n", vol->pool);
        return 0;
    }
    auto pool = find_pool(s, vol->pool);
    if (!pool) return 1;
    s.out("{}\n\n", pool->uuid.str());
    return 0;
}

int cmd_vol_dumpxml(Session& s, const Args& a) {
    auto vol = named_volume(s, a);
    if (!vol) return 1;
    auto xml = pool_api(s)->volume_xml(vol->pool, vol->name);
    if (!xml) {
        s.error(fmt::format("failed to get the XML of vol {}", vol->name), xml.error());
        return 1;
    }
    s.out("{}{}\n", *xml, xml->ends_with('\n') ? "" : "\n");
    return 0;
}

std::vector<OptSpec> transfer_options(std::string_view file_help) {
    return {kVolOpt,
            {"file", OptType::String, file_help, true, true},
            kVolPoolOpt,
            {"offset", OptType::Number, "volume offset to start at"},
            {"length", OptType::Number, "amount of data to transfer (default: all)"},
            {"sparse", OptType::Bool, "preserve sparseness of the volume (holes are not sent)"}};
}

}  // namespace

void add_volume_commands(std::vector<CommandSpec>& t) {
    const std::string_view g = "Storage Volume";
    t.push_back({"vol-create", g, "create a vol from an XML file",
                 "Create a vol from an XML file (libvirt's volume format).",
                 {{"pool", OptType::String, "pool name", true, true},
                  {"file", OptType::String, "file containing an XML vol description", true, true}, kPreallocOpt},
                 cmd_vol_create, true, true});
    t.push_back({"vol-create-as", g, "create a volume from a set of args",
                 "Create a vol: vol-create-as default a.qcow2 10G --format qcow2.",
                 {{"pool", OptType::String, "pool name", true, true},
                  {"name", OptType::String, "name of the volume", true, true},
                  {"capacity", OptType::String, "size of the vol, as scaled integer (default bytes)", true, true},
                  {"allocation", OptType::String, "initial allocation size, as scaled integer (default bytes)"},
                  {"format", OptType::String, "file format type raw,qcow2"},
                  {"backing-vol", OptType::String, "the backing volume if taking a snapshot"},
                  {"backing-vol-format", OptType::String, "format of backing volume if taking a snapshot"},
                  kPreallocOpt,
                  kPrintXmlOpt},
                 cmd_vol_create_as, true, true});
    t.push_back({"vol-create-from", g, "create a vol, using another volume as input",
                 "Create a vol from an existing volume (its contents converted to the new vol's format).",
                 {{"pool", OptType::String, "pool name", true, true},
                  {"file", OptType::String, "file containing an XML vol description", true, true},
                  {"vol", OptType::String, "input vol name or key", true, true},
                  {"inputpool", OptType::String, "pool name or uuid of the input vol's pool"},
                  kPreallocOpt,
                  kReflinkOpt},
                 cmd_vol_create_from, true, true});
    t.push_back({"vol-clone", g, "clone a volume.", "Clone an existing volume within the parent pool.",
                 {{"vol", OptType::String, "orig vol name or key", true, true},
                  {"newname", OptType::String, "clone name", true, true},
                  kVolPoolOpt,
                  kPreallocOpt,
                  kReflinkOpt,
                  kPrintXmlOpt},
                 cmd_vol_clone, true, true});
    t.push_back({"vol-delete", g, "delete a vol",
                 "Delete a given vol (refused while a running domain uses it).", {kVolOpt, kVolPoolOpt},
                 cmd_vol_delete, true, true});
    t.push_back({"vol-wipe", g, "wipe a vol", "Ensure data previously on a volume is not accessible to future reads.",
                 {kVolOpt, kVolPoolOpt, {"algorithm", OptType::String, "perform selected wiping algorithm (zero, random, trim)"}},
                 cmd_vol_wipe, true, true});
    t.push_back({"vol-resize", g, "resize a vol",
                 "Resizes a storage volume. This is safe only for storage volumes not in use by an active guest.",
                 {kVolOpt,
                  {"capacity", OptType::String, "new capacity for the vol, as scaled integer (default bytes)", true, true},
                  kVolPoolOpt,
                  {"allocate", OptType::Bool, "allocate the new capacity, rather than leaving it sparse"},
                  {"delta", OptType::Bool, "use capacity as a delta to current size, rather than the new size"},
                  {"shrink", OptType::Bool, "allow the resize to shrink the volume"}},
                 cmd_vol_resize, true, true});
    t.push_back({"vol-upload", g, "upload file contents to a volume",
                 "Upload file contents to a volume (a progress bar is shown on a terminal).",
                 transfer_options("file"), cmd_vol_upload, true, true});
    t.push_back({"vol-download", g, "download volume contents to a file",
                 "Download volume contents to a file (a progress bar is shown on a terminal).",
                 transfer_options("file"), cmd_vol_download});
    t.push_back({"vol-info", g, "storage vol information", "Returns basic information about the storage vol.",
                 {kVolOpt, kVolPoolOpt, {"bytes", OptType::Bool, "sizes are represented in bytes rather than pretty units"},
                  {"physical", OptType::Bool, "return the physical size of the volume in allocation field"}, kJsonOpt},
                 cmd_vol_info});
    t.push_back({"vol-list", g, "list vols", "Returns list of vols by pool.",
                 {{"pool", OptType::String, "pool name or uuid", true, true},
                  {"details", OptType::Bool, "display extended details for volumes"},
                  kJsonOpt},
                 cmd_vol_list});
    t.push_back({"vol-path", g, "returns the volume path for a given volume name or key",
                 "", {{"vol", OptType::String, "volume name or key", true, true}, kVolPoolOpt}, cmd_vol_path});
    t.push_back({"vol-name", g, "returns the volume name for a given volume key or path",
                 "", {{"vol", OptType::String, "volume key or path", true, true}}, cmd_vol_name});
    t.push_back({"vol-key", g, "returns the volume key for a given volume name or path",
                 "", {{"vol", OptType::String, "volume name or path", true, true}, kVolPoolOpt}, cmd_vol_key});
    t.push_back({"vol-pool", g, "returns the storage pool for a given volume key or path",
                 "", {{"vol", OptType::String, "volume key or path", true, true},
                      {"uuid", OptType::Bool, "return the pool uuid rather than pool name"}},
                 cmd_vol_pool});
    t.push_back({"vol-dumpxml", g, "vol information in XML", "Output the vol information as an XML dump to stdout.",
                 {kVolOpt, kVolPoolOpt}, cmd_vol_dumpxml});
}

}  // namespace vireo::cli
