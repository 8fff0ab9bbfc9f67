"""The static results site (``python -m bench report --html``): see ``builder.build``."""

from bench.site.builder import build

__all__ = ["build"]
