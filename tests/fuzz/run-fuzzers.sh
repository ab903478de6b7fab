#!/bin/sh
# Build vireo's libFuzzer targets with clang (ASan + UBSan) in BUILD_DIR and
# run each for SECONDS, seeded from tests/data/conf. Exit status is non-zero
# on any crash or sanitizer report (libFuzzer writes the reproducer to
# BUILD_DIR/fuzz-artifacts/).
#   tests/fuzz/run-fuzzers.sh BUILD_DIR SECONDS
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)

# clang >= 16 (libstdc++ 12's std::expected, libFuzzer) comes from the
# toolchain file the sanitizer build of scripts/test uses too. A tree an
# older version of this script configured without it is configured afresh.
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^VIREO_CLANGXX:' "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
mkdir -p "$build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$src/cmake/clang.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIREO_BUILD_FUZZ=ON -DVIREO_BUILD_BENCH=OFF \
  -DVIREO_SANITIZE=fuzzer-no-link,address,undefined >"$build/cmake-configure.log" 2>&1 || { cat "$build/cmake-configure.log" >&2; exit 1; }

targets="fuzz_domain_xml fuzz_network_xml fuzz_rpc_packet"
ninja -C "$build" -j2 $targets

mkdir -p "$build/fuzz-corpus/domain_xml" "$build/fuzz-corpus/network_xml" "$build/fuzz-corpus/rpc_packet" "$build/fuzz-artifacts"
find "$src/tests/data/conf" -name '*.xml' -exec cp {} "$build/fuzz-corpus/domain_xml/" \;
find "$src/tests/fuzz/corpus/network_xml" -name '*.xml' -exec cp {} "$build/fuzz-corpus/network_xml/" \;
cp "$src"/tests/fuzz/corpus/rpc_packet/* "$build/fuzz-corpus/rpc_packet/"

status=0
for t in $targets; do
  name=${t#fuzz_}
  echo "run-fuzzers: $t for ${seconds}s"
  if ! "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1 \
      "$build/fuzz-corpus/$name" >"$build/$t.log" 2>&1; then
    echo "run-fuzzers: $t FOUND A PROBLEM (see $build/$t.log, reproducer in $build/fuzz-artifacts/)" >&2
    tail -40 "$build/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$build/$t.log" | tail -2
  fi
done
exit $status
