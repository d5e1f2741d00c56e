"""Reads an HF checkpoint directory (config.json + safetensors, single or sharded) into
NumPy float32 arrays, independently of the C++ readers. Used by the reference model."""

import json
import os
import struct

import numpy as np

_PLAIN = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "U8": np.uint8, "I32": np.int32, "I64": np.int64}


def _e4m3_table():
    t = np.zeros(256, dtype=np.float32)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e = (b >> 3) & 0xF
        m = b & 0x7
        if e == 0xF and m == 0x7:
            t[b] = np.nan
        elif e == 0:
            t[b] = s * m / 8.0 * 2.0**-6
        else:
            t[b] = s * (1 + m / 8.0) * 2.0 ** (e - 7)
    return t


E4M3 = _e4m3_table()
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def _read_file(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = np.frombuffer(data[begin:end], dtype=np.uint8)
        out[name] = (info["dtype"], info["shape"], raw)
    return out


def _decode(dtype, shape, raw):
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype == "F8_E4M3":
        return E4M3[raw].reshape(shape)
    if dtype == "F8_E8M0":
        return np.ldexp(np.float32(1), raw.astype(np.int32) - 127).astype(np.float32).reshape(shape)
    return raw.view(_PLAIN[dtype]).reshape(shape)


def _blockwise(w, s, block_rows, block_cols):
    rows, cols = w.shape
    full = np.repeat(np.repeat(s, block_rows, axis=0), block_cols, axis=1)[:rows, :cols]
    return w * full


def shard_files(model_dir):
    """The safetensors files of an HF model directory (sharded or single)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted(set(json.load(f)["weight_map"].values()))
    return ["model.safetensors"]


def load(model_dir):
    """Returns (config dict, {hf name: float32 array}) with block-scaled weights dequantized."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    files = shard_files(model_dir)
    raw = {}
    for fn in files:
        raw.update(_read_file(os.path.join(model_dir, fn)))

    tensors = {}
    for name, (dtype, shape, data) in raw.items():
        if name.endswith(".weight_scale_inv") or name.endswith(".scale"):
            continue
        base = name[: -len(".weight")] if name.endswith(".weight") else None
        scale = None
        if base is not None:
            for suffix in (".weight_scale_inv", ".scale"):
                if name[: -len(".weight")] + suffix in raw:
                    scale = raw[base + suffix]
        if scale is not None and dtype == "F8_E4M3":
            tensors[name] = _blockwise(_decode(dtype, shape, data), _decode(*scale), 128, 128)
        elif scale is not None and dtype in ("I8", "U8"):
            packed = data.reshape(shape)
            lo, hi = packed & 0xF, packed >> 4
            vals = E2M1[np.stack([lo, hi], axis=-1).reshape(shape[0], shape[1] * 2)]
            tensors[name] = _blockwise(vals, _decode(*scale), 1, 32)
        else:
            tensors[name] = _decode(dtype, shape, data).astype(np.float32)
    return config, tensors
