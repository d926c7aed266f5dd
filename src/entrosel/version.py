"""The package version, kept below every other module so that any of them may name it."""

__version__ = "0.1.0"
