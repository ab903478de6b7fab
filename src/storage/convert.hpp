// The copy engine: qemu-img convert as a library. One code path copies
// images for `vireo-img convert`, the daemon's vol-clone / vol-create-from
// (pool/volume_io.cpp) and, next, external snapshots and block copy.
//
// It reads the source views in batches, skips what reads as zero, finds
// clusters the target's backing already has (-B), compresses clusters on
// worker threads (-c) and writes the target in order with large writes.
// Reading and writing run on the calling thread while the workers compress
// the previous batch, so the three overlap.
//
//   storage::ConvertOptions o;
//   o.sources = {{"/img/base.qcow2"}};
//   o.target = "/img/copy.raw";
//   o.target_format = "raw";
//   o.progress = [](uint64_t done, uint64_t total) { return true; };
//   VIREO_TRY(storage::convert(o));
//
// Errors carry qemu-img's messages ("error while writing at byte 0: ...",
// "output file is smaller than input file"), so a front end prints them as
// they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/image.hpp"
#include "storage/options.hpp"
#include "storage/progress.hpp"

namespace vireo::storage {

struct ConvertSource {
    std::filesystem::path path;
    std::string format;    // "" = probe
    std::string snapshot;  // -l: "name", "snapshot.name=name" or "snapshot.id=id"; "" = the active layer
    std::optional<std::string> key_secret = std::nullopt;  // passphrase of an encrypted source
    std::string name = {};  // as the user gave it (--image-opts string), for messages; "" = path
};

struct ConvertOptions {
    std::vector<ConvertSource> sources;  // copied one after the other
    std::filesystem::path target;
    std::string target_format = "raw";  // -O
    // Creation options of the target (-o name=value); the size is the
    // sources' total.
    std::map<std::string, std::string> create_options;
    Secrets secrets;              // what key-secret / encrypt.key-secret in create_options name
    bool no_create = false;       // -n: the target exists
    bool target_is_zero = false;  // --target-is-zero: an existing target reads zero
    std::string backing;          // -B: the new target's backing file
    std::string backing_format;   // -F (required with a backing file: never guessed)
    bool compress = false;        // -c
    uint64_t sparse = 4096;       // -S (0: write zeroes out as data)
    unsigned threads = 8;         // -m: at most this many compression threads
    uint64_t rate_limit = 0;      // -r: bytes written per second (0: no limit)
    bool salvage = false;         // --salvage: unreadable sectors become zero (warned)
    bool bitmaps = false;         // --bitmaps
    bool skip_broken_bitmaps = false;
    CacheMode cache = CacheMode::Unsafe;        // -t
    CacheMode src_cache = CacheMode::Writeback; // -T
    bool force_share = false;     // -U: open the sources sharing every permission
    // Progress in bytes of qemu-img convert's accounting: done/total count
    // the source ranges that are copied as data (allocated data; with -S 0
    // also zeroes), reported at qemu-img's request boundaries (2 MiB, or
    // one cluster with -c) in order, so that a front end applying
    // qemu-img's print rule prints the same steps. Returning false cancels:
    // a target that convert created is removed.
    ProgressFn progress;
    WarnFn warn;
};

Status convert(const ConvertOptions& opts);

// How many times convert() has run in this process: every copy of images
// (vireo-img convert, vol-clone, vol-create-from) goes through it, and the
// tests show that with this count.
uint64_t convert_runs();

}  // namespace vireo::storage
