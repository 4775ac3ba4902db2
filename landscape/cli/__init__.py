"""Command-line entry points: thin argument parsing over library functions."""
