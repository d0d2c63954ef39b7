"""Offline theory of grokking: finite data, P = kappa D, D large (issue 13;
docs/offline_theory.md has the derivation, the regime of validity and the measured errors).

Two approximations, both with no fitted constant and D explicit (finite-D predictions:
the spike of M along betahat must grow from O(1) to O(D / (alpha eps)), which puts ln D into
the rich time):

* ``method="spectral"`` -- a two-timescale closure.  The lazy fit is an exact least-squares
  projection (leave-one-out form); the plateau gradient matrix Ghat0 = (1/P) sum r0 z z^T has a
  deterministic-equivalent spectrum with a BBP signal outlier; the rich phase keeps the bulk
  eigenbasis of Ghat0 frozen and lets a 2-D spike block rotate towards betahat.  ~1 s per
  curve, alpha and eps enter only through alpha eps on the rich clock s = eta0 eps t / alpha.
  Validated for kappa >= 5 (half-loss time within ~1-11 % of the exact flow at D = 100-400);
  no memorisation channel, so it cannot predict interpolation without generalisation.
* ``method="dmft"`` -- a dynamical mean-field theory: single-sample processes for the spike
  field, the bulk vector (memorisation) and the linear column, Monte Carlo over samples on a
  two-time grid; ~10-45 s per curve.  Its linear column's default closure ("auto") is the
  spread closure (docs §12.4) wherever the column is fast, else the column as derived.  It
  predicts the long-time loss and the critical kappa: with spread within ~0.012 of the exact
  flow at kappa = 2-11 and +0.05 at kappa = 1.5 (D = 400, on the mean of Monte Carlo draws),
  its critical kappa within 0.05; as derived +0.14..+0.36 too high at kappa <= 3.  As derived
  its half-times are -29..+15 % with xi ~ N(0, 1) and within ~2 % at kappa = 11 when
  conditioned on the training set's xi (``xi_law="training"``).

The tau -> inf state (module ``implicit_bias``): :func:`entropic_interpolant`, the point the
flow would reach if its gradient matrices commuted (a mirror-descent interpolant with the von
Neumann relative entropy; one convex solve with P dual variables, 0.1-1 s at D = 100), predicts
the exact flow's long-time loss -- the interpolation floor -- to ~0.01 on the Fig. 3(e) grid
(docs §15); :func:`interpolant_floors` on an alpha x eps grid, :func:`interpolant_critical_kappa`
the kappa below which the flow interpolates without generalising, :func:`interpolant_limit` its
value or why it is not computed.  It is finite-D (not a theory with D-independent unknowns);
its m -> 0 limit is (module ``trace_limit``): :func:`trace_limit`, the D -> inf minimum-trace
interpolant from Gordon's comparison (three scalars; exact recovery above
:func:`recovery_threshold` = 4, critical kappa :func:`trace_limit_critical_kappa` = 2.68), with
:func:`finite_d_threshold` / :func:`descent_dimension` the finite-D threshold (docs §15.7).

For finite-rank inits (``lowrank:R``, ``aligned:R:C``, R <= 4) ``offline_theory`` runs
``method="rindex"`` (module ``rindex``): the exact D -> inf DMFT of the same GD with R + 1
indices, no closure; ~10-40 s per curve (docs §13).

Public API: :func:`offline_theory` (a ``Trajectory`` with the core columns of ``solve``),
:func:`critical_kappa`, :func:`offline_summary`, :func:`offline_inputs` / :func:`check_problem`
(the inputs and the refusals), :func:`phase_boundary_times` (the alpha x eps grid: the spectral
closure in seconds, or the DMFT with its interpolation floor in minutes), :func:`training_xi` (the
training set's xi, for ``xi_law="training"``), and the building blocks :func:`plateau_spectrum`,
:func:`build_closure`, :func:`rich_clock_curves`, :func:`dmft_tau_curves`.

Modules: ``inputs`` (what is read and refused), ``plateau`` (per-sample law, deterministic
equivalent, BBP outlier), ``spectral`` (the closure), ``dmft_kernels`` / ``dmft`` (the DMFT),
``curves`` (the Trajectory), ``summary`` (the numbers), ``grid`` (phase diagrams),
``rindex_kernels`` / ``rindex`` (the r-index DMFT), ``implicit_bias`` (the interpolant),
``trace_limit`` (its m -> 0, D -> inf limit).
"""

from lazyrich_theory.theory.offline.curves import (
    KAPPA_SPECTRAL,
    OFFLINE_METHODS,
    XI_LAWS,
    check_closure_applies,
    check_dmft_steps,
    offline_curves,
    offline_method,
    offline_theory,
)
from lazyrich_theory.theory.offline.dmft import COLUMN_CLOSURES, dmft_tau_curves
from lazyrich_theory.theory.offline.grid import phase_boundary_times
from lazyrich_theory.theory.offline.implicit_bias import (
    LongTimeState,
    entropic_interpolant,
    interpolant_critical_kappa,
    interpolant_floors,
    interpolant_limit,
)
from lazyrich_theory.theory.offline.inputs import (
    OfflineInputs,
    check_problem,
    offline_inputs,
    training_xi,
)
from lazyrich_theory.theory.offline.plateau import (
    PlateauLosses,
    PlateauSpectrum,
    plateau_losses,
    plateau_reason,
    plateau_spectrum,
)
from lazyrich_theory.theory.offline.rindex import rindex_inputs, rindex_tau_curves
from lazyrich_theory.theory.offline.spectral import (
    SpectralClosure,
    build_closure,
    rich_clock_curves,
)
from lazyrich_theory.theory.offline.summary import (
    CRITICAL_METHODS,
    CriticalKappa,
    critical_kappa,
    half_crossing,
    offline_summary,
)
from lazyrich_theory.theory.offline.trace_limit import (
    TraceLimit,
    descent_dimension,
    finite_d_threshold,
    recovery_threshold,
    trace_limit,
    trace_limit_critical_kappa,
)

__all__ = ["offline_theory", "offline_curves", "offline_method", "check_closure_applies",
           "check_dmft_steps",
           "critical_kappa",
           "offline_summary", "offline_inputs", "check_problem", "phase_boundary_times",
           "OfflineInputs", "CriticalKappa", "PlateauSpectrum", "SpectralClosure",
           "plateau_spectrum", "build_closure", "rich_clock_curves", "dmft_tau_curves",
           "COLUMN_CLOSURES", "OFFLINE_METHODS", "CRITICAL_METHODS", "KAPPA_SPECTRAL", "XI_LAWS",
           "training_xi", "rindex_inputs", "rindex_tau_curves", "entropic_interpolant",
           "interpolant_floors", "interpolant_critical_kappa", "LongTimeState", "plateau_losses",
           "PlateauLosses", "plateau_reason", "interpolant_limit", "half_crossing", "TraceLimit",
           "trace_limit", "recovery_threshold", "finite_d_threshold", "descent_dimension",
           "trace_limit_critical_kappa"]
