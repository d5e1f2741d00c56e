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
# Where the tiles overtake the row kernels: the profile's crossover per type is the least
# measured batch from which the tiles took at most the rows' time at it and every larger one.
/usr/bin/python3 - "$WORK/box.json" <<'PY' || exit 1
import json, sys
text = "".join(l for l in open(sys.argv[1]) if not l.lstrip().startswith("//"))
j = json.loads(text)
chosen = j["cpu"].get("tiles_min_batch", {})
measured = j["measured"].get("cpu_tiles_crossover", {})
if j["cpu"]["isa"] != "scalar" and "q4_k" not in chosen:
    sys.exit(f"FAIL: no q4_k crossover on an {j['cpu']['isa']} box: {chosen}")
if set(chosen) != set(measured):
    sys.exit(f"FAIL: cpu.tiles_min_batch {chosen} but measured {list(measured)}")
for t, m in measured.items():
    pts = m["times"]
    want = 2 * pts[-1]["batch"]
    for p in reversed(pts):
        if p["tiles_us"] > p["rows_us"]:
            break
        want = p["batch"]
    if chosen[t] != want or m["min_batch"] != want:
        sys.exit(f"FAIL: {t}: crossover {chosen[t]} (measured {m['min_batch']}), the times say {want}: {pts}")
PY
grep -q "NUMA node(s), policy \(local\|interleave\)" "$WORK/out.txt" || { echo "FAIL: no policy in the summary"; exit 1; }
[ ! -e "$WORK/scratch.bin" ] || { echo "FAIL: scratch file left behind"; exit 1; }
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/tiny" >/dev/null
"$STRATA" plan --model "$WORK/tiny" --profile "$WORK/box.json" | grep "profile    test-box (measured)" >/dev/null \
  || { echo "FAIL: plan does not take the profile"; exit 1; }
# A run on the profile takes its crossovers (-v prints the kernel choices).
q4k=$(/usr/bin/python3 -c 'import json,sys; t="".join(l for l in open(sys.argv[1]) if not l.lstrip().startswith("//")); print(json.loads(t)["cpu"].get("tiles_min_batch", {}).get("q4_k", ""))' "$WORK/box.json")
if [ -n "$q4k" ]; then
  "$STRATA" run -m "$WORK/tiny" --profile "$WORK/box.json" -p "hi" -n 1 -v >/dev/null 2>"$WORK/run.txt" \
    || { cat "$WORK/run.txt"; exit 1; }
  grep -Eq "kernel choices: .*tiles .*q4_k from $q4k(,| tokens)" "$WORK/run.txt" \
    || { echo "FAIL: the run does not take the profile's q4_k crossover ($q4k)"; grep "kernel choices" "$WORK/run.txt"; exit 1; }
fi
if "$STRATA" tune --scratch "$WORK/no/such/dir/x.bin" --scratch-mb 16 >/dev/null 2>"$WORK/err.txt"; then
  echo "FAIL: unwritable scratch accepted"; exit 1
fi
grep -q "x.bin: cannot create the scratch file" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
echo "ok: tune"
