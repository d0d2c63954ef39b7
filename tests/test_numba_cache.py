"""Numba's cache of the package's kernels lives in a user folder, never inside the package
(issue 15: after `pip install .` a leftover site-packages/lazyrich_theory/__pycache__ broke
the later editable install)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lazyrich_theory
from lazyrich_theory import _numba_cache

PKG = Path(lazyrich_theory.__file__).resolve().parent

SCRIPT = """
import lazyrich_theory as lr
lr.population(lr.Problem(D=10, P=20, N="inf", eps=0.2), 50)
"""


def _run(env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _index_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.nbi"))


def test_locator_is_installed():
    from numba.core import caching

    assert _numba_cache.install()
    names = [c.__name__ for c in caching.CacheImpl._locator_classes]
    assert "PackageCacheLocator" in names
    assert names.index("PackageCacheLocator") == names.index("UserProvidedCacheLocator") - 1


def test_stamp_covers_every_source_file(tmp_path):
    """A kernel compiled from several files must go stale when any of them changes, so the
    stamp is one digest over all source files: touching any one changes it."""
    (tmp_path / "sub").mkdir()
    for name in ("a.py", "sub/b.py"):
        (tmp_path / name).write_text("x = 1\n")
    first = _numba_cache.package_stamp(tmp_path)
    assert _numba_cache.package_stamp(tmp_path) == first            # cached per process
    _numba_cache.package_stamp.cache_clear()
    assert _numba_cache.package_stamp(tmp_path) == first            # same files, same stamp
    os.utime(tmp_path / "sub" / "b.py", ns=(1, 10**18))
    _numba_cache.package_stamp.cache_clear()
    assert _numba_cache.package_stamp(tmp_path) != first


def test_kernels_are_cached_in_the_user_folder_not_in_the_package(tmp_path):
    before = _index_files(PKG)
    res = _run({"LAZYRICH_CACHE_DIR": str(tmp_path / "cache")}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert _index_files(tmp_path / "cache"), "no Numba index file in LAZYRICH_CACHE_DIR"
    assert _index_files(PKG) == before, "Numba wrote cache files into the package folder"


def test_numba_cache_dir_still_wins(tmp_path):
    res = _run({"NUMBA_CACHE_DIR": str(tmp_path / "numba"),
                "LAZYRICH_CACHE_DIR": str(tmp_path / "ours")}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert _index_files(tmp_path / "numba")
    assert not (tmp_path / "ours").exists()
