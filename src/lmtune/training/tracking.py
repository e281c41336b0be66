"""Experiment tracking: TensorBoard event files in every run, MLflow when asked for (`train.track: mlflow`).

The loop already writes train_log.jsonl; trackers receive the same records, so what the dashboards show is
exactly what the run logged. Only the main process tracks.
"""

from __future__ import annotations

import os
from pathlib import Path

from lmtune.config import Config
from lmtune.errors import ConfigError
from lmtune.numbers import is_number


class Tracker:
    def __init__(self, run_dir: Path, cfg: Config, enabled: bool = True):
        self.writer = self.mlflow = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if cfg.train.track == "mlflow":
            self.mlflow = _start_mlflow(run_dir, cfg)

    def log(self, record: dict) -> None:
        """A train_log.jsonl record: training scalars, or one evaluation's metrics."""
        step = record["step"]
        prefix, values = ("validation", record["eval"]) if "eval" in record else ("train", record)
        scalars = {f"{prefix}/{k}": v for k, v in _numbers(values).items() if k not in ("step", "total_steps")}
        if self.writer:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)
        if self.mlflow:
            self.mlflow.log_metrics({k.replace("/", "."): v for k, v in scalars.items()}, step=step)

    def finish(self, metrics: dict) -> None:
        """Final validation/test metrics, then close (a no-op for a tracker that never started)."""
        final = {f"{split}/{k}": v for split in ("validation", "test") if isinstance(metrics.get(split), dict)
                 for k, v in _numbers(metrics[split]).items()}
        if self.writer:
            for key, value in final.items():
                self.writer.add_scalar(f"final/{key}", value, metrics["train"]["steps"])
            self.writer.close()
        if self.mlflow:
            self.mlflow.log_metrics({f"final.{k.replace('/', '.')}": v for k, v in final.items()})
            self.mlflow.end_run()


    def abort(self) -> None:
        """The run stopped with an error or an interrupt: flush TensorBoard, mark the MLflow run killed."""
        if self.writer:
            self.writer.close()
        if self.mlflow:
            self.mlflow.end_run(status="KILLED")


def local_store(output_dir: str) -> str:
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def _start_mlflow(run_dir: Path, cfg: Config):
    try:
        import mlflow
    except ImportError:
        raise ConfigError("train.track=mlflow needs MLflow: pip install mlflow (or mlflow-skinny)") from None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # A local store beside the runs: no server to start. MLflow 3 refuses its old plain-file store, so the
        # local store is its SQLite one; `mlflow ui --backend-store-uri sqlite:///runs/mlflow.db` reads it.
        mlflow.set_tracking_uri(local_store(cfg.output_dir))
    mlflow.set_experiment("lmtune")
    mlflow.start_run(run_name=cfg.name)
    mlflow.log_params({k: str(v)[:500] for k, v in _leaves(cfg.model_dump(mode="json")).items()})
    mlflow.set_tag("run_dir", str(run_dir.resolve()))
    return mlflow


def _leaves(values: dict, prefix: str = "") -> dict:
    """Nested dicts as dotted keys."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _numbers(values: dict) -> dict:
    return {k: v for k, v in _leaves(values).items() if is_number(v)}
