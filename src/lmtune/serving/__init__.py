"""`lmtune serve`: a trained model behind an HTTP API with micro-batching."""

from lmtune.serving.app import create_app

__all__ = ["create_app"]
