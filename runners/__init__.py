"""Command line, pipelines and executors (local, Ray)."""

__version__ = "0.1.0"
