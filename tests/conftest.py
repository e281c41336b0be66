"""Shared fixtures: tiny random-weight models built here, so unit tests need no download."""

from __future__ import annotations

import io
import string
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip: the benchmark data lives beside the repo, never in it."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not found: the shared benchmark data sits beside the repo (../shared/data)")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the module's tests, restored afterwards (use with pytest.mark.usefixtures)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with a character-level WordPiece vocabulary (random weights)."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    words = ["good", "bad", "great", "awful", "not", "the", "film", "food", "service", "love", "hate"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_run(tiny_bert, tmp_path_factory) -> Path:
    """A tiny trained classification run (labels good/bad) for tests that predict or serve."""
    from lmtune.api import train

    folder = tmp_path_factory.mktemp("tiny-run")
    rows = [(f"the film {'good' if i % 2 else 'bad'} {i}", "good" if i % 2 else "bad") for i in range(20)]
    (folder / "train.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    run = train({"name": "s", "output_dir": str(folder / "runs"), "model": {"name": tiny_bert},
                 "data": {"train": str(folder / "train.csv"), "max_length": 32},
                 "train": {"max_steps": 2, "batch_size": 8, "eval_batch_size": 32, "seed": 1}})
    return run.path


def squash(text: str) -> str:
    """Output without whitespace: rich wraps long lines (and paths) at the terminal width."""
    return "".join(text.split())


def lmtune(monkeypatch, capsys, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """`lmtune ARGS` as the console script runs it: (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "200")  # tables created during the call are not cut
    monkeypatch.setattr(sys, "argv", ["lmtune", *args])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    from lmtune.cli import main

    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
