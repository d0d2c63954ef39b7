"""The paper's polynomial-regression figures, by name (docs/gallery.md).

    lazyrich figure NAME [--out DIR] [--steps T] [--set key=value ...]

Each figure uses the paper's configuration unless overridden, writes its PNG and the data
behind it into DIR, and overlays theory where the package has it.  Implemented: fig1, fig3a,
fig3b, fig3e, fig4, fig5, fig12, goldilocks, interpolation (``all`` runs them in turn), and
beyond the paper: sgd, options.

Layout: :mod:`~lazyrich_theory.experiments.figures.registry` (the :class:`Figure` records,
:data:`FIGURES`, :func:`make_figure`), one compute module per family (``paper``, ``sweeps``,
``variants``, ``fig5``, ``interpolation``: numbers and arrays, no drawing) and the drawing in
:mod:`lazyrich_theory.plotting.figures`.
"""

# The Figure record, FigureData and the figures' default values are importable from here too
# (as from the former single module); __all__ lists what the API reference documents
# (docs/api/experiments.md).
from lazyrich_theory.experiments.figures.common import FigureData  # noqa: F401
from lazyrich_theory.experiments.figures.fig5 import FIG5_KS, eigenvector_labels  # noqa: F401
from lazyrich_theory.experiments.figures.interpolation import (  # noqa: F401
    INTERP_S,
    interpolated_init,
)
from lazyrich_theory.experiments.figures.registry import FIGURES, Figure, make_figure  # noqa: F401
from lazyrich_theory.experiments.figures.sweeps import (  # noqa: F401
    FIG3A_ALPHAS,
    FIG3B_EPS,
    GOLDILOCKS_P,
)
from lazyrich_theory.experiments.figures.variants import (  # noqa: F401
    OPTION_VARIANTS,
    SGD_VARIANTS,
)

__all__ = ["FIGURES", "make_figure", "eigenvector_labels", "interpolated_init"]
