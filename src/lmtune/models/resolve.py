"""Turn what the user typed (a built-in name, a folder, a hub id) into something transformers can load."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from lmtune.errors import ModelError
from lmtune.models.fetch import fetch
from lmtune.models.registry import BUILTIN

# Hugging Face repo ids: "name" or "org/name", letters, digits and "-_." only.
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")

# model_type values of decoder-only families, for configs that name no CausalLM architecture
# (e.g. a decoder saved with a classification head).
DECODER_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi", "phi3",
    "gpt2", "gpt_neox", "gptj", "opt", "falcon", "bloom", "olmo", "olmo2", "smollm3", "granite",
})

# The switches huggingface_hub and transformers honour, with the values they count as set.
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
TRUE = {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or the `HF_ENDPOINT` mirror) accepts a TCP connection."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve(name_or_path: str) -> str:
    """A built-in name, local Hugging Face folder or hub id, as a path or id transformers can load.

    Built-in names are fetched into the cache; hub ids fail fast when the hub cannot be reached, rather
    than after transformers' own retries.
    """
    if not name_or_path.strip():
        raise ModelError("no model given: pass a built-in name, a local folder or a hub id")
    if name_or_path in BUILTIN:
        return str(fetch(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{name_or_path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    if not HUB_ID.match(name_or_path) or ".." in name_or_path or "--" in name_or_path:
        raise ModelError(f"no such folder: {name_or_path}")
    flag = next((v for v in OFFLINE_VARS if os.environ.get(v, "").strip().lower() in TRUE), None)
    if flag or not hub_reachable():
        why = f"{flag} is set" if flag else "the Hugging Face hub cannot be reached"
        raise ModelError(
            f"{name_or_path!r} is not a built-in model or an existing folder, and lmtune is offline "
            f"({why}), so it cannot be downloaded from the Hugging Face hub. Use a built-in model "
            f"({', '.join(BUILTIN)}) or any local Hugging Face model folder (one with a config.json)."
        )
    return name_or_path


def model_kind(path: str) -> str:
    """Whether a model is an "encoder" or a "decoder", read from its config; picks task defaults."""
    config = _config(path)
    architectures = config.get("architectures") or []
    if (config.get("is_decoder")
            or any("CausalLM" in a or "LMHeadModel" in a for a in architectures)
            or config.get("model_type") in DECODER_TYPES):
        return "decoder"
    return "encoder"


def _config(path: str) -> dict:
    folder = Path(path).expanduser()
    if folder.is_dir():
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ModelError(f"cannot read {folder / 'config.json'}: {e}") from e
    # A hub id that resolve() let through: transformers fetches (and caches) just its config.
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).to_dict()
