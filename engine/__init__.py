"""Tangram's engine: a pure library of definitions, expressions, storage and services."""

__version__ = "0.1.0"

__all__ = ["__version__"]
