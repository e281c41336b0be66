"""Prompt learning through PEFT: the model stays frozen and only a few virtual-token embeddings learn.

`prompt-tuning` learns the soft prompt directly (Lester et al. 2021); `p-tuning` produces it with a small
MLP over the virtual tokens (Liu et al. 2021), which trains more stably at the cost of more parameters.
Either way the saved model is an adapter a few kilobytes large, loaded onto the unchanged base model.
"""

from __future__ import annotations

import torch

from lmtune.config import MethodConfig


def apply_prompt_tuning(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    init = {}
    if cfg.prompt_init:
        # Starting from the embeddings of a task description converges faster than random vectors (Lester
        # et al., section 3); PEFT reads the tokenizer from the folder the model was loaded from.
        init = {"prompt_tuning_init": PromptTuningInit.TEXT, "prompt_tuning_init_text": cfg.prompt_init,
                "tokenizer_name_or_path": model.config._name_or_path}
    config = PromptTuningConfig(task_type=peft_task_type, num_virtual_tokens=cfg.num_virtual_tokens, **init)
    return get_peft_model(model, config)


def apply_p_tuning(model: torch.nn.Module, cfg: MethodConfig, peft_task_type: str) -> torch.nn.Module:
    from peft import PromptEncoderConfig, get_peft_model

    config = PromptEncoderConfig(task_type=peft_task_type, num_virtual_tokens=cfg.num_virtual_tokens,
                                 encoder_hidden_size=model.config.hidden_size)
    return get_peft_model(model, config)


SOFT_PROMPTS = ("prompt-tuning", "p-tuning")


def virtual_tokens(cfg: MethodConfig) -> int:
    """How many soft-prompt positions the method puts in front of every row (0 for the other methods)."""
    return cfg.num_virtual_tokens if cfg.name in SOFT_PROMPTS else 0


def model_virtual_tokens(model: torch.nn.Module) -> int:
    """virtual_tokens of an already built (or loaded) model."""
    return model.active_peft_config.num_virtual_tokens if is_prompt_learning(model) else 0


def is_prompt_learning(model: torch.nn.Module) -> bool:
    """Soft prompts are prepended inside PEFT's forward: inputs and outputs are longer than the batch."""
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning)
