"""The API reference is built by mkdocs + mkdocstrings from the docstrings (mkdocs.yml,
docs/api/*.md); these tests keep its guarantees:

* every public function and class (a module's ``__all__``) has a docstring, and every public
  constant a doc comment (``#: ...`` above it, or a string literal after it);
* every module of ``lazyrich_theory`` and ``lazyrich_validation`` is rendered by a
  ``::: module`` directive on a page of docs/api/, or is internal with a reason: listed in
  :data:`INTERNAL`, or a part of a package of :data:`INTERNAL_PACKAGES` (a package that
  re-exports and documents its parts' public names, or the command line); every directive
  names a module that exists;
* every name the package exports (``lazyrich_theory.__all__``) is listed on docs/api/index.md;
* ``mkdocs build --strict`` passes (warnings are errors).  Skipped when the documentation tools
  are not installed (``pip install -e ".[docs]"``); CI installs them (.ci/run).

A new module: add ``::: lazyrich_theory.x.y`` to the page of its layer (docs/api/<layer>.md),
or add it to :data:`INTERNAL` with a reason (a new part of a package of
:data:`INTERNAL_PACKAGES` needs neither: export its public names from the package).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lazyrich_theory
import lazyrich_validation

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "docs" / "api"
PACKAGES = (lazyrich_theory, lazyrich_validation)

#: Modules deliberately not rendered in the API reference, with the reason.
INTERNAL = {
    "lazyrich_theory.__main__": "`python -m lazyrich_theory` = the `lazyrich` command",
    "lazyrich_theory._numba_cache": "internal: where Numba caches compiled code (set on import)",
    "lazyrich_theory.plotting.style": "internal: labels, log axes, twin axes and legends shared "
                                      "by the plots",
    "lazyrich_theory.plotting.mpl": "internal: matplotlib through its object API",
    "lazyrich_validation.bench_network": "a benchmark script of the network (benchmarks/run.py)",
}

#: Packages whose modules are internal parts (unless a directive renders one of them): the
#: package itself re-exports and documents the public names, or is the command line.
INTERNAL_PACKAGES = {
    "lazyrich_theory.cli": "the command line; documented by `lazyrich --help`, "
                           "docs/user_guide.md and docs/phase_diagrams.md",
    "lazyrich_theory.spec.targets": "parts of lazyrich_theory.spec.targets, which re-exports "
                                    "and documents their public names",
    "lazyrich_theory.theory.asymptotics": "parts of lazyrich_theory.theory.asymptotics, which "
                                          "re-exports and documents their public names",
    "lazyrich_theory.theory.offline": "parts of lazyrich_theory.theory.offline, which "
                                      "re-exports and documents their public names",
    "lazyrich_theory.experiments.sweep": "parts of lazyrich_theory.experiments.sweep, which "
                                         "re-exports and documents their public names",
    "lazyrich_theory.experiments.figures": "figure internals (registry, one compute module per "
                                           "family); lazyrich_theory.experiments.figures "
                                           "documents what users call",
}


def _internal_reason(module: str) -> str | None:
    if module in INTERNAL:
        return INTERNAL[module]
    for package, reason in INTERNAL_PACKAGES.items():
        if module.startswith(package + ".") or (module == package and package.endswith(".cli")):
            return reason
    return None


#: Public constants without a doc comment yet, in files whose owners will add one.  An explicit
#: allow-list, not a skip: a NEW offender fails, and an entry that gains a doc comment must be
#: removed from here (the test says so).  The goal is an empty set.
KNOWN_UNDOCUMENTED: set[str] = {
    "lazyrich_theory.spec.problem.PRESETS",         # spec/problem.py: `# ...` -> `#: ...`
    "lazyrich_theory.spec.problem.PRESET_STEPS",
    "lazyrich_theory.core.population.POP_METHODS",  # core/population.py
    "lazyrich_theory.core.dopri5.DOPRI5_A",    # core/dopri5.py: one `#:` for the tableau
    "lazyrich_theory.core.dopri5.DOPRI5_B4",
    "lazyrich_theory.core.dopri5.DOPRI5_B5",
    "lazyrich_theory.core.dopri5.DOPRI5_C",
}


def _package_modules() -> list[str]:
    """Every module of the two packages, and every package whose ``__init__`` exports names
    (packages that are only folders, with an empty ``__init__``, have nothing to document)."""
    names = []
    for pkg in PACKAGES:
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.ispkg:
                sub = importlib.import_module(info.name)
                if getattr(sub, "__all__", None) is None and not (sub.__doc__ or "").strip():
                    continue
            names.append(info.name)
    return sorted(names)


MODULES = _package_modules()


def _directives() -> dict[str, str]:
    """``{module: page}`` for every ``::: module`` directive of docs/api/*.md."""
    found: dict[str, str] = {}
    for page in sorted(API_DIR.glob("*.md")):
        for name in re.findall(r"^:::\s+([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M):
            found[name] = page.name
    return found


def _module(name: str):
    assert not name.endswith("__main__")   # importing it would run the command line
    return importlib.import_module(name)


def _is_routine_or_class(obj) -> bool:
    obj = getattr(obj, "py_func", obj)               # a Numba dispatcher's Python function
    obj = inspect.unwrap(obj) if callable(obj) and not inspect.isclass(obj) else obj
    return inspect.isclass(obj) or inspect.isroutine(obj)


def _own_doc(obj) -> str:
    """The object's own docstring ("" if none): inherited docstrings and the signature that
    dataclasses and named tuples make up do not count."""
    obj = getattr(obj, "py_func", obj)
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__") or ""
        if doc.startswith(f"{obj.__name__}("):       # generated by dataclass / namedtuple
            return ""
        return doc.strip()
    return (inspect.getdoc(obj) or "").strip()


def _constant_docs(path: Path) -> dict[str, bool]:
    """``{name: documented}`` for the module-level assignments of a source file: documented if
    a ``#:`` comment is right above it or a string literal follows it."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    body = ast.parse(text).body
    out: dict[str, bool] = {}
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
        after = body[i + 1] if i + 1 < len(body) else None
        string_after = (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                        and isinstance(after.value.value, str))
        for name in targets:
            out[name] = above.startswith("#:") or string_after
    return out


def _constant_home(module, name: str) -> tuple[str, bool] | None:
    """(qualified name, documented) of the assignment that defines ``module.name``, following
    ``from x import name`` re-exports; None if it is not assigned in the packages' sources."""
    for _ in range(10):
        path = Path(inspect.getfile(module))
        docs = _constant_docs(path)
        if name in docs:
            return f"{module.__name__}.{name}", docs[name]
        source = None
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and any(
                    (a.asname or a.name) == name for a in node.names):
                base = module.__name__ if path.name == "__init__.py" else \
                    module.__name__.rpartition(".")[0]
                if node.level:
                    parts = base.split(".")
                    base = ".".join(parts[:len(parts) - (node.level - 1)])
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module
                name = next(a.name for a in node.names if (a.asname or a.name) == name)
        if source is None or not source.startswith(("lazyrich_theory", "lazyrich_validation")):
            return None
        module = importlib.import_module(source)
    return None


def test_every_module_is_documented_or_internal():
    directives = _directives()
    unaccounted = sorted(m for m in MODULES if m not in directives and _internal_reason(m) is None)
    assert not unaccounted, (
        "modules neither rendered by a `::: module` directive of docs/api/*.md nor listed in "
        f"INTERNAL (tests/test_api_reference.py): {', '.join(unaccounted)}")
    both = sorted(set(directives) & set(INTERNAL))
    assert not both, f"documented and also listed as internal: {both}"
    stale = sorted(set(INTERNAL) - set(MODULES))
    stale += sorted(p for p in INTERNAL_PACKAGES if p not in MODULES)
    assert not stale, f"INTERNAL / INTERNAL_PACKAGES list modules that do not exist: {stale}"
    for package in INTERNAL_PACKAGES:     # the package documents its parts' public names
        assert package in directives or package.endswith(".cli"), \
            f"{package} has internal parts but no `::: {package}` directive"


def test_every_directive_names_an_existing_module():
    missing = []
    for name, page in _directives().items():
        if importlib.util.find_spec(name) is None:
            missing.append(f"docs/api/{page}: ::: {name}")
    assert not missing, "directives for modules that do not exist:\n" + "\n".join(missing)


def test_public_functions_and_classes_have_docstrings():
    missing = set()
    for modname in MODULES:
        if modname.endswith("__main__"):
            continue
        module = _module(modname)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if _is_routine_or_class(obj) and not _own_doc(obj):
                home = getattr(getattr(obj, "py_func", obj), "__module__", None) or modname
                missing.add(f"{home}.{name}")
    assert not missing, ("public functions/classes without a docstring: "
                         + ", ".join(sorted(missing)))


def test_public_constants_have_doc_comments():
    missing = set()
    for modname in MODULES:
        if modname.endswith("__main__"):
            continue
        module = _module(modname)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if _is_routine_or_class(obj) or inspect.ismodule(obj):
                continue
            home = _constant_home(module, name)
            if home is not None and not home[1]:
                missing.add(home[0])
    new = sorted(missing - KNOWN_UNDOCUMENTED)
    fixed = sorted(KNOWN_UNDOCUMENTED - missing)
    assert not new, ("public constants without a doc comment (`#: ...` on the line above): "
                     + ", ".join(new))
    assert not fixed, ("these now have doc comments; remove them from KNOWN_UNDOCUMENTED in "
                       f"tests/test_api_reference.py: {', '.join(fixed)}")


def test_api_index_lists_every_exported_name():
    text = (API_DIR / "index.md").read_text(encoding="utf-8")
    missing = [n for n in lazyrich_theory.__all__ if f"[`{n}`]" not in text]
    assert not missing, f"docs/api/index.md does not list lazyrich_theory.{missing}"


#: What `mkdocs build` needs: module name -> the package that provides it.
DOCS_TOOLS = {"mkdocs": "mkdocs", "mkdocstrings_handlers.python": "mkdocstrings[python]",
              "material": "mkdocs-material", "griffe_sphinx": "griffe-sphinx",
              "pymdownx": "pymdown-extensions"}


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (a dotted name whose parent is absent counts as absent;
    ``find_spec`` raises for it instead of returning None)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    absent = [pkg for mod, pkg in DOCS_TOOLS.items() if not _installed(mod)]
    if absent:
        pytest.skip(f"documentation tools not installed ({', '.join(absent)}); "
                    'pip install -e ".[docs]" (CI installs them)')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    assert (tmp_path / "site" / "api" / "core" / "index.html").is_file()
