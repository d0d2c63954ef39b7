"""The ``lazyrich`` command line: one module per subcommand (``solve`` for solve / simulate /
population, ``compare``, ``phase``, ``figure``), a shared parser module (``parser``) and the
dispatch (``app``, whose ``main`` is the ``lazyrich`` console script)."""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    # ``main`` is looked up on first use: importing app (every subcommand) here would make
    # ``python -m lazyrich_theory.cli.phase`` find its own module already imported (a warning)
    if name == "main":
        from lazyrich_theory.cli.app import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
