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

# The sanitizer tree scripts/test builds its unit tests in (clang, ASan +
# UBSan, libFuzzer's instrumentation): the targets reuse its objects.
"$src/scripts/sanitizer-tree" "$build"

targets="fuzz_domain_xml fuzz_network_xml fuzz_rpc_packet"
ninja -C "$build" -j2 $targets

mkdir -p "$build/fuzz-corpus/domain_xml" "$build/fuzz-corpus/network_xml" "$build/fuzz-corpus/rpc_packet" "$build/fuzz-artifacts"
find "$src/tests/data/conf" -name '*.xml' -exec cp {} "$build/fuzz-corpus/domain_xml/" \;
find "$src/tests/fuzz/corpus/network_xml" -name '*.xml' -exec cp {} "$build/fuzz-corpus/network_xml/" \;
cp "$src"/tests/fuzz/corpus/rpc_packet/* "$build/fuzz-corpus/rpc_packet/"

# What went wrong, kept short for the end of scripts/test's output (CI shows
# the tail of a run): each finding's sanitizer summary and its reproducer,
# base64-encoded when small enough to copy from a CI log.
report="$build/fuzz-findings.txt"
rm -f "$report" "$build"/fuzz-artifacts/*

status=0
for t in $targets; do
  name=${t#fuzz_}
  echo "run-fuzzers: $t for ${seconds}s"
  if ! "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1 \
      "$build/fuzz-corpus/$name" >"$build/$t.log" 2>&1; then
    echo "run-fuzzers: $t FOUND A PROBLEM (see $build/$t.log, reproducer in $build/fuzz-artifacts/)" >&2
    tail -40 "$build/$t.log" >&2
    {
      echo "$t:"
      grep -E "^(==[0-9]+==ERROR|SUMMARY|ERROR: libFuzzer)|out-of-memory|deadly signal|fixed point|does not parse" "$build/$t.log" | head -5
      for a in "$build"/fuzz-artifacts/*; do
        [ -f "$a" ] || continue
        if [ "$(wc -c <"$a")" -le 4096 ]; then
          echo "reproducer $(basename "$a") (base64): $(base64 -w0 "$a")"
        else
          echo "reproducer $(basename "$a"): $(wc -c <"$a") bytes, too large to print"
        fi
      done
    } >>"$report"
    status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$build/$t.log" | tail -2
  fi
done
exit $status
