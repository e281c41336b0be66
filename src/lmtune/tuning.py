"""Hyper-parameter search (`lmtune tune`): Optuna samples a space of dotted config keys, every trial is an
ordinary run (runs/<name>/trial-<n>), and the best parameters come back as a config ready to train.

Why Optuna: its TPE sampler spends later trials near the values that scored well, and its median pruner stops
a trial whose validation score trails the others' at the same evaluation, both of which a grid cannot do. The
space is checked against the config schema before anything trains, so a typo costs a second, not a search.
The study lives in runs/<name>/study.db, so a killed search continues with `resume=True`.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lmtune.config import Config, build_config, load_yaml, set_dotted
from lmtune.errors import ConfigError, UserError
from lmtune.io import write_json, write_jsonl, write_text
from lmtune.recipe import selection_metric, train
from lmtune.runs import as_config, free_run_dir, with_demo_data
from lmtune.tasks import checked_config, new_task

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

RANGE_KEYS = {"low", "high", "log", "step"}
SCALARS = (bool, int, float, str)


def tune(config: Config | dict | str | Path | None, space: dict | str | Path, trials: int = 20,
         seed: int | None = None, timeout: float | None = None, *, retrain: bool = False,
         resume: bool = False) -> dict:
    """Search `space` with `trials` runs of `config` (each with task.baselines off) and return the summary
    also written to runs/<name>/trials.json, next to trials.jsonl, tune.md, best.yaml and study.db.

    `seed` seeds the sampler (default: train.seed); `timeout` (seconds) starts no trial after it, it does not
    stop one. `resume` continues the search in runs/<name> until `trials` trials are complete or pruned.
    `retrain` trains best.yaml at the end (runs/<name>-best), its metrics under "retrain"."""
    import optuna

    cfg = checked_config(with_demo_data(as_config(config)))
    base = cfg.model_dump(mode="json")
    spec = _read_space(space)
    distributions = load_space(spec, base)
    if trials < 1:
        raise ConfigError(f"tuning needs at least 1 trial, got {trials}")
    cfg = _existing(cfg) if resume else free_run_dir(cfg)
    objective = _objective_metric(cfg)
    study = _study(cfg, objective["higher_is_better"], cfg.train.seed if seed is None else seed)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = trials - len(study.get_trials(deepcopy=False, states=finished))

    def write(study: optuna.Study, _trial: object = None) -> dict:
        return _write_outputs(study, cfg, base, spec, objective["metric"])

    if remaining > 0:
        # A sampled batch size too big for the GPU fails that trial, not the search.
        study.optimize(lambda trial: _run_trial(trial, distributions, base, cfg, objective["metric"]),
                       n_trials=remaining, timeout=timeout, catch=(torch.cuda.OutOfMemoryError,), callbacks=[write])
    result = write(study)
    if retrain:
        result["retrain"] = _retrain(result)
        write_json(cfg.run_dir / "trials.json", result)
    return result


def _read_space(space: dict | str | Path) -> dict:
    spec = load_yaml(space) if isinstance(space, str | Path) else space
    if not isinstance(spec, dict) or not spec:
        raise ConfigError("the search space is empty: map dotted config keys to a list of choices or "
                          "{low, high[, log, step]}, e.g. train.lr: {low: 1.0e-5, high: 5.0e-4, log: true}")
    return spec


def load_space(space: dict | str | Path, base: dict | None = None) -> dict[str, BaseDistribution]:
    """The search space as Optuna distributions. Every bound and choice is set into `base` (the config being
    tuned, as a dict) and validated by the schema, so an unknown key or a value its field refuses fails here."""
    return {str(key): _distribution(str(key), value, base or {}) for key, value in _read_space(space).items()}


def _distribution(key: str, spec: Any, base: dict) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(spec, list):
        if not spec or not all(v is None or isinstance(v, SCALARS) for v in spec):
            raise ConfigError(f"search space {key!r}: a list is the choices; give one or more plain values "
                              f"(numbers, strings, true/false), got {spec!r}")
        _check_values(base, key, spec)
        return CategoricalDistribution(spec)
    if not isinstance(spec, dict) or not {"low", "high"} <= spec.keys() or spec.keys() - RANGE_KEYS:
        raise ConfigError(f"search space {key!r}: expected a list of choices or {{low, high[, log, step]}}, "
                          f"got {spec!r}")
    low, high, step = (_number(key, name, spec.get(name)) for name in ("low", "high", "step"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"search space {key!r}: log must be true or false, got {log!r}")
    if not low < high:
        raise ConfigError(f"search space {key!r}: low ({low}) must be below high ({high})")
    _check_values(base, key, [low, high])
    try:
        if all(isinstance(v, int) for v in (low, high, 1 if step is None else step)):
            return IntDistribution(low, high, log=log, step=1 if step is None else step)
        return FloatDistribution(float(low), float(high), log=log, step=step)
    except ValueError as err:  # Optuna's own rules: log needs low > 0, step > 0, not log and step together
        raise ConfigError(f"search space {key!r}: {err}") from None


def _number(key: str, name: str, value: Any) -> int | float | None:
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-5 (no dot) as a string; users mean a number
            return float(value)
        except ValueError:
            pass
    if value is None and name == "step":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"search space {key!r}: {name} must be a number, got {value!r}")
    return value


def _check_values(base: dict, key: str, values: list) -> None:
    for value in values:
        data = copy.deepcopy(base)
        try:
            set_dotted(data, key, value)
            checked_config(build_config(data))
        except ConfigError as err:
            raise ConfigError(f"search space {key!r} = {value!r}: {err}") from None


def _existing(cfg: Config) -> Config:
    if not (cfg.run_dir / "study.db").exists():
        raise UserError(f"nothing to resume in {cfg.run_dir} (no study.db); check the name and output_dir")
    return cfg


def _objective_metric(cfg: Config) -> dict:
    """The metric trials compete on: the one that picks each run's best checkpoint."""
    task = new_task(cfg)
    if cfg.train.metric == "auto":
        task.load(cfg)  # the task's own metric can depend on the data (multi-label classification: f1_micro)
    return selection_metric(cfg.train.metric, task)


def _study(cfg: Config, higher_is_better: bool, seed: int) -> optuna.Study:
    import optuna

    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{(cfg.run_dir / 'study.db').resolve()}", study_name=cfg.name,
                                direction="maximize" if higher_is_better else "minimize", load_if_exists=True,
                                pruner=_pruner())
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # left running by a killed search
    # Offset by the trials already run, so a resumed search does not draw the first session's values again.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study


def _pruner() -> optuna.pruners.BasePruner:
    import optuna

    # Two trials run in full before any is judged; evaluation 0 (eval_before, an untrained model) never prunes.
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def _run_trial(trial: optuna.Trial, distributions: dict, base: dict, cfg: Config, metric: str) -> float:
    import optuna

    params = {key: _suggest(trial, key, dist) for key, dist in distributions.items()}
    run_cfg = _with_params(base, {**params, "task.baselines": False}, f"trial-{trial.number}", str(cfg.run_dir))
    trial.set_user_attr("run", str(run_cfg.run_dir))

    def report(n: int, metrics: dict) -> None:
        if metric not in metrics:  # the loop then names the metrics there are
            return
        trial.report(metrics[metric], n)
        if trial.should_prune():
            raise optuna.TrialPruned(f"{metric} = {metrics[metric]:.4f} at evaluation {n}")

    try:
        run = train(run_cfg, on_evaluate=report)
    finally:
        # A trial is never resumed (a resumed search starts new ones), so its checkpoints are only disk.
        shutil.rmtree(run_cfg.run_dir / "checkpoints", ignore_errors=True)
    if metric not in run.metrics.get("validation", {}):
        raise ConfigError("tuning compares trials on the validation split, and this run had none: give "
                          "data.validation or a data.validation_size above 0")
    return run.metrics["validation"][metric]


def _suggest(trial: optuna.Trial, key: str, dist: BaseDistribution) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    suggest = trial.suggest_int if isinstance(dist, IntDistribution) else trial.suggest_float
    return suggest(key, dist.low, dist.high, step=dist.step, log=dist.log)


def _with_params(base: dict, params: dict, name: str, output_dir: str | None = None) -> Config:
    data = copy.deepcopy(base)
    for key, value in params.items():
        set_dotted(data, key, value)
    data["name"] = name
    if output_dir:
        data["output_dir"] = output_dir
    return build_config(data)


def _records(study: optuna.Study) -> list[dict]:
    # A pruned trial's value is its last reported score (Optuna's rule); a failed one has none.
    return [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
             "evaluations": len(t.intermediate_values),
             "seconds": round(t.duration.total_seconds(), 2) if t.duration else None, "run": t.user_attrs.get("run")}
            for t in study.get_trials(deepcopy=False)]


def _best_first(records: list[dict], higher_is_better: bool) -> list[dict]:
    """Complete trials by value, then pruned ones by their last score, then failed ones."""
    rank = {"complete": 0, "pruned": 1}

    def key(r: dict) -> tuple:
        value = r["value"]
        if value is None:
            return rank.get(r["state"], 2), 1, 0.0
        return rank.get(r["state"], 2), 0, -value if higher_is_better else value

    return sorted(records, key=key)


def _write_outputs(study: optuna.Study, cfg: Config, base: dict, spec: dict, metric: str) -> dict:
    """trials.jsonl, trials.json, tune.md and best.yaml as they stand: rewritten after every trial, so a killed
    search still leaves its results."""
    higher = study.direction.name == "MAXIMIZE"
    records = _records(study)
    complete = [r for r in records if r["state"] == "complete"]
    best = _best_first(complete, higher)[0] if complete else None
    result = {"name": cfg.name, "metric": metric, "direction": study.direction.name.lower(), "space": spec,
              "trials": _best_first(records, higher), "best": best, "best_config": None}
    if best:
        best_cfg = _with_params(base, best["params"], f"{cfg.name}-best")
        result["best_config"] = str(cfg.run_dir / "best.yaml")
        write_text(cfg.run_dir / "best.yaml", f"# lmtune tune {cfg.name}: trial {best['number']} of {len(records)}, "
                   f"validation {metric} = {best['value']:.4f}\n# lmtune train -c {result['best_config']}\n"
                   + best_cfg.to_yaml())
    write_jsonl(cfg.run_dir / "trials.jsonl", records)
    write_json(cfg.run_dir / "trials.json", result)
    write_text(cfg.run_dir / "tune.md", _markdown(result))
    return result


def trial_table(result: dict) -> dict:
    """The trials, best first, as a table: {"columns": [...], "rows": [[str, ...]]} (tune.md, the CLI)."""
    keys = list(result["space"])
    rows = [[str(r["number"]), r["state"], _cell(r["value"]), *(_cell(r["params"].get(k)) for k in keys),
             str(r["evaluations"]), _cell(r["seconds"]), r["run"] or "-"] for r in result["trials"]]
    return {"columns": ["trial", "state", result["metric"], *keys, "evaluations", "seconds", "run"], "rows": rows}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(result: dict) -> str:
    table = trial_table(result)
    states = [r["state"] for r in result["trials"]]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    better = "higher" if result["direction"] == "maximize" else "lower"
    lines = [f"# Hyper-parameter search: {result['name']}", "",
             f"{len(states)} trials ({counts}); validation {result['metric']}, {better} is better.", "",
             "| " + " | ".join(table["columns"]) + " |", "|" + "---|" * len(table["columns"]),
             *("| " + " | ".join(row) + " |" for row in table["rows"])]
    best = result["best"]
    if best:
        lines += ["", f"## Best: trial {best['number']}, {result['metric']} = {best['value']:.4f}", "",
                  *(f"- `{k}`: {v}" for k, v in best["params"].items()), "",
                  f"Train it: `lmtune train -c {result['best_config']}`"]
    else:
        lines += ["", "No trial completed, so there is no best configuration yet."]
    return "\n".join(lines) + "\n"


def _retrain(result: dict) -> dict:
    if not result["best_config"]:
        raise UserError(f"no trial of {result['name']} completed, so there is no best configuration to retrain")
    run = train(result["best_config"])
    return {"run": str(run.path), "metrics": run.metrics}
