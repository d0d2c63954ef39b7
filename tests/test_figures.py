"""Every implemented paper figure runs end to end at reduced size and writes its files."""
import json

import pytest

from lazyrich_theory.figures import FIGURES, main, make_figure

SMALL = dict(D=12, P=40, N=20, test_size=60)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_runs_at_reduced_size(name, tmp_path):
    extra = dict(n_alpha=2, n_eps=2, workers=1) if name == "fig3e" else {}
    if name == "fig3a":
        extra = dict(alphas=(0.5, 1.0, 2.0))
    if name == "fig3b":
        extra = dict(epss=(0.25, 1.0))
    if name == "goldilocks":
        extra = dict(Ps=(20, 60))
    info = make_figure(name, str(tmp_path), steps=300, **SMALL, **extra)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "figure.json").read_text())
    assert saved["problem"]["D"] == 12 and saved["steps"] == 300
    if name in ("fig1", "fig4"):
        # the reduced solver overlays the actual numpy network exactly
        assert info["result"]["max_rel_dev_network_vs_reduced"] < 1e-8


def test_figure_cli_errors(tmp_path, capsys):
    assert main(["nope", "--out", str(tmp_path)]) == 2
    assert main(["fig4", "--out", str(tmp_path), "--set", "D"]) == 2
    assert main(["fig4", "--out", str(tmp_path), "--set", "D=-1", "--steps", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("lazyrich figure: error:") for line in err)
