#!/usr/bin/env bash
# strata bench kernels runs on this CPU (whatever its ISA and oneDNN's support for it) and
# prints the JSON rows the README documents. Figures are not judged here.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" bench kernels --json --types q8_0,mxfp4 --batch 1,8 --shapes 512x256 >"$WORK/k.json"
python3 - "$WORK/k.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["dram_read_gb_per_s"] > 0 and j["onednn_gemm_gflop_per_s"] > 0, j
# Judged against the higher of the probes before and after the rows.
assert j["dram_read_gb_per_s"] == max(j["dram_read_gb_per_s_start"], j["dram_read_gb_per_s_end"]), j
assert j["onednn_gemm_type"] in ("bf16", "f32") and j["batched_products_type"] in ("bf16", "f32"), j
rows = j["rows"]
assert len(rows) == 2 * 2 * 2, len(rows)
for r in rows:
    for k in ("type", "shape", "batch", "us", "gb_per_s", "gflop_per_s", "ratio", "path"):
        assert k in r, (k, r)
    assert r["us"] > 0 and r["ratio"] > 0, r
    assert r["path"] == "int8", r  # integer and FP4 weights below the GEMM batch: the integer dot
    assert r["shape"] in ("up 512->256", "down 256->512"), r  # an expert of hidden 512, intermediate 256
    assert (r["batch"] == 1) == ("in_cache_gb_per_s" in r), r  # the kernel's own speed, batch 1 only
    assert r["batch"] != 1 or r["in_cache_gb_per_s"] > 0, r
print(f"ok: bench kernels ({j['dispatch']}, oneDNN {j['onednn_gemm_type']})")
PY
"$STRATA" bench kernels --json --types q4_k,fp8 --batch 1,16 --shapes v4 --exact-dot >"$WORK/e.json"
python3 - "$WORK/e.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
paths = {(r["type"], r["batch"]): r["path"] for r in j["rows"]}
# The scalar level (STRATA_CPU_LEVEL=scalar) has no fused FP8 dot: it widens the rows.
assert paths[("q4_k", 1)] == "rows" and paths[("fp8", 1)] == ("rows" if j["dispatch"] == "scalar" else "fused"), paths
assert paths[("q4_k", 16)] == "gemm" and paths[("fp8", 16)] == "gemm", paths
print("ok: bench kernels --exact-dot paths")
PY
"$STRATA" bench moe --experts 4 --top-k 2 --tokens 2 --numa-split --json >"$WORK/moe.json"
python3 - "$WORK/moe.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["experts"] == 4 and j["top_k"] == 2 and j["type"] == "q4_k" and j["numa_nodes"] >= 1, j
assert j["ms_per_token"] > 0 and j["gb_per_s"] > 0 and j["dram_read_gb_per_s"] > 0, j
assert j["dram_read_gb_per_s"] == max(j["dram_read_gb_per_s_start"], j["dram_read_gb_per_s_end"]), j
print(f"ok: bench moe ({j['ms_per_token']:.2f} ms per token)")
PY
if "$STRATA" bench moe --experts 2 --top-k 3 2>"$WORK/err.txt"; then echo "FAIL: top-k above the experts accepted"; exit 1; fi
grep -q "top-k 3 exceeds --experts" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
# The tiled layout's rows (--repack's): its own type name, the tiles from one token where the CPU
# has them (the gathered rows' integer dot where it has none); a shape that splits a tile refused.
"$STRATA" bench kernels --json --types q4_k_t16,q6_k_t16,q2_k_t16,q3_k_t16 --batch 1,4 --shapes 512x256 >"$WORK/t.json"
python3 - "$WORK/t.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rows = j["rows"]
assert len(rows) == 16 and {r["type"] for r in rows} == {"q4_k_t16", "q6_k_t16", "q2_k_t16", "q3_k_t16"}, rows
assert all(r["path"] in ("int8tiles", "int8") for r in rows), rows
print(f"ok: bench kernels q4_k_t16 ({rows[0]['path']})")
PY
if "$STRATA" bench kernels --types q8_0_t16 --batch 1 --shapes 512x256 2>"$WORK/err.txt"; then
  echo "FAIL: a type with no tiled layout accepted"
  exit 1
fi
grep -q "unknown type 'q8_0_t16'" "$WORK/err.txt" || { echo "FAIL: unclear error: $(cat "$WORK/err.txt")"; exit 1; }
