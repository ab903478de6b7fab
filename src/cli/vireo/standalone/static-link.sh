#!/usr/bin/env bash
# Linker launcher of the `vireo` executable (see ../standalone.cmake):
#   static-link.sh <compiler> <link arguments...>
#
# Tries a fully static link first: every shared library on the command line
# is replaced by its static archive beside it (libz.so -> libz.a), or dropped
# when there is none (libfmt.so, libspdlog.so: their code is compiled into
# the executable, see ../../standalone_fmt.cpp and static_spdlog.cpp), and -static is added. A static
# executable needs no dynamic loader: no libraries to map, no relocations,
# no symbol lookups at start-up, which is most of a short command's CPU time
# (`vireo dominfo`: 7.0 ms of CPU and 133 page faults dynamically linked,
# 4.2 ms and 92 static).
# When that link fails (a library with no static archive that the executable
# does need), the original command runs instead, so the build never breaks
# for want of static archives; the result is then the partly static
# executable (no shared C++ libraries) described in standalone.cmake.
set -u
[[ $# -ge 1 ]] || { echo "usage: $0 <compiler> <arguments...>" >&2; exit 2; }

static_cmd=("$1" -static)
for arg in "${@:2}"; do
    case "$arg" in
        -static-libstdc++ | -static-libgcc | -no-pie) ;;  # implied by -static
        *.so | *.so.*)
            archive="${arg%%.so*}.a"
            [[ -f $archive ]] && static_cmd+=("$archive")
            ;;
        *) static_cmd+=("$arg") ;;
    esac
done

log="$(mktemp "${TMPDIR:-/tmp}/vireo-static-link.XXXXXX")"
trap 'rm -f "$log"' EXIT
if "${static_cmd[@]}" 2>"$log"; then
    cat "$log" >&2
    exit 0
fi
echo "note: static link of vireo not possible here, linking it with the shared C library" >&2
"$@"
