"""runs/<name>/report.html and report.md, rebuilt at any time from the files the run wrote.

The HTML is one self-contained file (CSS and PNG figures inline, no script, no remote reference), so it opens
offline and can be mailed as it is; report.md links the same figures from report_files/.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lmtune.evaluation.intervals import metric_interval
from lmtune.io import atomic_dir, write_text
from lmtune.reporting import analysis, summary
from lmtune.reporting.blocks import section, table, text, warning
from lmtune.reporting.explanations import explanation_sections
from lmtune.reporting.model_card import write_model_card
from lmtune.reporting.render import render_html, render_markdown
from lmtune.reporting.run_files import RunFiles, read_run
from lmtune.reporting.workflows import distillation_sections, self_training_sections

FIGURES = "report_files"
log = logging.getLogger(__name__)


def build_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write report.html, report.md (+ report_files/*.png) into the run folder; return the two paths."""
    run = read_run(run_dir)
    sections = report_sections(run)
    context = {"title": f"lmtune run report: {run.path.name}", "sections": sections, "figures": FIGURES,
               "subtitle": " · ".join(str(v) for v in (run.task, run.metrics.get("model"), run.metrics.get("method"))
                                      if v)}
    with atomic_dir(run.path / FIGURES) as tmp:
        for block in (b for s in sections for b in s["blocks"] if b["kind"] == "figure"):
            (tmp / f"{block['name']}.png").write_bytes(block["png"])
    html, md = run.path / "report.html", run.path / "report.md"
    write_text(html, render_html(context))
    write_text(md, render_markdown(context))
    return html, md


def write_reports(run_dir: str | Path) -> None:
    """The report and the model card at the end of training: a failure is logged and the trained run kept."""
    for build in (build_report, write_model_card):
        try:
            build(run_dir)
        except Exception as err:  # the model is already saved; a reporting bug must not turn the run into an error
            log.warning("%s failed for %s: %s: %s (rebuild with `lmtune report %s`)", build.__name__, run_dir,
                        type(err).__name__, err, run_dir)


def report_sections(run: RunFiles) -> list[dict]:
    interval = metric_interval(run.task_type.interval_data, run.predictions)
    builders = [("Summary", _summary), ("Data", _data), ("Results", lambda r: _results(r, interval)),
                ("Training curves", lambda r: analysis.curve_sections(r, summary.main_metric(r))),
                ("Breakdown", analysis.detail_sections), ("Classification", analysis.classification_sections),
                ("Predictions", analysis.regression_sections), ("Explanations", explanation_sections),
                ("Self-training", self_training_sections), ("Distillation", distillation_sections),
                ("Generated answers", analysis.generation_sections)]
    sections = []
    for title, build in builders:
        try:
            sections += build(run)
        except Exception as err:  # files from another version or edited by hand: one section lost, not all
            sections.append(section(title, [warning(f"This section could not be built: {type(err).__name__}: "
                                                    f"{err}")]))
    return sections


def _summary(run: RunFiles) -> list[dict]:
    blocks = [table(["item", "value"], summary.summary_rows(run))]
    hyper = summary.hyperparameter_rows(run)
    if hyper:
        blocks.append(table(["hyper-parameter", "value"], hyper, caption="Training configuration (config.yaml)"))
    return [section("Summary", blocks)]


def _data(run: RunFiles) -> list[dict]:
    data = run.metrics.get("data") or {}
    blocks = [b for b in (summary.data_table(run), summary.label_table(run)) if b]
    if "unknown_token_rate" in data:
        blocks.append(text(f"Unknown-token rate (training tokens the tokenizer maps to its unknown token): "
                           f"{data['unknown_token_rate']:.2%}."))
    if "label_conflicts" in data:
        blocks.append(text(f"Training texts with more than one label: {data['label_conflicts']:,}."))
    return [section("Data", blocks)] if blocks else []


def _results(run: RunFiles, interval: dict | None) -> list[dict]:
    blocks = []
    metrics = summary.metric_table(run, interval)
    if metrics:
        blocks.append(metrics)
    if interval:
        blocks.append(text(summary.interval_sentence(run, interval)))
    baselines = summary.baseline_table(run)
    if baselines:
        blocks.append(baselines)
    lift = summary.lift_sentence(run)
    if lift:
        blocks.append(text(lift))
    blocks += [warning(w) for w in summary.limitations(run)]
    return [section("Results", blocks or [text("No evaluation metrics in metrics.json.")])]
