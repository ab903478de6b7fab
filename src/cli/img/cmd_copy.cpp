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
#include "storage/commit.hpp"
#include "storage/convert.hpp"
#include "storage/qcow2.hpp"
#include "util/number.hpp"

namespace vireo::img {

using namespace storage;

namespace {

Result<CacheMode> cache_from(const std::string& s, CacheMode def) {
    if (s.empty()) return def;
    return parse_cache_mode(s);
}

constexpr uint64_t kChunk = 2ULL << 20;

}  // namespace

int cmd_convert(int argc, char** argv) {
    std::string fmt_name, out_fmt = "raw", opts, backing, backing_fmt, snapshot, cache_s, src_cache_s;
    bool compress = false, progress = false, no_create = false, quiet = false, target_is_zero = false;
    uint64_t sparse = 4096, rate_limit = 0;
    unsigned num_coroutines = 8;
    bool salvage = false, bitmaps = false, skip_broken = false, force_share = false;
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
            case 'U': force_share = true; break;
            case 'C': break;
            case kOptObject: if (!global_option(c)) return 1; break;
            case kOptTargetIsZero: target_is_zero = true; break;
            case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (quiet) progress = false;
    if (has_help_option(opts))
        return print_create_help(out_fmt, argc - optind >= 2 ? std::optional<std::string>(argv[argc - 1]) : std::nullopt);
    // qemu-img prints the first line before anything is opened, and ends
    // the line whatever happens.
    Progress prog(progress, 1.0F);
    prog.add(0);
    int rc = 1;
    if (argc - optind < 2) {
        report("Must specify image file name");
    } else {
        ConvertOptions co;
        co.target = argv[argc - 1];
        co.target_format = out_fmt;
        auto cache = cache_from(cache_s, CacheMode::Unsafe);
        auto src_cache = cache_from(src_cache_s, CacheMode::Writeback);
        if (!cache || !src_cache) {
            report("Invalid cache option");
        } else {
            co.cache = *cache;
            co.src_cache = *src_cache;
            for (int i = optind; i < argc - 1; ++i) {
                auto a = image_arg(argv[i], fmt_name);
                if (!a) { report(fmt::format("Could not open '{}': {}", argv[i], a.error().message)); prog.end(); return 1; }
                co.sources.push_back(ConvertSource{a->path, a->format, snapshot, a->key_secret, argv[i]});
            }
            auto o = parse_options(opts);
            if (!o) { report(o.error().message); prog.end(); return 1; }
            co.create_options = *o;
            co.secrets = secrets();
            co.no_create = no_create;
            co.target_is_zero = target_is_zero;
            co.backing = backing;
            co.backing_format = backing_fmt;
            co.compress = compress;
            co.sparse = sparse;
            co.threads = num_coroutines;
            co.rate_limit = rate_limit;
            co.salvage = salvage;
            co.bitmaps = bitmaps;
            co.skip_broken_bitmaps = skip_broken;
            co.force_share = force_share;
            co.warn = [](const std::string& w) { report(w); };
            if (progress)
                co.progress = [&prog](uint64_t done, uint64_t total) {
                    prog.set(static_cast<float>(100.0 * static_cast<double>(done) / static_cast<double>(total)));
                    return true;
                };
            auto st = storage::convert(co);
            if (st) {
                prog.set(100);
                rc = 0;
            } else {
                report(st.error().message);
            }
        }
    }
    prog.end();
    return rc;
}

int cmd_compare(int argc, char** argv) {
    std::string fmt1, fmt2, cache_s;
    bool strict = false, quiet = false, progress = false, force_share = false;
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
            case 'U': force_share = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv, 2);
        }
    }
    if (quiet) progress = false;
    if (argc - optind != 2) return error_exit("Expecting two image file names");
    auto cache = cache_from(cache_s, CacheMode::Writeback);
    if (!cache) { report(cache.error().message); return 2; }
    std::string p1 = argv[optind], p2 = argv[optind + 1];
    auto i1 = open_for(p1, fmt1, false, *cache, true, false, force_share);
    if (!i1) { report(fmt::format("Could not open '{}': {}", p1, i1.error().message)); return 2; }
    auto i2 = open_for(p2, fmt2, false, *cache, true, false, force_share);
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
    Progress prog(progress, 2.0F);
    prog.add(0);
    // qemu-img ends the progress line last, whatever the outcome.
    struct EndLine {
        Progress& p;
        ~EndLine() { p.end(); }
    } end_line{prog};
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
    // Steps as qemu-img's: one per block-status run of both images, runs
    // that are read at most 2 MiB long; progress after each.
    auto step = [&](uint64_t n) { prog.add(static_cast<float>(n) / static_cast<float>(total) * 100); };
    for (uint64_t off = 0; off < common;) {
        auto ea = chain_status(a, off, common - off);
        auto eb = chain_status(b, off, common - off);
        if (!ea || !eb) { report(fmt::format("error while reading offset {}: {}", off, (!ea ? ea.error() : eb.error()).message)); return 4; }
        uint64_t n = std::min(ea->length, eb->length);
        if (strict && ea->present != eb->present) {
            say(fmt::format("Strict mode: Offset {} block status mismatch!", off));
            return 1;
        }
        if (!ea->data && !eb->data) {
            off += n;
            step(n);
            continue;
        }
        n = std::min<uint64_t>(n, kChunk);
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
        step(n);
    }
    if (a->size() != b->size()) {
        // The longer image's tail must read as zero; qemu-img says first
        // that the sizes differ.
        say("Warning: Image size mismatch!");
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
    say("Images are identical.");
    return 0;
}

int cmd_rebase(int argc, char** argv) {
    std::string fmt_name, backing, backing_fmt, cache_s, src_cache_s;
    bool unsafe = false, progress = false, quiet = false, have_b = false, force_share = false;
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
            case 'U': force_share = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (quiet) progress = false;
    // The first line goes out before anything is opened, the line end
    // whatever happens (as qemu-img).
    Progress prog(progress, 2.0F);
    prog.add(0);
    auto finish = [&](int rc) {
        prog.end();
        return rc;
    };
    if (optind >= argc) return finish(error_exit("Expecting one image file name"));
    if (!have_b) return finish(error_exit("Must specify backing file (-b) or use unsafe mode (-u)"));
    RebaseOptions ro;
    ro.path = image_name(argv[optind]);
    ro.format = fmt_name;
    ro.backing = backing;
    ro.backing_format = backing_fmt;
    ro.unsafe = unsafe;
    ro.force_share = force_share;
    if (progress)
        ro.progress = [&prog](uint64_t, uint64_t size) {
            // qemu-img's step: 100 / (size / min(size, 2 MiB)) percent per
            // reported run, added up in single precision.
            const auto steps = static_cast<int64_t>(size / std::min<uint64_t>(size, kChunk));
            prog.add(100.0F / static_cast<float>(steps));
            return true;
        };
    auto st = storage::rebase(ro);
    if (!st) { report(st.error().message); return finish(1); }
    prog.set(100);
    return finish(0);
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
            case 'b': base_name = optarg; drop = true; break;  // -b implies -d (qemu-img)
            case 'd': drop = true; break;
            case 'p': progress = true; break;
            case 'q': quiet = true; break;
            case 'r': case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (quiet) progress = false;
    if (optind >= argc) return error_exit("Expecting one image file name");
    // qemu-img starts its progress line once the image is open: here at
    // the first step.
    Progress prog(progress, 1.0F);
    bool started = false;
    auto start = [&] {
        if (!started) prog.add(0);
        started = true;
    };
    CommitOptions co;
    co.path = image_name(argv[optind]);
    co.format = fmt_name;
    co.base = base_name;
    co.drop = drop;
    if (progress)
        co.progress = [&](uint64_t done, uint64_t total) {
            start();
            prog.set(static_cast<float>(done) / static_cast<float>(total) * 100.0F);
            return true;
        };
    auto st = storage::commit(co);
    if (!st) {
        if (started) prog.end();
        report(st.error().message);
        return 1;
    }
    start();
    prog.set(100);
    prog.end();
    if (!quiet) fmt::print("Image committed.\n");
    return 0;
}

int cmd_dd(int argc, char** argv) {
    std::string fmt_name, out_fmt = "raw", in, out;
    uint64_t bs = 512, count = UINT64_MAX, skip = 0;
    bool force_share = false;
    optind = 0;
    int c;
    static const std::vector<option> kLong = long_options({});
    while ((c = getopt_long(argc, argv, ":hf:O:U", kLong.data(), nullptr)) != -1) {
        switch (c) {
            case 'f': fmt_name = optarg; break;
            case 'O': out_fmt = optarg; break;
            case 'U': force_share = true; break;
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
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
    auto src = open_for(in, fmt_name, false, CacheMode::Writeback, true, false, force_share);
    if (!src) { report(fmt::format("Could not open '{}': {}", in, src.error().message)); return 1; }
    // As qemu-img dd does: count= bounds the input from its start (skipped
    // blocks included), skip= moves the start.
    uint64_t in_size = (*src)->size();
    uint64_t end = in_size;
    if (count != UINT64_MAX && count * bs < end) end = count * bs;
    uint64_t start = std::min(skip * bs, end);
    uint64_t size = end - start;
    auto ofmt = parse_format(out_fmt);
    if (!ofmt) { report("Unknown file format"); return 1; }
    CreateOptions co;
    co.format = *ofmt;
    co.size = size;
    auto cr = create_image(out, co);
    if (!cr) { report(fmt::format("{}: error while creating output image: {}", out, cr.error().message)); return 1; }
    // qemu-img's new raw target: write and resize, sharing all but resize.
    OpenOptions dopts;
    dopts.format = *ofmt;
    dopts.writable = true;
    dopts.open_backing = false;
    if (*ofmt == ImageFormat::Raw)
        dopts.lock_perms = LockPerms{kPermConsistentRead | kPermWrite | kPermResize, kPermAll & ~kPermResize};
    auto dst = open_image(out, dopts);
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
    bool write = false, quiet = false, drain = true, force_share = false;
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
            case 'U': force_share = true; break;
            case 'o': if (!num(optarg, offset)) { report("Invalid offset specified"); return 1; } break;
            case 'q': quiet = true; break;
            case 's': if (!num(optarg, bufsize) || bufsize == 0) { report("Invalid buffer size specified"); return 1; } break;
            case 'S': if (!num(optarg, step)) { report("Invalid step size specified"); return 1; } break;
            case 't': cache_s = optarg; break;
            case 'w': write = true; break;
            case kOptFlushInterval: if (!num(optarg, flush_interval)) { report("Invalid flush interval specified"); return 1; } break;
            case kOptNoDrain: drain = false; break;
            case kOptPattern: {
                auto byte = util::parse_number<int>(optarg);
                if (!byte || *byte > 0xff) { report("Invalid pattern byte specified"); return 1; }
                pattern = *byte;
                break;
            }
            case kOptObject: case kOptImageOpts: if (!global_option(c)) return 1; break;
            default: return bad_option(c, argv);
        }
    }
    if (aio != "threads" && aio != "native" && aio != "io_uring") { report("Invalid aio option: " + aio); return 1; }
    if (flush_interval && !write) { report("--flush-interval is only available in write tests"); return 1; }
    if (flush_interval && flush_interval < depth) { report("Flush interval can't be smaller than depth"); return 1; }
    if (optind >= argc) return error_exit("Expecting one image file name");
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
    auto img = open_for(argv[optind], fmt_name, write, *cache, true, false, force_share);
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
