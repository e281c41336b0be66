"""Hyper-parameter search (`lmtune.tuning.tune`) on the tiny random BERT: trial runs and the files the search
writes, best.yaml, the direction of the metric, search-space checks, pruning through `api.train(on_evaluate)`,
and resuming a killed search."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from lmtune import tuning
from lmtune.api import train
from lmtune.config import Config, load_config
from lmtune.errors import ConfigError, UserError
from lmtune.tuning import load_space, tune

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[3]
SPACE = {"train.lr": {"low": 1.0e-4, "high": 1.0e-1, "log": True}, "train.batch_size": [4, 8],
         "train.warmup": {"low": 0.0, "high": 0.2}}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "train.csv"
    rows = [(f"the film {'good' if i % 2 else 'bad'} {i}", "good" if i % 2 else "bad") for i in range(24)]
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    return str(path)


def config(tiny_bert: str, data_file: str, out: Path, name: str = "tn", **train_keys) -> dict:
    return {"name": name, "output_dir": str(out), "model": {"name": tiny_bert},
            "data": {"train": data_file, "max_length": 32},
            "train": {"max_steps": 3, "eval_every": 1, "batch_size": 8, "eval_batch_size": 32, "seed": 1,
                      **train_keys}}


@pytest.fixture(scope="module")
def searched(tiny_bert, data_file, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("tune") / "runs"
    return tune(config(tiny_bert, data_file, out), SPACE, trials=3, seed=0, retrain=True), out


def dotted(data: dict, key: str):
    for part in key.split("."):
        data = data[part]
    return data


def test_each_trial_is_a_run_and_the_search_writes_its_files(searched):
    result, out = searched
    tune_dir = out / "tn"
    assert json.loads((tune_dir / "trials.json").read_text(encoding="utf-8")) == json.loads(json.dumps(result))
    assert len((tune_dir / "trials.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert (tune_dir / "study.db").exists()
    assert sorted(t["number"] for t in result["trials"]) == [0, 1, 2]
    for trial in result["trials"]:
        assert trial["state"] == "complete" and trial["evaluations"] == 3 and set(trial["params"]) == set(SPACE)
        run = Path(trial["run"])
        assert run == tune_dir / f"trial-{trial['number']}" and (run / "model" / "lmtune.json").exists()
        assert not (run / "checkpoints").exists()  # a trial is never resumed: its checkpoints are dropped
        saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        assert saved["task"]["baselines"] is False  # trials stay cheap
        assert all(dotted(saved, k) == v for k, v in trial["params"].items())
    md = (tune_dir / "tune.md").read_text(encoding="utf-8")
    assert "| trial | state | accuracy | train.lr | train.batch_size | train.warmup |" in md
    assert f"## Best: trial {result['best']['number']}" in md and "lmtune train -c" in md


def test_best_yaml_is_the_best_trial_ready_to_train(searched):
    result, out = searched
    assert result["direction"] == "maximize" and result["metric"] == "accuracy"
    values = [t["value"] for t in result["trials"]]
    assert result["best"]["value"] == max(values) == values[0]  # the table is best first
    cfg = load_config(out / "tn" / "best.yaml")
    assert result["best_config"] == str(out / "tn" / "best.yaml")
    assert cfg.name == "tn-best" and cfg.output_dir == str(out)
    assert cfg.task.baselines is True  # the user's setting, not the trials'
    dumped = cfg.model_dump(mode="json")
    assert all(dotted(dumped, k) == v for k, v in result["best"]["params"].items())


def test_retrain_trains_best_yaml(searched):
    result, out = searched
    assert result["retrain"]["run"] == str(out / "tn-best")
    assert "accuracy" in result["retrain"]["metrics"]["validation"]
    assert "baselines" in result["retrain"]["metrics"]


def test_a_lower_is_better_metric_is_minimised(tiny_bert, data_file, tmp_path):
    # No warm-up: a first step at learning rate 0 would leave every trial's best at the same untrained score.
    cfg = config(tiny_bert, data_file, tmp_path, metric="log_loss", warmup=0.0)
    result = tune(cfg, {"train.lr": {"low": 1.0e-3, "high": 0.3, "log": True}}, trials=3, seed=0)
    assert result["direction"] == "minimize" and result["metric"] == "log_loss"
    values = [t["value"] for t in result["trials"] if t["state"] == "complete"]
    assert len(set(values)) > 1 and result["best"]["value"] == min(values) == values[0]
    assert load_config(result["best_config"]).train.lr == result["best"]["params"]["train.lr"]


@pytest.mark.parametrize(("space", "message"), [
    ({"train.lrr": {"low": 0.1, "high": 0.2}}, "did you mean 'train.lr'"),
    ({"trian.lr": [0.1]}, "did you mean 'train'"),
    ({"train.lr": {"low": 0.2, "high": 0.1}}, "'train.lr': low (0.2) must be below high (0.1)"),
    ({"train.lr": {"low": 0, "high": 0.1, "log": True}}, "'train.lr'"),
    ({"train.warmup": {"low": -0.1, "high": 0.1}}, "'train.warmup' = -0.1"),
    ({"train.batch_size": [0, 8]}, "'train.batch_size' = 0"),
    ({"train.batch_size": {"low": 4, "high": 32, "log": True, "step": 4}}, "'train.batch_size'"),
    ({"train.lr": {"low": 0.1}}, "'train.lr': expected a list of choices"),
    ({"train.lr": 0.1}, "'train.lr': expected a list of choices"),
    ({}, "the search space is empty"),
])
def test_a_bad_search_space_fails_before_anything_trains(space, message, tiny_bert, data_file, tmp_path):
    with pytest.raises(ConfigError) as err:
        tune(config(tiny_bert, data_file, tmp_path), space, trials=2)
    assert message in str(err.value)
    assert not tmp_path.joinpath("tn").exists()


def test_a_search_needs_a_validation_split(tiny_bert, data_file, tmp_path):
    cfg = config(tiny_bert, data_file, tmp_path)
    cfg["data"]["validation_size"] = 0.0
    with pytest.raises(ConfigError, match="validation split"):
        tune(cfg, {"train.lr": [1.0e-3]}, trials=2)

def test_space_files_are_read_and_typed():
    example = load_config(REPO / "examples" / "sst2.yaml").model_dump(mode="json")
    space = load_space(REPO / "spaces" / "sst2.yaml", example)  # outside examples/: not a run config
    assert isinstance(space["train.lr"], optuna.distributions.FloatDistribution) and space["train.lr"].log
    assert isinstance(space["train.epochs"], optuna.distributions.IntDistribution)  # integer bounds
    assert space["train.batch_size"].choices == (16, 32)
    dist = load_space({"train.lr": {"low": "1e-5", "high": "1e-3"}}, Config().model_dump(mode="json"))["train.lr"]
    assert (dist.low, dist.high) == (1e-5, 1e-3)  # YAML 1.1 reads 1e-5 as a string


def test_on_evaluate_sees_each_evaluation_and_trial_pruned_ends_the_run(tiny_bert, data_file, tmp_path):
    seen = []

    def prune_second(n: int, metrics: dict) -> None:
        seen.append((n, metrics["accuracy"]))
        if n == 2:
            raise optuna.TrialPruned("behind the median")

    with pytest.raises(optuna.TrialPruned, match="behind the median"):
        train(config(tiny_bert, data_file, tmp_path, name="p", eval_before=True), on_evaluate=prune_second)
    assert [n for n, _ in seen] == [0, 1, 2]  # 0 = eval_before, then one per evaluation during training
    run = tmp_path / "p"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in log if "eval" in r] == [1]  # the run stopped inside its second evaluation
    assert (run / "config.yaml").exists() and not (run / "metrics.json").exists()


def test_pruned_trials_are_recorded_and_leave_no_best(tiny_bert, data_file, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "_pruner", lambda: optuna.pruners.ThresholdPruner(lower=2.0))  # prunes all
    result = tune(config(tiny_bert, data_file, tmp_path), {"train.lr": [1.0e-3, 1.0e-2]}, trials=2, seed=0)
    assert [t["state"] for t in result["trials"]] == ["pruned", "pruned"]
    assert all(t["evaluations"] == 1 and t["value"] is not None for t in result["trials"])
    assert result["best"] is None and not (tmp_path / "tn" / "best.yaml").exists()
    assert "2 pruned" in (tmp_path / "tn" / "tune.md").read_text(encoding="utf-8")
    trial = tmp_path / "tn" / "trial-0"
    assert (trial / "config.yaml").exists() and not (trial / "model").exists()
    assert not (trial / "checkpoints").exists()
    with pytest.raises(UserError, match="no trial of tn completed"):
        tuning._retrain(result)


def test_a_killed_search_resumes_where_it_stopped(tiny_bert, data_file, tmp_path):
    cfg = config(tiny_bert, data_file, tmp_path, max_steps=2)
    with pytest.raises(UserError, match="nothing to resume"):
        tune(cfg, SPACE, trials=2, resume=True)
    first = tune(cfg, SPACE, trials=2, seed=0)
    resumed = tune(cfg, SPACE, trials=3, seed=0, resume=True)
    assert resumed["name"] == first["name"] == "tn"
    assert sorted(t["number"] for t in resumed["trials"]) == [0, 1, 2]
    old = {t["number"]: t["params"] for t in first["trials"]}
    new = next(t for t in resumed["trials"] if t["number"] == 2)
    assert new["params"] not in old.values()  # the resumed sampler does not replay the first session's draws
    assert not (tmp_path / "tn-2").exists()


def test_out_of_memory_fails_one_trial_and_a_resume_fails_the_trial_a_kill_left_running(tiny_bert, data_file,
                                                                                        tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(tuning, "train", out_of_memory)
    cfg = config(tiny_bert, data_file, tmp_path)
    assert [t["state"] for t in tune(cfg, SPACE, trials=2)["trials"]] == ["fail", "fail"]  # the search went on
    storage = f"sqlite:///{tmp_path / 'tn' / 'study.db'}"
    optuna.load_study(study_name="tn", storage=storage).ask()  # a trial a killed search never finished
    result = tune(cfg, SPACE, trials=1, resume=True)
    assert [t["state"] for t in sorted(result["trials"], key=lambda t: t["number"])] == ["fail"] * 4
    assert result["best"] is None and "4 fail" in (tmp_path / "tn" / "tune.md").read_text(encoding="utf-8")
