// Changing a backing chain: commit (an overlay's data into its base) and
// rebase (an overlay onto another backing file), as qemu-img does them.
// Errors carry qemu-img's messages; nothing is printed.
#pragma once

#include <cstdint>
#include <string>

#include "storage/image.hpp"
#include "storage/progress.hpp"

namespace vireo::storage {

struct CommitOptions {
    std::filesystem::path path;  // the overlay
    std::string format;          // "" = probe
    std::string base;            // -b: an image further down the chain ("" = the direct backing file)
    bool drop = false;           // -d: leave the overlay's data in place
    // Progress: bytes of the overlay's guest range walked (done) of its
    // size, after each request of at most 2 MiB. Returning false stops the
    // commit (what was copied stays in the base: it is the data the overlay
    // shows there already).
    ProgressFn progress;
};
Status commit(const CommitOptions& opts);

struct RebaseOptions {
    std::filesystem::path path;   // the overlay (qcow2)
    std::string format;           // "" = probe
    std::string backing;          // -b: the new backing file ("" = none)
    std::string backing_format;   // -F (required with a backing file: never guessed)
    bool unsafe = false;          // -u: only rewrite the header
    bool force_share = false;     // -U: open the new backing file sharing every permission
    // Progress: called once per step that qemu-img rebase reports: each run
    // of at most 2 MiB that the overlay does not allocate, after it is
    // handled (done = its end, total = the size). Returning false stops the
    // rebase before the header changes.
    ProgressFn progress;
};
Status rebase(const RebaseOptions& opts);

}  // namespace vireo::storage
