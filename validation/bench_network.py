"""Time one GD step of the network for the paper's Figure 1 configuration.

Usage: PYTHONPATH=. python -m validation.bench_network [steps]
Prints the median wall time per GD step (forward pass + explicit gradient + update) over
``steps`` steps (default 200) of D=100, P=550, N=500, convention A, centered.
"""

from __future__ import annotations

import sys
import time

from lazyrich_theory.spec.problem import Problem

from .network import simulate


def main(steps: int = 200) -> float:
    p = Problem(D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0, convention="A",
                centered=True)
    data = p.data()
    simulate(p, 5, data=data)  # warm-up (BLAS threads, caches)
    cpu0 = time.process_time()
    tr = simulate(p, steps, data=data)
    cpu = time.process_time() - cpu0
    per_step = tr.info["time_per_step"]
    print(f"Fig 1 network (D=100, P=550, N=500): median {per_step * 1e3:.3f} ms per GD step "
          f"over {steps} steps; whole call {tr.info['wall_time']:.3f} s "
          f"({len(tr.t)} save times), process CPU time {cpu:.3f} s")
    return per_step


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
