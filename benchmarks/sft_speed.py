"""Decoder training speed: LoRA SFT of smollm2-135m on Alpaca chats, lmtune against HF Trainer + PEFT, one run.

    .venv/bin/python benchmarks/sft_speed.py [--rows 200] [--out benchmarks/results]

Both train one epoch over the same rows (`../shared/data/instruct/alpaca_en_demo.json`) with LoRA r=8 on all
linear layers, lr 2e-4, batch 4, chats rendered with the model's chat template, bf16 where the CPU has it:
- hf-peft: the usual recipe: `apply_chat_template` text, tokenised, `DataCollatorForLanguageModeling(mlm=False)`
  (dynamic padding, loss on every token), `Trainer` defaults otherwise;
- lmtune: `lmtune train --task sft` defaults (assistant-only loss, length-grouped batches).
Tokens/s counts real (non-padding) tokens over training seconds; the ratio is what a user sees.
Writes sft_speed.json and sft_speed.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from shared_data import ALPACA, require

from lmtune.reporting.run_files import read_run

LR, BATCH, RANK = 2e-4, 4, 8


def hf_peft(messages: list[list[dict]], out: Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    from lmtune.models import resolve
    from lmtune.training.device import resolve_precision

    path = resolve("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in messages]
    data = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=1024, add_special_tokens=False),
        batched=True, remove_columns=["text"])
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path),
                           LoraConfig(task_type="CAUSAL_LM", r=RANK, lora_alpha=16, target_modules="all-linear"))
    args = TrainingArguments(output_dir=str(out / "hf"), per_device_train_batch_size=BATCH, learning_rate=LR,
                             num_train_epochs=1, bf16=resolve_precision("auto") == "bf16", use_cpu=True,
                             report_to=[], save_strategy="no", disable_tqdm=True, logging_steps=10_000)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    seconds = trainer.train().metrics["train_runtime"]
    tokens = sum(len(ids) for ids in data["input_ids"])
    return {"setup": "hf-peft", "train_seconds": round(seconds, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1)}


def lmtune_sft(rows: int, out: Path) -> dict:
    from lmtune.api import train

    run = train({"name": "sft-speed", "output_dir": str(out / "runs"),
                 "task": {"name": "sft", "generate_samples": 0},
                 "method": {"lora_r": RANK},
                 "data": {"train": str(ALPACA), "max_train_rows": rows, "validation_size": 0, "test_size": 0},
                 "train": {"epochs": 1, "lr": LR, "batch_size": BATCH, "log_every": 10_000}})
    log = read_run(run.path).log
    record = [r for r in log if "tokens_per_s" in r][-1]  # one record: the whole epoch
    return {"setup": "lmtune", "train_seconds": run.metrics["train"]["seconds"],
            "tokens_per_s": record["tokens_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    require(ALPACA)
    with tempfile.TemporaryDirectory(prefix="sft-speed-") as tmp:
        # lmtune's max_train_rows takes a seeded sample; the Trainer gets the same rows, read the same way.
        results = [lmtune_sft(args.rows, Path(tmp))]
        used = json.loads((Path(tmp) / "runs" / "sft-speed" / "metrics.json").read_text())["data"]["rows"]["train"]
        results.insert(0, hf_peft(_sampled(args.rows), Path(tmp)))
    ratio = round(results[1]["tokens_per_s"] / results[0]["tokens_per_s"], 2)
    report = {"rows": used, "threads": torch.get_num_threads(), "results": results, "lmtune/hf-peft": ratio}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sft_speed.json").write_text(json.dumps(report, indent=2))
    lines = ["| set-up | train s | real tokens/s |", "|---|---|---|",
             *[f"| {r['setup']} | {r['train_seconds']} | {r['tokens_per_s']} |" for r in results],
             f"\nlmtune / hf-peft tokens/s: {ratio}x ({used} chats, LoRA r={RANK}, batch {BATCH})"]
    (args.out / "sft_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _sampled(rows: int) -> list[list[dict]]:
    """The rows lmtune trains on: the same seeded sample of the same file."""
    from lmtune.config import build_config
    from lmtune.data.conversations import read_conversations
    from lmtune.data.splits import read_and_split

    cfg = build_config({"task": {"name": "sft"}, "data": {"train": str(ALPACA), "max_train_rows": rows,
                                                         "validation_size": 0, "test_size": 0}})
    splits, _ = read_and_split(cfg.data, cfg.train.seed, lambda path: read_conversations(path))
    return splits["train"]["messages"].tolist()


if __name__ == "__main__":
    main()
