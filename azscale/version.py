"""The package's version, below every module that records it (runs, the package itself)."""

__version__ = "0.1.0"
