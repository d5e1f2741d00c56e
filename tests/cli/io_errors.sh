#!/usr/bin/env bash
# A disk that fails under a running strata (EIO from the reads of one layer's routed experts,
# given by an LD_PRELOAD shim: tests/support/eio_shim.c): `run` ends with exit 1 naming the
# file and the offset — no signal, no text made from missing weights — and `serve` answers
# that request with a 500 naming them, then serves the next one once the disk answers again.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
SHIM="$(dirname "$STRATA")/libstrata_eio_shim.so"
[ -f "$SHIM" ] || { echo "SKIP: no $SHIM"; exit 77; }
# A sanitized strata needs its runtime first in the preload list.
ASAN=$(ldd "$STRATA" | sed -n 's/.*=> \(\/[^ ]*libasan[^ ]*\) .*/\1/p' | head -1)
PRELOAD="${ASAN:+$ASAN:}$SHIM"
fail() { echo "FAIL: $*"; for f in "$WORK"/*.log; do echo "--- $f"; tail -5 "$f"; done; exit 1; }

"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/m" >/dev/null
# The bytes of layer 1's routed experts (safetensors: 8-byte header length, JSON header, data).
RANGE=$(python3 - "$WORK/m/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
spans = [v["data_offsets"] for k, v in header.items() if ".layers.1.mlp.experts." in k]
print(f"{8 + n + min(s[0] for s in spans)}-{8 + n + max(s[1] for s in spans)}")
PY
)
[ -n "$RANGE" ] || fail "no routed experts in layer 1"
FLAGS=(--expert-cache-mb 0.05 --expert-io-pread)

# A clean run first: the flags work without the fault.
"$STRATA" run -m "$WORK/m" -p "Hello" -n 4 "${FLAGS[@]}" >"$WORK/clean.txt" 2>"$WORK/clean.log" || fail "clean run"

set +e
LD_PRELOAD="$PRELOAD" STRATA_EIO_FILE=model.safetensors STRATA_EIO_RANGE=$RANGE \
  "$STRATA" run -m "$WORK/m" -p "Hello" -n 4 "${FLAGS[@]}" >"$WORK/run.txt" 2>"$WORK/run.log"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "run exited 0 over a failing disk"
[ "$rc" -lt 128 ] || fail "run killed by signal $((rc - 128))"
grep -q "model.safetensors.*I/O error at offset [0-9]*" "$WORK/run.log" || fail "the file and offset are not named"
[ ! -s "$WORK/run.txt" ] || fail "text was printed from missing weights: $(cat "$WORK/run.txt")"

# serve: the first request meets the failing disk (500, the file named), the next is answered.
touch "$WORK/disk-fails"
# The log exists before the server starts: the port poll below reads it at once.
: >"$WORK/serve.log"
LD_PRELOAD="$PRELOAD" STRATA_EIO_FILE=model.safetensors STRATA_EIO_RANGE=$RANGE STRATA_EIO_WHILE="$WORK/disk-fails" \
  "$STRATA" serve -m "$WORK/m" --port 0 "${FLAGS[@]}" 2>"$WORK/serve.log" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$WORK/serve.log")
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || fail "serve exited"
  sleep 0.1
done
[ -n "$PORT" ] || fail "serve did not start"
ask() { curl -s -o "$WORK/$1.json" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/completions" \
  -H 'Content-Type: application/json' -d '{"prompt": "Hello", "max_tokens": 4}'; }
code=$(ask first)
[ "$code" = 500 ] || fail "first request: HTTP $code ($(cat "$WORK/first.json"))"
grep -q "model.safetensors.*I/O error at offset" "$WORK/first.json" || fail "500 without the file: $(cat "$WORK/first.json")"
rm "$WORK/disk-fails"  # the disk answers again
code=$(ask second)
[ "$code" = 200 ] || fail "second request: HTTP $code ($(cat "$WORK/second.json"))"
grep -q '"finish_reason"' "$WORK/second.json" || fail "second request: $(cat "$WORK/second.json")"
kill -TERM "$PID"
wait "$PID" || fail "serve did not shut down cleanly"
trap - EXIT
echo "ok: run: $(grep -o 'I/O error at offset [0-9]*' "$WORK/run.log" | head -1); serve: 500 then 200"
