#!/usr/bin/env bash
# strata serve under a bounded soak: rounds of concurrent clients — whole and streamed
# completions, malformed and oversized bodies, clients that hang up mid-stream — and the
# server never crashes, keeps answering, and its resident memory does not creep: after a
# warm-up, RSS may grow by at most 16 MiB over the following 8 rounds (steps reuse their
# scratch; a finished request's slot is reused). The RSS bound is skipped for a sanitized
# build (its allocator keeps freed memory in quarantine).
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; tail -20 "$WORK/serve.log"; exit 1; }
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/m" >/dev/null
# The log exists before the server starts: the port poll below reads it at once.
: >"$WORK/serve.log"
"$STRATA" serve -m "$WORK/m" --port 0 -np 4 --queue 64 --max-body-kb 16 2>"$WORK/serve.log" &
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
URL="http://127.0.0.1:$PORT/v1"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
head -c 20000 /dev/zero | tr '\0' 'a' >"$WORK/big.txt"

round() {  # 16 clients at once
  local r=$1 pids=()
  for i in $(seq 1 16); do
    case $((i % 4)) in
      0) curl -s -o /dev/null "$URL/completions" -H 'Content-Type: application/json' \
           -d "{\"prompt\": \"round $r client $i\", \"max_tokens\": 12, \"temperature\": 0.7, \"seed\": $i}" & ;;
      1) curl -sN -o /dev/null "$URL/chat/completions" -H 'Content-Type: application/json' \
           -d "{\"messages\": [{\"role\": \"user\", \"content\": \"hello $i\"}], \"max_tokens\": 12, \"stream\": true}" & ;;
      2) curl -sN -o /dev/null --max-time 0.05 "$URL/completions" -H 'Content-Type: application/json' \
           -d "{\"prompt\": \"hang up $i\", \"max_tokens\": 200, \"stream\": true}" & ;;  # leaves mid-stream
      3) if [ $((i % 8)) = 3 ]; then
           curl -s -o /dev/null "$URL/completions" -H 'Content-Type: application/json' -d '{"prompt": "broken' &
         else
           curl -s -o /dev/null "$URL/completions" -H 'Content-Type: application/json' \
             --data-binary "{\"prompt\": \"$(cat "$WORK/big.txt")\"}" &
         fi ;;
    esac
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  kill -0 "$PID" 2>/dev/null || fail "the server died in round $r"
  curl -sf "http://127.0.0.1:$PORT/health" | grep -q '"ok"' || fail "no /health after round $r"
}

for r in 0 1 2 3; do round "$r"; done  # warm-up: the server's threads and every scratch buffer
base=$(rss_kb)
for r in $(seq 4 11); do round "$r"; done
end=$(rss_kb)
# A request still answers, whole.
curl -sf "$URL/completions" -H 'Content-Type: application/json' -d '{"prompt": "after", "max_tokens": 4}' \
  | grep -q '"finish_reason"' || fail "no answer after the soak"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
growth=$(( (end - base) / 1024 ))
# Sanitized: the ASan runtime linked in (clang, statically) or beside it (GCC's libasan).
if grep -qa __asan_init "$STRATA"; then
  echo "note: sanitized build, RSS bound not checked (grew ${growth} MiB)"
elif [ "$growth" -gt 16 ]; then
  fail "RSS grew ${growth} MiB over 8 rounds after warm-up (${base} -> ${end} KiB)"
fi
kill -TERM "$PID"
wait "$PID" || fail "serve did not exit cleanly"
trap - EXIT
echo "ok: 12 rounds of 16 clients; RSS ${base} -> ${end} KiB after warm-up; $(grep -c . "$WORK/metrics.txt") metric lines"
