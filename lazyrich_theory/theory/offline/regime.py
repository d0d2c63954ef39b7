"""The regime notes of ``offline_summary``: for each offline theory (and closure), where it
is validated and its measured errors there, as one line of summary.json (docs/offline_theory.md
§11-§13; the numbers are the docs' tables, kept in step with them)."""

from __future__ import annotations

import math

from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.theory.offline.curves import KAPPA_SPECTRAL
from lazyrich_theory.theory.offline.dmft import DMFT_NS, SPREAD_MAX_LAG

__all__ = ["regime_note", "outside_regime", "HORIZON_BIAS"]

#: The measured bias of each theory's loss at the horizon against the exact flow's, which more
#: Monte Carlo draws do not remove (docs/offline_theory.md, top table: the spectral closure
#: has no memorisation, the DMFT's linear column as derived / closure A7 too much); the
#: regime notes and ``lazyrich asymptotic``'s summary line both say it
HORIZON_BIAS = {"spectral": "-0.03..-0.13 too low at kappa = 5.5, D = 50-400",
                "dmft": "+0.03..+0.08 too high at kappa = 5.5 and +0.14..+0.36 at kappa <= 3 "
                        "(tau = 40, D = 50-400)",
                "least_squares": "+0.02..+0.07 too high at kappa <= 5.5 (D = 400)"}


def _slow_column_reason(info: dict) -> str | None:
    """Why the DMFT's linear column is slow, where it is: the recorded
    ``column_closure_reason`` where the spread closure could therefore not run, or, where it
    ran (at its finite speed, which the auto choice does not take that far), how far its lag
    was measured; None elsewhere."""
    lag = info.get("column_lag")
    if lag is None or lag <= SPREAD_MAX_LAG:
        return None
    if info.get("column_closure") == "spread":
        return (f"the linear column is slow here (its slowest relaxation time {lag:.3g} > "
                f"{SPREAD_MAX_LAG:g} in tau; the spread closure at the column's finite speed "
                "was measured at such a column only at kappa = 1.5, lag 2.38)")
    return info["column_closure_reason"]


#: The spread closure's measured errors at kappa >= 2 and of its times (docs/offline_theory.md
#: §12.4, measured with the instantaneous column (12.1); the column's finite speed moves the
#: loss at tau = 40 by less than 0.008 there; the delay and the critical kappa measured at both
#: speeds), shared by the notes of both column speeds
_SPREAD_ERRORS = ("-0.011 (kappa = 2; within 0.03 at D = 100-800), -0.005..-0.006 (kappa = "
                  "3), -0.004..0 (kappa = 5.5), +0.002 (kappa = 11) and the half time "
                  "-1.4..+0.3 % (+- 9 % on four seeds at kappa = 5.5; -26..-2 % at D = 50-200, "
                  "+10 % at D = 800, kappa = 5.5); at kappa <= 5.5 one draw's own Monte Carlo "
                  "error is larger: sd 0.14 (kappa = 1.5), 0.035 (2), 0.013-0.019 (3), 0.011 and "
                  "7 % in the half time (5.5): use --dmft-draws 8 or more; the grokking delay "
                  "(measured at alpha / eps = 50; the same within 1 % at 12.5 and 200, D = 200) "
                  "-7..+13 % at kappa = 5.5-22, D = 200-800 (+11..+109 % at D = 50-100); "
                  "critical kappa -0.05 +- 0.05 / -0.05 +- 0.06 at D = 400 (16 draws, 8 exact "
                  "seeds; -0.04 / -0.05 with the instantaneous column)")
#: The finite-speed column's (12.2) measured error at kappa = 1.5 (offline_k15_speed.md)
K15_FINITE = ("-0.082, -0.049, -0.016 +- 0.016 and +0.004 at D = 100, 200, 400 and 800 (it "
              "shrinks with D; the instantaneous column's grows to about +0.05)")
K15_RATIOS_400 = ("overstated by 29-58 % at D = 400 (by a third at D = 800), so that at D = "
                  "400 the loss at alpha / eps = 12.5 (the column's lag 2.4 in tau) is about "
                  "0.05 low, and at 200-800 within 0.01")


def _slow_column(traj: Trajectory) -> str:
    """The warning that opens a DMFT note where the spread closure cannot run (a slow linear
    column): every error the note quotes was measured at a fast one ("" elsewhere)."""
    why = _slow_column_reason(traj.info)
    if why is None:
        return ""
    return (f"Outside the measured regime: {why}; every error below was measured at "
            "alpha / eps = 50, where the column is fast, and none at a slow column. ")


#: The smallest D of every table of measured errors (docs/offline_theory.md §11-§13)
MEASURED_D = 50
#: ... of the r-index DMFT's (docs §13.4)
RINDEX_MEASURED_D = 100
#: The DMFT time at which every measured error of the loss at the horizon was taken
MEASURED_TAU = 40.0


def outside_regime(traj: Trajectory) -> str | None:
    """Where this run lies outside the regime in which the errors that its regime note and
    summary line quote were measured (None: inside): D below :data:`MEASURED_D` (the r-index
    DMFT's: :data:`RINDEX_MEASURED_D`), the spectral closure below kappa =
    :data:`KAPPA_SPECTRAL`, fewer Monte Carlo samples than the default (the DMFT's one-draw
    scatter was measured at :data:`DMFT_NS`), a slow linear column (the DMFT), a horizon
    other than tau = :data:`MEASURED_TAU` (the loss at the horizon of the spectral closure and
    the DMFT; by more than 10 %)."""
    info, parts = traj.info, []
    method = info.get("offline_method")
    D, kappa = float(info.get("D", math.nan)), float(info.get("kappa", math.nan))
    least = RINDEX_MEASURED_D if method == "rindex" else MEASURED_D
    if D < least:
        parts.append(f"D = {D:g} < {least} (every error quoted was measured at D >= {least})")
    if method == "spectral" and kappa < KAPPA_SPECTRAL:
        parts.append(f"kappa = {kappa:.3g} < {KAPPA_SPECTRAL:g}, below the spectral closure's "
                     "validated regime (it has no memorisation channel)")
    if method == "dmft" and info.get("Ns", DMFT_NS) < DMFT_NS:
        parts.append(f"Ns = {info['Ns']} < {DMFT_NS} (one draw's scatter quoted was measured "
                     f"at Ns = {DMFT_NS}; fewer samples scatter more)")
    slow = _slow_column_reason(info)
    if slow is not None:
        parts.append(slow + " (the errors quoted were measured at a fast one)")
    tau = info.get("horizon_tau")
    if (method in ("spectral", "dmft") and tau is not None
            and abs(tau / MEASURED_TAU - 1.0) > 0.1):
        at = float(info["steps"]) * MEASURED_TAU / tau
        parts.append(f"the horizon is tau = {tau:.3g} (the errors of the loss at the horizon "
                     f"were measured at tau = {MEASURED_TAU:g}, here --steps {at:.0f})")
    return "; ".join(parts) or None


def regime_note(traj: Trajectory) -> str:
    """summary.json's ``regime``: where the offline theory that made ``traj`` is validated,
    and its measured errors there (docs/offline_theory.md §11-§13)."""
    method, kappa = traj.info.get("offline_method"), float(traj.info.get("kappa", math.nan))
    if method == "spectral" and kappa < KAPPA_SPECTRAL:
        return (f"kappa = {kappa:.3g} < {KAPPA_SPECTRAL:g}: outside the spectral closure's "
                "validated regime (no memorisation channel: its late curve and long-time loss "
                "are far too optimistic here; use the DMFT: method='dmft', --method dmft)")
    if method == "spectral":
        return ("spectral closure, validated for kappa >= 5: half-time within ~1-11 % of the "
                "exact flow at D = 100-400 (docs/offline_theory.md); its grokking delay is "
                "short by ~3-25 % at kappa = 22, ~20-46 % at kappa = 11 and ~50-86 % at "
                "kappa = 5.5: the delay is set by the late tail, which this closure has too "
                "fast (no memorisation channel: it gives back the trace the lazy phase left in "
                "the bulk too fast; docs/offline_theory.md §11.5-11.6); for the same reason "
                f"its loss at the horizon has no floor: {HORIZON_BIAS['spectral']}: for where "
                "the flow ends trust predicted_limit_test_loss (the interpolant)")
    if method == "rindex":
        return ("r-index DMFT of a finite-rank init: exact as D -> inf (no closure); measured "
                "against the exact flow within its seed spread from D = 100 on "
                "(docs/offline_theory.md §13); Monte Carlo spread ~+-5 % per run at Ns = 800")
    if traj.info.get("spread_response") == "first_order":
        return ("DMFT with the spread closure, its memorisation at first order in the "
                "Onsager terms (a diagnostic, docs/offline_theory.md §12.4, measured with the "
                "instantaneous column (12.1)): against the exact "
                "flow at D = 400 the loss at tau = 40 is +0.01 (kappa = 3), 0..+0.01 "
                "(kappa = 5.5), +0.002 (kappa = 11) on seed means, but -0.07 (kappa = 2) and "
                "-0.28 (kappa = 1.5), where first order fails (the default, resolved response "
                "does not); it takes the column as fitted at once; the half time -5..0 % "
                "(early); one draw's Monte Carlo spread (measured with the resolved response) 7 % "
                "in the half time at kappa = 5.5, 0.035-0.16 in the loss at kappa <= 2")
    if traj.info.get("spread_response") == "full":
        return ("DMFT with the spread closure, the memorisation of both the bulk and the "
                "spike resolved through each sample's own resolvents (a diagnostic, "
                "docs/offline_theory.md §12.4, measured with the instantaneous column (12.1)): "
                "within 0.007 of the default (bulk resolved) "
                "in the loss at tau = 40 at D = 400, kappa = 1.5-11, at 1.2x its cost")
    if traj.info.get("column_speed") == "instantaneous":
        return ("DMFT with the spread closure, its linear column instantaneous, (12.1) "
                "(opt-in; derived, docs/offline_theory.md §12.4; the bulk memorisation "
                "resolved through each sample's own resolvent): against the exact flow at D = "
                "400, on seed means and the mean of 32 Monte Carlo draws (16 at kappa = 11, 192 "
                "at 1.5), the loss at tau = 40 is +0.048 +- 0.015 (kappa = 1.5; -0.02 +- 0.02, "
                "+0.01 +- 0.02 at D = 100, 200, +0.06 +- 0.02 at D = 800: it grows with D to "
                "about +0.05, most of it the column's relaxation time, which this closure takes "
                "as 0), " + _SPREAD_ERRORS + "; it takes the column as fitted at once, so "
                "before the column's relaxation time (up to 1 in tau) its test loss overshoots")
    if traj.info.get("column_closure") == "spread":
        return (_slow_column(traj) + "DMFT with the spread closure, its linear column at its "
                "finite speed, (12.2) (the default; derived, docs/offline_theory.md §12.4, "
                "\"The column at its finite speed\"; the bulk memorisation resolved through "
                "each sample's own resolvent): against the exact flow, on the mean of Monte "
                "Carlo draws, the loss at tau = 40 at kappa = 1.5 (alpha / eps = 50) is "
                f"{K15_FINITE}, and the exact flow's dependence on alpha / eps (12.5-800) is met "
                f"at D = 200, {K15_RATIOS_400}; at kappa >= 2 it is within 0.008 of the "
                "instantaneous column's (12.1), whose measured errors at D = 400 (seed means, "
                "32 draws) carry over: " + _SPREAD_ERRORS)
    if traj.info.get("column_closure") == "least_squares":
        return (_slow_column(traj) + "DMFT with the opt-in column closure A7 (chosen, not derived; "
                "docs/offline_theory.md §12.4): against the exact flow at D = 400 the loss at "
                "tau = 40 is +0.05 (kappa = 2), +0.05..+0.06 (kappa = 3), +0.02 (kappa = "
                "5.5), +0.07 (kappa = 1.5) on seed means, the half time within 3 %, the "
                "grokking delay +8..+40 % at kappa >= 11 and +1..+209 % at kappa = 5.5 where it "
                "reaches 0.1 x its initial loss (§11.5); Monte Carlo "
                "spread ~+-4 % / +-0.05")
    auto = traj.info.get("requested_column_closure") == "auto"
    return (_slow_column(traj) + "DMFT with the linear column as derived"
            + (" (auto's choice here)" if auto else "")
            + ": half-time -29..+24 % against the exact flow (D = 50-800, "
            f"docs/offline_theory.md §11), loss at the horizon {HORIZON_BIAS['dmft']}, a bias "
            "that more Monte Carlo draws do not remove "
            "(one draw's own spread ~+-4 % / +-0.05 at D = 100); grokking "
            "delay +11..+43 % at kappa >= 11, mostly not reached at kappa = 5.5 (§11.5). The "
            "spread closure of a fast linear column (the default where it applies) is closer: "
            "within 0.012 of the loss at tau = 40 at kappa = 2-11, D = 400, on the mean of Monte "
            "Carlo draws (+0.048 +- 0.015 at kappa = 1.5), and its half time within 10 % (central "
            "values within 1.6 %; §12.4). For where the flow ends, trust "
            "predicted_limit_test_loss (the interpolant, within 0.02 at kappa >= 2) over this "
            "loss at the horizon; below the critical kappa, where the flow has interpolated by "
            "tau ~ 40, it is also the better estimate of the horizon loss (within 0.05 at D = "
            "400, where this one is +0.2..+0.27)")
