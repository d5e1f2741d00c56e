#!/usr/bin/env bash
# strata perplexity: llama-perplexity's output on a text, a base file for KL divergence written
# and read back (against the same model, then Q2_K and lattice i-quant GGUFs of the same weights), and the errors
# for a short text, a damaged base file and a base of another context.
set -euo pipefail
STRATA=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*"; for f in "$WORK"/*.txt; do echo "--- $f"; cat "$f"; done; exit 1; }
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --set vocab_size=1024 --out "$WORK/v3" >/dev/null
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --set vocab_size=1024 --format gguf --dtype q2_k \
  --out "$WORK/v3q2.gguf" >/dev/null
for i in $(seq 1 40); do echo "Line $i: the quick brown fox jumps over the lazy dog, $((i * 7)) times."; done >"$WORK/text"

"$STRATA" perplexity -m "$WORK/v3" -f "$WORK/text" -c 32 --chunks 3 --kl-divergence-base "$WORK/base.kl" \
  >"$WORK/out.txt" 2>"$WORK/err.txt" || fail "base run"
grep -q '^\[1\][0-9.]*,\[2\][0-9.]*,\[3\][0-9.]*$' "$WORK/out.txt" || fail "no chunk estimates"
grep -q '^Final estimate: PPL = [0-9.]* +/- [0-9.]*$' "$WORK/out.txt" || fail "no final estimate"
grep -q "3 chunks of 32 tokens, 15 scored per chunk" "$WORK/err.txt" || fail "no chunk summary"
[ -s "$WORK/base.kl" ] || fail "no base file"

# --chunks bounds what is read and tokenized: the same text followed by 1000 MB scores the same,
# at once (the whole file was tokenized before the first chunk).
cp "$WORK/text" "$WORK/big" && truncate -s +1000M "$WORK/big"
timeout 60 "$STRATA" perplexity -m "$WORK/v3" -f "$WORK/big" -c 32 --chunks 3 >"$WORK/big.txt" 2>"$WORK/err.txt" \
  || fail "--chunks 3 over a 1000 MB file"
rm -f "$WORK/big"
cmp -s <(grep -v 'tokens/s' "$WORK/out.txt") <(grep -v 'tokens/s' "$WORK/big.txt") || fail "the 1000 MB file scored otherwise"

# The same model against its base: the same PPL, a KL divergence of about zero.
"$STRATA" perplexity -m "$WORK/v3" --kl-divergence "$WORK/base.kl" >"$WORK/self.txt" 2>"$WORK/err.txt" || fail "self KL"
base_ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$WORK/out.txt")
self_ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$WORK/self.txt")
[ "$base_ppl" = "$self_ppl" ] || fail "PPL $self_ppl against the base run's $base_ppl"
awk '/^Mean KLD/ { exit !($4 < 1e-4) }' "$WORK/self.txt" || fail "self KL not ~0"
grep -q '^Same top token *: 100.000 %' "$WORK/self.txt" || fail "self top token"

# A Q2_K copy of the weights diverges, by a measurable amount.
"$STRATA" perplexity -m "$WORK/v3q2.gguf" --kl-divergence "$WORK/base.kl" >"$WORK/q2.txt" 2>"$WORK/err.txt" || fail "q2 KL"
awk '/^Mean KLD/ { exit !($4 > 1e-4 && $4 < 5) }' "$WORK/q2.txt" || fail "q2_k KL out of range"

# The lattice i-quants, on a model whose rows are whole 256-element blocks: each copy within range,
# the 1.6-bit one further from the base than the 3.4-bit one.
wide=(--arch deepseek_v3 --tokenizer generated --set vocab_size=1024 --set hidden_size=256 --set moe_intermediate_size=256
  --set intermediate_size=256 --set q_lora_rank=256 --set kv_lora_rank=256)
"$STRATA" make-tiny "${wide[@]}" --out "$WORK/wide" >/dev/null
"$STRATA" perplexity -m "$WORK/wide" -f "$WORK/text" -c 32 --chunks 3 --kl-divergence-base "$WORK/wide.kl" \
  >/dev/null 2>"$WORK/err.txt" || fail "wide base run"
declare -A kld
for t in iq1_s iq2_xxs iq3_s; do
  "$STRATA" make-tiny "${wide[@]}" --format gguf --dtype "$t" --out "$WORK/$t.gguf" >"$WORK/make_$t.txt" 2>&1 ||
    fail "make-tiny $t"
  "$STRATA" perplexity -m "$WORK/$t.gguf" --kl-divergence "$WORK/wide.kl" >"$WORK/$t.txt" 2>"$WORK/err.txt" || fail "$t KL"
  kld[$t]=$(awk '/^Mean KLD/ { print $4 }' "$WORK/$t.txt")
  awk -v k="${kld[$t]}" 'BEGIN { exit !(k > 1e-5 && k < 5) }' || fail "$t KL ${kld[$t]} out of range"
done
awk -v a="${kld[iq3_s]}" -v b="${kld[iq1_s]}" 'BEGIN { exit !(a < b) }' || fail "iq3_s KL ${kld[iq3_s]} >= iq1_s ${kld[iq1_s]}"

# Errors: a short text, a base of another context, a truncated base, a base that is a directory.
if "$STRATA" perplexity -m "$WORK/v3" -f "$WORK/text" -c 4096 >/dev/null 2>"$WORK/err.txt"; then fail "short text accepted"; fi
grep -q "needs at least 8192" "$WORK/err.txt" || fail "short text message"
if "$STRATA" perplexity -m "$WORK/v3" --kl-divergence "$WORK/base.kl" -c 64 >/dev/null 2>"$WORK/err.txt"; then fail "-c mismatch accepted"; fi
grep -q "was written with -c 32" "$WORK/err.txt" || fail "-c mismatch message"
head -c 5000 "$WORK/base.kl" >"$WORK/short.kl"
if "$STRATA" perplexity -m "$WORK/v3" --kl-divergence "$WORK/short.kl" >/dev/null 2>"$WORK/err.txt"; then fail "truncated base accepted"; fi
grep -q "short.kl: 5000 bytes where its header .* implies [0-9]*: truncated" "$WORK/err.txt" || fail "truncated message"
if "$STRATA" perplexity -m "$WORK/v3" --kl-divergence "$WORK" >/dev/null 2>"$WORK/err.txt"; then fail "directory accepted"; fi
grep -q "directory" "$WORK/err.txt" || fail "directory message"
if "$STRATA" perplexity -m "$WORK/v3" -f "$WORK/text" -c 32 --kl-divergence-base "$WORK/text" >/dev/null 2>"$WORK/err.txt"; then
  fail "the text overwritten"
fi
echo "ok: perplexity $base_ppl; q2_k $(grep '^Mean KLD' "$WORK/q2.txt"); KLD iq1_s ${kld[iq1_s]} iq2_xxs ${kld[iq2_xxs]} iq3_s ${kld[iq3_s]}"
