#!/usr/bin/env bash
# strata bench io runs end to end on a small scratch file and reports its figures as JSON
# (figures are printed, never asserted on).
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" bench io --file "$WORK/scratch.bin" --create-mb 8 --block-size 65536 --queue-depth 4 --json >"$WORK/io.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); \
assert j["bytes"] == 8 << 20, j; assert j["gb_per_s"] > 0; assert j["backend"] in ("io_uring", "pread"); \
print("ok: bench io", j["backend"], "direct" if j["direct"] else "buffered", "%.2f GB/s" % j["gb_per_s"])' "$WORK/io.json"
if out=$("$STRATA" bench io --file "$WORK/scratch.bin" --block-size 1000 2>&1); then echo "FAIL: block size 1000 accepted"; exit 1; fi
grep -q -- "--block-size: 1000 is not a multiple of 4096" <<<"$out" || { echo "FAIL: unclear error: $out"; exit 1; }
if out=$("$STRATA" bench io --file "$WORK/scratch.bin" --block-size 0 2>&1); then echo "FAIL: block size 0 accepted"; exit 1; fi
grep -q -- "--block-size: 0 is not a multiple of 4096" <<<"$out" || { echo "FAIL: unclear error: $out"; exit 1; }
# --create-mb never replaces a file: an existing smaller one is an error, and left as it was.
printf 'precious' >"$WORK/keep.txt"
if out=$("$STRATA" bench io --file "$WORK/keep.txt" --create-mb 8 2>&1); then echo "FAIL: existing file replaced"; exit 1; fi
grep -q "keep.txt: exists and is smaller than --create-mb" <<<"$out" || { echo "FAIL: unclear error: $out"; exit 1; }
[ "$(cat "$WORK/keep.txt")" = precious ] || { echo "FAIL: keep.txt changed"; exit 1; }
echo "ok: bench io refuses bad block sizes and never replaces a file"
# Interrupted while writing its scratch file: the partial file is removed and the process still
# ends by the signal (SIGTERM here: a background job of a script ignores SIGINT).
for sig in TERM; do
  "$STRATA" bench io --file "$WORK/partial.bin" --create-mb 100000 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do [ -s "$WORK/partial.bin" ] && break; sleep 0.1; done
  [ -s "$WORK/partial.bin" ] || { kill -9 $pid 2>/dev/null; echo "FAIL: the scratch file was never started"; exit 1; }
  kill -$sig $pid
  rc=0
  wait $pid || rc=$?
  [ $rc -ge 128 ] || { echo "FAIL: SIG$sig: exit $rc, not by the signal"; exit 1; }
  [ ! -e "$WORK/partial.bin" ] || { echo "FAIL: SIG$sig left the partial scratch file"; exit 1; }
done
echo "ok: an interrupted scratch write leaves no partial file"
