"""SPEX as a SHAP explainer."""

from __future__ import annotations

from ..core import SPEX
from .base import InteractionExplainer

__all__ = ["SPEXExplainer"]


class SPEXExplainer(InteractionExplainer):
    """Sparse feature interactions decoded with a BCH code, as a SHAP explainer.

    Takes :class:`ProxySPEXExplainer`'s arguments; the estimator is
    :class:`~proxyspex_captum.SPEX` (no proxy model; finds interactions that
    exist only for a whole set of features, at the cost of more model calls).

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(x):  # three features that only matter all together
        ...     return 4 * x[:, 3] * x[:, 7] * x[:, 9] - x[:, 0]
        >>> explainer = psx.SPEXExplainer(model, np.zeros((1, 40)), max_order=3, random_state=0)
        >>> expl = explainer(np.ones((1, 40)), max_evals=3000)
        >>> {s: round(v, 6) for s, v in expl[0].interactions.mobius.items() if abs(v) > 1e-6}
        {(0,): -1.0, (3, 7, 9): 4.0}
    """

    estimator_class = SPEX
