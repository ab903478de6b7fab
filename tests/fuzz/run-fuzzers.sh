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

# libstdc++ 12's std::expected needs clang >= 16 (P0848); prefer clang-16.
cc=""; cxx=""
for v in 19 18 17 16; do
  if command -v "clang++-$v" >/dev/null 2>&1; then cc="clang-$v"; cxx="clang++-$v"; break; fi
done
if [ -z "$cxx" ]; then
  major=$(clang++ -dumpversion 2>/dev/null | cut -d. -f1 || echo 0)
  if [ "${major:-0}" -ge 16 ]; then cc=clang; cxx=clang++; else
    echo "run-fuzzers: need clang >= 16 (apt-get install clang-16 libclang-rt-16-dev)" >&2
    exit 1
  fi
fi

# -Wno-unknown-warning-option: the shared warning set has GCC-only spellings.
# __cpp_concepts: clang 16 implements what libstdc++ 12's <expected> needs
# but still advertises concepts as 201907, which hides std::expected.
mkdir -p "$build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIREO_BUILD_FUZZ=ON -DVIREO_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-Wno-unknown-warning-option -Wno-builtin-macro-redefined -U__cpp_concepts -D__cpp_concepts=202002L -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >"$build/cmake-configure.log" 2>&1 || { cat "$build/cmake-configure.log" >&2; exit 1; }

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
