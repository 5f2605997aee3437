#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD for SECONDS each (at most FUZZ_RUNS
# inputs, default 20000), seeded with the shared test data (every file of
# it: the parsers must survive all of them) and with the target's own seeds
# in tests/fuzz/corpus/<target>/ when it has some. The seed is fixed, so a run is
# the same run wherever it is repeated (FUZZ_SEED overrides it).
# Fails on the first crash, leak or sanitizer report; the reproducer is
# left in BUILD/fuzz-artifacts/.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR SECONDS [TESTDATA]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TESTDATA]}
testdata=${3:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/testdata}

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
find "$testdata" -type f ! -name '*.md' -size -2M -exec cp {} "$seeds/" \; 2>/dev/null || true
own=$(cd "$(dirname "$0")" && pwd)/corpus
mkdir -p "$build/fuzz-artifacts"
status=0
for f in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=$(mktemp -d)
  echo "== $name: ${seconds}s"
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$f" -seed="${FUZZ_SEED:-1}" \
       -runs="${FUZZ_RUNS:-20000}" -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$build/fuzz-artifacts/$name-" "$corpus" "$seeds" \
       $( [ -d "$own/$name" ] && echo "$own/$name" ) > "$build/fuzz-artifacts/$name.log" 2>&1; then
    echo "FAIL $name (see $build/fuzz-artifacts/$name.log)"; tail -40 "$build/fuzz-artifacts/$name.log"
    status=1
  else
    grep -E "stat::number_of_executed_units" "$build/fuzz-artifacts/$name.log" || true
  fi
  rm -rf "$corpus"
done
exit $status
