"""The Python API: what users import and the CLI calls.

    run = lmtune.train({"data": {"train": "reviews.csv"}})
    run.metrics["test"]["accuracy"], run.predict(["great value", "never again"])
    Predictor("runs/reviews").predict(["great value"])
"""

from lmtune.config import Config
from lmtune.recipe import Run, cross_validate, evaluate, train
from lmtune.trained.predictor import Predictor

__all__ = ["Config", "Predictor", "Run", "cross_validate", "evaluate", "train"]
