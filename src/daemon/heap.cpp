#include "daemon/heap.hpp"

#include <malloc.h>

namespace vireo::daemon {

void limit_heap_arenas() { ::mallopt(M_ARENA_MAX, 2); }

void release_free_heap() { ::malloc_trim(0); }

}  // namespace vireo::daemon
