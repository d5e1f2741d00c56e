"""An independent NumPy reference of the Engram conditional-memory module (DeepSeek,
arXiv 2601.07372; written from the published math of the Engram demo), shared by the
DeepSeek-V3 and DeepSeek-V4 references.

Per Engram layer L and position t:
  compressed ids  c[t] = lookup[token[t]] (ids whose normalized texts agree share one id)
  n-gram hash     mix_n = XOR_{k<n} c[t-k]·m_k (int64, c[<0] = compressed pad),
                  row(n, j) = mix_n mod p_{n,j} + offset(n, j)  for n = 2..N, j < heads
  memory          e = concat_{n,j} table[row(n, j)]
  per stream i    alpha_i = sigmoid(signed_sqrt(<RMS(key_i(e)), RMS(h_i)> / sqrt(D)))
                  v_i = alpha_i · value(e)
  output          v + SiLU(causal depthwise conv(RMS_i(v), dilation N)) (added to h by the caller)
"""

import json
import math
import os
import re
import struct
import unicodedata

import numpy as np

import checkpoint  # same folder

F32_EPS = float(np.finfo(np.float32).eps)  # torch nn.RMSNorm's default eps for float32 inputs

# Code points with the Unicode White_Space property (what Rust's char::is_whitespace tests,
# used by the HF `tokenizers` Strip normalizer); Python's own str.strip() set differs slightly.
WHITE_SPACE = "".join(chr(c) for c in (
    list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B))
    + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))
SENTINEL = "\ue000"


# -- tokenizer compression --------------------------------------------------------------

def gpt2_byte_chars():
    """{unicode char: byte} of the byte-level BPE alphabet: printable Latin-1 bytes stand for
    themselves, the other bytes take the code points 256, 257, ... in byte order."""
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[chr(b)] = b
        else:
            out[chr(256 + extra)] = b
            extra += 1
    return out


def normalize(text):
    """The Engram key of a decoded text: NFKC, NFD, drop combining marks (general category
    M*), lowercase code point by code point, collapse [ \\t\\r\\n]+ to one space, keep a lone
    " ", otherwise strip White_Space at both ends."""
    s = unicodedata.normalize("NFKC", text)
    s = unicodedata.normalize("NFD", s)
    s = "".join(ch for ch in s if not unicodedata.category(ch).startswith("M"))
    s = "".join(ch.lower() for ch in s)
    s = re.sub(r"[ \t\r\n]+", " ", s)
    if s == " ":
        s = SENTINEL
    s = s.strip(WHITE_SPACE)
    return s.replace(SENTINEL, " ")


def compressed_lookup(model_dir, vocab_size):
    """(lookup [ids] int64, number of compressed ids) from MODEL_DIR/tokenizer.json."""
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    decoder = (tok.get("decoder") or {}).get("type")
    if decoder != "ByteLevel":
        raise NotImplementedError(f"Engram reference: tokenizer decoder {decoder!r} (only ByteLevel)")
    strings = {}  # id -> token string (added tokens take precedence over the model vocab)
    for s, i in tok["model"]["vocab"].items():
        strings[int(i)] = s
    for a in tok.get("added_tokens", []):
        strings[int(a["id"])] = a["content"]
    n = max(vocab_size, max(strings) + 1)
    byte_of = gpt2_byte_chars()
    key_id, lookup = {}, np.empty(n, dtype=np.int64)
    for tid in range(n):
        s = strings.get(tid)
        if s is None:
            text = ""  # an id the tokenizer does not know decodes to nothing
        else:
            if all(ch in byte_of for ch in s):
                raw = bytes(byte_of[ch] for ch in s)
            else:
                raw = s.encode("utf-8")  # a token outside the byte alphabet decodes to itself
            text = raw.decode("utf-8", errors="replace")
        if "\ufffd" in text:
            key = s
        else:
            key = normalize(text) or text
        lookup[tid] = key_id.setdefault(key, len(key_id))
    return lookup, len(key_id)


# -- integer tensors (checkpoint.load turns every tensor into float32) --------------------

def read_int_tensors(model_dir, names):
    """{name: int64 array} for the named integer tensors, read straight from the safetensors."""
    files = checkpoint.shard_files(model_dir)
    kinds = {"I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}
    out = {}
    for fn in files:
        with open(os.path.join(model_dir, fn), "rb") as f:
            (hlen,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(hlen))
            for name in names:
                info = header.get(name)
                if info is None:
                    continue
                if info["dtype"] not in kinds:
                    raise ValueError(f"{name}: dtype {info['dtype']} is not an integer type")
                begin, end = info["data_offsets"]
                f.seek(8 + hlen + begin)
                out[name] = np.frombuffer(f.read(end - begin), dtype=kinds[info["dtype"]]).reshape(
                    info["shape"]).astype(np.int64)
    missing = [n for n in names if n not in out]
    if missing:
        raise KeyError(f"missing Engram tensors: {missing}")
    return out


# -- the published derivation of multipliers and head sizes (for --check) ----------------

def _is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def derived_head_sizes(ecfg):
    """{layer: [p_{n,j} for n = 2..N, j < heads]}: each head the next unused prime after the
    previous one, starting each order at engram_vocab_size[n-2], unused across all layers."""
    seen, out = set(), {}
    for layer in ecfg["layer_ids"]:
        sizes = []
        for n in range(2, ecfg["max_ngram_size"] + 1):
            cand = ecfg["engram_vocab_size"][n - 2] - 1
            for _ in range(ecfg["n_head_per_ngram"]):
                cand += 1
                while not (_is_prime(cand) and cand not in seen):
                    cand += 1
                seen.add(cand)
                sizes.append(cand)
        out[layer] = sizes
    return out


def derived_multipliers(ecfg, layer, n_compressed):
    """Odd multipliers 2r+1, r drawn from PCG64 seeded with seed + 10007·layer below half of
    int64_max // n_compressed (so that id·m never overflows)."""
    half = max(1, (np.iinfo(np.int64).max // n_compressed) // 2)
    rng = np.random.default_rng(int(ecfg.get("seed", 0)) + 10007 * int(layer))
    return rng.integers(0, half, size=(ecfg["max_ngram_size"],), dtype=np.int64) * 2 + 1


# -- the module ---------------------------------------------------------------------------

def rms(x, w, eps):
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)).astype(np.float32) * w


def sigmoid(x):
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))).astype(np.float32)


def silu(x):
    x64 = x.astype(np.float64)
    return (x64 / (1.0 + np.exp(-x64))).astype(np.float32)


def affine(x, w, b):
    return (x.astype(np.float64) @ w.astype(np.float64).T + b).astype(np.float32)


class EngramLayer:
    def __init__(self, ecfg, tensors, ints, layer, streams, hidden, lookup, check=False):
        p = f"layers.{layer}.engram."
        self.p, self.layer, self.streams, self.hidden, self.check = p, layer, streams, hidden, check
        self.N = ecfg["max_ngram_size"]
        self.heads = ecfg["n_head_per_ngram"]
        self.kernel = ecfg["kernel_size"]
        self.lookup = lookup
        self.pad = int(lookup[ecfg["pad_id"]])
        self.mult = ints[p + "multipliers"]
        self.sizes = ints[p + "head_sizes"]
        assert self.mult.shape == (self.N,) and self.sizes.shape == ((self.N - 1) * self.heads,)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.t = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}
        self.table = self.t["multi_head_embedding.embedding.weight"]
        assert self.table.shape[0] == int(self.sizes.sum()), "table rows != sum of head sizes"
        assert self.t["short_conv.conv.weight"].shape == (streams * hidden, 1, self.kernel)

    def rows(self, tokens):
        """Table rows [T, (N-1)·heads] of every position (absolute, offsets included)."""
        c = self.lookup[np.asarray(tokens, dtype=np.int64)]
        T = len(c)
        shifted = [np.concatenate([np.full(k, self.pad, dtype=np.int64), c[: T - k]]) if k else c
                   for k in range(self.N)]
        cols = []
        for n in range(2, self.N + 1):
            mix = shifted[0] * self.mult[0]
            for k in range(1, n):
                mix = np.bitwise_xor(mix, shifted[k] * self.mult[k])
            for j in range(self.heads):
                h = (n - 2) * self.heads + j
                cols.append(np.mod(mix, self.sizes[h]) + self.offsets[h])
        rows = np.stack(cols, axis=1)
        if self.check:
            assert (rows >= self.offsets).all() and (rows < self.offsets + self.sizes).all(), "hash row out of its head"
            assert (rows >= 0).all() and (rows < self.table.shape[0]).all(), "hash row out of table"
        return rows

    def __call__(self, h, tokens):
        """h [T, streams, hidden] -> Engram output [T, streams, hidden] (the caller adds it)."""
        T, S, D = h.shape
        assert S == self.streams and D == self.hidden
        e = self.table[self.rows(tokens)].reshape(T, -1)
        value = affine(e, self.t["value_proj.weight"], self.t["value_proj.bias"])
        v = np.empty((T, S, D), dtype=np.float32)
        for i in range(S):
            key = rms(affine(e, self.t[f"key_projs.{i}.weight"], self.t[f"key_projs.{i}.bias"]),
                      self.t[f"norm1.{i}.weight"], F32_EPS)
            query = rms(h[:, i], self.t[f"norm2.{i}.weight"], F32_EPS)
            g = np.sum(key.astype(np.float64) * query, axis=-1) / math.sqrt(D)
            g = np.sign(g) * np.sqrt(np.maximum(np.abs(g), 1e-6))
            alpha = sigmoid(g)
            if self.check:
                assert ((alpha > 0) & (alpha < 1)).all(), "Engram gate outside (0, 1)"
            v[:, i] = alpha[:, None] * value
        # Short convolution: per-stream RMSNorm, then a causal depthwise conv over the
        # stream-major channels c = i·hidden + d, dilation N, then SiLU.
        vn = np.concatenate([rms(v[:, i], self.t[f"short_conv.norms.{i}.weight"], 1e-5) for i in range(S)],
                            axis=-1).astype(np.float64)  # [T, S·D]
        w = self.t["short_conv.conv.weight"][:, 0, :].astype(np.float64)  # [S·D, kernel]
        y = np.zeros_like(vn)
        k = self.kernel
        for t in range(T):
            for j in range(k):
                src = t - (k - 1 - j) * self.N
                if src >= 0:
                    y[t] += w[:, j] * vn[src]
        y = silu(y.astype(np.float32)).reshape(T, S, D)
        return v + y


def build(model_dir, cfg, tensors, streams, check=False):
    """{layer: EngramLayer} for the config's "engram" block ({} when there is none)."""
    ecfg = cfg.get("engram")
    if not ecfg:
        return {}
    lookup, n_compressed = compressed_lookup(model_dir, cfg["vocab_size"])
    names = []
    for L in ecfg["layer_ids"]:
        names += [f"layers.{L}.engram.multipliers", f"layers.{L}.engram.head_sizes"]
    ints = read_int_tensors(model_dir, names)
    if check:
        sizes = derived_head_sizes(ecfg)
        for L in ecfg["layer_ids"]:
            got_s = ints[f"layers.{L}.engram.head_sizes"].tolist()
            got_m = ints[f"layers.{L}.engram.multipliers"].tolist()
            want_m = derived_multipliers(ecfg, L, n_compressed).tolist()
            print(f"engram layer {L}: {n_compressed} compressed ids; head sizes {got_s}"
                  f" ({'=' if got_s == sizes[L] else '!='} published derivation {sizes[L]});"
                  f" multipliers {'=' if got_m == want_m else '!='} published derivation")
            assert all(m % 2 == 1 and m > 0 for m in got_m), "multipliers must be positive and odd"
    return {int(L): EngramLayer(ecfg, tensors, ints, int(L), streams, cfg["hidden_size"], lookup, check)
            for L in ecfg["layer_ids"]}
