"""Generate docs/api.md, the API reference, from the docstrings and signatures of the public API.

Usage::

    python -m lazyrich_theory._apidoc            # (re)write docs/api.md
    python -m lazyrich_theory._apidoc --check    # exit 1 if docs/api.md is out of date

The reference covers ``lazyrich_theory.__all__`` and the public names of every module in
:data:`MODULES` (a module's ``__all__``, else its non-underscore functions and classes defined
there).  For a class: its signature, its docstring, its dataclass / named-tuple fields and its
public methods and properties with the first paragraph of their docstrings.  The output is
deterministic: names are sorted, memory addresses are stripped, sets are rendered sorted and
trailing spaces are removed.  ``tests/test_api_reference.py`` checks that docs/api.md equals
:func:`render` and that every public function and class has a docstring.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["MODULES", "DEFAULT_OUTPUT", "REGENERATE", "render", "public_names", "missing_docstrings",
           "check", "main"]

#: The modules documented in docs/api.md, in this order (after the package's own ``__all__``).
MODULES = (
    "lazyrich_theory.errors",
    "lazyrich_theory.spec.problem",
    "lazyrich_theory.spec.data",
    "lazyrich_theory.spec.streams",
    "lazyrich_theory.spec.schedule",
    "lazyrich_theory.spec.targets",
    "lazyrich_theory.results.trajectory",
    "lazyrich_theory.results.stats",
    "lazyrich_theory.storage",
    "lazyrich_theory.core.solve",
    "lazyrich_theory.core.reduced",
    "lazyrich_theory.core.stepping",
    "lazyrich_theory.core.trackers",
    "lazyrich_theory.core.threads",
    "lazyrich_theory.core.statistics",
    "lazyrich_theory.core.kernels",
    "lazyrich_theory.core.population",
    "lazyrich_theory.core.integrators",
    "lazyrich_theory.theory.lazy",
    "lazyrich_theory.theory.kernel_loss",
    "lazyrich_theory.theory.timescales",
    "lazyrich_theory.theory.asymptotics",
    "lazyrich_theory.experiments.with_theory",
    "lazyrich_theory.experiments.sweep",
    "lazyrich_theory.experiments.figures",
    "lazyrich_theory.plotting.trajectory",
    "lazyrich_theory.plotting.figures",
    "lazyrich_validation.network",
    "lazyrich_validation.compare",
)

#: Where the reference is written (the source checkout's docs/ folder).
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"

#: The command that rewrites docs/api.md.
REGENERATE = "python -m lazyrich_theory._apidoc"

_PACKAGE = "lazyrich_theory"
_OWN_PACKAGES = ("lazyrich_theory", "lazyrich_validation")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_WRAP = 88          # signatures longer than this are written one parameter per line
_MAX_VALUE = 100    # constant values with a longer repr are summarised


# ----------------------------------------------------------------------------- introspection
def _module(name: str):
    return importlib.import_module(name)


def public_names(module) -> list[str]:
    """The public names of a module: its ``__all__``, else its non-underscore functions and
    classes defined in the module itself."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and getattr(obj, "__module__", None) == module.__name__]
    return list(names)


def _unwrap(obj: Any) -> Any:
    """The Python function behind a Numba dispatcher or a ``functools`` wrapper such as
    ``lru_cache`` (or the object itself)."""
    py_func = getattr(obj, "py_func", None)
    if callable(py_func):
        return py_func
    wrapped = getattr(obj, "__wrapped__", None)
    if callable(wrapped) and not inspect.isclass(obj):
        return inspect.unwrap(obj)
    return obj


def _is_numba(obj: Any) -> bool:
    return callable(getattr(obj, "py_func", None)) and not inspect.isfunction(obj)


def _is_routine(obj: Any) -> bool:
    return inspect.isfunction(_unwrap(obj)) or inspect.isbuiltin(obj)


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _own_doc(obj: Any) -> str:
    """The object's own docstring, cleaned; "" if it has none.

    Classes do not inherit their bases' docstrings here, and the docstrings that
    ``dataclasses`` / ``namedtuple`` synthesise from the signature do not count."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if isinstance(doc, str):
            sig = _raw_signature(obj)
            synthesised = {obj.__name__ + sig, obj.__name__ + sig.replace(" -> None", "")}
            if _is_namedtuple(obj):
                synthesised.add(f"{obj.__name__}({', '.join(obj._fields)})")
            if doc.strip() in synthesised:
                doc = None
    else:
        doc = getattr(_unwrap(obj), "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return ""
    return inspect.cleandoc(doc)


def _first_paragraph(doc: str) -> str:
    para = doc.strip().split("\n\n", 1)[0] if doc.strip() else ""
    return " ".join(para.split())


def _raw_signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


class _Plain:
    """An annotation rendered exactly as written (string annotations without quotes)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _clean(text: str) -> str:
    return _ADDRESS.sub("", text)


def _annotation(ann: Any) -> Any:
    if ann is inspect.Parameter.empty:
        return ann
    if isinstance(ann, str):
        return _Plain(ann)
    return _Plain(inspect.formatannotation(ann))


def _signature_parts(obj: Any, drop_first: bool = False) -> tuple[list[str], str] | None:
    """Parameters (with / and * markers) and the return annotation of a callable."""
    try:
        sig = inspect.signature(_unwrap(obj))
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if drop_first and params:
        params = params[1:]
    parts: list[str] = []
    kinds = [p.kind for p in params]
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.KEYWORD_ONLY and (
                i == 0 or kinds[i - 1] not in (inspect.Parameter.KEYWORD_ONLY,
                                               inspect.Parameter.VAR_POSITIONAL)):
            parts.append("*")
        parts.append(_clean(str(p.replace(annotation=_annotation(p.annotation)))))
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and (
                i + 1 == len(params) or kinds[i + 1] is not inspect.Parameter.POSITIONAL_ONLY):
            parts.append("/")
    ret = ""
    if sig.return_annotation is not inspect.Signature.empty:
        ret = " -> " + _clean(repr(_annotation(sig.return_annotation)))
    return parts, ret


def _signature(name: str, obj: Any, is_class: bool = False) -> str:
    parts = _signature_parts(obj)
    if parts is None:
        return f"{name}(...)"
    params, ret = parts
    if is_class and ret == " -> None":
        ret = ""
    one_line = f"{name}({', '.join(params)}){ret}"
    if len(one_line) <= _WRAP:
        return one_line
    body = "".join(f"    {p},\n" for p in params)
    return f"{name}(\n{body}){ret}"


def _value(obj: Any) -> str:
    """A deterministic repr (sets sorted, addresses removed)."""
    if isinstance(obj, (set, frozenset)):
        inner = ", ".join(sorted(_value(v) for v in obj))
        return f"{type(obj).__name__}({{{inner}}})" if inner else f"{type(obj).__name__}()"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        inner = ", ".join(_value(v) for v in obj)
        return f"({inner},)" if len(obj) == 1 else f"({inner})"
    if isinstance(obj, list):
        return "[" + ", ".join(_value(v) for v in obj) + "]"
    return _clean(repr(obj))


def _summarise_value(obj: Any) -> str:
    text = _value(obj)
    limit = _MAX_VALUE
    if isinstance(obj, (tuple, list)) and all(isinstance(v, str) for v in obj):
        limit = 4 * _MAX_VALUE      # a list of names (columns, metrics) is worth showing
    if len(text) <= limit and "\n" not in text:
        return f"`{text}`"
    kind = type(obj).__name__
    if isinstance(obj, dict):
        keys = ", ".join(_value(k) for k in obj)
        summary = f"{kind} with {len(obj)} entries; keys {keys}"
        return summary if len(summary) <= 3 * _MAX_VALUE else f"{kind} with {len(obj)} entries"
    if isinstance(obj, (tuple, list, set, frozenset)):
        return f"{kind} of {len(obj)} items"
    return kind


def _comment_docs(module) -> dict[str, str]:
    """``#:`` comments directly above module-level assignments (the Sphinx convention)."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    docs: dict[str, str] = {}
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            continue
        comment: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].lstrip().startswith("#:"):
            comment.insert(0, lines[i].lstrip()[2:].strip())
            i -= 1
        if comment:
            for n in names:
                docs[n] = " ".join(comment)
    return docs


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if _is_routine(obj):
        return "function (Numba-compiled)" if _is_numba(obj) else "function"
    return "constant"


# ----------------------------------------------------------------------------- rendering
def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _heading(qualname: str, obj: Any) -> str:
    kind = _kind(obj)
    word = {"class": "class ", "exception": "exception "}.get(kind, "")
    return f"{word}`{qualname}`"


def _doc_block(doc: str) -> list[str]:
    if not doc:
        return ["*(no docstring)*", ""]
    return ["```text", *doc.splitlines(), "```", ""]


def _class_fields(cls: type) -> list[tuple[str, str, str]]:
    rows = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            ann = f.type if isinstance(f.type, str) else inspect.formatannotation(f.type)
            if f.default is not dataclasses.MISSING:
                default = _value(f.default)
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                factory = getattr(f.default_factory, "__name__", "factory")
                default = f"{factory}()"
            else:
                default = "required"
            rows.append((f.name, _clean(str(ann)), default))
    elif _is_namedtuple(cls):
        hints = getattr(cls, "__annotations__", {})
        defaults = getattr(cls, "_field_defaults", {})
        for name in cls._fields:
            ann = hints.get(name, "")
            ann = ann if isinstance(ann, str) else inspect.formatannotation(ann) if ann else ""
            default = _value(defaults[name]) if name in defaults else "required"
            rows.append((name, _clean(ann), default))
    return rows


def _class_members(cls: type) -> list[tuple[str, str, str]]:
    """(label, kind, first paragraph) of public methods and properties, sorted by name.

    Members come from the class and its bases inside this project (not from builtins such as
    ``Exception`` or ``tuple``); dataclass / named-tuple fields are listed separately."""
    fields = {name for name, _, _ in _class_fields(cls)}
    seen: dict[str, tuple[str, str, str]] = {}
    for klass in cls.__mro__:
        if klass is object or not klass.__module__.split(".")[0] in _OWN_PACKAGES:
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") or name in fields or name in seen:
                continue
            if isinstance(raw, (property, staticmethod, classmethod)) or inspect.isfunction(raw) \
                    or type(raw).__name__ == "cached_property":
                if isinstance(raw, property) or type(raw).__name__ == "cached_property":
                    func = raw.fget if isinstance(raw, property) else raw.func
                    label, kind = f"`{name}`", "property"
                else:
                    func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
                    drop = not isinstance(raw, staticmethod)
                    parts = _signature_parts(func, drop_first=drop)
                    params = ", ".join(parts[0]) if parts else "..."
                    label = f"`{name}({params}){parts[1] if parts else ''}`"
                    kind = {staticmethod: "static method", classmethod: "class method"}.get(
                        type(raw), "method")
                seen[name] = (label, kind, _first_paragraph(_own_doc(func)))
    return [seen[n] for n in sorted(seen, key=lambda s: (s.lower(), s))]


def _render_object(qualname: str, name: str, obj: Any, comments: dict[str, str]) -> list[str]:
    out = [f"### {_heading(qualname, obj)}", ""]
    if inspect.isclass(obj):
        if _signature_parts(obj) is not None:
            out += ["```python", _signature(name, obj, is_class=True), "```", ""]
        bases = [b for b in obj.__bases__ if b is not object]
        if bases:
            out += ["Bases: " + ", ".join(f"`{b.__module__}.{b.__qualname__}`"
                                          if b.__module__ != "builtins" else f"`{b.__qualname__}`"
                                          for b in bases), ""]
        out += _doc_block(_own_doc(obj))
        fields = _class_fields(obj)
        if fields:
            out += ["| field | type | default |", "|---|---|---|"]
            out += [f"| `{n}` | `{t}` | `{d}` |" if t else f"| `{n}` | | `{d}` |"
                    for n, t, d in fields]
            out.append("")
        members = _class_members(obj)
        if members:
            out += ["Methods and properties:", ""]
            for label, kind, summary in members:
                text = summary or "*(no docstring)*"
                out.append(f"- {kind} {label}: {text}")
            out.append("")
    elif _is_routine(obj):
        out += ["```python", _signature(name, obj), "```", ""]
        if _is_numba(obj):
            out += ["Numba-compiled (`njit`).", ""]
        out += _doc_block(_own_doc(obj))
    else:
        out += [f"Value: {_summarise_value(obj)}", ""]
        if name in comments:
            out += [comments[name], ""]
    return out


def _module_section(modname: str) -> list[str]:
    module = _module(modname)
    comments = _comment_docs(module)
    heading = f"`{modname}`"
    out = [f"## {heading}", ""]
    doc = _first_paragraph(_own_doc(module))
    if doc:
        out += [doc, ""]
    names = public_names(module)
    groups: dict[str, list[str]] = {"Classes": [], "Functions": [], "Constants": []}
    for n in names:
        obj = getattr(module, n)
        kind = _kind(obj)
        key = "Classes" if kind in ("class", "exception") else \
            "Functions" if kind.startswith("function") else "Constants"
        groups[key].append(n)
    index = []
    for key, members in groups.items():
        for n in sorted(members, key=lambda s: (s.lower(), s)):
            obj = getattr(module, n)
            summary = _first_paragraph(_own_doc(obj)) if key != "Constants" else \
                comments.get(n) or _summarise_value(obj)
            link = _anchor(_heading(f"{modname}.{n}", obj))
            index.append(f"| [`{n}`](#{link}) | {_kind(obj)} | {_table_cell(summary)} |")
    if index:
        out += ["| name | kind | summary |", "|---|---|---|", *index, ""]
    for key, members in groups.items():
        for n in sorted(members, key=lambda s: (s.lower(), s)):
            out += _render_object(f"{modname}.{n}", n, getattr(module, n), comments)
    return out


def _table_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _home(name: str, obj: Any) -> str | None:
    """The module section documenting this object, if any."""
    preferred = getattr(obj, "__module__", None) if not isinstance(obj, (dict, tuple, list)) else None
    order = ([preferred] if preferred in MODULES else []) + [m for m in MODULES if m != preferred]
    for modname in order:
        module = _module(modname)
        if name in public_names(module) and getattr(module, name) is obj:
            return modname
    return None


def _package_section() -> list[str]:
    package = _module(_PACKAGE)
    comments = _comment_docs(package)
    out = [f"## `{_PACKAGE}`", ""]
    doc = _first_paragraph(_own_doc(package))
    if doc:
        out += [doc, ""]
    out += ["`import lazyrich_theory as lr` gives these names (`lazyrich_theory.__all__`):", "",
            "| name | kind | summary | documented in |", "|---|---|---|---|"]
    extra = []
    for n in sorted(public_names(package), key=lambda s: (s.lower(), s)):
        obj = getattr(package, n)
        home = _home(n, obj)
        if home is None:
            home_comments = _comment_docs(sys.modules.get(getattr(obj, "__module__", ""), package))
            extra.append((n, obj, {**comments, **home_comments}))
            link = _anchor(_heading(f"{_PACKAGE}.{n}", obj))
            where = "below"
        else:
            link = _anchor(_heading(f"{home}.{n}", obj))
            where = f"`{home}`"
        if _kind(obj) == "constant":
            summary = comments.get(n) or (_comment_docs(_module(home)).get(n, "") if home else "") \
                or _summarise_value(obj)
        else:
            summary = _first_paragraph(_own_doc(obj))
        out.append(f"| [`{n}`](#{link}) | {_kind(obj)} | {_table_cell(summary)} | {where} |")
    out.append("")
    for n, obj, cmts in extra:
        out += _render_object(f"{_PACKAGE}.{n}", n, obj, cmts)
    return out


def render() -> str:
    """The full text of docs/api.md."""
    lines = [
        "# API reference",
        "",
        f"Generated from the docstrings and signatures by `{REGENERATE}`; do not edit by hand.",
        "`tests/test_api_reference.py` fails when this file is out of date.",
        "",
        "Modules:",
        "",
        f"- [`{_PACKAGE}`](#{_anchor('`' + _PACKAGE + '`')}) (the names of `{_PACKAGE}.__all__`)",
        *[f"- [`{m}`](#{_anchor('`' + m + '`')})" for m in MODULES],
        "",
    ]
    lines += _package_section()
    for modname in MODULES:
        lines += _module_section(modname)
    text = "\n".join(line.rstrip() for line in lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


# ----------------------------------------------------------------------------- checks
def missing_docstrings(members: bool = False) -> list[str]:
    """Qualified names of public functions and classes without a docstring (sorted).

    With ``members=True`` also public methods and properties of those classes."""
    missing = set()
    for modname in (_PACKAGE, *MODULES):
        module = _module(modname)
        for n in public_names(module):
            obj = getattr(module, n)
            if _kind(obj) == "constant":
                continue
            home = getattr(_unwrap(obj), "__module__", modname) or modname
            qual = f"{home}.{n}"
            if not _own_doc(obj):
                missing.add(qual)
            if members and inspect.isclass(obj):
                for label, _, summary in _class_members(obj):
                    if not summary:
                        member = label.strip("`").split("(", 1)[0]
                        missing.add(f"{qual}.{member}")
    return sorted(missing)


def check(path: Path = DEFAULT_OUTPUT) -> str | None:
    """None if ``path`` holds exactly :func:`render`'s text, else a one-line message."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist; generate it with: {REGENERATE}"
    if path.read_text(encoding="utf-8") != render():
        return f"{path} is out of date with the docstrings; regenerate it with: {REGENERATE}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: write docs/api.md, or with ``--check`` exit 1 if it is out of date."""
    parser = argparse.ArgumentParser(prog="python -m lazyrich_theory._apidoc",
                                     description="Generate the API reference docs/api.md.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the file differs from the generated text")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"the file to write or check (default: {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    if args.check:
        message = check(args.output)
        if message:
            print(message, file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
