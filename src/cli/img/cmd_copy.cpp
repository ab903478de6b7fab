// convert, compare, rebase, commit, dd, bench.
#include <getopt.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "cli/img/common.hpp"
#include "cli/img/convert_copy.hpp"
#include "storage/qcow2.hpp"

namespace vireo::img {

using namespace storage;

namespace {

Result<CacheMode> cache_from(const std::string& s, CacheMode def) {
    if (s.empty()) return def;
    return parse_cache_mode(s);
}

constexpr uint64_t kChunk = 2ULL << 20;

// The persistent bitmaps convert --bitmaps copies from `src`, read before
// the target is made (as qemu-img checks them first). Inconsistent ones
// are an error, or skipped with a warning with --skip-broken-bitmaps.
// nullopt after the error is reported.
std::optional<std::vector<qcow2::Bitmap>> source_bitmaps(Image* src, bool skip_broken) {
    auto* q = qcow2_cast(src);
    if (!q) {
        report("Source lacks bitmap support");
        return std::nullopt;
    }
    auto all = q->read_bitmaps();
    if (!all) {
        report(fmt::format("Could not read the bitmaps of '{}': {}", src->filename(), all.error().message));
        return std::nullopt;
    }
    std::vector<qcow2::Bitmap> keep;
    for (auto& b : *all) {
        if (!b.in_use) {
            keep.push_back(std::move(b));
        } else if (skip_broken) {
            report(fmt::format("warning: Skipping inconsistent bitmap '{}'", b.name));
        } else {
            report(fmt::format("Cannot copy inconsistent bitmap '{}'", b.name));
            fmt::print(stderr, "Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it\n");
            return std::nullopt;
        }
    }
    return keep;
}

}  // namespace

int cmd_convert(int argc, char** argv) {
    std::string fmt_name, out_fmt = "raw", opts, backing, backing_fmt, snapshot, cache_s, src_cache_s;
    bool compress = false, progress = false, no_create = false, quiet = false, target_is_zero = false;
    uint64_t sparse = 4096, rate_limit = 0;
    unsigned num_coroutines = 8;
    bool salvage = false, bitmaps = false, skip_broken = false;
    static const std::vector<option> kLong = long_options({{"target-image-opts", no_argument, nullptr, kOptTargetImageOpts}, {"target-is-zero", no_argument, nullptr, kOptTargetIsZero}, {"salvage", no_argument, nullptr, kOptSalvage}, {"bitmaps", no_argument, nullptr, kOptBitmaps}, {"skip-broken-bitmaps", no_argument, nullptr, kOptSkipBrokenBitmaps}});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'O': out_fmt = optarg; break;
            case 'B': backing = optarg; break;
            case 'F': backing_fmt = optarg; break;
            case 'c': compress = true; break;
            case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
            case 'l': snapshot = optarg; break;
            case 'S': {
                auto s = parse_size(optarg);
                if (!s || (*s % 512)) { report("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512."); return 1; }
                sparse = *s;
                break;
            }
            case 'p': progress = true; break;
            case 't': cache_s = optarg; break;
            case 'T': src_cache_s = optarg; break;
            case 'q': quiet = true; break;
            case 'n': no_create = true; break;
            case 'm': {
                char* e = nullptr;
                long v = std::strtol(optarg, &e, 10);
                if (!*optarg || *e || v < 1 || v > 16) {
                    report("Invalid number of coroutines. Allowed number of coroutines is between 1 and 16");
                    return 1;
                }
                num_coroutines = static_cast<unsigned>(v);
                break;
            }
            case 'W': break;  // writes may go out of order: ours are ordered, which is always allowed
            case 'r': {
                auto v = parse_size(optarg);
                if (!v) {
                    report("Invalid rate limit specified. You may use k, M, G, T, P or E suffixes for ");
                    report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                    return 1;
                }
                rate_limit = *v;
                break;
            }
            case kOptSalvage: salvage = true; break;
            case kOptBitmaps: bitmaps = true; break;
            case kOptSkipBrokenBitmaps: skip_broken = true; break;
            case 'U': case 'C': case kOptObject: break;
            case kOptTargetIsZero: target_is_zero = true; break;
            case kOptImageOpts: break;
            default: report("Invalid option for convert"); return 1;
        }
    }
    if (quiet) progress = false;
    if (argc - optind < 2) { report("Expecting image file name"); return 1; }
    std::string out_path = argv[argc - 1];
    auto cache = cache_from(cache_s, CacheMode::Unsafe);
    auto src_cache = cache_from(src_cache_s, CacheMode::Writeback);
    if (!cache || !src_cache) { report("Invalid cache option"); return 1; }

    std::vector<ImagePtr> srcs, snaps;
    std::vector<Image*> views;
    uint64_t total = 0;
    for (int i = optind; i < argc - 1; ++i) {
        auto s = open_for(argv[i], fmt_name, false, *src_cache, true);
        if (!s) { report(fmt::format("Could not open '{}': {}", argv[i], s.error().message)); return 1; }
        Image* v = s->get();
        if (!snapshot.empty()) {
            auto* q = qcow2_cast(v);
            std::string key = snapshot;
            if (key.starts_with("snapshot.name=")) key = key.substr(14);
            else if (key.starts_with("snapshot.id=")) key = key.substr(12);
            if (!q) { report("Failed to load snapshot: Operation not supported"); return 1; }
            auto sv = q->open_snapshot(key);
            if (!sv) { report(fmt::format("Failed to load snapshot: {}", sv.error().message)); return 1; }
            v = sv->get();
            snaps.push_back(std::move(*sv));
        }
        total += v->size();
        views.push_back(v);
        srcs.push_back(std::move(*s));
    }
    auto ofmt = parse_format(out_fmt);
    if (!ofmt) { report(ofmt.error().message); return 1; }
    if (compress && *ofmt == ImageFormat::Raw) { report("Compression not supported for this file format"); return 1; }
    if (skip_broken && !bitmaps) { report("Use of --skip-broken-bitmaps requires --bitmaps"); return 1; }
    std::vector<qcow2::Bitmap> src_bitmaps;
    if (bitmaps) {
        if (views.size() > 1) { report("Copying bitmaps only possible with single source"); return 1; }
        auto read = source_bitmaps(srcs.front().get(), skip_broken);
        if (!read) return 1;
        src_bitmaps = std::move(*read);
    }

    if (!no_create) {
        auto o = parse_options(opts);
        if (!o) { report(o.error().message); return 1; }
        auto co = create_options_from(*ofmt, *o);
        if (!co) { report(co.error().message); return 1; }
        co->size = total;
        if (!backing.empty()) {
            co->backing_file = backing;
            co->backing_format = backing_fmt;
            if (backing_fmt.empty()) {
                auto p = probe_format(resolve_backing_path(out_path, backing));
                if (p) co->backing_format = std::string(format_name(*p));
            }
        }
        auto st = create_image(out_path, *co);
        if (!st) { report(fmt::format("{}: error while converting {}: {}", out_path, out_fmt, st.error().message)); return 1; }
    }
    auto out = open_for(out_path, out_fmt, true, *cache, true);
    if (!out) { report(fmt::format("Could not open '{}': {}", out_path, out.error().message)); return 1; }
    Image* dst = out->get();
    // qemu-img makes the target before it finds that it cannot hold bitmaps
    // (raw, or qcow2 version 2).
    auto* dst_q = qcow2_cast(dst);
    if (bitmaps && (*ofmt != ImageFormat::Qcow2 || !dst_q || dst_q->header().version < 3)) {
        report(fmt::format("Format driver '{}' does not support bitmaps", out_fmt));
        return 1;
    }
    // Bitmaps go in one by one after the data, and the first whose name the
    // target (convert -n) already has fails the command, as in qemu-img.
    // The target's names are read now: its data writes drop its bitmaps.
    size_t bitmaps_ok = src_bitmaps.size();
    if (!src_bitmaps.empty()) {
        auto have = dst_q->read_bitmaps();
        if (!have) { report(fmt::format("Could not read the bitmaps of '{}': {}", out_path, have.error().message)); return 1; }
        for (size_t i = 0; i < src_bitmaps.size() && bitmaps_ok == src_bitmaps.size(); ++i)
            for (const auto& h : *have)
                if (h.name == src_bitmaps[i].name) bitmaps_ok = i;
    }
    if (no_create && dst->size() < total) {
        report("output file is smaller than input file");
        return 1;
    }
    // Regions the target may not already read as zero must be zeroed.
    CopySettings cs;
    cs.compress = compress;
    cs.target_fresh = (!no_create || target_is_zero) && backing.empty();
    cs.skip_same_as_backing = !backing.empty();
    cs.salvage = salvage;
    cs.sparse = sparse;
    cs.threads = num_coroutines;
    cs.rate_limit = rate_limit;
    Progress prog(progress);
    prog.update(0);
    if (!copy_images(views, dst, cs, prog)) return 1;
    // Bitmaps go in after the data: a guest write drops an image's bitmaps.
    if (bitmaps_ok > 0) {
        std::vector<qcow2::Bitmap> add(src_bitmaps.begin(), src_bitmaps.begin() + static_cast<long>(bitmaps_ok));
        auto st = dst_q->add_bitmaps(add);
        if (!st) { report(fmt::format("Failed to populate bitmaps: {}", st.error().message)); return 1; }
    }
    if (bitmaps_ok < src_bitmaps.size()) {
        const std::string& name = src_bitmaps[bitmaps_ok].name;
        report(fmt::format("Failed to create bitmap {}: Bitmap already exists: {}", name, name));
        (void)dst->close();
        return 1;
    }
    auto cl = dst->close();
    if (!cl) { report(cl.error().message); return 1; }
    prog.done();
    return 0;
}

int cmd_compare(int argc, char** argv) {
    std::string fmt1, fmt2, cache_s;
    bool strict = false, quiet = false, progress = false;
    static const std::vector<option> kLong = long_options({});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt1 = optarg; break;
            case 'F': fmt2 = optarg; break;
            case 'T': cache_s = optarg; break;
            case 'p': progress = true; break;
            case 'q': quiet = true; break;
            case 's': strict = true; break;
            case 'U': case kOptObject: case kOptImageOpts: break;
            default: report("Invalid option for compare"); return 2;
        }
    }
    if (quiet) progress = false;
    if (argc - optind != 2) { report("Expecting two image file names"); return 2; }
    if (fmt2.empty()) fmt2 = fmt1;
    auto cache = cache_from(cache_s, CacheMode::Writeback);
    if (!cache) { report(cache.error().message); return 2; }
    std::string p1 = argv[optind], p2 = argv[optind + 1];
    auto i1 = open_for(p1, fmt1, false, *cache, true);
    if (!i1) { report(fmt::format("Could not open '{}': {}", p1, i1.error().message)); return 2; }
    auto i2 = open_for(p2, fmt2, false, *cache, true);
    if (!i2) { report(fmt::format("Could not open '{}': {}", p2, i2.error().message)); return 2; }
    Image* a = i1->get();
    Image* b = i2->get();
    auto say = [&](const std::string& s) {
        if (!quiet) fmt::print("{}\n", s);
    };
    if (strict && a->size() != b->size()) {
        say("Strict mode: Image size mismatch!");
        return 1;
    }
    Progress prog(progress);
    uint64_t common = std::min(a->size(), b->size());
    uint64_t total = std::max(a->size(), b->size());
    std::vector<char> ba(kChunk), bb(kChunk);
    auto first_diff = [](const char* x, const char* y, uint64_t n) -> uint64_t {
        for (uint64_t s = 0; s < n; s += 512) {
            uint64_t l = std::min<uint64_t>(512, n - s);
            if (std::memcmp(x + s, y + s, l) != 0) return s;
        }
        return n;
    };
    for (uint64_t off = 0; off < common;) {
        uint64_t want = std::min<uint64_t>(kChunk, common - off);
        auto ea = chain_status(a, off, want);
        auto eb = chain_status(b, off, want);
        if (!ea || !eb) { report(fmt::format("error while reading offset {}: {}", off, (!ea ? ea.error() : eb.error()).message)); return 4; }
        uint64_t n = std::min(ea->length, eb->length);
        if (strict && ea->present != eb->present) {
            say(fmt::format("Strict mode: Offset {} block status mismatch!", off));
            return 1;
        }
        if (!ea->data && !eb->data) {
            off += n;
            continue;
        }
        if (!ea->data || !eb->data) {
            // One side reads zero: the other must be all zero.
            Image* d = ea->data ? a : b;
            auto st = d->read(off, ba.data(), n);
            if (!st) { report(st.error().message); return 4; }
            std::memset(bb.data(), 0, n);
            uint64_t k = first_diff(ba.data(), bb.data(), n);
            if (k < n) { say(fmt::format("Content mismatch at offset {}!", off + k)); return 1; }
        } else {
            auto s1 = a->read(off, ba.data(), n);
            auto s2 = b->read(off, bb.data(), n);
            if (!s1 || !s2) { report((!s1 ? s1.error() : s2.error()).message); return 4; }
            uint64_t k = first_diff(ba.data(), bb.data(), n);
            if (k < n) { say(fmt::format("Content mismatch at offset {}!", off + k)); return 1; }
        }
        off += n;
        prog.update(static_cast<double>(off) / static_cast<double>(total));
    }
    if (a->size() != b->size()) {
        Image* big = a->size() > b->size() ? a : b;
        for (uint64_t off = common; off < big->size();) {
            uint64_t n = std::min<uint64_t>(kChunk, big->size() - off);
            auto e = chain_status(big, off, n);
            if (!e) { report(e.error().message); return 4; }
            n = e->length;
            if (e->data) {
                auto st = big->read(off, ba.data(), n);
                if (!st) { report(st.error().message); return 4; }
                std::memset(bb.data(), 0, n);
                uint64_t k = first_diff(ba.data(), bb.data(), n);
                if (k < n) { say(fmt::format("Content mismatch at offset {}!", off + k)); return 1; }
            }
            off += n;
        }
    }
    prog.done();
    say("Images are identical.");
    return 0;
}

int cmd_rebase(int argc, char** argv) {
    std::string fmt_name, backing, backing_fmt, cache_s, src_cache_s;
    bool unsafe = false, progress = false, quiet = false, have_b = false;
    static const std::vector<option> kLong = long_options({});
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'F': backing_fmt = optarg; break;
            case 'b': backing = optarg; have_b = true; break;
            case 'u': unsafe = true; break;
            case 'p': progress = true; break;
            case 'q': quiet = true; break;
            case 't': cache_s = optarg; break;
            case 'T': src_cache_s = optarg; break;
            case 'U': case kOptObject: case kOptImageOpts: break;
            default: report("Invalid option for rebase"); return 1;
        }
    }
    if (quiet) progress = false;
    if (optind >= argc) { report("Expecting one image file name"); return 1; }
    if (!have_b) { report("Must specify backing file (-b) or use unsafe mode (-u)"); return 1; }
    std::string path = argv[optind];
    auto img = open_for(path, fmt_name, true, CacheMode::Writeback, !unsafe);
    if (!img) { report(fmt::format("Could not open '{}': {}", path, img.error().message)); return 1; }
    auto* q = qcow2_cast(img->get());
    if (!q) { report("Could not change the backing file to '" + backing + "': Operation not supported"); return 1; }
    if (!backing.empty() && backing_fmt.empty()) {
        auto p = probe_format(resolve_backing_path(path, backing));
        if (p) backing_fmt = std::string(format_name(*p));
        else if (!unsafe) { report(fmt::format("Could not open new backing file '{}': {}", backing, p.error().message)); return 1; }
    }
    ImagePtr new_backing;
    if (!unsafe) {
        if (!backing.empty()) {
            auto nb = open_for(resolve_backing_path(path, backing).string(), backing_fmt, false, CacheMode::Writeback, true);
            if (!nb) { report(fmt::format("Could not open new backing file '{}': {}", backing, nb.error().message)); return 1; }
            new_backing = std::move(*nb);
        }
        Progress prog(progress);
        const uint64_t size = q->size();
        const uint64_t cs = q->cluster_size();
        std::vector<char> old_buf(kChunk), new_buf(kChunk);
        for (uint64_t off = 0; off < size;) {
            uint64_t n = std::min<uint64_t>(kChunk, size - off);
            auto e = q->block_status(off, n);
            if (!e) { report(e.error().message); return 1; }
            n = e->length;
            if (e->kind != ExtentKind::Unallocated) { off += n; continue; }
            auto st = q->read(off, old_buf.data(), n);
            if (!st) { report(st.error().message); return 1; }
            uint64_t have = 0;
            if (new_backing && off < new_backing->size()) {
                have = std::min<uint64_t>(n, new_backing->size() - off);
                auto r = new_backing->read(off, new_buf.data(), have);
                if (!r) { report(r.error().message); return 1; }
            }
            std::memset(new_buf.data() + have, 0, n - have);
            // Copy only the clusters whose content would change.
            for (uint64_t p = 0; p < n;) {
                uint64_t step = std::min<uint64_t>(n - p, cs - (off + p) % cs);
                if (std::memcmp(old_buf.data() + p, new_buf.data() + p, step) != 0) {
                    auto w = q->write(off + p, old_buf.data() + p, step);
                    if (!w) { report(w.error().message); return 1; }
                }
                p += step;
            }
            off += n;
            prog.update(static_cast<double>(off) / static_cast<double>(size));
        }
        prog.done();
    }
    auto st = q->set_backing(backing, backing_fmt);
    if (!st) { report(fmt::format("Could not change the backing file to '{}': {}", backing, st.error().message)); return 1; }
    auto cl = q->close();
    if (!cl) { report(cl.error().message); return 1; }
    return 0;
}

int cmd_commit(int argc, char** argv) {
    std::string fmt_name, base_name, cache_s;
    bool drop = false, progress = false, quiet = false;
    static const std::vector<option> kLong = long_options({}, false);
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 't': cache_s = optarg; break;
            case 'b': base_name = optarg; break;
            case 'd': drop = true; break;
            case 'p': progress = true; break;
            case 'q': quiet = true; break;
            case 'r': case kOptObject: case kOptImageOpts: break;
            default: report("Invalid option for commit"); return 1;
        }
    }
    if (quiet) progress = false;
    if (optind >= argc) { report("Expecting one image file name"); return 1; }
    std::string path = argv[optind];
    auto top = open_for(path, fmt_name, !drop, CacheMode::Writeback, true);
    if (!top) { report(fmt::format("Could not open '{}': {}", path, top.error().message)); return 1; }
    Image* t = top->get();
    if (!t->backing()) { report(fmt::format("Image '{}' does not have a backing file", path)); return 1; }
    // The base: the direct backing file, or the named image further down.
    Image* base_view = t->backing();
    if (!base_name.empty()) {
        auto want = std::filesystem::weakly_canonical(base_name);
        for (Image* l = t->backing(); l; l = l->backing()) {
            if (std::filesystem::weakly_canonical(l->filename()) == want) { base_view = l; break; }
            if (!l->backing()) { report(fmt::format("Did not find '{}' in the backing chain of '{}'", base_name, path)); return 1; }
        }
    }
    auto base = open_for(base_view->filename(), std::string(format_name(base_view->format())), true, CacheMode::Writeback, false);
    if (!base) { report(fmt::format("Could not open '{}': {}", base_view->filename(), base.error().message)); return 1; }
    Progress prog(progress);
    std::vector<char> buf(kChunk);
    const uint64_t size = t->size();
    if ((*base)->size() < size) {
        auto r = (*base)->resize(size, false, Preallocation::Off);
        if (!r) { report(r.error().message); return 1; }
    }
    for (uint64_t off = 0; off < size;) {
        uint64_t n = std::min<uint64_t>(kChunk, size - off);
        // Allocated anywhere above the base?
        Image* l = t;
        bool above = false;
        uint64_t len = n;
        while (l && l != base_view) {
            auto e = l->block_status(off, std::min<uint64_t>(len, l->size() > off ? l->size() - off : len));
            if (!e) { report(e.error().message); return 1; }
            len = std::min(len, e->length);
            if (e->kind != ExtentKind::Unallocated) { above = true; break; }
            l = l->backing();
        }
        if (above) {
            auto st = t->read(off, buf.data(), len);
            if (!st) { report(st.error().message); return 1; }
            auto w = all_zero(buf.data(), len) ? (*base)->write_zeroes(off, len, false) : (*base)->write(off, buf.data(), len);
            if (!w) { report(w.error().message); return 1; }
        }
        off += len;
        prog.update(static_cast<double>(off) / static_cast<double>(size));
    }
    auto bc = (*base)->close();
    if (!bc) { report(bc.error().message); return 1; }
    if (!drop) {
        if (auto* q = qcow2_cast(t)) {
            auto st = q->make_empty();
            if (!st) { report(st.error().message); return 1; }
        }
        auto cl = t->close();
        if (!cl) { report(cl.error().message); return 1; }
    }
    prog.done();
    if (!quiet) fmt::print("Image committed.\n");
    return 0;
}

int cmd_dd(int argc, char** argv) {
    std::string fmt_name, out_fmt = "raw", in, out;
    uint64_t bs = 512, count = UINT64_MAX, skip = 0;
    optind = 0;
    int c;
    static const std::vector<option> kLong = long_options({});
    while ((c = getopt_long(argc, argv, ":hf:O:U", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'O': out_fmt = optarg; break;
            case 'U': case kOptObject: case kOptImageOpts: break;
            default: report("Invalid option for dd"); return 1;
        }
    }
    for (int i = optind; i < argc; ++i) {
        std::string a = argv[i];
        auto eq = a.find('=');
        if (eq == std::string::npos) { report(fmt::format("unrecognized operand {}", a)); return 1; }
        std::string k = a.substr(0, eq), v = a.substr(eq + 1);
        if (k == "if") in = v;
        else if (k == "of") out = v;
        else if (k == "bs" || k == "count" || k == "skip") {
            auto s = parse_size(v);
            if (!s || (k == "bs" && *s == 0)) { report(fmt::format("invalid number: '{}'", v)); return 1; }
            (k == "bs" ? bs : k == "count" ? count : skip) = *s;
        } else { report(fmt::format("unrecognized operand {}", a)); return 1; }
    }
    if (in.empty()) { report("Must specify both input and output files"); return 1; }
    if (out.empty()) { report("Must specify both input and output files"); return 1; }
    auto src = open_for(in, fmt_name, false, CacheMode::Writeback, true);
    if (!src) { report(fmt::format("Could not open '{}': {}", in, src.error().message)); return 1; }
    // As qemu-img dd does: count= bounds the input from its start (skipped
    // blocks included), skip= moves the start.
    uint64_t in_size = (*src)->size();
    uint64_t end = in_size;
    if (count != UINT64_MAX && count * bs < end) end = count * bs;
    uint64_t start = std::min(skip * bs, end);
    uint64_t size = end - start;
    auto ofmt = parse_format(out_fmt);
    if (!ofmt) { report(ofmt.error().message); return 1; }
    CreateOptions co;
    co.format = *ofmt;
    co.size = size;
    auto cr = create_image(out, co);
    if (!cr) { report(fmt::format("{}: error while creating output image: {}", out, cr.error().message)); return 1; }
    auto dst = open_for(out, out_fmt, true, CacheMode::Writeback, false);
    if (!dst) { report(fmt::format("Could not open '{}': {}", out, dst.error().message)); return 1; }
    std::vector<char> buf(std::max<uint64_t>(bs, 1 << 20));
    for (uint64_t done = 0; done < size;) {
        uint64_t n = std::min<uint64_t>(buf.size(), size - done);
        auto st = (*src)->read(start + done, buf.data(), n);
        if (!st) { report(fmt::format("error while reading from input image file: {}", st.error().message)); return 1; }
        if (!all_zero(buf.data(), n)) {
            auto w = (*dst)->write(done, buf.data(), n);
            if (!w) { report(fmt::format("error while writing to output image file: {}", w.error().message)); return 1; }
        }
        done += n;
    }
    auto cl = (*dst)->close();
    if (!cl) { report(cl.error().message); return 1; }
    return 0;
}

int cmd_bench(int argc, char** argv) {
    std::string fmt_name, cache_s = "writeback";
    uint64_t count = 75000, depth = 64, bufsize = 4096, offset = 0, step = 0, flush_interval = 0;
    bool write = false, quiet = false, drain = true;
    int pattern = 0;
    std::string aio = "threads";
    static const std::vector<option> kLong = long_options({{"flush-interval", required_argument, nullptr, kOptFlushInterval}, {"pattern", required_argument, nullptr, kOptPattern}, {"no-drain", no_argument, nullptr, kOptNoDrain}});
    optind = 0;
    int c;
    auto num = [](const char* s, uint64_t& out) {
        auto v = parse_size(s);
        if (!v) return false;
        out = *v;
        return true;
    };
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'c': if (!num(optarg, count)) { report(fmt::format("Invalid request count specified")); return 1; } break;
            case 'd': if (!num(optarg, depth) || depth == 0) { report("Invalid queue depth specified"); return 1; } break;
            case 'f': fmt_name = optarg; break;
            case 'n': aio = "native"; break;
            case 'i': aio = optarg; break;
            case 'U': break;
            case 'o': if (!num(optarg, offset)) { report("Invalid offset specified"); return 1; } break;
            case 'q': quiet = true; break;
            case 's': if (!num(optarg, bufsize) || bufsize == 0) { report("Invalid buffer size specified"); return 1; } break;
            case 'S': if (!num(optarg, step)) { report("Invalid step size specified"); return 1; } break;
            case 't': cache_s = optarg; break;
            case 'w': write = true; break;
            case kOptFlushInterval: if (!num(optarg, flush_interval)) { report("Invalid flush interval specified"); return 1; } break;
            case kOptNoDrain: drain = false; break;
            case kOptPattern: pattern = std::atoi(optarg); break;
            case kOptObject: case kOptImageOpts: break;
            default: report("Invalid option for bench"); return 1;
        }
    }
    if (aio != "threads" && aio != "native" && aio != "io_uring") { report("Invalid aio option: " + aio); return 1; }
    if (flush_interval && !write) { report("--flush-interval is only available in write tests"); return 1; }
    if (flush_interval && flush_interval < depth) { report("Flush interval can't be smaller than depth"); return 1; }
    if (optind >= argc) { report("Expecting one image file name"); return 1; }
    if (step == 0) step = bufsize;
    auto cache = parse_cache_mode(cache_s);
    if (!cache) { report(cache.error().message); return 1; }
    if (aio == "native" && *cache != CacheMode::None && *cache != CacheMode::Directsync) {
        report(fmt::format("Could not open '{}': aio=native was specified, but it requires cache.direct=on, which was not specified.", argv[optind]));
        return 1;
    }
    // vireo-img's I/O engine is a thread pool (aio=threads); it does not
    // pretend to be another one.
    if (aio != "threads") {
        report(fmt::format("Could not open '{}': aio={} is not supported by vireo-img (use aio=threads)", argv[optind], aio));
        return 1;
    }
    auto img = open_for(argv[optind], fmt_name, write, *cache, true);
    if (!img) { report(fmt::format("Could not open '{}': {}", argv[optind], img.error().message)); return 1; }
    Image* im = img->get();
    uint64_t size = im->size();
    if (!quiet) {
        fmt::print("Sending {} {} requests, {} bytes each, {} in parallel (starting at offset {}, step size {})\n",
                   count, write ? "write" : "read", bufsize, depth, offset, step);
        if (flush_interval) fmt::print("Sending flush every {} requests\n", flush_interval);
        std::fflush(stdout);
    }
    // Requests go out in the same order as qemu-img's (offset += step,
    // wrapping), `depth` at a time: metadata lookups and anything that
    // changes metadata run under one lock; plain data I/O on clusters that
    // are already allocated runs in parallel on the host file.
    // Direct I/O waits on the device: up to 32 threads keep `depth`
    // requests in flight. Buffered I/O is a copy into or out of the page
    // cache, bound by CPU and by the file's inode lock: more threads than
    // cores only contend (measured: 32 threads of 64 KiB buffered writes
    // spent most of their time waiting on each other).
    const bool direct = *cache == CacheMode::None || *cache == CacheMode::Directsync;
    const uint64_t cores = std::max(1U, std::thread::hardware_concurrency());
    const size_t nthreads = std::min<uint64_t>(depth, direct ? 32 : cores);
    std::mutex mu;
    std::atomic<uint64_t> next{0};
    // Requests [next, end) are handed out; with draining flushes, `end`
    // stops at each flush point until every earlier request is done.
    uint64_t end = count;
    const bool drain_flush = flush_interval && write && drain;
    std::atomic<bool> failed{false};
    std::string failure;
    auto offset_of = [&](uint64_t i) {
        // Same sequence as the sequential loop: start, start+step, ... wrapping.
        uint64_t o = offset;
        if (size) o = (offset + (i * step) % size) % size;
        if (o + bufsize > size) o = 0;
        return o;
    };
    const int fd = im->data_fd();
    auto worker = [&] {
        void* mem = std::aligned_alloc(4096, (bufsize + 4095) / 4096 * 4096);
        std::memset(mem, pattern, bufsize);
        for (;;) {
            uint64_t i = next.fetch_add(1);
            if (i >= end || failed) break;
            uint64_t off = offset_of(i);
            bool done = false;
            std::unique_lock lk(mu);
            auto e = fd >= 0 ? im->map_range(off, bufsize) : Result<Extent>(std::unexpected(Error{}));
            if (e && e->kind == ExtentKind::Data && e->length >= bufsize && e->host_offset && (!write || e->in_place)) {
                lk.unlock();
                ssize_t n = write ? ::pwrite(fd, mem, bufsize, static_cast<off_t>(*e->host_offset))
                                  : ::pread(fd, mem, bufsize, static_cast<off_t>(*e->host_offset));
                done = n == static_cast<ssize_t>(bufsize);
                lk.lock();
            }
            if (!done) {
                auto st = write ? im->write(off, mem, bufsize) : im->read(off, mem, bufsize);
                if (!st && !failed.exchange(true)) failure = st.error().message;
            }
            if (!drain_flush && flush_interval && write && (i + 1) % flush_interval == 0) {
                auto f = im->flush();
                if (!f && !failed.exchange(true)) failure = f.error().message;
            }
        }
        std::free(mem);
    };
    auto t0 = std::chrono::steady_clock::now();
    if (write && count > 0) {
        // The first request goes through the engine: it takes care of
        // anything a first write must do (e.g. invalidating bitmaps).
        void* mem = std::aligned_alloc(4096, (bufsize + 4095) / 4096 * 4096);
        std::memset(mem, pattern, bufsize);
        auto st = im->write(offset_of(0), mem, bufsize);
        std::free(mem);
        if (!st) { report(fmt::format("Failed request: {}", st.error().message)); return 1; }
        next = 1;
    }
    auto run_requests = [&] {
        if (nthreads <= 1) {
            worker();
            return;
        }
        std::vector<std::thread> threads;
        for (size_t t = 0; t < nthreads; ++t) threads.emplace_back(worker);
        for (auto& t : threads) t.join();
    };
    if (!drain_flush) {
        run_requests();
    } else {
        // Drain before each flush (qemu-img bench's default): every
        // request before a flush point completes, then the flush runs alone.
        for (uint64_t seg = 0; seg < count && !failed; seg += flush_interval) {
            end = std::min(count, seg + flush_interval);
            if (next < end) run_requests();
            next = end;
            if (end % flush_interval == 0) {
                auto f = im->flush();
                if (!f && !failed.exchange(true)) failure = f.error().message;
            }
        }
    }
    if (failed) { report(fmt::format("Failed request: {}", failure)); return 1; }
    if (write) {
        auto f = im->flush();
        if (!f) { report(f.error().message); return 1; }
    }
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!quiet) fmt::print("Run completed in {:.3f} seconds.\n", secs);
    auto cl = im->close();
    if (!cl) { report(cl.error().message); return 1; }
    return 0;
}

}  // namespace vireo::img
