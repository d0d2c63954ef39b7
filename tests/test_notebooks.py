"""The notebooks in examples/: stored without outputs, and each runs to the end at CI size.

Every notebook reads ``SMALL = os.environ.get("LAZYRICH_NOTEBOOK_SMALL") == "1"`` in its first
code cell and shrinks its problem sizes and horizons when it is set.  The execution test sets
it, runs the notebook with nbclient in a Jupyter kernel of *this* interpreter (registered with
ipykernel in a temporary folder, so whatever ``python3`` kernel a machine has is not used),
in a temporary working directory, with a timeout per cell, and fails on any cell's error.
It also checks that the notebook drew at least one figure.

``LAZYRICH_NOTEBOOK_OUT=DIR`` also writes each executed notebook (with its outputs) to DIR,
to look at the figures.  The notebooks in git stay stripped:
``test_notebook_is_stored_without_outputs`` checks that.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
EXPECTED = {"quickstart.ipynb", "fig1_with_theory.ipynb", "phase_diagram.ipynb",
            "options_and_targets.ipynb"}
SMALL_LINE = 'SMALL = os.environ.get("LAZYRICH_NOTEBOOK_SMALL") == "1"'
#: seconds per cell at CI size (the slowest cell takes ~15 s on a busy 2-core machine)
CELL_TIMEOUT = 240
KERNEL = "lazyrich-notebook-test"


def _ids(paths):
    return [p.name for p in paths]


def test_the_examples_folder_has_the_four_notebooks():
    assert {p.name for p in NOTEBOOKS} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path):
    """Outputs, execution counts and execution metadata are stripped; the notebook is valid
    nbformat 4 and has the CI-size switch in its first code cell."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, path.name
    for i, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {i}"
        assert "outputs" not in cell or cell.outputs == [], f"{where}: has outputs"
        assert cell.get("execution_count") is None, f"{where}: has an execution count"
        assert not {"execution", "collapsed", "scrolled"} & set(cell.metadata), where
        assert not cell.get("attachments"), f"{where}: has attachments"
    assert "widgets" not in nb.metadata, path.name
    assert SMALL_LINE in code[0].source, f"{path.name}: first code cell lacks {SMALL_LINE!r}"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernelspec that runs this interpreter (``sys.executable -m ipykernel_launcher``),
    found through JUPYTER_PATH while the module's tests run."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernelspec(kernel_name=KERNEL, display_name="lazyrich test kernel",
                       prefix=str(prefix))
    spec = prefix / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json"
    assert sys.executable in spec.read_text()
    with pytest.MonkeyPatch.context() as mp:
        old = os.environ.get("JUPYTER_PATH")
        mp.setenv("JUPYTER_PATH", os.pathsep.join(
            [str(prefix / "share" / "jupyter")] + ([old] if old else [])))
        yield KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_at_ci_size(path, kernel_name, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("LAZYRICH_NOTEBOOK_SMALL", "1")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()            # raises CellExecutionError (with the traceback) on any error
    wall = time.perf_counter() - start
    print(f"{path.name}: executed in {wall:.1f} s")
    out = os.environ.get("LAZYRICH_NOTEBOOK_OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        nbformat.write(nb, os.path.join(out, path.name))
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no figure"
