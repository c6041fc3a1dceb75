"""Motive: motion attribution for video generation (arXiv 2601.08828)."""

__version__ = "0.1.0"
