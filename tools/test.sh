#!/usr/bin/env bash
# Builds and runs every test: the unit and end-to-end suite (build/; then each unit-test program
# whole; then the suite again with the kernel level capped at AVX2 and at scalar), the same suite
# under ASan+UBSan and each libFuzzer target for a bounded time (both from one clang build in
# build-asan/: GCC's sanitizer build took three to four times as long).
#   STRATA_TEST_QUICK=1 bash tools/test.sh   # only the plain suite
#   STRATA_FUZZ_SECONDS=N                    # seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/build_quiet.sh
# Each stage's wall time is printed when it ends, so growth of the suite is visible.
STAGE="" STAGE_START=$SECONDS
stage() {
  [ -n "$STAGE" ] && echo "   ($STAGE: $((SECONDS - STAGE_START)) s)"
  STAGE=$1 STAGE_START=$SECONDS
  [ -n "$1" ] && echo "== $1"
  return 0
}
stage "set-up and build (build/)"
bash tools/setup.sh

JOBS=$(nproc)
stage "unit and end-to-end tests (build/)"
ctest --test-dir build --output-on-failure -j"$JOBS"

# ctest runs every test in a process of its own; here each program runs whole, so a test that
# writes past a buffer (oneDNN's JIT code is invisible to ASan) breaks the tests after it.
stage "each unit-test program whole (all its tests in one process)"
for t in build/bin/test_*; do
  "$t" --gtest_brief=1 >"build/$(basename "$t").whole.log" 2>&1 ||
    { tail -40 "build/$(basename "$t").whole.log"; echo "FAILED: $t run whole"; exit 1; }
done

[ -n "${STRATA_TEST_QUICK:-}" ] && { stage ""; exit 0; }

# The kernel level capped below this CPU's (STRATA_CPU_LEVEL): every bound must hold whichever
# path the dispatch takes, so an AVX-512 box also runs what an AVX2-only one would, and both
# the scalar twins' paths. Left out: the CLI tests of what no kernel decides (the README's
# commands, bad input, I/O errors and faults, the server, chat), a third of the suite's time.
LEVEL_FREE='^cli\.(readme_commands|bad_input|io_errors|fault_injection|bench_io|serve_openai|serve_soak|chat)$'
for level in avx2 scalar; do
  stage "unit and end-to-end tests at STRATA_CPU_LEVEL=$level (build/)"
  STRATA_CPU_LEVEL=$level ctest --test-dir build --output-on-failure -j"$JOBS" -E "$LEVEL_FREE"
done

stage "the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
# A tree configured by an older preset (GCC, without the fuzz targets) is configured afresh.
grep -qs '^STRATA_FUZZ:BOOL=ON' build-asan/CMakeCache.txt || rm -rf build-asan
if [ ! -f build-asan/build.ninja ]; then
  cmake --preset asan >/dev/null
fi
quiet_build build-asan
# Left out: the timing programs (tune, bench kernels, and the README's commands, which run
# them): under the sanitizers they spend minutes timing instrumented loops; the plain stage runs them.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E '^cli\.(readme_commands|tune|bench_kernels)$'

stage "fuzz targets (build-asan/, ${STRATA_FUZZ_SECONDS:-20} s each)"
for target in build-asan/bin/fuzz_*; do
  name=$(basename "$target")
  corpus_seed=tests/data/fuzz/${name#fuzz_}
  work=build-asan/corpus/${name#fuzz_}
  mkdir -p "$work"
  echo "-- $name"
  "$target" -max_total_time="${STRATA_FUZZ_SECONDS:-20}" -print_final_stats=0 "$work" "$corpus_seed" \
    > "build-asan/$name.log" 2>&1 || { tail -50 "build-asan/$name.log"; echo "FAILED: $name"; exit 1; }
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "build-asan/$name.log" | tail -1 || true
done
stage ""
echo "all tests passed in $SECONDS s"
