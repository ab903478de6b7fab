// Must NOT compile: a Status and a Result<T> dropped at a call site
// (tests/unit/util/nodiscard/check.sh compiles it and expects the refusal).
#include "util/error.hpp"

vireo::Status step();
vireo::Result<int> count();

void caller() {
#if defined(DROP_STATUS)
    step();
#else
    count();
#endif
}
