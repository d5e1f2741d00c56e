#!/usr/bin/env bash
# strata serve on a tiny model, driven by the official `openai` npm client (tools/setup.sh
# installs it; without it this test is skipped), then queue limits, the body limit and a
# graceful SIGTERM checked with curl.
set -euo pipefail
STRATA=$1
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NODE_MODULES=$ROOT/.cache/npm/node_modules
if [ ! -f "$NODE_MODULES/openai/package.json" ] || ! command -v node >/dev/null; then
  echo "SKIP: the openai npm package is not installed (bash tools/setup.sh installs it)"
  exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --out "$WORK/v3" >/dev/null

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a server on a free port; sets PORT and PID. Arguments: log file, then serve flags.
start() {
  local log=$1; shift
  : >"$log"  # exists before the poll below reads it (the server creates it in the background)
  "$STRATA" serve --model "$WORK/v3" --port 0 "$@" 2>"$log" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$log")
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || { echo "FAIL: serve exited"; cat "$log"; exit 1; }
    sleep 0.1
  done
  echo "FAIL: serve did not start"; cat "$log"; exit 1
}

start "$WORK/serve.log" --parallel 8 --api-key sekret
curl -sf "http://127.0.0.1:$PORT/health" | grep -q '"ok"' || { echo "FAIL: /health"; exit 1; }
# Node finds ES module imports next to the script, not through NODE_PATH: run a copy beside a
# link to the npm folder.
cp "$ROOT/tests/cli/openai_client.mjs" "$WORK/" && ln -sfn "$NODE_MODULES" "$WORK/node_modules"
node "$WORK/openai_client.mjs" "http://127.0.0.1:$PORT/v1" sekret \
  || { echo "--- server log"; cat "$WORK/serve.log"; exit 1; }


code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models")
[ "$code" = 401 ] || { echo "FAIL: no key gave $code"; exit 1; }
code=$(head -c 2000000 /dev/zero | tr '\0' 'a' | curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekret' \
  --data-binary @- "http://127.0.0.1:$PORT/v1/completions")
[ "$code" = 413 ] || { echo "FAIL: a 2 MB body gave $code"; exit 1; }
# A body that is not UTF-8 is the client's error (400), quoted back as valid JSON.
code=$(printf '{"prompt":"\xff","max_tokens":3}' | curl -s -o "$WORK/bad.json" -w '%{http_code}' \
  -H 'Authorization: Bearer sekret' --data-binary @- "http://127.0.0.1:$PORT/v1/completions")
[ "$code" = 400 ] || { echo "FAIL: an invalid UTF-8 body gave $code: $(cat "$WORK/bad.json")"; exit 1; }
python3 -c 'import json,sys; json.load(open(sys.argv[1]))["error"]["message"]' "$WORK/bad.json" ||
  { echo "FAIL: the 400 body is not JSON"; exit 1; }
# Two Content-Length headers (where does the body end?) are refused, not resolved by a guess.
python3 - "$PORT" <<'PY' || { echo "FAIL: two Content-Length headers were not refused"; exit 1; }
import socket, sys
body = b'{"prompt":"hi","max_tokens":2}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Length: %d\r\n"
          b"Content-Length: 3\r\nConnection: close\r\n\r\n" % len(body) + body)
s.settimeout(10)
out = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    out += d
sys.exit(0 if out.startswith(b"HTTP/1.1 400") and b"Content-Length headers" in out else 1)
PY
kill -TERM "$PID"; wait "$PID" || { echo "FAIL: SIGTERM exit status $?"; cat "$WORK/serve.log"; exit 1; }
grep -q "SIGTERM: finishing requests" "$WORK/serve.log" || { echo "FAIL: no shutdown message"; exit 1; }
echo "ok: 401 without a key, 413 for a large body, 400 for bytes that are not UTF-8, SIGTERM exits 0"

# One slot, no queue: a second request while the first runs gets 429; SIGTERM lets the first finish.
start "$WORK/serve1.log" --parallel 1 --queue 0
URL="http://127.0.0.1:$PORT/v1/completions"
curl -sN "$URL" -d '{"prompt":"Hello","max_tokens":300,"temperature":0,"ignore_eos":true,"stream":true}' >"$WORK/long.out" &
CURL=$!
for _ in $(seq 1 100); do grep -q '^data: {' "$WORK/long.out" 2>/dev/null && break; sleep 0.05; done
code=$(curl -s -o "$WORK/busy.json" -w '%{http_code}' "$URL" -d '{"prompt":"Hi","max_tokens":2}')
[ "$code" = 429 ] || { echo "FAIL: a full server gave $code"; cat "$WORK/busy.json"; exit 1; }
grep -q "queue is full" "$WORK/busy.json" || { echo "FAIL: 429 without a reason"; exit 1; }
kill -TERM "$PID"; wait "$PID"
wait "$CURL"
grep -q '^data: \[DONE\]' "$WORK/long.out" || { echo "FAIL: the request in flight did not finish"; tail -3 "$WORK/long.out"; exit 1; }
grep -q '"finish_reason":"length"' "$WORK/long.out" || { echo "FAIL: no finish reason"; exit 1; }
echo "ok: 429 when full; a request in flight finishes through SIGTERM"
