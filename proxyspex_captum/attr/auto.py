"""AutoSPEX as a Captum attribution method."""

from __future__ import annotations

from ..core import AutoSPEX
from .base import InteractionAttribution

__all__ = ["AutoSPEXAttribution"]


class AutoSPEXAttribution(InteractionAttribution):
    """Sparse feature interactions by ProxySPEX or SPEX, chosen per input, as a Captum attribution.

    Use it when you cannot tell whether the model's interactions are
    hierarchical (ProxySPEX's strength) or not (SPEX's): with enough calls for
    SPEX's coded design it buys that design, fits both methods on the same
    calls and keeps the one that cross-validates better; with fewer it is
    ProxySPEX. ``metadata`` of each result says which (``route``, ``chosen``).

    Args:
        forward_func: The model, or any function of the inputs returning one
            number per example (or an output vector, with ``target``).
        max_order: Largest interaction order (default 4).
        index: The first-order index :meth:`attribute` reports (default ``"shapley"``).
        random_state: Seed or ``numpy.random.Generator``.
        **estimator_options: Further keyword arguments of
            :class:`~proxyspex_captum.AutoSPEX` (``min_bins``,
            ``proxyspex_options``, ``spex_options``, ...).

    Examples:
        >>> import torch
        >>> import proxyspex_captum as psx
        >>> def model(x):  # features 3, 7 and 9 only matter all together
        ...     return 4 * x[:, 3] * x[:, 7] * x[:, 9] - x[:, 0]
        >>> attr = psx.AutoSPEXAttribution(model, max_order=3, random_state=0)
        >>> inter = attr.attribute_interactions(torch.ones(1, 40), n_samples=3000)[0]
        >>> {s: round(v, 6) for s, v in inter.mobius.items() if abs(v) > 1e-6}
        {(0,): -1.0, (3, 7, 9): 4.0}
        >>> inter.metadata["route"]
        'coded'
    """

    estimator_class = AutoSPEX
