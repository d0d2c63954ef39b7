"""Griffe extension used by mkdocs.yml: render Sphinx roles in docstrings as inline code.

The package's docstrings name objects with Sphinx roles (``:func:`solve```,
``:class:`~lazyrich_theory.errors.ProblemError```), which Markdown would show verbatim.  This
extension rewrites each role to inline code, keeping the last component for ``~`` targets
(``:class:`~a.b.C``` -> ```C```), before mkdocstrings parses the docstring.  It never touches
the source files.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|obj|exc|const)?:`(~?)([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def strip_roles(text: str) -> str:
    """``text`` with every Sphinx role replaced by inline code."""
    return _ROLE.sub(_replace, text)


class SphinxRolesToCode(griffe.Extension):
    """Rewrite Sphinx roles to inline code in every docstring of a loaded package.

    Runs once per package, after every other extension (``griffe_sphinx`` turns ``#:``
    comments into attribute docstrings while the package is being loaded)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = strip_roles(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
