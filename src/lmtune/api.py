"""The Python API: what users import and the CLI calls.

    run = lmtune.train({"data": {"train": "reviews.csv"}})
    run.metrics["test"]["accuracy"], run.predict(["great value", "never again"])
    Predictor("runs/reviews").predict(["great value"])
"""

from lmtune.config import Config
from lmtune.distill import distill
from lmtune.recipe import Run, cross_validate, evaluate, train
from lmtune.seeds import train_seeds
from lmtune.self_training import self_train
from lmtune.trained.predictor import Predictor

__all__ = ["Config", "Predictor", "Run", "cross_validate", "distill", "evaluate", "self_train", "train", "train_seeds"]
