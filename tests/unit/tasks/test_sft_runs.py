"""sft, clm and generation end to end on a tiny random Llama: methods, saved models, CLI commands."""

from __future__ import annotations

import json

import pytest
from conftest import lmtune

from lmtune.api import Predictor, train
from lmtune.generation.chat import chat_loop
from lmtune.generation.generate import Settings, cut_at_stop
from lmtune.tasks.clm import causal_blocks
from lmtune.trained.generator import load_generator


def write_json(path, rows) -> str:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return str(path)


def sft_run(tmp_path, tiny_llama, name: str = "lora", method: dict | None = None, data: dict | None = None):
    rows = [{"messages": [{"role": "user", "content": f"hello who are you {i}"},
                          {"role": "assistant", "content": "I am a small test model"}]} for i in range(16)]
    cfg = {"name": name, "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
           "task": {"name": "sft", "generate_samples": 2, "max_new_tokens": 6, "packing": True},
           "method": {"name": name, **(method or {})},
           "data": {"train": write_json(tmp_path / "chats.json", rows), "max_length": 64, **(data or {})},
           "train": {"max_steps": 2, "batch_size": 4, "lr": 1e-2, "eval_before": True}}
    return train(cfg)


def test_lora_sft_run_scores_loss_and_generations(tmp_path, tiny_llama):
    run = sft_run(tmp_path, tiny_llama)
    val = run.metrics["validation"]
    assert val["loss"] < run.metrics["validation_before"]["loss"]  # lr 1e-2 on one repeated answer
    assert val["perplexity"] == pytest.approx(2.718281828 ** val["loss"], rel=1e-3)
    assert set(val["generated"]) >= {"rouge1", "rougeL", "exact_match"}
    assert run.metrics["data"]["packing"] is True and run.metrics["data"]["chat_format"] == "messages"
    records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 2 and {"prompt", "reference", "generated", "rouge1"} <= set(records[0])
    assert (run.model_dir / "adapter" / "adapter_config.json").exists()  # adapter kept beside merged weights
    assert (run.model_dir / "model.safetensors").exists()
    out = Predictor(run.path).predict(["hello who are you"])
    assert set(out[0]) == {"row", "text", "generated"}
    report = (run.path / "report.md").read_text()
    assert "## Generated answers" in report and "| generated.rougeL |" in report


@pytest.mark.parametrize("method", ["prompt-tuning", "p-tuning"])
def test_soft_prompts_train_only_the_prompt_and_save_an_adapter(tmp_path, tiny_llama, method, capsys):
    run = sft_run(tmp_path, tiny_llama, method, method={"num_virtual_tokens": 4})
    params = run.metrics["params"]
    if method == "prompt-tuning":
        assert params["trainable"] == 4 * 32  # 4 virtual tokens of the 32-wide embeddings
    else:
        assert 4 * 32 < params["trainable"] < params["total"] / 2  # plus the prompt encoder MLP
    assert run.metrics["data"]["packing"] is False and "packing is off" in capsys.readouterr().out
    assert (run.model_dir / "adapter_config.json").exists() and not (run.model_dir / "model.safetensors").exists()
    predictor = Predictor(run.path)  # loads the base model named in lmtune.json, then the adapter
    assert predictor.predict(["hello"])[0]["generated"] is not None


def test_prompt_tuning_starts_from_text(tmp_path, tiny_llama):
    run = sft_run(tmp_path, tiny_llama, "prompt-tuning", method={"num_virtual_tokens": 4,
                                                                 "prompt_init": "who are you"})
    assert run.metrics["params"]["trainable"] == 4 * 32


def test_unmerged_lora_saves_the_adapter_only(tmp_path, tiny_llama):
    run = sft_run(tmp_path, tiny_llama, method={"merge_lora": False})
    assert not (run.model_dir / "model.safetensors").exists()
    assert Predictor(run.model_dir).predict(["hello"])[0]["row"] == 1


def test_translation_template(tmp_path, tiny_llama):
    rows = [{"en": f"the cat {i}", "fr": f"le chat {i}"} for i in range(12)]
    run = train({"name": "t", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
                 "task": {"name": "sft", "template": "translation", "target_lang": "French",
                          "generate_samples": 2, "max_new_tokens": 4},
                 "data": {"train": write_json(tmp_path / "pairs.json", rows), "source_column": "en",
                          "target_column": "fr", "max_length": 64},
                 "train": {"max_steps": 1, "batch_size": 4}})
    assert {"bleu", "chrf"} <= set(run.metrics["validation"]["generated"])
    record = json.loads((run.path / "predictions.jsonl").read_text().splitlines()[0])
    assert record["prompt"].startswith("Translate the following text from English to French.\n\nthe cat")
    assert record["reference"].startswith("le chat")


def test_classification_template_learns_label_words(tmp_path, tiny_llama):
    rows = [{"text": f"the film {i}", "label": "positive" if i % 2 else "negative"} for i in range(12)]
    run = train({"name": "c", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
                 "task": {"name": "sft", "template": "classification", "generate_samples": 2, "max_new_tokens": 3},
                 "data": {"train": write_json(tmp_path / "labels.json", rows), "max_length": 128},
                 "train": {"max_steps": 1, "batch_size": 4}})
    assert "exact_match" in run.metrics["validation"]["generated"]
    state = json.loads((run.model_dir / "lmtune.json").read_text())
    assert state["labels"] == ["negative", "positive"] and state["template"] == "classification"


def test_template_needs_its_columns(tmp_path, tiny_llama):
    with pytest.raises(Exception, match="source_column and data.target_column"):
        train({"output_dir": str(tmp_path), "model": {"name": tiny_llama},
               "task": {"name": "sft", "template": "summarisation"},
               "data": {"train": write_json(tmp_path / "x.json", [{"a": "b"}] * 4)}})


def test_causal_blocks_restart_positions_per_document():
    blocks = causal_blocks([[1, 2, 3, 9], [4, 5, 9], [6, 7, 8, 9]], max_length=5)
    assert [b["input_ids"] for b in blocks] == [[1, 2, 3, 9, 4], [5, 9, 6, 7, 8], [9]]
    assert [b["position_ids"] for b in blocks] == [[0, 1, 2, 3, 0], [0, 1, 0, 1, 2], [0]]
    assert blocks[0]["labels"] == [-100, 2, 3, 9, -100]  # a document's first token is not predicted from another


def test_clm_run_lowers_perplexity(tmp_path, tiny_llama):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat\n" * 40, encoding="utf-8")
    run = train({"name": "clm", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
                 "task": {"name": "clm"}, "method": {"name": "full"},
                 "data": {"train": str(tmp_path / "corpus.txt"), "max_length": 32},
                 "train": {"max_steps": 4, "batch_size": 4, "lr": 1e-2, "eval_before": True}})
    assert run.metrics["validation"]["perplexity"] < run.metrics["validation_before"]["perplexity"]
    assert Predictor(run.path).predict(["the cat"])[0]["generated"] is not None


def test_generate_command(tmp_path, tiny_llama, monkeypatch, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello"}\n{"messages": [{"role": "user", "content": "who are you"}]}\n')
    code, out, err = lmtune(monkeypatch, capsys, "generate", tiny_llama, "-i", str(prompts), "-o",
                            str(tmp_path / "out.jsonl"), "--max-new-tokens", "4")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records][0] == "hello" and len(records) == 2
    code, out, err = lmtune(monkeypatch, capsys, "generate", tiny_llama, "--max-new-tokens", "4")
    assert code == 2 and "--prompt" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": 3}\n')
    code, out, err = lmtune(monkeypatch, capsys, "generate", tiny_llama, "-i", str(bad))
    assert code == 2 and "bad.jsonl" in err and "row 2" in err


def test_greedy_generation_is_reproducible_and_stops(tiny_llama):
    generator = load_generator(tiny_llama)
    prompt = generator.prompt("hello who are you")
    assert prompt.endswith("<|im_start|>assistant\n")
    first = generator.generate([prompt, generator.prompt("hi")], Settings(max_new_tokens=8))
    assert generator.generate([prompt, generator.prompt("hi")], Settings(max_new_tokens=8)) == first
    assert cut_at_stop("answer. STOP more", ["STOP"]) == "answer. "
    streamed = "".join(generator.stream(prompt, Settings(max_new_tokens=8)))
    assert streamed == first[0]  # streaming yields the same greedy text


def test_chat_loop_keeps_history_and_resets(tiny_llama):
    lines = iter(["hello", "who are you", "/reset", "hi", "/exit"])
    written: list[str] = []
    history = chat_loop(load_generator(tiny_llama), Settings(max_new_tokens=4), read=lambda _: next(lines),
                        write=written.append)
    assert [t["content"] for t in history if t["role"] == "user"] == ["hi"]  # /reset forgot the first two
    assert len(history) == 2 and sum(w == "assistant> " for w in written) == 3


def test_sft_resumes_from_a_checkpoint_with_tied_embeddings(tmp_path, tiny_llama):
    rows = [{"prompt": f"hello {i}", "completion": "I am a small test model"} for i in range(16)]
    cfg = {"name": "r", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
           "task": {"name": "sft", "generate_samples": 0}, "method": {"name": "full"},
           "data": {"train": write_json(tmp_path / "pc.json", rows), "max_length": 64},
           "train": {"max_steps": 2, "batch_size": 2, "save_every": 2, "eval_every": 2}}
    first = train(cfg)
    resumed = train({"name": "r", "output_dir": str(tmp_path / "runs"), "train": {"max_steps": 4}}, resume=True)
    assert resumed.path == first.path and resumed.metrics["train"]["steps"] == 4
    assert resumed.config.model.name == tiny_llama and resumed.metrics["task"] == "sft"
    log = [json.loads(line) for line in (first.path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "eval" in r] == [2, 4]


def test_gradient_checkpointing_trains(tmp_path, tiny_llama):
    run = train({"name": "gc", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_llama},
                 "task": {"name": "sft", "generate_samples": 0},
                 "data": {"train": write_json(tmp_path / "pc.json", [{"prompt": "hi", "completion": "hello"}] * 8),
                          "max_length": 64},
                 "train": {"max_steps": 1, "batch_size": 4, "gradient_checkpointing": True}})
    assert run.metrics["train"]["steps"] == 1
