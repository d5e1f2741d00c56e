"""An independent NumPy reference of DeepSeek-V3 / V3.2 (written from the published math:
the DeepSeek-V3 technical report and the public inference code), in float32 (float64 where
a reduction needs it). Prints or saves the logits of every position of a token sequence.

    python3 tests/reference/deepseek_v3.py MODEL_DIR --tokens 1,2,3 --out logits.npy [--check]

A config.json with an "engram" block adds Engram (tests/reference/engram.py, one stream) before
the attention of each listed layer: h <- h + Engram(h, tokens).
"""

import argparse
import math

import numpy as np

import checkpoint
import engram


def rms_norm(x, w, eps):
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)).astype(np.float32) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


class Rope:
    """Rotary embedding on interleaved pairs (x[2i], x[2i+1]), with YaRN when configured."""

    def __init__(self, cfg, dim):
        base = cfg["rope_theta"]
        freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
        rs = cfg.get("rope_scaling") or {}
        self.mscale = 1.0
        if rs.get("type", rs.get("rope_type")) == "yarn":
            factor = rs["factor"]
            orig = rs["original_max_position_embeddings"]

            def corr(rot):
                return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

            low = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
            high = min(math.ceil(corr(rs.get("beta_slow", 1))), dim - 1)
            if low == high:
                high += 0.001
            ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
            # ramp 0: the original frequency; ramp 1: interpolated by the factor.
            freqs = freqs * (1 - ramp) + freqs / factor * ramp
            mscale_all = rs.get("mscale_all_dim", 0)
            if mscale_all:
                m = 0.1 * mscale_all * math.log(factor) + 1.0
                self.mscale = m * m
        self.freqs = freqs

    def apply_halves(self, x, positions):
        """x [..., seq, dim] rotated in pairs (x[i], x[i + dim/2]) (the V3.2 indexer's layout)."""
        ang = np.outer(positions, self.freqs)
        cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)

    def apply(self, x, positions):
        """x [..., seq, dim] rotated in pairs by position · freq."""
        ang = np.outer(positions, self.freqs)  # [seq, dim/2]
        cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out


def hadamard(x):
    """Fast Walsh-Hadamard transform on the last dim, scaled by dim^-0.5."""
    n = x.shape[-1]
    y = x.astype(np.float64).copy()
    h = 1
    while h < n:
        y = y.reshape(*y.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :].copy(), y[..., 1, :].copy()
        y[..., 0, :], y[..., 1, :] = a + b, a - b
        y = y.reshape(*y.shape[:-3], n)
        h *= 2
    return (y / math.sqrt(n)).astype(np.float32)


# Positive finite FP8 E4M3 values in code order (code k <-> value E4M3_POS[k], k < 127).
E4M3_POS = checkpoint.E4M3[:127].astype(np.float64)


def e4m3_round(x):
    """Nearest E4M3 value (ties to the even code), saturating at 448."""
    a = np.minimum(np.abs(x.astype(np.float64)), 448.0)
    hi = np.clip(np.searchsorted(E4M3_POS, a), 1, 126)
    lo = hi - 1
    dlo, dhi = a - E4M3_POS[lo], E4M3_POS[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return (np.sign(x) * E4M3_POS[code]).astype(np.float32)


def fp8_qdq(x, pow2_scale, block=128):
    """Blockwise (last dim) FP8 E4M3 quantize-dequantize: scale = max(amax, 1e-4) / 448."""
    block = min(block, x.shape[-1])
    shape = x.shape
    xb = x.reshape(*shape[:-1], shape[-1] // block, block)
    scale = np.maximum(np.abs(xb).max(-1, keepdims=True), 1e-4).astype(np.float32) / np.float32(448.0)
    if pow2_scale:
        scale = np.exp2(np.ceil(np.log2(scale))).astype(np.float32)
    return (e4m3_round(xb / scale) * scale).reshape(shape).astype(np.float32)


class Model:
    def __init__(self, model_dir, check=False):
        self.cfg, self.t = checkpoint.load(model_dir)
        c = self.cfg
        self.engram = engram.build(model_dir, c, self.t, 1, check)  # {layer: EngramLayer}
        self.eps = c["rms_norm_eps"]
        self.rope = Rope(c, c["qk_rope_head_dim"])
        self.is_v32 = c["model_type"] == "deepseek_v32"
        if self.is_v32:
            self.index_rope = Rope(c, c["qk_rope_head_dim"])

    def w(self, name):
        return self.t[name]

    def linear(self, x, name):
        return x @ self.w(name + ".weight").T

    # -- attention -------------------------------------------------------------------
    def indexer_mask(self, p, x, q_latent, positions):
        """V3.2 lightning indexer: top index_topk earlier tokens per query (causal)."""
        c = self.cfg
        nh, hd, rd = c["index_n_heads"], c["index_head_dim"], c["qk_rope_head_dim"]
        seq = x.shape[0]
        q = self.linear(q_latent, p + "indexer.wq_b").reshape(seq, nh, hd)
        k = self.linear(x, p + "indexer.wk")
        k64 = k.astype(np.float64)
        mu = k64.mean(-1, keepdims=True)
        var = ((k64 - mu) ** 2).mean(-1, keepdims=True)
        k = ((k64 - mu) / np.sqrt(var + 1e-6)).astype(np.float32) * self.w(p + "indexer.k_norm.weight") + self.w(
            p + "indexer.k_norm.bias")
        # The indexer's rope dims come first (MLA puts them last), rotated in halves layout.
        q_pe = self.index_rope.apply_halves(q[..., :rd].transpose(1, 0, 2), positions).transpose(1, 0, 2)
        q = np.concatenate([q_pe, q[..., rd:]], axis=-1)
        k = np.concatenate([self.index_rope.apply_halves(k[:, :rd], positions), k[:, rd:]], axis=-1)
        pow2 = (c.get("quantization_config") or {}).get("scale_fmt") == "ue8m0"
        q, k = fp8_qdq(hadamard(q), pow2), fp8_qdq(hadamard(k), pow2)
        wts = self.linear(x, p + "indexer.weights_proj") * (nh ** -0.5) * (hd ** -0.5)  # [seq, nh]
        scores = np.maximum(np.einsum("thd,sd->ths", q, k), 0)  # [t, h, s]
        index = np.einsum("ths,th->ts", scores, wts)
        causal = np.triu(np.ones((seq, seq), dtype=bool), 1)
        index[causal] = -np.inf
        topk = min(c["index_topk"], seq)
        keep = np.zeros((seq, seq), dtype=bool)
        order = np.argsort(-index, axis=-1, kind="stable")[:, :topk]
        np.put_along_axis(keep, order, True, axis=-1)
        return keep & ~causal

    def attention(self, li, x, positions):
        c = self.cfg
        p = f"model.layers.{li}.self_attn."
        nh, dn, dr, dv = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        seq = x.shape[0]
        if c.get("q_lora_rank"):
            q_latent = rms_norm(self.linear(x, p + "q_a_proj"), self.w(p + "q_a_layernorm.weight"), self.eps)
            q = self.linear(q_latent, p + "q_b_proj")
        else:
            q_latent = None
            q = self.linear(x, p + "q_proj")
        q = q.reshape(seq, nh, dn + dr).transpose(1, 0, 2)  # [h, t, d]
        q_nope, q_pe = q[..., :dn], self.rope.apply(q[..., dn:], positions)
        kv = self.linear(x, p + "kv_a_proj_with_mqa")
        latent = rms_norm(kv[:, : c["kv_lora_rank"]], self.w(p + "kv_a_layernorm.weight"), self.eps)
        k_pe = self.rope.apply(kv[:, c["kv_lora_rank"]:], positions)  # one rope key shared by all heads
        kvb = self.linear(latent, p + "kv_b_proj").reshape(seq, nh, dn + dv).transpose(1, 0, 2)
        k_nope, v = kvb[..., :dn], kvb[..., dn:]
        scale = (dn + dr) ** -0.5 * self.rope.mscale
        scores = (np.einsum("htd,hsd->hts", q_nope, k_nope) + np.einsum("htd,sd->hts", q_pe, k_pe)) * scale
        mask = ~np.tril(np.ones((seq, seq), dtype=bool))
        if self.is_v32:
            mask = ~self.indexer_mask(p, x, q_latent, positions)
        scores = np.where(mask[None], -np.inf, scores)
        out = np.einsum("hts,hsd->htd", softmax(scores.astype(np.float32)), v)
        return self.linear(out.transpose(1, 0, 2).reshape(seq, nh * dv), p + "o_proj")

    # -- feed-forward ---------------------------------------------------------------
    def mlp(self, x, p):
        return self.linear(silu(self.linear(x, p + "gate_proj")) * self.linear(x, p + "up_proj"), p + "down_proj")

    def route(self, li, x):
        """Per token: (expert ids, weights) by the DeepSeek-V3 gate."""
        c = self.cfg
        p = f"model.layers.{li}.mlp.gate."
        logits = x @ self.w(p + "weight").T
        if c["scoring_func"] == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        else:
            scores = softmax(logits.astype(np.float64))
        has_bias = p + "e_score_correction_bias" in self.t
        biased = scores + self.t[p + "e_score_correction_bias"] if has_bias else scores
        n_group, topk_group, k = c["n_group"], c["topk_group"], c["num_experts_per_tok"]
        ids, weights = [], []
        for t in range(x.shape[0]):
            sel = biased[t].copy()
            if n_group > 1:
                groups = sel.reshape(n_group, -1)
                # With a selection bias a group scores by its top-2 sum, else by its maximum.
                gscore = np.sort(groups, axis=-1)[:, -2:].sum(-1) if has_bias else groups.max(-1)
                keep = np.argsort(-gscore, kind="stable")[:topk_group]
                gmask = np.ones(n_group, dtype=bool)
                gmask[keep] = False
                sel = np.where(np.repeat(gmask, groups.shape[1]), -np.inf, sel)
            top = np.argsort(-sel, kind="stable")[:k]
            wt = scores[t, top]
            if c.get("norm_topk_prob", True):
                wt = wt / wt.sum()
            ids.append(top)
            weights.append((wt * c["routed_scaling_factor"]).astype(np.float32))
        return ids, weights

    def moe(self, li, x):
        ids, weights = self.route(li, x)
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            for e, wt in zip(ids[t], weights[t]):
                out[t] += wt * self.mlp(x[t : t + 1], f"model.layers.{li}.mlp.experts.{e}.")[0]
        if self.cfg.get("n_shared_experts"):
            out += self.mlp(x, f"model.layers.{li}.mlp.shared_experts.")
        return out

    def forward(self, tokens):
        c = self.cfg
        positions = np.arange(len(tokens))
        h = self.w("model.embed_tokens.weight")[np.array(tokens)]
        for li in range(c["num_hidden_layers"]):
            p = f"model.layers.{li}."
            if li in self.engram:
                h = h + self.engram[li](h[:, None, :], tokens)[:, 0, :]
            h = h + self.attention(li, rms_norm(h, self.w(p + "input_layernorm.weight"), self.eps), positions)
            x = rms_norm(h, self.w(p + "post_attention_layernorm.weight"), self.eps)
            dense = li < c["first_k_dense_replace"] or li % c.get("moe_layer_freq", 1) != 0
            h = h + (self.mlp(x, p + "mlp.") if dense else self.moe(li, x))
        h = rms_norm(h, self.w("model.norm.weight"), self.eps)
        return h @ self.w("lm_head.weight").T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="store_true", help="assert Engram invariants")
    a = ap.parse_args()
    logits = Model(a.model, a.check).forward([int(t) for t in a.tokens.split(",")])
    np.save(a.out, logits.astype(np.float32))


if __name__ == "__main__":
    main()
