"""The package version, in one module that imports nothing."""

__version__ = "0.2.0"
