"""An independent NumPy reference of DeepSeek-V4 (written from the published math: the V4
inference code's model description and the mHC / Engram papers), in float32 (float64 where a
reduction needs it). Every position is recomputed from the whole sequence (no caches).
Saves the logits [n_tokens, vocab] of every position of a token sequence.

    python3 tests/reference/deepseek_v4.py MODEL_DIR --tokens 1,2,3 --out logits.npy
        [--no-act-quant]    skip the FP8 (KV) and FP4 (indexer) quantize-dequantize steps
        [--gemm-act-quant]  also FP8-quantize (blocks of 128, UE8M0 scales) the input of every
                            linear layer whose weight is stored FP8/FP4, as the published
                            fp8/fp4 GEMMs do (off by default: not part of the runtime's math)
        [--check]           assert the invariants (Sinkhorn sums, Engram rows and gates)
"""

import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint  # noqa: E402
import engram  # noqa: E402

F32, F64 = np.float32, np.float64


# -- names: HF -> DeepSeek-native ----------------------------------------------------------

_HF_ATTN = {"q_a_proj": "wq_a", "q_a_layernorm": "q_norm", "q_b_proj": "wq_b", "kv_a_layernorm": "kv_norm",
            "kv_a_proj_with_mqa": "wkv_a", "kv_b_proj": "wkv_b", "o_proj": "wo", "q_proj": "wq"}
_HF_FFN = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def native_name(name):
    """DeepSeek-native name of an HF tensor name (native names map to themselves)."""
    top = {"model.embed_tokens.weight": "embed.weight", "model.norm.weight": "norm.weight",
           "lm_head.weight": "head.weight"}
    if name in top:
        return top[name]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.*)", name)
    if not m:
        return name
    n, rest = m.group(1), m.group(2)
    p = f"layers.{n}."
    for hf, nat in (("input_layernorm.", "attn_norm."), ("post_attention_layernorm.", "ffn_norm.")):
        if rest.startswith(hf):
            return p + nat + rest[len(hf):]
    if rest.startswith("self_attn."):
        rest = rest[len("self_attn."):]
        if rest.startswith("indexer."):
            return p + "attn." + rest
        head, _, tail = rest.partition(".")
        return p + "attn." + _HF_ATTN.get(head, head) + "." + tail
    if rest.startswith("mlp."):
        rest = rest[len("mlp."):]
        if rest == "gate.e_score_correction_bias":
            return p + "ffn.gate.bias"
        parts = rest.split(".")
        parts = [_HF_FFN.get(x, x) for x in parts]
        return p + "ffn." + ".".join(parts)
    return p + rest


def stored_dtypes(model_dir):
    """{native name of a weight: safetensors dtype} (headers only)."""
    files = checkpoint.shard_files(model_dir)
    out = {}
    for fn in files:
        with open(os.path.join(model_dir, fn), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            for name, info in json.loads(f.read(n)).items():
                if name != "__metadata__":
                    out[native_name(name)] = info["dtype"]
    return out


# -- elementwise helpers --------------------------------------------------------------------

def rms_norm(x, w, eps):
    x64 = x.astype(F64)
    y = (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)).astype(F32)
    return y if w is None else y * w


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=F64)))


def silu(x):
    x64 = x.astype(F64)
    return (x64 / (1.0 + np.exp(-x64))).astype(F32)


def softmax64(x, axis=-1):
    x = np.asarray(x, dtype=F64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def pow2_ceil(x):
    """2^ceil(log2 x), x > 0 (the UE8M0 scale)."""
    m, e = np.frexp(np.asarray(x, dtype=F64))  # x = m·2^e, 0.5 <= m < 1
    return np.ldexp(1.0, np.where(m == 0.5, e - 1, e)).astype(F64)


def _round_to_grid(a, grid):
    """Nearest value of the ascending non-negative grid to a >= 0 (a <= grid[-1]); a tie goes
    to the even code (round half to even on the FP format's code)."""
    hi = np.clip(np.searchsorted(grid, a), 1, len(grid) - 1)
    lo = hi - 1
    dlo, dhi = a - grid[lo], grid[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return grid[code]


E4M3_GRID = checkpoint.E4M3[:127].astype(F64)  # codes 0..126: 0, subnormals 2^-9.., up to 448
E2M1_GRID = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=F64)


def qdq(x, block, fmax, grid, amax_floor):
    """Blockwise (last dim) quantize-dequantize: s = 2^ceil(log2(max(amax, floor)/fmax)),
    y = round_RNE(clamp(x/s, ±fmax)) · s (a last partial block is its own block)."""
    shape, n = x.shape, x.shape[-1]
    nb = -(-n // block)
    xp = np.zeros((*shape[:-1], nb * block), dtype=F64)
    xp[..., :n] = x
    xb = xp.reshape(*shape[:-1], nb, block)
    amax = np.maximum(np.abs(xb).max(-1, keepdims=True), amax_floor)
    s = pow2_ceil((amax.astype(F32) / F32(fmax)).astype(F64))
    q = np.clip(xb / s, -fmax, fmax)
    y = (np.sign(q) * _round_to_grid(np.abs(q), grid) * s).reshape(*shape[:-1], nb * block)
    return y[..., :n].astype(F32)


def fp8_qdq(x, block):
    return qdq(x, block, 448.0, E4M3_GRID, 1e-4)


def fp4_qdq(x, block=32):
    return qdq(x, block, 6.0, E2M1_GRID, 6.0 * 2.0**-126)


def hadamard(x):
    """x @ H / sqrt(n), H the Sylvester Hadamard matrix ([[H, H], [H, -H]])."""
    n = x.shape[-1]
    H = np.ones((1, 1))
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    assert H.shape[0] == n, "Hadamard size must be a power of two"
    return (x.astype(F64) @ H / math.sqrt(n)).astype(F32)


def rope_freqs(dim, base, yarn):
    """Per-pair angular frequencies; yarn = (factor, orig_len, beta_fast, beta_slow) or None."""
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=F64) / dim))
    if yarn:
        factor, orig, beta_fast, beta_slow = yarn

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(corr(beta_fast)), 0)
        high = min(math.ceil(corr(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=F64) - low) / (high - low), 0, 1)
        freqs = freqs * (1 - ramp) + freqs / factor * ramp  # ramp 1: interpolated by the factor
    return freqs


def rope(x, positions, freqs, inverse=False):
    """Rotates x [..., n, dim] (n positions) in interleaved pairs (x[2i], x[2i+1]) by
    ±position·freq_i."""
    ang = np.outer(np.asarray(positions, dtype=F64), freqs)
    if inverse:
        ang = -ang
    cos, sin = np.cos(ang), np.sin(ang)
    a, b = x[..., 0::2].astype(F64), x[..., 1::2].astype(F64)
    out = np.empty(x.shape, dtype=F32)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def rope_last(x, positions, freqs, rd, inverse=False):
    """RoPE on the last rd dims of x [..., n, d]."""
    out = x.astype(F32).copy()
    out[..., -rd:] = rope(x[..., -rd:], positions, freqs, inverse)
    return out


# -- the model -----------------------------------------------------------------------------

class Model:
    def __init__(self, model_dir, act_quant=True, gemm_act_quant=False, check=False):
        cfg, raw = checkpoint.load(model_dir)
        assert cfg["model_type"] == "deepseek_v4", cfg["model_type"]
        self.cfg, self.check = cfg, check
        self.t = {native_name(k): v for k, v in raw.items()}
        self.act_quant = act_quant
        self.quantized = set()
        if gemm_act_quant:
            self.quantized = {k for k, d in stored_dtypes(model_dir).items()
                              if d in ("F8_E4M3", "I8", "U8") and k.endswith(".weight")}
        c = cfg
        self.D, self.hc = c["hidden_size"], c["hc_mult"]
        self.eps, self.hc_eps, self.iters = c["rms_norm_eps"], c["hc_eps"], c["hc_sinkhorn_iters"]
        self.H, self.hd, self.rd = c["num_attention_heads"], c["head_dim"], c["qk_rope_head_dim"]
        self.window = c["sliding_window"]
        rs = c.get("rope_scaling") or {}
        yarn = None
        if rs.get("type", rs.get("rope_type")) == "yarn" and rs.get("original_max_position_embeddings", 0) > 0:
            yarn = (rs["factor"], rs["original_max_position_embeddings"], rs.get("beta_fast", 32),
                    rs.get("beta_slow", 1))
        # Sliding-window-only layers: rope_theta without YaRN; compressed layers:
        # compress_rope_theta with YaRN.
        self.freqs_plain = rope_freqs(self.rd, c["rope_theta"], None)
        self.freqs_comp = rope_freqs(self.rd, c.get("compress_rope_theta", c["rope_theta"]), yarn)
        self.engram = engram.build(model_dir, cfg, self.t, self.hc, check)

    def w(self, name):
        return self.t[name]

    def linear(self, x, name):
        if name + ".weight" in self.quantized:
            x = fp8_qdq(x, 128)
        return (x.astype(F64) @ self.w(name + ".weight").astype(F64).T).astype(F32)

    # -- mHC ---------------------------------------------------------------------------
    def hc_mixes(self, X, fn):
        """X [T, hc, D] -> (fn · vec(X)) · rsqrt(mean(vec(X)^2) + eps)  [T, rows of fn]."""
        x = X.reshape(X.shape[0], -1).astype(F64)
        r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps)
        return (x @ fn.astype(F64).T) * r

    def hc_pre(self, X, p):
        hc, eps = self.hc, self.hc_eps
        fn, base, scale = self.w(p + "_fn"), self.w(p + "_base").astype(F64), self.w(p + "_scale").astype(F64)
        m = self.hc_mixes(X, fn)
        pre = sigmoid(m[:, :hc] * scale[0] + base[:hc]) + eps
        post = 2.0 * sigmoid(m[:, hc:2 * hc] * scale[1] + base[hc:2 * hc])
        comb = (m[:, 2 * hc:] * scale[2] + base[2 * hc:]).reshape(-1, hc, hc)  # [t, i, j]
        comb = softmax64(comb, axis=-1) + eps
        comb = comb / (comb.sum(axis=-2, keepdims=True) + eps)
        for _ in range(self.iters - 1):
            comb = comb / (comb.sum(axis=-1, keepdims=True) + eps)
            comb = comb / (comb.sum(axis=-2, keepdims=True) + eps)
        if self.check:
            assert np.abs(comb.sum(-1) - 1).max() < 1e-5, f"Sinkhorn rows {np.abs(comb.sum(-1) - 1).max()}"
            assert np.abs(comb.sum(-2) - 1).max() < 1e-5, f"Sinkhorn cols {np.abs(comb.sum(-2) - 1).max()}"
        u = np.einsum("ti,tid->td", pre, X.astype(F64)).astype(F32)
        return u, post, comb

    @staticmethod
    def hc_post(f, X, post, comb):
        """X'_j = post_j · f + sum_i comb[i][j] · X_i."""
        y = post[:, :, None] * f.astype(F64)[:, None, :] + np.einsum("tij,tid->tjd", comb, X.astype(F64))
        return y.astype(F32)

    def hc_head(self, X):
        m = self.hc_mixes(X, self.w("hc_head_fn"))
        pre = sigmoid(m * self.w("hc_head_scale").astype(F64)[0] + self.w("hc_head_base")) + self.hc_eps
        return np.einsum("ti,tid->td", pre, X.astype(F64)).astype(F32)

    # -- attention ---------------------------------------------------------------------
    def compress(self, x, p, d, r, freqs, indexer):
        """Compressed rows [T // r, d] of x [T, D]: gated softmax pooling of each block of r
        tokens (ratio 4: the first halves of the previous block's r tokens join the second
        halves of the block's own), RMSNorm, RoPE at position j·r, then quantize-dequantize
        (FP8 of the non-rope dims, or Hadamard + FP4 of the whole row for the indexer)."""
        kv = self.linear(x, p + "wkv").astype(F64)
        sc = self.linear(x, p + "wgate").astype(F64)
        ape = self.w(p + "ape").astype(F64)
        overlap = r == 4
        nb = x.shape[0] // r
        rows = np.zeros((nb, d), dtype=F64)
        for j in range(nb):
            cur = slice(j * r, (j + 1) * r)
            s, v = sc[cur] + ape, kv[cur]
            if overlap:
                s, v = s[:, d:], v[:, d:]
                if j > 0:
                    prev = slice((j - 1) * r, j * r)
                    s = np.concatenate([(sc[prev] + ape)[:, :d], s], axis=0)
                    v = np.concatenate([kv[prev][:, :d], v], axis=0)
            rows[j] = np.sum(softmax64(s, axis=0) * v, axis=0)
        rows = rms_norm(rows, self.w(p + "norm.weight"), self.eps)
        rows = rope_last(rows, np.arange(nb) * r, freqs, self.rd)
        if indexer:
            rows = hadamard(rows)
            if self.act_quant:
                rows = fp4_qdq(rows)
        elif self.act_quant:
            rows[:, :-self.rd] = fp8_qdq(rows[:, :-self.rd], 64)
        return rows

    def indexer_select(self, p, x, qr, freqs, r, T):
        """For each query t, the compressed rows it attends to (V4 lightning indexer)."""
        c = self.cfg
        ih, idim = c["index_n_heads"], c["index_head_dim"]
        iq = self.linear(qr, p + "indexer.wq_b").reshape(T, ih, idim)
        iq = rope_last(iq.transpose(1, 0, 2), np.arange(T), freqs, self.rd).transpose(1, 0, 2)
        iq = hadamard(iq)
        if self.act_quant:
            iq = fp4_qdq(iq)
        ik = self.compress(x, p + "indexer.compressor.", idim, r, freqs, indexer=True)
        wts = self.linear(x, p + "indexer.weights_proj").astype(F64) * (idim ** -0.5) * (ih ** -0.5)
        chosen = []
        for t in range(T):
            n = (t + 1) // r  # rows j with (j+1)·r <= t+1
            if n == 0:
                chosen.append(np.zeros(0, dtype=np.int64))
                continue
            dots = np.maximum(iq[t].astype(F64) @ ik[:n].astype(F64).T, 0.0)  # [ih, n]
            score = wts[t] @ dots
            order = np.argsort(-score, kind="stable")  # ties: lowest j first
            chosen.append(np.sort(order[: min(c["index_topk"], n)]))
        return chosen

    def attention(self, li, x):
        c = self.cfg
        p = f"layers.{li}.attn."
        T, H, hd, rd = x.shape[0], self.H, self.hd, self.rd
        r = c["compress_ratios"][li]
        freqs = self.freqs_comp if r > 0 else self.freqs_plain
        pos = np.arange(T)
        qr = rms_norm(self.linear(x, p + "wq_a"), self.w(p + "q_norm.weight"), self.eps)
        q = self.linear(qr, p + "wq_b").reshape(T, H, hd)
        q = rms_norm(q, None, self.eps)
        q = rope_last(q.transpose(1, 0, 2), pos, freqs, rd)  # [H, T, hd]
        kv = rms_norm(self.linear(x, p + "wkv"), self.w(p + "kv_norm.weight"), self.eps)
        kv = rope_last(kv, pos, freqs, rd)
        if self.act_quant:
            kv[:, :-rd] = fp8_qdq(kv[:, :-rd], 64)
        comp, chosen = None, None
        if r > 0:
            comp = self.compress(x, p + "compressor.", hd, r, freqs, indexer=False)
            if p + "indexer.wq_b.weight" in self.t:
                chosen = self.indexer_select(p, x, qr, freqs, r, T)
            else:
                chosen = [np.arange((t + 1) // r) for t in range(T)]
        sink = self.w(p + "attn_sink").astype(F64)
        scale = hd ** -0.5
        o = np.zeros((H, T, hd), dtype=F64)
        for t in range(T):
            keys = kv[max(0, t - self.window + 1): t + 1]
            if r > 0 and len(chosen[t]):
                keys = np.concatenate([keys, comp[chosen[t]]], axis=0)
            keys = keys.astype(F64)
            s = (q[:, t].astype(F64) @ keys.T) * scale  # [H, K]
            m = np.maximum(s.max(-1), sink)
            e = np.exp(s - m[:, None])
            den = e.sum(-1) + np.exp(sink - m)
            o[:, t] = (e / den[:, None]) @ keys
        o = rope_last(o.astype(F32), pos, freqs, rd, inverse=True).transpose(1, 0, 2)  # [T, H, hd]
        g, lo = c["o_groups"], c["o_lora_rank"]
        og = o.reshape(T, g, H * hd // g).astype(F64)
        wo_a = self.w(p + "wo_a.weight").astype(F64).reshape(g, lo, H * hd // g)
        mid = np.einsum("tgd,grd->tgr", og, wo_a).reshape(T, g * lo).astype(F32)
        return self.linear(mid, p + "wo_b")

    # -- MoE ---------------------------------------------------------------------------
    def expert(self, x, p, weight=None):
        lim = self.cfg.get("swiglu_limit", 0) or 0
        g = self.linear(x, p + "w1")
        u = self.linear(x, p + "w3")
        if lim > 0:
            u = np.clip(u, -lim, lim)
            g = np.minimum(g, lim)
        h = silu(g) * u
        if weight is not None:
            h = (h * weight).astype(F32)  # the routing weight scales the input of w2
        return self.linear(h, p + "w2")

    def moe(self, li, x, tokens):
        c = self.cfg
        p = f"layers.{li}.ffn."
        logits = x.astype(F64) @ self.w(p + "gate.weight").astype(F64).T
        func = c.get("scoring_func", "sqrtsoftplus")
        if func == "softmax":
            scores = softmax64(logits)
        elif func == "sigmoid":
            scores = sigmoid(logits)
        else:
            scores = np.sqrt(np.logaddexp(0.0, logits))
        k = c["num_experts_per_tok"]
        hash_layer = li < c.get("num_hash_layers", 0)
        out = np.zeros(x.shape, dtype=F64)
        for t in range(x.shape[0]):
            if hash_layer:
                ids = self.w(p + "gate.tid2eid")[tokens[t]].astype(np.int64)
            else:
                sel = scores[t] + self.w(p + "gate.bias") if p + "gate.bias" in self.t else scores[t]
                ids = np.argsort(-sel, kind="stable")[:k]  # ties: lowest expert first
            wt = scores[t, ids]
            if func != "softmax":
                wt = wt / wt.sum()
            wt = wt * c["routed_scaling_factor"]
            for e, we in zip(ids, wt):
                out[t] += self.expert(x[t:t + 1], f"{p}experts.{e}.", F32(we))[0]
        if c.get("n_shared_experts"):
            out += self.expert(x, p + "shared_experts.")
        return out.astype(F32)

    # -- forward -----------------------------------------------------------------------
    def forward(self, tokens):
        c = self.cfg
        tokens = [int(t) for t in tokens]
        X = np.repeat(self.w("embed.weight")[np.array(tokens)][:, None, :], self.hc, axis=1).astype(F32)
        for li in range(c["num_hidden_layers"]):
            p = f"layers.{li}."
            if li in self.engram:
                X = X + self.engram[li](X, tokens)
            u, post, comb = self.hc_pre(X, p + "hc_attn")
            X = self.hc_post(self.attention(li, rms_norm(u, self.w(p + "attn_norm.weight"), self.eps)), X, post, comb)
            u, post, comb = self.hc_pre(X, p + "hc_ffn")
            X = self.hc_post(self.moe(li, rms_norm(u, self.w(p + "ffn_norm.weight"), self.eps), tokens), X, post, comb)
        h = rms_norm(self.hc_head(X), self.w("norm.weight"), self.eps)
        head = self.t.get("head.weight", self.t["embed.weight"])
        return (h.astype(F64) @ head.astype(F64).T).astype(F32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-act-quant", action="store_true")
    ap.add_argument("--gemm-act-quant", action="store_true")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    m = Model(a.model, act_quant=not a.no_act_quant, gemm_act_quant=a.gemm_act_quant, check=a.check)
    logits = m.forward([int(t) for t in a.tokens.split(",")])
    if a.check:
        assert np.isfinite(logits).all(), "non-finite logits"
    np.save(a.out, logits.astype(np.float32))


if __name__ == "__main__":
    main()
