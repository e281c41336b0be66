"""Shared fixtures: tiny random-weight models built here, so unit tests need no download."""

from __future__ import annotations

import io
import string
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip: the benchmark data lives beside the repo, never in it."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not found: the shared benchmark data sits beside the repo (../shared/data)")
    return path


@pytest.fixture(scope="session", autouse=True)
def token_cache_folder(tmp_path_factory) -> Iterator[Path]:
    """Runs cache tokenised splits in a temporary folder (inherited by subprocesses), never in ~/.cache."""
    folder = tmp_path_factory.mktemp("tokenized")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMTUNE_TOKEN_CACHE", str(folder))
        yield folder


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


CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nYou are a test model.<|im_end|>\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    """A 2-layer, 32-wide Llama with a byte-level BPE tokenizer and a ChatML chat template, SmolLM2-style
    (random weights): the same code paths as smollm2-135m at a thousandth of the cost."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["hello who are you", "I am a small test model", "translate to French", "summarise the text",
              "the cat sat on the mat", "system user assistant", "positive negative", "你好 我是 模型"] * 5
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>", pad_token="<|im_end|>")
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|im_end|>"])
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)
