// The daemon's heap policy. vireod is long-lived and its memory use is
// mostly the domain registry; what requests allocate for a moment (a list
// of 1000 domains as JSON, a parsed definition) should go back to the system
// instead of staying in per-thread malloc arenas.
#pragma once

#include <chrono>

namespace vireo::daemon {

// Call once, before any thread starts: at most two malloc arenas (the
// default, eight per core, keeps freed memory of every worker thread apart).
void limit_heap_arenas();

// Give the free pages of the heap back to the system. Not cheap: malloc_trim
// walks the whole heap (tens of madvise calls, a millisecond or more) while
// holding the main arena's lock, so every thread that allocates waits. The
// server therefore calls it only once it has been idle for kTrimWhenIdleFor
// (see server.cpp), never between a job and its answer or the next request.
void release_free_heap();

// How long the server must go without a request before it trims the heap:
// long enough that back-to-back CLI calls (a few ms apart) never pay for a
// trim, short enough that an idle daemon's RSS is down within a second.
inline constexpr auto kTrimWhenIdleFor = std::chrono::milliseconds(500);

}  // namespace vireo::daemon
