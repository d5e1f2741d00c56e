#!/usr/bin/env bash
# Every strata command in README.md's ```bash blocks runs and exits 0 (none may crash or have
# rotted), in README order, on tiny models. Stand-ins: /tmp -> a scratch folder, the full-size
# GGUF -> a tiny GGUF, DIR -> a tiny model, port 8080 -> a free port, and tune's scratch file
# is kept small. `serve` runs in the background until the commands after it are done.
set -euo pipefail
STRATA=$(realpath "$1")
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$WORK" && mkdir -p "$WORK/tmp"
PORT=$(( 20000 + RANDOM % 20000 ))

# The commands: lines of ```bash blocks, continuations joined, only those that run strata
# (directly, or fed by printf / echo), then curl against the server.
awk '/^```bash/{f=1;next} /^```/{f=0} f' "$ROOT/README.md" \
  | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' \
  | grep -E '^(build/bin/strata|printf|echo .*\| *build/bin/strata|curl)' >"$WORK/commands.txt"
[ "$(grep -c 'build/bin/strata' "$WORK/commands.txt")" -ge 30 ] || { echo "FAIL: too few commands found"; exit 1; }

cd "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --format gguf --dtype q4_k --out "$WORK/full.gguf" >/dev/null
"$STRATA" make-tiny --arch deepseek_v3 --out "$WORK/dir" >/dev/null
printf 'Hello\nWhat is MoE?\n' >"$WORK/prompts.txt"
# Files the README's commands read before the command that writes them appears.
"$STRATA" profile --model "$WORK/dir" --prompts "$WORK/prompts.txt" -n 2 --out "$WORK/hot.json" >/dev/null 2>&1
"$STRATA" plan --model "$WORK/dir" --profile rtx4090-256gb --json >"$WORK/plan.json" 2>/dev/null

SERVER=""
trap '[ -n "$SERVER" ] && kill -9 $SERVER 2>/dev/null || true' EXIT
n=0
while IFS= read -r line; do
  # The README's own paths first, strata's path last (it may hold /tmp/ itself).
  cmd=${line//\/tmp\//$WORK/tmp/}
  cmd=${cmd//\/models\/DeepSeek-R1-Q4_K_M-00001-of-00009.gguf/$WORK/full.gguf}
  cmd=${cmd//--model DIR/--model $WORK/dir}
  cmd=${cmd//8080/$PORT}
  cmd=${cmd//profiles\/my-box.json/$WORK/my-box.json}
  cmd=${cmd//\/nvme\/strata-tune.bin/$WORK/tune.bin --scratch-mb 16}
  cmd=${cmd//--threads 16/--threads 2}
  cmd=${cmd//tests\/data\//$ROOT/tests/data/}
  cmd=${cmd//-f README.md/-f $ROOT/README.md}
  cmd=${cmd//build\/bin\/strata/\"$STRATA\"}
  n=$((n + 1))
  if [[ $line == *" serve "* ]]; then
    bash -c "$cmd" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 300); do grep -q "on http://" "$WORK/serve.log" && break; sleep 0.1; done
    grep -q "on http://" "$WORK/serve.log" || { echo "FAIL: README command $n did not start: $line"; cat "$WORK/serve.log"; exit 1; }
    continue
  fi
  if ! timeout 300 bash -c "$cmd" >"$WORK/out.txt" 2>"$WORK/err.txt" </dev/null; then
    echo "FAIL: README command $n: $line"
    echo "ran: $cmd"
    tail -5 "$WORK/err.txt"
    exit 1
  fi
done <"$WORK/commands.txt"
if [ -n "$SERVER" ]; then kill -TERM "$SERVER"; wait "$SERVER"; SERVER=""; fi
echo "ok: $n README commands ran"
