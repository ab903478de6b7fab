// create, info, check, map, snapshot, resize, amend, measure.
#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "cli/img/common.hpp"
#include "cli/img/qjson.hpp"
#include "storage/amend.hpp"
#include "storage/bitmap_ops.hpp"
#include "storage/measure.hpp"
#include "storage/qcow2.hpp"
#include "storage/vmdk.hpp"

namespace vireo::img {

using namespace storage;

namespace {

// An option value as qemu-img prints it back: commas doubled.
std::string escaped(const std::string& v) {
    std::string out;
    for (char ch : v) {
        out += ch;
        if (ch == ',') out += ',';
    }
    return out;
}

// qemu-img's "Formatting ..." line: every option of the format's list (in
// its order) that was given or has a default; sizes and numbers as
// numbers, the rest as given (commas doubled).
std::string create_summary(const std::string& path, ImageFormat fmt, const std::map<std::string, std::string>& given) {
    std::string s = fmt::format("Formatting '{}', fmt={}", path, format_name(fmt));
    for (const auto& d : create_option_order(fmt)) {
        auto it = given.find(std::string(d.name));
        if (it == given.end()) {
            if (!d.default_value.empty()) s += fmt::format(" {}={}", d.name, d.default_value);
            continue;
        }
        switch (d.type) {
            case OptionType::Size: s += fmt::format(" {}={}", d.name, parse_size(it->second).value_or(0)); break;
            case OptionType::Number: s += fmt::format(" {}={}", d.name, std::strtoull(it->second.c_str(), nullptr, 0)); break;
            case OptionType::String: s += fmt::format(" {}={}", d.name, escaped(it->second)); break;
            case OptionType::Bool: s += fmt::format(" {}={}", d.name, it->second); break;
        }
    }
    return s;
}

QObjectPtr luks_json(const LuksInfo& l) {
    auto d = QValue::dict();
    d->put_str("ivgen-alg", l.ivgen_alg);
    if (!l.ivgen_hash_alg.empty()) d->put_str("ivgen-hash-alg", l.ivgen_hash_alg);
    d->put_str("hash-alg", l.hash_alg);
    d->put_str("cipher-alg", l.cipher_alg);
    d->put_str("uuid", l.uuid);
    d->put_str("cipher-mode", l.cipher_mode);
    auto slots = QValue::list();
    for (const auto& s : l.slots) {
        auto sd = QValue::dict();
        sd->put_bool("active", s.active);
        if (s.active) sd->put("iters", static_cast<int64_t>(s.iters));
        sd->put("key-offset", static_cast<int64_t>(s.key_offset));
        if (s.active) sd->put("stripes", static_cast<int64_t>(s.stripes));
        slots->append(sd);
    }
    d->put("slots", slots);
    d->put("payload-offset", static_cast<int64_t>(l.payload_offset));
    d->put("master-key-iters", static_cast<int64_t>(l.master_key_iters));
    return d;
}

QObjectPtr vmdk_json(const VmdkInfo& v) {
    auto d = QValue::dict();
    d->put("cid", static_cast<int64_t>(v.cid));
    d->put("parent-cid", static_cast<int64_t>(v.parent_cid));
    d->put_str("create-type", v.create_type);
    auto list = QValue::list();
    for (const auto& e : v.extents) {
        auto ed = QValue::dict();
        if (e.compressed) ed->put_bool("compressed", true);
        ed->put("virtual-size", static_cast<int64_t>(e.virtual_size));
        ed->put_str("filename", e.filename);
        if (e.cluster_size) ed->put("cluster-size", static_cast<int64_t>(*e.cluster_size));
        ed->put_str("format", e.format);
        list->append(ed);
    }
    d->put("extents", list);
    return d;
}

// The "format-specific" object, or nullptr for formats without one.
QObjectPtr format_specific(const ImageInfo& i) {
    QObjectPtr other;
    if (i.format == ImageFormat::Luks && i.luks) other = luks_json(*i.luks);
    else if (i.format == ImageFormat::Vmdk && i.vmdk) other = vmdk_json(*i.vmdk);
    if (other) {
        auto fs = QValue::dict();
        fs->put_str("type", std::string(format_name(i.format)));
        fs->put("data", other);
        return fs;
    }
    if (i.format != ImageFormat::Qcow2) return nullptr;
    auto data = QValue::dict();
    data->put_str("compat", i.version >= 3 ? "1.1" : "0.10");
    data->put_str("compression-type", i.compression_type);
    if (i.version >= 3) {
        data->put_bool("lazy-refcounts", i.lazy_refcounts);
        if (!i.bitmaps.empty()) {
            auto list = QValue::list();
            for (const auto& b : i.bitmaps) {
                auto flags = QValue::list();
                if (b.in_use) flags->append(QValue::string("in-use"));
                if (b.auto_enabled) flags->append(QValue::string("auto"));
                auto bd = QValue::dict();
                bd->put("flags", flags);
                bd->put_str("name", b.name);
                bd->put("granularity", static_cast<int64_t>(b.granularity));
                list->append(bd);
            }
            data->put("bitmaps", list);
        }
        data->put_bool("corrupt", i.corrupt);
        data->put_bool("extended-l2", i.extended_l2);
        if (!i.data_file.empty()) {
            data->put_str("data-file", i.data_file);
            data->put_bool("data-file-raw", i.data_file_raw);
        }
    }
    data->put("refcount-bits", i.refcount_bits);
    if (i.encrypted) {
        auto enc = i.luks ? luks_json(*i.luks) : QValue::dict();
        enc->put_str("format", i.encrypt_format);
        data->put("encrypt", enc);
    }
    auto fs = QValue::dict();
    fs->put_str("type", "qcow2");
    fs->put("data", data);
    return fs;
}

QObjectPtr snapshot_json(const SnapshotInfo& s) {
    auto d = QValue::dict();
    d->put_str("id", s.id);
    d->put_str("name", s.name);
    d->put("vm-state-size", static_cast<int64_t>(s.vm_state_size));
    d->put("date-sec", s.date_sec);
    d->put("date-nsec", s.date_nsec);
    d->put("vm-clock-sec", static_cast<int64_t>(s.vm_clock_nsec / 1000000000));
    d->put("vm-clock-nsec", static_cast<int64_t>(s.vm_clock_nsec % 1000000000));
    if (s.icount != UINT64_MAX) d->put("icount", static_cast<int64_t>(s.icount));
    return d;
}

QObjectPtr info_json(const ImageInfo& i) {
    auto d = QValue::dict();
    d->put_str("filename", i.filename);
    d->put_str("format", i.format_label.empty() ? std::string(format_name(i.format)) : i.format_label);
    if (i.has_dirty_flag) d->put_bool("dirty-flag", i.dirty);
    if (i.actual_size_known) d->put("actual-size", static_cast<int64_t>(i.actual_size));
    d->put("virtual-size", static_cast<int64_t>(i.virtual_size));
    if (i.cluster_size) d->put("cluster-size", *i.cluster_size);
    if (!i.backing_file.empty()) {
        d->put_str("backing-filename", i.backing_file);
        d->put_str("full-backing-filename", i.full_backing_file);
        if (!i.backing_format.empty()) d->put_str("backing-filename-format", i.backing_format);
    }
    if (!i.snapshots.empty()) {
        auto l = QValue::list();
        for (const auto& s : i.snapshots) l->append(snapshot_json(s));
        d->put("snapshots", l);
    }
    if (auto fs = format_specific(i)) d->put("format-specific", fs);
    if (i.encrypted) d->put_bool("encrypted", true);
    return d;
}

std::string snapshot_table(const std::vector<SnapshotInfo>& snaps) {
    std::string o = fmt::format("{:<10}{:<17}{:>8}{:>20}{:>13}{:>11}\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
    for (const auto& s : snaps) {
        char date[64];
        time_t ts = s.date_sec;
        struct tm tm{};
        localtime_r(&ts, &tm);
        std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
        uint64_t secs = s.vm_clock_nsec / 1000000000;
        std::string clock = fmt::format("{:02}:{:02}:{:02}.{:03}", secs / 3600, (secs / 60) % 60, secs % 60,
                                        (s.vm_clock_nsec / 1000000) % 1000);
        std::string icount = s.icount != UINT64_MAX ? std::to_string(s.icount) : "";
        o += fmt::format("{:<9} {:<16} {:>8}{:>20}{:>13}{:>11}\n", s.id, s.name, human_size(s.vm_state_size), date,
                         clock, icount);
    }
    return o;
}

// qemu's human dump of nested values: "key: value", nested dicts and
// lists one level (4 spaces) deeper, list items as "[n]", '-' in keys
// shown as ' '.
void dump_human(const QValue& v, int level, std::string& o) {
    std::string pad(static_cast<size_t>(level) * 4, ' ');
    auto line = [&](const std::string& label, const QObjectPtr& item) {
        bool nested = item->kind() == QValue::Kind::Dict || item->kind() == QValue::Kind::List;
        if (nested) {
            o += fmt::format("{}{}:\n", pad, label);
            dump_human(*item, level + 1, o);
        } else {
            o += fmt::format("{}{}: {}\n", pad, label, item->scalar_text());
        }
    };
    if (v.kind() == QValue::Kind::List) {
        for (size_t n = 0; n < v.items().size(); ++n) line(fmt::format("[{}]", n), v.items()[n]);
        return;
    }
    for (auto& [k, item] : v.ordered()) {
        std::string name = k;
        std::replace(name.begin(), name.end(), '-', ' ');
        line(name, item);
    }
}

std::string info_human(const ImageInfo& i) {
    std::string o = fmt::format("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\n", i.filename,
                                i.format_label.empty() ? std::string(format_name(i.format)) : i.format_label,
                                human_size(i.virtual_size), i.virtual_size,
                                i.actual_size_known ? human_size(i.actual_size) : std::string("unavailable"));
    if (i.encrypted) o += "encrypted: yes\n";
    if (i.cluster_size) o += fmt::format("cluster_size: {}\n", *i.cluster_size);
    if (!i.backing_file.empty()) {
        o += "backing file: " + i.backing_file;
        if (i.full_backing_file != i.backing_file) o += " (actual path: " + i.full_backing_file + ")";
        o += "\n";
        if (!i.backing_format.empty()) o += "backing file format: " + i.backing_format + "\n";
    }
    if (i.dirty) o += "cleanly shut down: no\n";
    if (!i.snapshots.empty()) o += "Snapshot list:\n" + snapshot_table(i.snapshots);
    if (auto fs = format_specific(i)) {
        o += "Format specific information:\n";
        for (auto& [k, v] : fs->ordered())
            if (k == "data") dump_human(*v, 1, o);
    }
    return o;
}

}  // namespace

int cmd_create(int argc, char** argv) {
    std::string fmt_name = "raw", backing_fmt, opts;
    std::optional<std::string> backing;
    bool quiet = false, unsafe = false;
    static const std::vector<option> kLong = long_options({}, false);
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'b': backing = optarg; break;
            case 'F': backing_fmt = optarg; break;
            case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
            case 'q': quiet = true; break;
            case 'u': unsafe = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (has_help_option(opts))
        return print_create_help(fmt_name, optind < argc ? std::optional<std::string>(argv[optind]) : std::nullopt);
    if (optind >= argc) return error_exit("Expecting image file name");
    std::string path = argv[optind++];
    auto failed = [&](const Error& e) {
        report(fmt::format("{}: {}", path, e.message));
        return 1;
    };
    auto fmt = parse_format(fmt_name);
    if (!fmt) return failed(fmt.error());
    // The protocol is looked up first (json: names cannot be created).
    if (path.starts_with("json:")) return failed(Error{ErrorCode::Unsupported, "Unknown protocol 'json'"});
    auto parsed = parse_options(opts);
    if (!parsed) return failed(parsed.error());
    auto& o = *parsed;
    if (backing) o["backing_file"] = *backing;
    if (!backing_fmt.empty()) o["backing_fmt"] = backing_fmt;
    if (optind < argc) {
        auto s = parse_size(argv[optind]);
        if (!s) {
            report("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
            report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            return 1;
        }
        o["size"] = std::to_string(*s);
        if (++optind < argc) return error_exit(fmt::format("Unexpected argument: {}", argv[optind]));
    }
    // The values' types first (before anything is printed, as qemu-img).
    if (auto st = check_create_option_types(*fmt, o); !st) return failed(st.error());
    // The backing file, as QEMU 7.2 checks it: never the image itself, and
    // its format must be given, not guessed (a guest-written backing file
    // could pass for another format). Unless -u, it is opened to check it
    // (and for the size when none is given).
    const std::string backing_file = o.count("backing_file") ? o["backing_file"] : "";
    const std::string backing_format = o.count("backing_fmt") ? o["backing_fmt"] : "";
    const bool has_backing = o.count("backing_file") > 0;
    if (has_backing) {
        if (backing_file == path) return failed(Error{ErrorCode::InvalidArg, "Error: Trying to create an image with the same filename as the backing file"});
        if (backing_file.empty()) return failed(Error{ErrorCode::InvalidArg, "Expected backing file name, got empty string"});
    }
    if (has_backing && !unsafe) {
        OpenOptions bo;
        bo.force_share = true;  // only looked at: qemu-img shares everything here
        bo.open_backing = false;
        Result<ImagePtr> b = std::unexpected(Error{});
        if (!backing_format.empty()) {
            auto bf = parse_driver(backing_format);
            if (bf) bo.format = *bf;
            else b = std::unexpected(bf.error());
        }
        if (backing_format.empty() || bo.format) b = open_image(resolve_backing_path(path, backing_file), bo);
        if (!b) {
            failed(b.error());
            fmt::print(stderr, "Could not open backing image.\n");
            return 1;
        }
        if (backing_format.empty()) {
            failed(Error{ErrorCode::InvalidArg, "Backing file specified without backing format"});
            fmt::print(stderr, "Detected format of {}.", format_name((*b)->format()));
            return 1;
        }
        if (!o.count("size")) o["size"] = std::to_string((*b)->size());
    } else if (has_backing && backing_format.empty()) {
        return failed(Error{ErrorCode::InvalidArg, "Backing file specified without backing format"});
    }
    if (!o.count("size")) return failed(Error{ErrorCode::InvalidArg, "Image creation needs a size parameter"});
    if (!quiet) fmt::print("{}\n", create_summary(path, *fmt, o));
    std::fflush(stdout);
    // The values the format itself checks (after the line, as qemu-img).
    auto co = create_options_from(*fmt, o);
    if (!co) return failed(co.error());
    co->warn = [](const std::string& w) { report(w); };
    auto st = create_image(path, *co);
    if (!st) return failed(st.error());
    return 0;
}

int cmd_info(int argc, char** argv) {
    std::string fmt_name, output = "human";
    bool chain = false, force_share = false;
    static const std::vector<option> kLong = long_options({{"output", required_argument, nullptr, kOptOutput}, {"backing-chain", no_argument, nullptr, kOptBackingChain}});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:hU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'U': force_share = true; break;
            case kOptOutput: output = optarg; break;
            case kOptBackingChain: chain = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (!valid_output(output)) return 1;
    // Only headers are read, one image at a time as qemu-img walks the
    // chain: each layer is opened without its backing file, and the next
    // by the name and format the layer records (a format vireo cannot read
    // fails only when that layer is reached).
    auto img = open_image_arg(argc, argv, fmt_name, false, false, force_share, true);
    if (!img) return 1;
    std::vector<ImageInfo> infos;
    std::vector<std::string> seen{argv[optind]};
    for (;;) {
        auto i = img->info();
        if (!i) { report(i.error().message); return 1; }
        infos.push_back(*i);
        if (!chain || i->backing_file.empty()) break;
        const std::string next = i->full_backing_file;
        if (std::find(seen.begin(), seen.end(), next) != seen.end()) {
            report(fmt::format("Backing file '{}' creates an infinite loop.", next));
            return 1;
        }
        seen.push_back(next);
        auto n = open_for(next, i->backing_format, false, CacheMode::Writeback, false, true, force_share, true);
        if (!n) {
            report(fmt::format("Could not open '{}': {}", next, n.error().message));
            return 1;
        }
        img = std::move(*n);
    }
    if (output == "json") {
        if (chain) {
            auto l = QValue::list();
            for (const auto& i : infos) l->append(info_json(i));
            fmt::print("{}\n", l->to_json());
        } else {
            fmt::print("{}\n", info_json(infos[0])->to_json());
        }
    } else {
        for (size_t k = 0; k < infos.size(); ++k) fmt::print("{}{}", k ? "\n" : "", info_human(infos[k]));
    }
    return 0;
}

namespace {
void print_check(const qcow2::CheckResult& r, const std::string& filename, const std::string& format,
                 const std::string& output) {
    if (output == "json") {
        auto d = QValue::dict();
        d->put_str("filename", filename);
        d->put_str("format", format);
        d->put("check-errors", r.check_errors);
        if (r.image_end_offset) d->put("image-end-offset", static_cast<int64_t>(r.image_end_offset));
        if (r.corruptions) d->put("corruptions", r.corruptions);
        if (r.leaks) d->put("leaks", r.leaks);
        if (r.corruptions_fixed) d->put("corruptions-fixed", r.corruptions_fixed);
        if (r.leaks_fixed) d->put("leaks-fixed", r.leaks_fixed);
        if (r.total_clusters) d->put("total-clusters", static_cast<int64_t>(r.total_clusters));
        if (r.allocated_clusters) d->put("allocated-clusters", static_cast<int64_t>(r.allocated_clusters));
        if (r.fragmented_clusters) d->put("fragmented-clusters", static_cast<int64_t>(r.fragmented_clusters));
        if (r.compressed_clusters) d->put("compressed-clusters", static_cast<int64_t>(r.compressed_clusters));
        fmt::print("{}\n", d->to_json());
        return;
    }
    if (!r.corruptions && !r.leaks && !r.check_errors) {
        fmt::print("No errors were found on the image.\n");
    } else {
        if (r.corruptions)
            fmt::print("\n{} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n", r.corruptions);
        if (r.leaks)
            fmt::print("\n{} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n", r.leaks);
        if (r.check_errors) fmt::print("\n{} internal errors have occurred during the check.\n", r.check_errors);
    }
    if (r.total_clusters && r.allocated_clusters) {
        double a = static_cast<double>(r.allocated_clusters);
        fmt::print("{}/{} = {:.2f}% allocated, {:.2f}% fragmented, {:.2f}% compressed clusters\n", r.allocated_clusters,
                   r.total_clusters, a * 100.0 / static_cast<double>(r.total_clusters),
                   static_cast<double>(r.fragmented_clusters) * 100.0 / a,
                   static_cast<double>(r.compressed_clusters) * 100.0 / a);
    }
    if (r.image_end_offset) fmt::print("Image end offset: {}\n", r.image_end_offset);
}
}  // namespace

int cmd_check(int argc, char** argv) {
    std::string fmt_name, output = "human", repair;
    bool quiet = false, force_share = false;
    static const std::vector<option> kLong = long_options({{"output", required_argument, nullptr, kOptOutput}, {"repair", required_argument, nullptr, 'r'}});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'r': repair = optarg; break;
            case 'q': quiet = true; break;
            case 'T': break;
            case 'U': force_share = true; break;
            case kOptOutput: output = optarg; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (!valid_output(output)) return 1;
    qcow2::RepairMode mode = qcow2::RepairMode::None;
    if (repair == "leaks") mode = qcow2::RepairMode::Leaks;
    else if (repair == "all") mode = qcow2::RepairMode::All;
    else if (!repair.empty()) {
        return error_exit("Unknown option value for -r (expecting 'leaks' or 'all'): " + repair);
    }
    auto img = open_image_arg(argc, argv, fmt_name, mode != qcow2::RepairMode::None, false, force_share);
    if (!img) return 1;
    std::string path = argv[optind];
    auto* q = qcow2_cast(img.get());
    if (auto* v = vmdk_cast(img.get())) {
        // vmdk: grains past the end of their file; nothing to repair.
        auto r = v->check();
        if (!r) { report(fmt::format("Check failed: {}", r.error().message)); return 1; }
        for (const auto& m : r->messages) fmt::print(stderr, "{}\n", m);
        if (!quiet || output == "json") print_check(*r, path, "vmdk", output);
        return r->corruptions ? 2 : 0;
    }
    if (!q) {
        report("This image format does not support checks");
        return 63;
    }
    auto r = q->check(mode);
    if (!r) {
        report(fmt::format("Check failed: {}", r.error().message));
        return 1;
    }
    for (const auto& m : r->messages) fmt::print(stderr, "{}\n", m);
    if (!r->fatal.empty()) {
        report(fmt::format("Check failed: {}", r->fatal));
        return 1;
    }
    qcow2::CheckResult final = *r;
    if (r->corruptions_fixed || r->leaks_fixed) {
        if (output == "human" && !quiet)
            fmt::print("The following inconsistencies were found and repaired:\n\n    {} leaked clusters\n    {} corruptions\n\nDouble checking the fixed image now...\n",
                       r->leaks_fixed, r->corruptions_fixed);
        auto again = q->check(qcow2::RepairMode::None);
        if (!again) {
            report(fmt::format("Check failed: {}", again.error().message));
            return 1;
        }
        for (const auto& m : again->messages) fmt::print(stderr, "{}\n", m);
        final = *again;
        final.leaks_fixed = r->leaks_fixed;
        final.corruptions_fixed = r->corruptions_fixed;
    }
    if (!quiet || output == "json") print_check(final, path, "qcow2", output);
    if (final.check_errors) return 1;
    if (final.corruptions) return 2;
    if (final.leaks) return 3;
    return 0;
}

int cmd_map(int argc, char** argv) {
    std::string fmt_name, output = "human";
    uint64_t start = 0, max_len = UINT64_MAX;
    bool force_share = false;
    static const std::vector<option> kLong = long_options({{"output", required_argument, nullptr, kOptOutput}, {"start-offset", required_argument, nullptr, 's'}, {"max-length", required_argument, nullptr, 'l'}});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:hU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'U': force_share = true; break;
            case 's': { auto v = parse_size(optarg); if (!v) { report("Invalid start offset specified! You may use k, M, G, T, P or E suffixes for "); return 1; } start = *v; break; }
            case 'l': { auto v = parse_size(optarg); if (!v) { report("Invalid length specified! You may use k, M, G, T, P or E suffixes for "); return 1; } max_len = *v; break; }
            case kOptOutput: output = optarg; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (!valid_output(output)) return 1;
    auto img = open_image_arg(argc, argv, fmt_name, false, true, force_share);
    if (!img) return 1;
    Image* top = img.get();
    uint64_t end = std::min<uint64_t>(top->size(), max_len == UINT64_MAX ? UINT64_MAX : start + max_len);
    struct Run {
        uint64_t start, length;
        ChainExtent e;
    };
    std::optional<Run> cur;
    // Output is streamed through one buffer: a map of a fragmented image
    // runs to tens of megabytes.
    fmt::memory_buffer out;
    auto flush_out = [&] {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
    };
    bool first = true;
    auto emit = [&](const Run& r) {
        if (output == "json") {
            fmt::format_to(std::back_inserter(out),
                           "{}{{ \"start\": {}, \"length\": {}, \"depth\": {}, \"present\": {}, \"zero\": {}, \"data\": {}",
                           first ? "[" : ",\n", r.start, r.length, r.e.depth, r.e.present ? "true" : "false",
                           r.e.zero ? "true" : "false", r.e.data ? "true" : "false");
            if (r.e.offset) fmt::format_to(std::back_inserter(out), ", \"offset\": {}", *r.e.offset);
            out.push_back('}');
        } else if (r.e.data && !r.e.offset) {
            return false;
        } else if (r.e.data && !r.e.zero) {
            auto hex = [](uint64_t v) { return v ? fmt::format("{:#x}", v) : std::string("0"); };
            fmt::format_to(std::back_inserter(out), "{:<16}{:<16}{:<16}{}\n", hex(r.start), hex(r.length),
                           hex(*r.e.offset), r.e.file);
        }
        first = false;
        if (out.size() >= (1U << 20)) flush_out();
        return true;
    };
    auto refuse_compressed = [&] {
        flush_out();
        std::fflush(stdout);
        report("File contains external, encrypted or compressed clusters.");
        return 1;
    };
    if (output == "human") fmt::format_to(std::back_inserter(out), "{:<16}{:<16}{:<16}{}\n", "Offset", "Length", "Mapped to", "File");
    for (uint64_t off = start; off < end;) {
        auto e = chain_status(top, off, std::min<uint64_t>(end - off, 1ULL << 30));
        if (!e) {
            flush_out();
            report(e.error().message);
            return 1;
        }
        bool mergeable = cur && cur->e.depth == e->depth && cur->e.present == e->present && cur->e.zero == e->zero &&
                         cur->e.data == e->data && cur->e.file == e->file &&
                         (!cur->e.offset == !e->offset) &&
                         (!e->offset || *cur->e.offset + cur->length == *e->offset);
        if (mergeable) {
            cur->length += e->length;
        } else {
            if (cur && !emit(*cur)) return refuse_compressed();
            cur = Run{off, e->length, *e};
        }
        off += e->length;
    }
    if (cur && !emit(*cur)) return refuse_compressed();
    if (output == "json") fmt::format_to(std::back_inserter(out), "{}", first ? "[]\n" : "]\n");
    flush_out();
    return 0;
}

int cmd_snapshot(int argc, char** argv) {
    std::string fmt_name, name;
    char action = 0;
    bool quiet = false, force_share = false;
    static const std::vector<option> kLong = long_options({});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":la:c:d:f:hqU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'l': case 'a': case 'c': case 'd':
                if (action) { report("Cannot mix '-l', '-a', '-c', '-d'"); return 1; }
                action = static_cast<char>(c);
                if (optarg) name = optarg;
                break;
            case 'f': fmt_name = optarg; break;
            case 'q': quiet = true; break;
            case 'U': force_share = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    (void)quiet;
    if (!action) action = 'l';
    if (optind >= argc) return error_exit("Expecting one image file name");
    std::string path = argv[optind];
    auto img = open_for(path, fmt_name, action != 'l', CacheMode::Writeback, false, false, force_share);
    if (!img) {
        report(fmt::format("Could not open '{}': {}", path, img.error().message));
        return 1;
    }
    auto* q = qcow2_cast(img->get());
    if (!q) {
        report(fmt::format("Could not {} snapshot '{}': Operation not supported", action == 'c' ? "create" : action == 'a' ? "apply" : "delete", name));
        return 1;
    }
    Status st;
    switch (action) {
        case 'l': {
            auto info = q->info();
            if (!info) { report(info.error().message); return 1; }
            if (!info->snapshots.empty()) fmt::print("Snapshot list:\n{}", snapshot_table(info->snapshots));
            return 0;
        }
        case 'c': st = q->snapshot_create(name); if (!st) st = std::unexpected(st.error().context(fmt::format("Could not create snapshot '{}'", name))); break;
        case 'a': st = q->snapshot_apply(name); if (!st) st = std::unexpected(st.error().context(fmt::format("Could not apply snapshot '{}'", name))); break;
        case 'd': st = q->snapshot_delete(name); if (!st) st = std::unexpected(st.error().context(fmt::format("Could not delete snapshot '{}'", name))); break;
        default: break;
    }
    if (!st) { report(st.error().full_message()); return 1; }
    auto cl = q->close();
    if (!cl) { report(cl.error().message); return 1; }
    return 0;
}

int cmd_resize(int argc, char** argv) {
    std::string fmt_name;
    bool shrink = false, quiet = false;
    Preallocation prealloc = Preallocation::Off;
    static const std::vector<option> kLong = long_options({{"shrink", no_argument, nullptr, kOptShrink}, {"preallocation", required_argument, nullptr, kOptPrealloc}}, false);
    // Sizes like "-1G" look like options: stop option parsing at them.
    std::vector<char*> args(argv, argv + argc);
    std::string size_arg;
    if (argc >= 2 && argv[argc - 1][0] == '-' && argv[argc - 1][1] >= '0' && argv[argc - 1][1] <= '9') {
        size_arg = argv[argc - 1];
        args.pop_back();
    }
    optind = 0;
    int c;
    int n = static_cast<int>(args.size());
    while ((c = getopt_long(n, args.data(), ":f:hqT:", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'q': quiet = true; break;
            case 'T': break;
            case kOptShrink: shrink = true; break;
            case kOptPrealloc: {
                auto p = parse_preallocation(optarg);
                if (!p) { report(p.error().message); return 1; }
                prealloc = *p;
                break;
            }
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, args.data());
        }
    }
    if (argc < 3) return error_exit("Not enough arguments");
    if (optind + (size_arg.empty() ? 2 : 1) != n) return error_exit("Expecting image file name and size");
    std::string path = args[optind++];
    if (size_arg.empty()) size_arg = args[optind];
    int sign = 0;
    std::string num = size_arg;
    if (num[0] == '+') { sign = 1; num = num.substr(1); }
    else if (num[0] == '-') { sign = -1; num = num.substr(1); }
    auto sz = parse_size(num);
    if (!sz) { report("Invalid size specified"); return 1; }
    ResizeOptions ro;
    ro.path = image_name(path);
    ro.format = fmt_name;
    ro.sign = sign;
    ro.size = *sz;
    ro.shrink = shrink;
    ro.prealloc = prealloc;
    auto st = storage::resize(ro);
    if (!st) { report(st.error().message); return 1; }
    if (!quiet) fmt::print("Image resized.\n");
    return 0;
}

int cmd_amend(int argc, char** argv) {
    std::string fmt_name, opts;
    bool quiet = false, force = false;
    static const std::vector<option> kLong = long_options({{"force", no_argument, nullptr, 'F'}}, false);
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
            case 'f': fmt_name = optarg; break;
            case 'q': quiet = true; break;
            case 't': case 'p': case 'F': case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    (void)quiet;
    if (opts.empty()) return error_exit("Must specify options (-o)");
    if (!fmt_name.empty() && has_help_option(opts)) return print_amend_help(fmt_name);
    if (optind != argc - 1) { report("Expecting one image file name"); return 1; }
    std::string path = argv[optind];
    if (has_help_option(opts)) {
        // The format is the image's own.
        auto img = open_for(path, "", false, CacheMode::Writeback, false, false, true, true);
        if (!img) { report(fmt::format("Could not open '{}': {}", path, img.error().message)); return 1; }
        return print_amend_help(std::string(format_name((*img)->format())));
    }
    auto o = parse_options(opts);
    if (!o) { report(o.error().message); return 1; }
    auto a = image_arg(path, fmt_name);
    if (!a) { report(fmt::format("Could not open '{}': {}", path, a.error().message)); return 1; }
    auto st = storage::amend(a->path, a->format, *o, secrets(), a->key_secret, force);
    if (!st) { report(st.error().message); return 1; }
    return 0;
}

int cmd_measure(int argc, char** argv) {
    std::string fmt_name, out_fmt = "raw", opts, output = "human", snapshot;
    std::optional<uint64_t> size;
    bool force_share = false;
    static const std::vector<option> kLong = long_options({{"output", required_argument, nullptr, kOptOutput}, {"size", required_argument, nullptr, kOptSize}});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'O': out_fmt = optarg; break;
            case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
            case 'l': snapshot = optarg; break;
            case 'U': force_share = true; break;
            case kOptOutput: output = optarg; break;
            case kOptSize: {
                auto s = parse_size(optarg);
                if (!s) { report("Invalid image size specified"); return 1; }
                size = *s;
                break;
            }
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    bool have_file = optind < argc;
    if (have_file && size) { report("--size N cannot be used together with a filename."); return 1; }
    if (!have_file && !size) { report("Either --size N or one filename must be specified."); return 1; }
    auto o = parse_options(opts);
    if (!o) { report(o.error().message); return 1; }
    MeasureOptions mo;
    if (have_file) mo.path = image_name(argv[optind]);
    mo.size = size.value_or(0);
    mo.format = fmt_name;
    mo.snapshot = snapshot;
    mo.force_share = force_share;
    mo.target_format = out_fmt;
    mo.create_options = *o;
    auto m = storage::measure(mo);
    if (!m) { report(m.error().message); return 1; }
    const uint64_t req = m->required, fully = m->fully_allocated;
    const bool show_bitmaps = m->has_bitmaps_size;
    if (output == "json") {
        auto d = QValue::dict();
        d->put("required", static_cast<int64_t>(req));
        d->put("fully-allocated", static_cast<int64_t>(fully));
        if (show_bitmaps) d->put("bitmaps", static_cast<int64_t>(m->bitmaps));
        fmt::print("{}\n", d->to_json());
    } else {
        fmt::print("required size: {}\nfully allocated size: {}\n", req, fully);
        if (show_bitmaps) fmt::print("bitmaps size: {}\n", m->bitmaps);
    }
    return 0;
}

int cmd_bitmap(int argc, char** argv) {
    BitmapRequest r;
    std::string src_fmt;
    std::optional<std::string> src_file;
    bool add = false, merge = false;
    static const std::vector<option> kLong = long_options(
        {{"add", no_argument, nullptr, kOptAdd}, {"remove", no_argument, nullptr, kOptRemove},
         {"clear", no_argument, nullptr, kOptClear}, {"enable", no_argument, nullptr, kOptEnable},
         {"disable", no_argument, nullptr, kOptDisable}, {"merge", required_argument, nullptr, kOptMerge}},
        false);
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:f:F:g:h", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'b': src_file = optarg; break;
            case 'f': r.format = optarg; break;
            case 'F': src_fmt = optarg; break;
            case 'g': {
                auto g = parse_size(optarg);
                if (!g) {
                    report("Invalid granularity specified. You may use k, M, G, T, P or E suffixes for");
                    report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                    return 1;
                }
                if (*g) r.granularity = *g;  // 0: the default, as not given
                break;
            }
            case kOptAdd: r.actions.push_back({BitmapOp::Add, ""}); add = true; break;
            case kOptRemove: r.actions.push_back({BitmapOp::Remove, ""}); break;
            case kOptClear: r.actions.push_back({BitmapOp::Clear, ""}); break;
            case kOptEnable: r.actions.push_back({BitmapOp::Enable, ""}); break;
            case kOptDisable: r.actions.push_back({BitmapOp::Disable, ""}); break;
            case kOptMerge: r.actions.push_back({BitmapOp::Merge, optarg}); merge = true; break;
            case kOptObject: case kOptImageOpts: break;
            default: return bad_option(c, argv);
        }
    }
    // qemu-img's checks, in its order.
    if (r.actions.empty()) {
        report("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
        return 1;
    }
    if (r.granularity && !add) { report("granularity only supported with --add"); return 1; }
    if (!src_fmt.empty() && !src_file) { report("-F only supported with -b"); return 1; }
    if (src_file && !merge) { report("Merge bitmap source file only supported with --merge"); return 1; }
    if (optind != argc - 2) { report("Expecting filename and bitmap name"); return 1; }
    r.path = image_name(argv[optind]);
    r.bitmap = argv[optind + 1];
    if (src_file) r.source_path = *src_file;
    r.source_format = src_fmt;
    auto st = edit_bitmap(r);
    if (!st) { report(st.error().message); return 1; }
    return 0;
}

}  // namespace vireo::img
