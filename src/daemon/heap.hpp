// The daemon's heap policy. vireod is long-lived and its memory use is
// mostly the domain registry; what requests allocate for a moment (a list
// of 1000 domains as JSON, a parsed definition) should go back to the system
// instead of staying in per-thread malloc arenas.
#pragma once

#include <cstddef>

namespace vireo::daemon {

// Call once, before any thread starts: at most two malloc arenas (the
// default, eight per core, keeps freed memory of every worker thread apart).
void limit_heap_arenas();

// Give the free pages of the heap back to the system (after a job, or a
// large answer). Cheap when there is nothing to give back.
void release_free_heap();

// Answers at least this large are worth a release_free_heap() once sent.
inline constexpr std::size_t kLargeAnswer = 64 * 1024;

}  // namespace vireo::daemon
