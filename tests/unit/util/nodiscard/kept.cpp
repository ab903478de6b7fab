// Must compile: the same calls with their results used (the control for
// dropped.cpp, so that a broken compiler invocation cannot pass the test).
#include "util/error.hpp"

vireo::Status step();
vireo::Result<int> count();

int caller() {
    if (!step()) return -1;
    auto n = count();
    return n ? *n : -1;
}
