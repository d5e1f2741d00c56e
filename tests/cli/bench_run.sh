#!/usr/bin/env bash
# strata bench run: llama-bench style pp/tg rows (markdown and JSON), tg with several
# sequences, the machine's bound beside them, and expert bytes per tier with a cache.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/v3" >/dev/null
"$STRATA" bench run -m "$WORK/v3" -p 32 -n 8 -r 2 --parallel 1,3 >"$WORK/out.md" 2>"$WORK/err.txt"
for want in "| test | t/s |" "| pp32 | [0-9.]* ± [0-9.]* |" "| tg8 | [0-9.]* ± [0-9.]* |" "| tg8 ×3 seq |" "DRAM read [0-9.]* GB/s (measured now)"; do
  grep -q "$want" "$WORK/out.md" || { echo "FAIL: no '$want'"; cat "$WORK/out.md" "$WORK/err.txt"; exit 1; }
done
"$STRATA" bench run -m "$WORK/v3" -p 16 -n 4 -r 1 --json --expert-cache-mb 0.05 >"$WORK/out.json" 2>/dev/null
/usr/bin/env node -e '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const tests = j.tests.map((t) => t.test).join(",");
if (tests !== "pp16,tg4") { console.error("FAIL: tests " + tests); process.exit(1); }
if (!j.tests.every((t) => t.depth === 0)) { console.error("FAIL: depth"); process.exit(1); }
if (!(j.tests[1].samples.length === 1 && j.tests[1].mean > 0)) { console.error("FAIL: samples"); process.exit(1); }
if (!(j.tests[1].expert_bytes_per_token && j.tests[1].expert_bytes_per_token.nvme > 0)) { console.error("FAIL: no bytes per tier"); process.exit(1); }
' "$WORK/out.json"
# -d: the tests after a context already in the cache (llama-bench's -d); lists, as
# llama-bench's, give every test at every depth; more than the context the model allows is
# refused by name.
"$STRATA" bench run -m "$WORK/v3" -p 8,4 -n 4 -d 0,24 -r 1 >"$WORK/depth.md" 2>"$WORK/err.txt"
for want in "| pp8 | " "| pp4 | " "| tg4 | " "| pp8 @ d24 | [0-9.]* ± [0-9.]* |" "| pp4 @ d24 | " "| tg4 @ d24 | [0-9.]* ± [0-9.]* |"; do
  grep -q "$want" "$WORK/depth.md" || { echo "FAIL: no '$want'"; cat "$WORK/depth.md" "$WORK/err.txt"; exit 1; }
done
[ "$(grep -c '| [pt][pg][0-9]' "$WORK/depth.md")" = 6 ] || { echo "FAIL: not 6 rows"; cat "$WORK/depth.md"; exit 1; }
"$STRATA" bench run -m "$WORK/v3" -p 4 -n 0 -d 0,12 -r 1 --json >"$WORK/depth.json" 2>/dev/null
/usr/bin/env node -e '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const got = j.tests.map((t) => t.test + "/" + t.depth).join(",");
if (got !== "pp4/0,pp4 @ d12/12") { console.error("FAIL: tests " + got); process.exit(1); }
' "$WORK/depth.json"
if "$STRATA" bench run -m "$WORK/v3" -p 4,x -n 0 -r 1 >/dev/null 2>"$WORK/err.txt"; then echo "FAIL: -p 4,x accepted"; exit 1; fi
grep -q "\-p: 'x' is not a count" "$WORK/err.txt" || { echo "FAIL: unclear -p error"; cat "$WORK/err.txt"; exit 1; }
if "$STRATA" bench run -m "$WORK/v3" -p 8 -n 4 -d 100000 -r 1 >/dev/null 2>"$WORK/err.txt"; then echo "FAIL: -d past the context accepted"; exit 1; fi
grep -q "more than the context of" "$WORK/err.txt" || { echo "FAIL: unclear -d error"; cat "$WORK/err.txt"; exit 1; }
if "$STRATA" bench run -m "$WORK/v3" -n 4 --parallel 0 2>"$WORK/err.txt"; then echo "FAIL: --parallel 0 accepted"; exit 1; fi
grep -q "'0' is not a count" "$WORK/err.txt" || { echo "FAIL: unclear error"; cat "$WORK/err.txt"; exit 1; }
# oneDNN's OpenMP threads wait passively unless the user chose a policy (the program starts
# itself over with OMP_WAIT_POLICY=passive: libgomp reads it as it loads).
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$STRATA" bench run -m "$WORK/v3" -p 4 -n 0 -r 1 >"$WORK/omp.md" 2>&1
grep -q "OpenMP wait policy (oneDNN's threads): passive" "$WORK/omp.md" || { echo "FAIL: not passive"; cat "$WORK/omp.md"; exit 1; }
OMP_WAIT_POLICY=active "$STRATA" bench run -m "$WORK/v3" -p 4 -n 0 -r 1 >"$WORK/omp.md" 2>&1
grep -q "OpenMP wait policy (oneDNN's threads): active" "$WORK/omp.md" || { echo "FAIL: the user's policy replaced"; cat "$WORK/omp.md"; exit 1; }
echo "ok: bench run: $(grep '| tg8 |' "$WORK/out.md")"
