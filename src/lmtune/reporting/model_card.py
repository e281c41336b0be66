"""model/README.md: a Hugging Face model card (YAML metadata + Markdown) written from the run's files."""

from __future__ import annotations

from pathlib import Path

import yaml

from lmtune.errors import UserError
from lmtune.evaluation.intervals import metric_interval
from lmtune.io import write_text
from lmtune.models.registry import BUILTIN
from lmtune.reporting import summary
from lmtune.reporting.blocks import bullets, section, table, text
from lmtune.reporting.render import render_markdown
from lmtune.reporting.run_files import RunFiles, read_run


def write_model_card(run_dir: str | Path) -> Path:
    run = read_run(run_dir)
    if not (run.path / "model").is_dir():
        raise UserError(f"{run.path} has no model/ folder to describe")
    interval = metric_interval(run.task_type.interval_data, run.predictions)
    metadata = yaml.safe_dump(front_matter(run), sort_keys=False, allow_unicode=True)
    body = render_markdown({"title": run.path.name, "subtitle": _intro(run), "sections": card_sections(run, interval)})
    path = run.path / "model" / "README.md"
    write_text(path, f"---\n{metadata}---\n\n{body}")
    return path


def base_model_id(name: str | None) -> str | None:
    """A hub id for `base_model`, or None for a local folder (the hub accepts only model ids there)."""
    if not name:
        return None
    if name in BUILTIN:
        return BUILTIN[name].upstream
    return name if "/" in name and not Path(name).exists() else None


def front_matter(run: RunFiles) -> dict:
    meta: dict = {"library_name": "transformers"}
    base = base_model_id(_model_name(run))
    if base:
        meta["base_model"] = base
    spec = BUILTIN.get(_model_name(run) or "")
    if spec:  # a fine-tuned model carries its base model's terms (m3e-small's: non-commercial research only)
        meta["license"] = spec.licence.lower() if spec.commercial_use else "other"
        if not spec.commercial_use:
            meta["license_name"] = spec.licence
    if run.task_type.pipeline_tag:
        meta["pipeline_tag"] = run.task_type.pipeline_tag
    meta["tags"] = [t for t in ("lmtune", run.task, run.metrics.get("method")) if t]
    scores = run.metrics.get(run.predictions_split) or {}
    names = [k for k, v in scores.items() if isinstance(v, float)]  # integers are counts (n, entities), not metrics
    if names:
        meta["metrics"] = names
    return meta


def card_sections(run: RunFiles, interval: dict | None) -> list[dict]:
    evaluation = [b for b in (summary.metric_table(run, interval), summary.baseline_table(run)) if b]
    evaluation += [text(s) for s in (summary.interval_sentence(run, interval) if interval else None,
                                     summary.lift_sentence(run)) if s]
    data = [b for b in (summary.data_table(run), summary.label_table(run)) if b]
    procedure = [table(["item", "value"], summary.summary_rows(run))]
    hyper = summary.hyperparameter_rows(run)
    if hyper:
        procedure.append(table(["hyper-parameter", "value"], hyper))
    spec = BUILTIN.get(_model_name(run) or "")
    terms = [f"Licence of the base model: {spec.notice or spec.licence}"] if spec else []
    limits = terms + summary.limitations(run) + ["Trained and evaluated only on the data described above: test it on "
                                         "your own inputs before relying on it."]
    return [section("Intended use", [text(_intended_use(run))]),
            section("Training data", data or [text("Not recorded (no data report in metrics.json).")]),
            section("Evaluation results", evaluation or [text("No evaluation was run.")]),
            section("Training procedure", procedure),
            section("Limitations", [bullets(limits)])]


def _model_name(run: RunFiles) -> str | None:
    return run.metrics.get("model") or run.section("model").get("name")


def _intro(run: RunFiles) -> str:
    base = base_model_id(_model_name(run)) or _model_name(run) or "a pretrained model"
    return f"A {run.task or 'fine-tuned'} model fine-tuned from {base} with lmtune."


def _intended_use(run: RunFiles) -> str:
    task = run.task_type
    what, tag = task.describe(run.model_state), task.pipeline_tag
    told = "".join(f", {key}=\"{value}\"" for key, value in task.pipeline_kwargs.items())
    load = f"`transformers.pipeline(\"{tag}\", model=<this folder>{told})` or " if tag else ""
    return (f"{what}. Use it on inputs like the training data below; load it with {load}`lmtune predict <run "
            "folder>`. Check the limitations before using it for decisions about people.")
