"""The package version (recorded in every label set and results file)."""

__version__ = "0.1.0"
