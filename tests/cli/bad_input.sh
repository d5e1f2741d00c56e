#!/usr/bin/env bash
# Bad input gives exit status 1 and a message naming the culprit — never a crash.
set -uo pipefail
STRATA=$1
WORK=$2
CONFIGS=$(cd "$(dirname "$0")/../data/configs" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"

expect_error() {  # needle, command...
  local needle=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -ne 1 ]; then
    echo "FAIL: '$*' exited $rc (want 1): $out"
    exit 1
  fi
  if ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL: '$*' said '$out' (want it to name '$needle')"
    exit 1
  fi
  echo "ok: $needle"
}

"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/m" >/dev/null || exit 1
"$STRATA" make-tiny --arch deepseek_v3 --format gguf --dtype q8_0 --tokenizer generated --out "$WORK/m.gguf" >/dev/null || exit 1

expect_error "$WORK/nowhere" "$STRATA" inspect "$WORK/nowhere"

cp -r "$WORK/m" "$WORK/truncated"
truncate -s 5000 "$WORK/truncated/model.safetensors"
expect_error "model.safetensors" "$STRATA" inspect "$WORK/truncated"

cp -r "$WORK/m" "$WORK/noconfig" && rm "$WORK/noconfig/config.json"
expect_error "config.json" "$STRATA" inspect "$WORK/noconfig"

cp -r "$WORK/m" "$WORK/badjson" && echo '{"model_type": "deepseek_v3",' >"$WORK/badjson/config.json"
expect_error "config.json" "$STRATA" inspect "$WORK/badjson"

cp -r "$WORK/m" "$WORK/notok" && rm "$WORK/notok/tokenizer.json"
expect_error "tokenizer.json" "$STRATA" tokenize --model "$WORK/notok" --text hi

cp "$WORK/m.gguf" "$WORK/badmagic.gguf" && printf 'GGUX' | dd of="$WORK/badmagic.gguf" conv=notrunc 2>/dev/null
expect_error "badmagic.gguf" "$STRATA" inspect "$WORK/badmagic.gguf"

cp "$WORK/m.gguf" "$WORK/short.gguf" && truncate -s 100000 "$WORK/short.gguf"
expect_error "short.gguf" "$STRATA" inspect "$WORK/short.gguf"

expect_error "not a token id" "$STRATA" detokenize --model "$WORK/m" --ids 1,x,3
expect_error "dtype" "$STRATA" make-tiny --arch deepseek_v3 --dtype q4_k --out "$WORK/x"

# ---- Classes of bad input and unsafe requests: each refused with exit 1-127, a message naming
# the culprit, and no file of the model or any other input created or changed.
snapshot() { find "$WORK/m" "$WORK/m.gguf" -type f -exec md5sum {} + | sort; }
before=$(snapshot)
expect_refused() {  # needle, command...
  local needle=$1
  shift
  local out rc
  out=$(timeout 20 "$@" 2>&1 </dev/null)
  rc=$?
  if [ $rc -lt 1 ] || [ $rc -gt 127 ] || [ $rc -eq 124 ]; then
    echo "FAIL: '$*' exited $rc (want 1-127, no signal, no hang): $out"
    exit 1
  fi
  if ! grep -qF -- "$needle" <<<"$out"; then
    echo "FAIL: '$*' said '$out' (want it to name '$needle')"
    exit 1
  fi
  if [ "$(snapshot)" != "$before" ]; then
    echo "FAIL: '$*' changed the model files"
    exit 1
  fi
  echo "ok: $needle"
}

# Non-regular files where a file is expected: never block, never read forever.
mkfifo "$WORK/fifo.gguf"
expect_refused "fifo.gguf" "$STRATA" inspect "$WORK/fifo.gguf"
cp -r "$WORK/m" "$WORK/fifoconfig" && rm "$WORK/fifoconfig/config.json" && mkfifo "$WORK/fifoconfig/config.json"
expect_refused "config.json: not a regular file (a FIFO" "$STRATA" inspect "$WORK/fifoconfig"
cp -r "$WORK/m" "$WORK/devzero" && rm "$WORK/devzero/config.json" && ln -s /dev/zero "$WORK/devzero/config.json"
expect_refused "config.json: not a regular file (a character device)" "$STRATA" inspect "$WORK/devzero"
expect_refused "/dev/zero: not a regular file" "$STRATA" tokenize --model "$WORK/m" --file /dev/zero
# A file a flag gives is named with the flag.
mkfifo "$WORK/plan.fifo"
expect_refused "--placement $WORK/plan.fifo: not a regular file (a FIFO" "$STRATA" run --model "$WORK/m" --prompt hi \
  -n 1 --placement "$WORK/plan.fifo"
expect_refused "--hotness $WORK/plan.fifo: not a regular file (a FIFO" "$STRATA" plan --model "$WORK/m" \
  --profile rtx4090-256gb --hotness "$WORK/plan.fifo"
echo '{"experts": [[0, 1,' >"$WORK/hot-cut.json"
expect_refused "--hotness $WORK/hot-cut.json: invalid JSON" "$STRATA" plan --model "$WORK/m" --profile rtx4090-256gb \
  --hotness "$WORK/hot-cut.json"
expect_refused "-f $WORK/plan.fifo: not a regular file (a FIFO (named pipe)); expected a prompt file" "$STRATA" run \
  --model "$WORK/m" -f "$WORK/plan.fifo" -n 1
expect_refused "--profile $WORK/plan.fifo: not a regular file (a FIFO" "$STRATA" plan --model "$WORK/m" \
  --profile "$WORK/plan.fifo"
echo '{"budgets": {' >"$WORK/prof-cut.json"
expect_refused "--profile $WORK/prof-cut.json: invalid JSON" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 \
  --profile "$WORK/prof-cut.json"
expect_refused "--profile: no profile 'no-such-box'" "$STRATA" plan --model "$WORK/m" --profile no-such-box
mkfifo "$WORK/prompts.fifo"
expect_refused "--prompts $WORK/prompts.fifo: not a regular file" "$STRATA" profile --model "$WORK/m" --prompts "$WORK/prompts.fifo" \
  --out "$WORK/h.json"

# Outputs never replace an input of the same command, nor each other.
expect_refused "is a file this command reads" "$STRATA" logits --model "$WORK/m" --tokens 1,2 \
  --out "$WORK/m/model.safetensors"
expect_refused "is a file this command reads" "$STRATA" logits --model "$WORK/m.gguf" --tokens 1,2 --out "$WORK/m.gguf"
printf 'hello\n' >"$WORK/prompts.txt"
expect_refused "the same file as --out" "$STRATA" profile --model "$WORK/m" --prompts "$WORK/prompts.txt" \
  --out "$WORK/same.out" --svg "$WORK/same.out"
[ ! -e "$WORK/same.out" ] || { echo "FAIL: profile wrote an output before refusing"; exit 1; }
expect_refused "is a file this command reads" "$STRATA" plan --config "$WORK/m/config.json" --weight-type q4_k \
  --profile rtx4090-256gb --svg "$WORK/m/config.json"
expect_refused "is a directory" "$STRATA" logits --model "$WORK/m" --tokens 1,2 --out "$WORK"

# Scratch files must be new: tune and bench io never overwrite (and then delete) a user's file.
printf 'precious' >"$WORK/keep.bin"
expect_refused "keep.bin: exists; a scratch file must be new" "$STRATA" tune --scratch "$WORK/keep.bin" --scratch-mb 16
[ "$(cat "$WORK/keep.bin")" = precious ] || { echo "FAIL: tune touched keep.bin"; exit 1; }

# make-tiny into a folder that holds something: refused; --force replaces only its own files
# (a stale shard of an earlier sharded model is removed, a user's file kept).
expect_refused "the folder is not empty" "$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/m"
expect_refused "exists; give a new path, or --force" "$STRATA" make-tiny --arch deepseek_v3 --format gguf \
  --dtype q8_0 --tokenizer generated --out "$WORK/m.gguf"
"$STRATA" make-tiny --arch deepseek_v3 --shards 3 --tokenizer generated --out "$WORK/forced" >/dev/null
printf 'notes' >"$WORK/forced/README.user"
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --out "$WORK/forced" --force >/dev/null
[ "$(ls "$WORK/forced" | sort | tr '\n' ' ')" = "README.user config.json model.safetensors tokenizer.json tokenizer_config.json " ] \
  || { echo "FAIL: --force left: $(ls "$WORK/forced")"; exit 1; }
"$STRATA" inspect "$WORK/forced" >/dev/null || { echo "FAIL: the forced model does not load"; exit 1; }
echo "ok: make-tiny --force replaces its own files only"

# Numbers that cannot mean anything.
expect_refused "--expert-cache-mb: 'nan' is not a finite number" "$STRATA" run --model "$WORK/m" --prompt hi \
  --expert-cache-mb nan
expect_refused "--expert-cache-mb: 1e-9 is outside" "$STRATA" run --model "$WORK/m" --prompt hi --expert-cache-mb 1e-9
expect_refused "--expert-cache-mb: 1e30 is outside" "$STRATA" run --model "$WORK/m" --prompt hi --expert-cache-mb 1e30
expect_refused "--engram-cache-mb: 'inf' is not a finite number" "$STRATA" run --model "$WORK/m" --prompt hi \
  --engram-cache-mb inf
expect_refused "--min-expert-weight: 'nan' is not a finite number" "$STRATA" run --model "$WORK/m" --prompt hi \
  --min-expert-weight nan
expect_refused "--block-size: 0 is not a multiple of 4096" "$STRATA" bench io --file "$WORK/io.bin" --create-mb 8 \
  --block-size 0
[ ! -e "$WORK/io.bin" ] || { echo "FAIL: bench io created its file before refusing"; exit 1; }

# Config values that would change nothing, or drop weights without a word.
cp -r "$WORK/m" "$WORK/act" && sed -i 's/"hidden_act": "silu"/"hidden_act": "bogus"/' "$WORK/act/config.json"
expect_refused "key 'hidden_act' is 'bogus'" "$STRATA" inspect "$WORK/act"
cp -r "$WORK/m" "$WORK/noshared" && sed -i 's/"n_shared_experts": 1/"n_shared_experts": 0/' "$WORK/noshared/config.json"
expect_refused "shared_experts.gate_proj.weight' (shared_expert) is in the files but this config does not use it" \
  "$STRATA" inspect "$WORK/noshared"

# A weight stored as integers (here the final norm relabelled I32, same bytes) is refused by
# name: it would otherwise be read as real values.
cp -r "$WORK/m" "$WORK/intweight"
/usr/bin/python3 - "$WORK/intweight/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
norm = next(k for k in header if k.endswith("norm.weight") and k.startswith("model.norm"))
assert header[norm]["dtype"] in ("F32", "BF16", "F16"), header[norm]
width = {"F32": 4, "BF16": 2, "F16": 2}[header[norm]["dtype"]]
header[norm]["dtype"] = {4: "I32", 2: "I16"}[width]
text = json.dumps(header, separators=(",", ":")).encode()
assert len(text) <= n
data[8:8 + n] = text + b" " * (n - len(text))
open(path, "wb").write(bytes(data))
PY
expect_refused "tensor 'norm.weight' (stored as 'model.norm.weight') is stored as i32, an integer type, where a weight is expected" \
  "$STRATA" inspect "$WORK/intweight"

# Messages that name what went wrong.
expect_refused "a DRAM budget of 1e-05 GB (as given) leaves nothing beside an expert cache of 48.00 KiB" "$STRATA" run --model "$WORK/m" \
  --prompt hi --profile rtx4090-256gb --vram-budget 0 --dram-budget 0.00001
expect_refused "'frobnicate' is not a strata command" "$STRATA" frobnicate
expect_refused "--tokens: '-1' is not a token id" "$STRATA" logits --model "$WORK/m" --tokens -1 --out "$WORK/t.npy"
printf 'ab\xff\xfecd' >"$WORK/bad-utf8.txt"
expect_refused "not valid UTF-8 (an ill-formed byte sequence at byte 2)" "$STRATA" tokenize --model "$WORK/m" \
  --file "$WORK/bad-utf8.txt"
expect_refused "--prompt: not valid UTF-8" "$STRATA" run --model "$WORK/m" --prompt "$(printf 'hi\xc3')" -n 1
long=$(seq 1 1100 | awk '{print $1 % 500}' | paste -sd,)
expect_refused "past the model's context of 1024 (max_position_embeddings)" "$STRATA" logits --model "$WORK/m" \
  --tokens "$long" --out "$WORK/long.npy"
[ ! -e "$WORK/long.npy" ] || { echo "FAIL: logits wrote an output past the context"; exit 1; }
# Sizes from flags: bounded, and refused in their own words (not a 300-digit range).
expect_refused "--batch: 99999999999 tokens; each batch must be 1 to 65536" "$STRATA" bench kernels --types q4_k \
  --batch 99999999999 --shapes v3
expect_refused "--shapes: 'v9' is not a shape" "$STRATA" bench kernels --shapes v9
for v in 2048x700 0x768 2048x 99999999x256 2048x-256; do
  expect_refused "--shapes: '$v' " "$STRATA" bench kernels --shapes "$v"
done
expect_refused "--batch: '8x' is not a number" "$STRATA" bench kernels --batch 8x
for v in nan 1e15 1e-7; do
  expect_refused "--expert-cache-mb: " "$STRATA" plan --config "$CONFIGS/deepseek-v3-671b.json" \
    --weight-type q4_k --profile rtx4090-256gb --expert-cache-mb $v
done
expect_refused "0 is outside [1, 65536] (threads)" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 -t 0
expect_refused "--experts-per-token 9 is outside [1, 8]" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 \
  --experts-per-token 9
expect_refused "the disk could not be measured on this model" "$STRATA" bench tier --model "$WORK/m" --cache-mb 1 -n 1
expect_refused "--seed: -1 is outside" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 --seed -1
expect_refused "--stop: not valid UTF-8" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 --stop "$(printf 'a\xff')"
expect_refused "an HF model is a folder, not a .gguf file" "$STRATA" make-tiny --arch deepseek_v3 --format hf \
  --out "$WORK/hf.gguf"
[ ! -e "$WORK/hf.gguf" ] || { echo "FAIL: make-tiny wrote an HF folder named .gguf"; exit 1; }
# A tokenizer whose ids pass the model's vocabulary (another model's tokenizer).
cp -r "$WORK/m" "$WORK/tokbig"
python3 - "$WORK/tokbig/tokenizer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
v = t["model"]["vocab"]
v[next(iter(v))] = 100000
json.dump(t, open(sys.argv[1], "w"))
PY
expect_refused "tokenizer.json: the tokenizer has ids up to 100000, outside the model's vocabulary" "$STRATA" tokenize \
  --model "$WORK/tokbig" --text ab
cp -r "$WORK/m" "$WORK/bosyes"
python3 - "$WORK/bosyes/tokenizer_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["add_bos_token"] = "yes"
json.dump(c, open(sys.argv[1], "w"))
PY
expect_refused "add_bos_token" "$STRATA" tokenize --model "$WORK/bosyes" --text ab
# Every id of an eos_token_id list ends generation, so each must be a token of the model.
cp -r "$WORK/m" "$WORK/eosbig"
python3 - "$WORK/eosbig/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["eos_token_id"] = [1, 999999]
json.dump(c, open(sys.argv[1], "w"))
PY
expect_refused "config.json: eos_token_id [1, 999999] holds 999999, outside the vocabulary of 512" "$STRATA" run \
  --model "$WORK/eosbig" --prompt hi -n 1
cp -r "$WORK/m" "$WORK/geneos"
printf '{"bos_token_id": 0, "eos_token_id": [1, 999999]}' >"$WORK/geneos/generation_config.json"
expect_refused "generation_config.json: key 'eos_token_id' = [1,999999] holds 999999" "$STRATA" run \
  --model "$WORK/geneos" --prompt hi -n 1
: >"$WORK/empty.txt"
expect_refused "the prompt file is empty" "$STRATA" run --model "$WORK/m" -f "$WORK/empty.txt" -n 1
expect_refused "--parallel: no count given" "$STRATA" bench run --model "$WORK/m" -p 4 -n 2 --parallel ""
"$STRATA" plan --model "$WORK/m" --profile rtx4090-256gb --json >"$WORK/dup.json"
python3 - "$WORK/dup.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
e = p["experts"][0]
p["experts"].append([e[0], e[1], "nvme" if e[2] != "nvme" else "dram"])
json.dump(p, open(sys.argv[1], "w"))
PY
expect_refused "twice" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 --placement "$WORK/dup.json"
echo '{"experts": [[0, 1, 0.5]]}' >"$WORK/hot-dense.json"
expect_refused "has no routed experts (a dense layer)" "$STRATA" plan --model "$WORK/m" --profile rtx4090-256gb \
  --hotness "$WORK/hot-dense.json"
expect_refused "expects a config.json" "$STRATA" plan --config "$WORK/m" --weight-type q4_k --profile rtx4090-256gb
expect_refused "the model path is empty" "$STRATA" run --model "" --prompt hi -n 1
ln -sf "$WORK/loop-b" "$WORK/loop-a"
ln -sf "$WORK/loop-a" "$WORK/loop-b"
expect_refused "$WORK/loop-a: Too many levels of symbolic links" "$STRATA" run --model "$WORK/loop-a" --prompt hi -n 1
expect_refused "--types: no weight type given" "$STRATA" bench kernels --types ""
"$STRATA" inspect "$WORK/m/model.safetensors" >/dev/null || { echo "FAIL: inspect of the .safetensors file"; exit 1; }
echo "ok: inspect takes the .safetensors file of a model folder"

# tune checks its output before minutes of measuring: never the scratch file it deletes, never a
# folder that is not there.
expect_refused "--out $WORK/t.bin: the same file as --scratch" "$STRATA" tune --out "$WORK/t.bin" \
  --scratch "$WORK/t.bin" --scratch-mb 16
[ ! -e "$WORK/t.bin" ] || { echo "FAIL: tune left its scratch file"; exit 1; }
expect_refused "--out $WORK/no/such/box.json: the folder $WORK/no/such: No such file or directory" "$STRATA" tune \
  --out "$WORK/no/such/box.json" --scratch "$WORK/t.bin" --scratch-mb 16
expect_refused "--out $WORK/no/such/h.json: the folder" "$STRATA" profile --model "$WORK/m" \
  --prompts "$WORK/prompts.txt" --out "$WORK/no/such/h.json"

# A placement made for another model: refused by what differs (its counts, its tensors).
"$STRATA" make-tiny --arch deepseek_v3 --tokenizer generated --set n_routed_experts=4 --out "$WORK/m4" >/dev/null
"$STRATA" plan --model "$WORK/m4" --profile rtx4090-256gb --json >"$WORK/m4-plan.json"
expect_refused "m4-plan.json: a placement made for another model (model 'm4'): routed_experts 4 where this model has 8" \
  "$STRATA" run --model "$WORK/m" --prompt hi -n 1 --placement "$WORK/m4-plan.json"
"$STRATA" make-tiny --arch deepseek_v32 --tokenizer generated --out "$WORK/v32" >/dev/null
"$STRATA" plan --model "$WORK/v32" --profile rtx4090-256gb --json >"$WORK/v32-plan.json"
expect_refused "v32-plan.json: 'tensors' entry [\"layers.0.attn.indexer" "$STRATA" run --model "$WORK/m" --prompt hi \
  -n 1 --placement "$WORK/v32-plan.json"

# Tokenizer ids that stand for two texts: an added token on a byte token's id, an id added twice.
cp -r "$WORK/m" "$WORK/tokcol" && cp -r "$WORK/m" "$WORK/tokdup"
python3 - "$WORK/tokcol/tokenizer.json" "$WORK/tokdup/tokenizer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["added_tokens"].append({"id": t["model"]["vocab"]["a"], "content": "<|x|>", "special": True})
json.dump(t, open(sys.argv[1], "w"))
t = json.load(open(sys.argv[2]))
t["added_tokens"].append(dict(t["added_tokens"][0], content="<|other|>"))
json.dump(t, open(sys.argv[2], "w"))
PY
expect_refused "tokcol/tokenizer.json: added token '<|x|>' has id 97, the id of vocabulary token 'a'" "$STRATA" \
  tokenize --model "$WORK/tokcol" --text a
expect_refused "tokdup/tokenizer.json: id 507 is given to two added tokens" "$STRATA" tokenize --model "$WORK/tokdup" \
  --text a

# A folder with both safetensors and GGUF weights: which model is meant is a guess.
cp -r "$WORK/m" "$WORK/both" && cp "$WORK/m.gguf" "$WORK/both/"
for cmd in inspect "run --prompt hi -n 1 --model" "plan --profile rtx4090-256gb --model"; do
  # shellcheck disable=SC2086
  expect_refused "both: ambiguous model folder: it holds safetensors (model.safetensors) and GGUF (m.gguf)" \
    "$STRATA" $cmd "$WORK/both"
done

# A GGUF whose BOS id is past its vocabulary: the file, the key and both numbers.
python3 - "$WORK/m.gguf" "$WORK/bigbos.gguf" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
key = b"tokenizer.ggml.bos_token_id"
at = d.find(key) + len(key)
assert struct.unpack("<I", d[at:at + 4])[0] == 4  # UINT32
d[at + 4:at + 8] = struct.pack("<I", 100000)
open(sys.argv[2], "wb").write(bytes(d))
PY
expect_refused "bigbos.gguf: key 'tokenizer.ggml.bos_token_id' = 100000 is past the vocabulary of 512 tokens" \
  "$STRATA" inspect "$WORK/bigbos.gguf"

# Out of memory on a size the input gives: reported with the file and its size, not an abort.
truncate -s 1000M "$WORK/huge.txt"
if (ulimit -v 600000 && "$STRATA" --version) >/dev/null 2>&1; then
  expect_refused "out of memory while reading $WORK/huge.txt (1048576000 bytes)" \
    bash -c "ulimit -v 600000 && exec \"\$0\" tokenize --model \"\$1\" --file \"\$2\"" "$STRATA" "$WORK/m" "$WORK/huge.txt"
else
  echo "skip: out of memory under ulimit -v (this build cannot start with a 600 MB address space, e.g. a sanitizer)"
fi
rm -f "$WORK/huge.txt"

# Sizes past a petabyte: the bytes computed from them overflowed (a GPU budget of 1e300 GB became 0
# bytes, a wrong error).
expect_refused "--vram-budget: '1e300' is more than a petabyte" "$STRATA" run --model "$WORK/m" --prompt hi -n 1 \
  --profile rtx4090-256gb --vram-budget 1e300 --gpu sim
sed 's/"dram_gb": [0-9.]*/"dram_gb": 1e300/' "$(dirname "$0")/../../profiles/rtx4090-256gb.json" >"$WORK/bigdram.json"
expect_refused "bigdram.json: key 'budgets.dram_gb': must be at most 1e6" "$STRATA" plan --model "$WORK/m" \
  --profile "$WORK/bigdram.json"

# RoPE parameters no released model uses: angles that collapse or overflow, ran without a word.
for change in 'c["rope_theta"] = 1e-300' 'c["rope_scaling"]["factor"] = 1e300' 'c["rope_scaling"]["beta_fast"] = -1'; do
  rm -rf "$WORK/rope" && cp -r "$WORK/m" "$WORK/rope"
  python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))' "$WORK/rope/config.json" "$change"
  expect_refused "rope/config.json: rope_" "$STRATA" run --model "$WORK/rope" --prompt hi -n 1
done

# Output that cannot be written is an error, not a silent exit 0.
if "$STRATA" tokenize --model "$WORK/m" --text hi >/dev/full 2>"$WORK/full.err"; then
  echo "FAIL: a write error on standard output exited 0"; exit 1
fi
grep -q "writing standard output failed" "$WORK/full.err" || { echo "FAIL: unclear: $(cat "$WORK/full.err")"; exit 1; }
echo "ok: standard output write errors"
echo "all bad inputs refused"
