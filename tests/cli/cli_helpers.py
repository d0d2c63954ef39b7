"""Helpers shared by the CLI tests: run ``lazyrich`` in-process and read its one-line errors."""

from __future__ import annotations

from lazyrich_theory.cli.app import main


def call(capsys, argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lazyrich argv`` run in this process."""
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
