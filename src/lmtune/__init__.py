"""lmtune: fine-tune pretrained language models on supervised tasks.

    import lmtune
    run = lmtune.train({"data": {"train": "reviews.csv"}})
    run.predict(["great value"])
"""

__version__ = "0.1.0"

_API = {"train", "evaluate", "Run", "Predictor"}
__all__ = ["Config", "Predictor", "Run", "evaluate", "train"]


def __getattr__(name: str):
    # Importing torch and transformers takes seconds; `import lmtune` (and `lmtune --help`) should not.
    if name in _API:
        from lmtune import api

        return getattr(api, name)
    if name == "Config":
        from lmtune.config import Config

        return Config
    raise AttributeError(f"module 'lmtune' has no attribute {name!r}")
