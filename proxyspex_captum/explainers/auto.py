"""AutoSPEX as a SHAP explainer."""

from __future__ import annotations

from ..core import AutoSPEX
from .base import InteractionExplainer

__all__ = ["AutoSPEXExplainer"]


class AutoSPEXExplainer(InteractionExplainer):
    """Sparse feature interactions by ProxySPEX or SPEX, chosen per row, as a SHAP explainer.

    Takes :class:`ProxySPEXExplainer`'s arguments; the estimator is
    :class:`~proxyspex_captum.AutoSPEX`, which buys SPEX's coded design when
    ``max_evals`` affords it, fits both methods on the same calls and keeps
    the one that cross-validates better (ProxySPEX otherwise).

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(x):  # three features that only matter all together
        ...     return 4 * x[:, 3] * x[:, 7] * x[:, 9] - x[:, 0]
        >>> background = np.zeros((1, 40))
        >>> explainer = psx.AutoSPEXExplainer(model, background, max_order=3, random_state=0)
        >>> expl = explainer(np.ones((1, 40)), max_evals=3000)
        >>> {s: round(v, 6) for s, v in expl[0].interactions.mobius.items() if abs(v) > 1e-6}
        {(0,): -1.0, (3, 7, 9): 4.0}
    """

    estimator_class = AutoSPEX
