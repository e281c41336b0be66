"""Pretrained models: the built-in offline registry, fetching, and resolving user input to a model."""

from lmtune.models.fetch import fetch
from lmtune.models.registry import BUILTIN, ModelSpec, Source, licence_notice, list_models, lmtune_home
from lmtune.models.resolve import hub_reachable, model_kind, resolve

__all__ = [
    "BUILTIN", "ModelSpec", "Source", "fetch", "hub_reachable", "licence_notice", "list_models", "lmtune_home",
    "model_kind", "resolve",
]
