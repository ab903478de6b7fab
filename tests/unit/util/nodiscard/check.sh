#!/usr/bin/env bash
# A dropped Result/Status does not compile (issue 13, "errors enforced"):
# compile kept.cpp (must succeed) and dropped.cpp twice (a dropped Status,
# a dropped Result<int>: each must fail with the compiler's nodiscard diagnostic),
# with the project's language level and -Werror as the real build has.
#   check.sh <c++ compiler> <repo src dir> [the build tree's compiler flags...]
set -uo pipefail
cxx="$1"; src="$2"; shift 2; here="$(cd "$(dirname "$0")" && pwd)"
flags=("$@" -std=c++2b -Wall -Wextra -Werror -fsyntax-only -I"$src")

if ! out="$("$cxx" "${flags[@]}" "$here/kept.cpp" 2>&1)"; then
    echo "FAIL: the control kept.cpp does not compile:"; echo "$out"; exit 1
fi
for variant in DROP_STATUS DROP_RESULT; do
    if out="$("$cxx" "${flags[@]}" -D"$variant" "$here/dropped.cpp" 2>&1)"; then
        echo "FAIL: a dropped result compiled ($variant)"; exit 1
    fi
    if [[ "$out" != *"nodiscard"* ]]; then
        echo "FAIL: dropped.cpp ($variant) failed for another reason:"; echo "$out"; exit 1
    fi
    echo "ok: $variant refused: $(grep -m1 'error:' <<<"$out")"
done
