"""Where Numba caches this package's compiled kernels: a per-user cache folder, never the
installed package's own ``__pycache__``.

Numba's default for ``@njit(cache=True)`` writes next to the source file.  For an installed
package that is ``site-packages/lazyrich_theory/__pycache__``, which ``pip uninstall`` does not
remove: after ``pip install .`` followed by ``pip install -e .`` the leftover folder turns
``lazyrich_theory`` into an empty namespace package outside the checkout.  So the package's
kernels are cached in

* ``$NUMBA_CACHE_DIR`` when set (Numba's own rule, unchanged), else
* ``$LAZYRICH_CACHE_DIR/numba`` when set, else
* the user cache folder of the platform (``platformdirs.user_cache_dir("lazyrich_theory")``,
  e.g. ``~/.cache/lazyrich_theory/numba`` on Linux).

Only functions defined in this package's files are affected: a locator class is inserted into
Numba's list of cache locators, right before the one honouring ``NUMBA_CACHE_DIR`` (which keeps
deciding the folder when it is set); other libraries' caches are untouched.  If a future Numba
changes that (internal) list, nothing is installed and Numba's default applies
(``tests/test_numba_cache.py`` notices).

**Freshness.**  Numba checks a cached kernel against the modification time and size of the
one file that defines it, but a kernel compiled from several files (``dmft_kernels`` calls
``dmft_spread``) embeds the others' code too: after an update that changes only a callee's
file, Numba would load the stale machine code (seen in development: a NaN from an old
``ell_diagonal``).  So the package's kernels carry one stamp over all the package's source
files (their paths, modification times and sizes), :func:`package_stamp`: any change to any
file recompiles every kernel once.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "install", "package_stamp"]

PACKAGE_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """The folder that holds the package's Numba cache (see the module docstring)."""
    root = os.environ.get("LAZYRICH_CACHE_DIR") or platformdirs.user_cache_dir("lazyrich_theory")
    return Path(root) / "numba"


@functools.lru_cache(maxsize=None)
def package_stamp(root: Path = PACKAGE_DIR) -> str:
    """A digest of every source file under ``root`` (relative path, modification time in ns,
    size), computed once per process: the freshness stamp of the package's cached kernels."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}:{st.st_mtime_ns}:{st.st_size};".encode())
    return h.hexdigest()


def _locator_class():
    from numba.core import caching, config

    class PackageCacheLocator(caching.UserProvidedCacheLocator):
        """Cache files of lazyrich_theory's functions under ``NUMBA_CACHE_DIR`` when set,
        else :func:`cache_dir`, stamped with :func:`package_stamp`."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            root = Path(config.CACHE_DIR) if config.CACHE_DIR else cache_dir()
            self._cache_path = str(root / self.get_suitable_cache_subpath(py_file))

        def get_source_stamp(self):
            return ("lazyrich_theory", package_stamp())

        @classmethod
        def from_function(cls, py_func, py_file):
            try:
                Path(py_file).resolve().relative_to(PACKAGE_DIR)
            except (OSError, ValueError):   # not one of this package's files
                return None
            return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    return caching, PackageCacheLocator


def install() -> bool:
    """Put the package's locator into Numba's list (once); False if Numba's internals differ."""
    try:
        caching, locator = _locator_class()
        classes = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):   # pragma: no cover - a Numba without this API
        return False
    if any(c.__name__ == locator.__name__ for c in classes):
        return True
    at = next((k for k, c in enumerate(classes)
               if c is caching.UserProvidedCacheLocator), 0)
    classes.insert(at, locator)
    return True


install()
