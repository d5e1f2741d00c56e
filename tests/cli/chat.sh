#!/usr/bin/env bash
# strata chat: piped input (turns, /reset, /exit), and a terminal session under tmux where
# Ctrl-C stops an answer and the conversation goes on.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/v3" >/dev/null

printf 'Hello\nHow are you?\n/reset\nHello\n/exit\nnever read\n' | "$STRATA" chat -m "$WORK/v3" -n 8 >"$WORK/out.txt" 2>"$WORK/err.txt"
[ "$(wc -l <"$WORK/out.txt")" = 3 ] || { echo "FAIL: expected 3 answers"; cat "$WORK/out.txt" "$WORK/err.txt"; exit 1; }
[ "$(sed -n 1p "$WORK/out.txt")" = "$(sed -n 3p "$WORK/out.txt")" ] || { echo "FAIL: /reset did not start over"; cat "$WORK/out.txt"; exit 1; }
[ "$(sed -n 1p "$WORK/out.txt")" != "$(sed -n 2p "$WORK/out.txt")" ] || { echo "FAIL: the second turn repeated the first"; exit 1; }
# The second turn continues the conversation: a fresh chat given only the second message answers differently.
printf 'How are you?\n' | "$STRATA" chat -m "$WORK/v3" -n 8 >"$WORK/alone.txt" 2>/dev/null
[ "$(cat "$WORK/alone.txt")" != "$(sed -n 2p "$WORK/out.txt")" ] || { echo "FAIL: the second turn ignored the first"; exit 1; }
echo "ok: piped turns, /reset, /exit"

if ! command -v tmux >/dev/null; then echo "ok: (no tmux: the terminal session is not tried)"; exit 0; fi
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --set max_position_embeddings=65536 --out "$WORK/long" >/dev/null
S=strata-chat-$$
trap 'tmux kill-session -t "$S" 2>/dev/null || true' EXIT
tmux new-session -d -s "$S" -x 200 -y 50 "$STRATA chat -m $WORK/long -n 100000 -c 65536 --ignore-eos; echo CHAT-EXITED \$?; sleep 30"
wait_for() {
  for _ in $(seq 1 1200); do tmux capture-pane -p -t "$S" | grep -q "$1" && return 0; sleep 0.05; done
  echo "FAIL: the terminal never showed '$1'"; tmux capture-pane -p -t "$S"; exit 1
}
wait_for "^>"
tmux send-keys -t "$S" "Tell me everything" Enter
sleep 0.5
tmux send-keys -t "$S" C-c
wait_for "answer stopped"
tmux send-keys -t "$S" "/exit" Enter
wait_for "CHAT-EXITED 0"
echo "ok: under tmux, Ctrl-C stops the answer and /exit leaves with status 0"
