"""The ``lazyrich`` command line: one module per subcommand, a shared parser module."""

from lazyrich_theory.cli.app import main

__all__ = ["main"]
