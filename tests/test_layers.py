"""The package's architecture, checked from its source (docs/architecture.md).

* Layers: a module may import only modules of its own or a lower layer (annotation-only
  imports under ``if TYPE_CHECKING:`` are not imports at run time and are allowed).
* No import cycles between modules at run time.
* The independent network (``validation/``, installed as ``lazyrich_validation``) imports none
  of the solver's numerical modules, and only the experiments and CLI layers import it.
* pyproject.toml lists every package folder; library code never calls ``matplotlib.use``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lazyrich_theory"
VALIDATION = ROOT / "validation"

#: Layer of each top-level part of the package, bottom (0) to top.
LAYERS = {
    "errors": 0, "storage": 0, "_numba_cache": 0,
    "spec": 1,
    "plotting": 2,
    "results": 3,
    "core": 4,
    "theory": 5,
    "experiments": 6,
    "cli": 7,
    "__init__": 8, "__main__": 8,
}
#: Only these layers (and the package's own __init__, lazily) may import the network.
MAY_IMPORT_VALIDATION = {"experiments", "cli", "__init__"}
#: What the network may use of the package: the problem spec, results containers, I/O.
VALIDATION_MAY_USE = {"errors", "storage", "spec", "results"}


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _part(module: str) -> str:
    """'lazyrich_theory.core.reduced' -> 'core'; the package itself -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"



def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every run-time import in ``tree``."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                    pkg = pkg[:len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                out.append((base, top))
                out.extend((f"{base}.{a.name}", top) for a in child.names)
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.ClassDef, ast.Lambda))
            visit(child, inner)

    visit(tree, True)
    return out


def _sources(root: Path, package: str) -> dict[str, tuple[Path, ast.AST, bool]]:
    return {_module_name(p, root, package): (p, ast.parse(p.read_text()), p.name == "__init__.py")
            for p in sorted(root.rglob("*.py"))}


PACKAGE = _sources(PKG, "lazyrich_theory")
NETWORK = _sources(VALIDATION, "lazyrich_validation")


def _existing(name: str, modules) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules``."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in modules:
            return cand
    return None


def test_every_part_has_a_layer():
    unknown = sorted({_part(m) for m in PACKAGE} - set(LAYERS))
    assert not unknown, f"modules outside the known layers (add them to LAYERS): {unknown}"


def test_lower_layers_never_import_higher_ones():
    bad = []
    for mod, (path, tree, is_pkg) in PACKAGE.items():
        mine = LAYERS[_part(mod)]
        for name, _ in _imports(tree, mod, is_pkg):
            target = _existing(name, PACKAGE)
            if target is None or target == mod:
                continue
            if LAYERS[_part(target)] > mine:
                bad.append(f"{mod} (layer {mine}) imports {target} "
                           f"(layer {LAYERS[_part(target)]})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles_at_module_level():
    graph = {mod: set() for mod in PACKAGE}
    for mod, (_, tree, is_pkg) in PACKAGE.items():
        for name, top in _imports(tree, mod, is_pkg):
            target = _existing(name, PACKAGE)
            if top and target is not None and target != mod and not mod.startswith(target + "."):
                graph[mod].add(target)
    state: dict[str, int] = {}
    cycles = []

    def dfs(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                dfs(nxt, stack + [nxt])
        state[node] = 2

    for mod in sorted(graph):
        if mod not in state:
            dfs(mod, [mod])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_experiments_and_cli_import_the_validation_network():
    bad = sorted({mod for mod, (_, tree, is_pkg) in PACKAGE.items()
                  for name, _ in _imports(tree, mod, is_pkg)
                  if name.split(".")[0] in ("lazyrich_validation", "validation")
                  and _part(mod) not in MAY_IMPORT_VALIDATION})
    assert not bad, f"these modules import the validation network: {bad}"


def test_validation_network_shares_none_of_the_solvers_numerics():
    bad = []
    for mod, (_, tree, is_pkg) in NETWORK.items():
        for name, _ in _imports(tree, mod, is_pkg):
            if name.split(".")[0] == "lazyrich_theory":
                target = _existing(name, PACKAGE)
                if target is not None and _part(target) not in VALIDATION_MAY_USE:
                    bad.append(f"{mod} imports {target}")
    assert not bad, "the network must stay independent of the solver:\n" + "\n".join(sorted(set(bad)))


def test_pyproject_lists_every_package_folder():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(lazyrich_[a-z_.]+)"', text))
    folders = {_module_name(p, PKG, "lazyrich_theory")
               for p in PKG.rglob("__init__.py")}
    missing = sorted(folders - listed)
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {missing}"
    assert "lazyrich_validation" in listed


@pytest.mark.parametrize("mod", sorted(PACKAGE))
def test_library_never_switches_the_matplotlib_backend(mod):
    path, tree, _ = PACKAGE[mod]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "use"
             and isinstance(n.func.value, ast.Name) and n.func.value.id in ("matplotlib", "mpl")]
    assert not calls, f"{path.name} calls matplotlib.use (changes the user's global state)"
