"""lmtune: fine-tune pretrained language models on supervised tasks.

    import lmtune
    run = lmtune.train({"data": {"train": "reviews.csv"}})
    run.predict(["great value"])
"""

from lmtune.version import __version__

_API = {"train", "evaluate", "cross_validate", "distill", "self_train", "train_seeds", "Run", "Predictor"}
__all__ = ["Config", "Predictor", "Run", "__version__", "cross_validate", "distill", "evaluate", "self_train", "train",
           "train_seeds"]


def __getattr__(name: str):
    # Importing torch and transformers takes seconds; `import lmtune` (and `lmtune --help`) should not.
    if name in _API:
        from lmtune import api  # noqa: PLC0415

        return getattr(api, name)
    if name == "Config":
        from lmtune.config import Config

        return Config
    raise AttributeError(f"module 'lmtune' has no attribute {name!r}")
