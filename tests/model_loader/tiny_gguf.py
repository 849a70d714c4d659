"""Tiny llama GGUF files written with gguf-py's GGUFWriter, every linear weight (and the
embedding, tied to the LM head) in one block type, or in a mix like llama.cpp's Q4_K_M.

Types gguf-py can quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) quantize a random normal weight
with `gguf.quants.quantize`; the k-quants (which gguf-py only dequantizes) are random blocks:
random codes and sub-block scales under a chosen float16 super-block scale. Either way the
file is the model: references dequantize it (gguf-py, transformers).
"""

from __future__ import annotations

import numpy as np

HIDDEN, LAYERS, HEADS, KV_HEADS, INTER, VOCAB = 256, 2, 4, 2, 512, 320
# Q4_K_M-like: attn_v and ffn_down a type up, as llama.cpp's mixes do.
MIXES = {"Q4_K_M": {"attn_v": "Q6_K", "ffn_down": "Q6_K", "token_embd": "Q8_0"}}


def random_blocks(kind: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [rows, bytes per row] of type `kind` with weights of std about cols ** -0.5."""
    import gguf
    from gguf import GGMLQuantizationType as T

    qtype = T[kind]
    std = cols**-0.5
    if kind in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
        w = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
        return gguf.quants.quantize(w, qtype)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, (rows * cols // block, size), dtype=np.uint8)

    def f16(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float16).reshape(-1, 1).view(np.uint8)

    n = len(data)
    if kind == "Q6_K":  # w = d * sc * (q - 32), sc int8: |sc * (q - 32)| ~ 64 * 18
        data[:, 208:210] = f16(rng.uniform(0.5, 1.5, n) * std / (64 * 18))
    else:  # Q4_K / Q5_K: w = d * sc * q - dmin * m per sub-block of 32, sc and m 6-bit
        levels = 15 if kind == "Q4_K" else 31
        d = rng.uniform(0.5, 1.5, n) * std * 3.5 / (48 * levels)
        data[:, 0:2] = f16(d)
        data[:, 2:4] = f16(d * levels / 2)
        # m near sc: each grid roughly centred on 0, as a quantizer makes it (z ~ levels / 2)
        sc = rng.integers(32, 64, (n, 8))
        m = np.clip(sc + rng.integers(-4, 5, (n, 8)), 0, 63)
        data[:, 4:16] = _pack_k_scales(sc, m)
    return data.reshape(rows, -1)


def _pack_k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """8 6-bit scales and mins -> ggml's 12 bytes (the inverse of Q4_K.get_scale_min)."""
    out = np.zeros((len(sc), 12), dtype=np.uint8)
    out[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = (m[:, :4] & 63) | ((m[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)
    return out


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf's llama q/k permute (rows only), applied to any row-wise array."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def write_tiny_gguf(path: str, kind: str, seed: int = 0) -> dict[str, str]:
    """Write the model; returns {GGUF tensor name: its type}."""
    import gguf
    from gguf import GGMLQuantizationType as T

    rng = np.random.default_rng(seed)
    mix = MIXES.get(kind, {})
    base = "Q4_K" if kind in MIXES else kind
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_context_length(512)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INTER)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(VOCAB)
    writer.add_file_type(1)
    types: dict[str, str] = {}

    def add(name: str, rows: int, cols: int, heads: int = 0) -> None:
        short = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
        t = mix.get(short, base)
        data = random_blocks(t, rows, cols, rng)
        if heads:  # stored as llama.cpp stores q / k (the loader permutes back)
            data = _permute(data, heads)
        writer.add_tensor(name, data, raw_dtype=T[t])
        types[name] = t

    def norm(name: str) -> None:
        writer.add_tensor(name, (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        types[name] = "F32"

    head_dim = HIDDEN // HEADS
    add("token_embd.weight", VOCAB, HIDDEN)
    for i in range(LAYERS):
        norm(f"blk.{i}.attn_norm.weight")
        add(f"blk.{i}.attn_q.weight", HIDDEN, HIDDEN, heads=HEADS)
        add(f"blk.{i}.attn_k.weight", KV_HEADS * head_dim, HIDDEN, heads=KV_HEADS)
        add(f"blk.{i}.attn_v.weight", KV_HEADS * head_dim, HIDDEN)
        add(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN)
        norm(f"blk.{i}.ffn_norm.weight")
        add(f"blk.{i}.ffn_gate.weight", INTER, HIDDEN)
        add(f"blk.{i}.ffn_up.weight", INTER, HIDDEN)
        add(f"blk.{i}.ffn_down.weight", HIDDEN, INTER)
    norm("output_norm.weight")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return types
