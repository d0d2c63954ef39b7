"""Helpers shared by the CLI tests: run ``lazyrich`` in-process and read its one-line errors."""

from __future__ import annotations

from lazyrich_theory.cli.app import main


def call(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lazyrich ARGS`` run in this process; the arguments
    either one by one or as a single list."""
    argv = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str) -> str:
    """The single line of ``err`` (no traceback, exactly one line)."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    return lines[0]
