"""Is the DMFT's long-time excess at kappa = 5.5, D = 400 a Monte Carlo effect?  The DMFT's
relative population loss at tau = 40 against its number of samples Ns (400 ... 3200) and its
Monte Carlo seed, for two training-set seeds of (alpha, eps) = (1, 0.02) (each seed's own
teacher b2; the exact values are those of benchmarks/offline_final_400.json).
docs/offline_theory.md §8.6.

    python benchmarks/offline_dmft_ns.py      # -> offline_dmft_ns.json (~5 min, 2 cores)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lazyrich_theory as lr
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
from lazyrich_theory.theory.offline.inputs import offline_inputs

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_ns.json"
KAPPA, D, TAU = 5.5, 400, 40.0
NS = (400, 800, 1600, 3200)


def main() -> None:
    res: dict[str, float] = {}
    for seed in range(2):
        p = lr.Problem(D=D, P=int(round(KAPPA * D)), N="inf", alpha=1.0, eps=0.02, seed=seed)
        inp = offline_inputs(p)
        for ns in NS:
            for mc in range(2):
                t0 = time.perf_counter()
                L = dmft_tau_curves(inp, TAU, Ns=ns, seed=mc)["population_loss"]
                res[f"{seed}|{ns}|{mc}"] = float(L[-1] / L[0])
                print(f"seed {seed}, Ns {ns}, Monte Carlo seed {mc}: "
                      f"{res[f'{seed}|{ns}|{mc}']:.4f} ({time.perf_counter() - t0:.1f} s)",
                      flush=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
