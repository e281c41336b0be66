"""Report sections of runs a workflow made: self-training's rounds (each round's pseudo-labelled rows and scores)
and distillation's teacher beside its student (size and prediction speed)."""

from __future__ import annotations

from lmtune.reporting.blocks import section, table, text
from lmtune.reporting.run_files import RunFiles


def rounds_table(rounds: list[dict], metric: str) -> dict:
    return table(["round", "pseudo-labelled rows", f"validation {metric}", f"test {metric}"],
                 [[r["round"], r["pseudo_labels"], r["validation"], r["test"]] for r in rounds])


def self_training_sections(run: RunFiles) -> list[dict]:
    found = run.metrics.get("self_training")
    if not found:
        return []
    note = text(f"Round 0 trains on the labelled rows alone; each later round adds the unlabelled rows the previous "
                f"round's model labels with probability ≥ {found['threshold']}. This run is round {found['kept']}, "
                f"the best on validation {found['metric']}.")
    return [section("Self-training", [rounds_table(found["rounds"], found["metric"]), note])]


def distillation_sections(run: RunFiles) -> list[dict]:
    found = run.metrics.get("distillation")
    if not found:
        return []
    rows = [[side, found[side]["run"], found[side]["parameters"], found[side]["megabytes"],
             found[side]["predict_samples_per_s"]] for side in ("teacher", "student")]
    teacher, student = found["teacher"]["predict_samples_per_s"], found["student"]["predict_samples_per_s"]
    note = text(f"The student predicts {student / teacher:.2f}x as fast as its teacher ({found['teacher']['models']} "
                f"model(s)), measured one after the other on the same rows; it learnt at temperature "
                f"{found['temperature']} with alpha {found['alpha']} on {found['rows'].get('labelled_rows', 0):,} "
                f"labelled and {found['rows'].get('unlabelled_rows', 0):,} unlabelled rows.")
    return [section("Distillation", [table(["model", "run", "parameters", "MB", "predict samples/s"], rows), note])]
