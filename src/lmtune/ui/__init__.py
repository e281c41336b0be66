"""`lmtune ui`: a local web app over the same config schema and functions as the CLI."""

from lmtune.ui.app import create_ui

__all__ = ["create_ui"]
