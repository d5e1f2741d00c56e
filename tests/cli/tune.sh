#!/usr/bin/env bash
# strata tune measures this box into a profile that strata plan accepts; figures not judged.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
printf 'an older profile\n' >"$WORK/box.json"  # an existing --out is replaced, as every output is
"$STRATA" tune --out "$WORK/box.json" --scratch "$WORK/scratch.bin" --scratch-mb 32 --name test-box \
  >"$WORK/out.txt" 2>"$WORK/err.txt" || { cat "$WORK/err.txt"; exit 1; }
grep -q "wrote .*box.json: DRAM .* GB/s, disk .* GB/s" "$WORK/out.txt" || { echo "FAIL: no summary"; cat "$WORK/out.txt"; exit 1; }
# The NUMA policy follows the measured topology: interleave over several nodes, local on one.
/usr/bin/python3 - "$WORK/box.json" <<'PY' || exit 1
import json, sys
text = "".join(l for l in open(sys.argv[1]) if not l.lstrip().startswith("//"))
cpu = json.loads(text)["cpu"]
want = "interleave" if cpu["numa_nodes"] > 1 else "local"
if cpu.get("numa_policy") != want:
    sys.exit(f"FAIL: {cpu['numa_nodes']} NUMA node(s) but numa_policy {cpu.get('numa_policy')!r}, expected {want!r}")
PY
grep -q "NUMA node(s), policy \(local\|interleave\)" "$WORK/out.txt" || { echo "FAIL: no policy in the summary"; exit 1; }
[ ! -e "$WORK/scratch.bin" ] || { echo "FAIL: scratch file left behind"; exit 1; }
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/tiny" >/dev/null
"$STRATA" plan --model "$WORK/tiny" --profile "$WORK/box.json" | grep "profile    test-box (measured)" >/dev/null \
  || { echo "FAIL: plan does not take the profile"; exit 1; }
if "$STRATA" tune --scratch "$WORK/no/such/dir/x.bin" --scratch-mb 16 >/dev/null 2>"$WORK/err.txt"; then
  echo "FAIL: unwritable scratch accepted"; exit 1
fi
grep -q "x.bin: cannot create the scratch file" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo "ok: tune"
