#pragma once
// VIREO_ASSIGN(lhs, expr): assign the value of a Result-returning
// expression, or return its error from the enclosing function. The
// parsers' companion to VIREO_TRY (util/error.hpp), kept out of that header
// so that only the files that parse include it.

#include <expected>
#include <utility>

#define VIREO_ASSIGN(lhs, expr)                                              \
    do {                                                                     \
        auto vireo_assign_result_ = (expr);                                  \
        if (!vireo_assign_result_) return std::unexpected(vireo_assign_result_.error()); \
        (lhs) = std::move(*vireo_assign_result_);                            \
    } while (0)
