"""ProxySPEX as a Captum attribution method."""

from __future__ import annotations

from ..core import ProxySPEX
from .base import InteractionAttribution

__all__ = ["ProxySPEXAttribution"]


class ProxySPEXAttribution(InteractionAttribution):
    """Sparse feature interactions from a LightGBM proxy, as a Captum attribution.

    ProxySPEX masks features uniformly at random, fits gradient-boosted trees
    to the model's outputs, reads the trees' exact Fourier transform and
    keeps the sparse model that cross-validates best (the proxy, a ridge or
    lasso refit of its strongest terms or the mean of the two, or a linear
    model). Good when
    interactions are hierarchical (a pair matters because its parts do),
    which is the common case in practice: it needs about ten times fewer
    model calls than SPEX there.

    :meth:`attribute` returns first-order attributions (Shapley values by
    default) shaped like KernelShap's, so the class drops into existing
    Captum code; :meth:`attribute_interactions` returns the interactions.

    Args:
        forward_func: The model, or any function of the inputs returning one
            number per example (or an output vector, with ``target``).
        max_order: Largest interaction order (default 4).
        index: The first-order index :meth:`attribute` reports: ``"shapley"``,
            ``"banzhaf"``, or any index of
            :meth:`~proxyspex_captum.Interactions.to_index`, at order 1.
        random_state: Seed or ``numpy.random.Generator``; the same seed gives
            the same masks and the same attributions.
        **estimator_options: Further keyword arguments of
            :class:`~proxyspex_captum.ProxySPEX` (``max_depth``, ``energy``,
            ``learning_rate``, ``n_jobs``, ...).

    Examples:
        >>> import torch
        >>> import proxyspex_captum as psx
        >>> def model(x):  # features 0 and 1 only matter together
        ...     return 2 * x[:, 0] * x[:, 1] + x[:, 2]
        >>> attr = psx.ProxySPEXAttribution(model, max_order=2, random_state=0)
        >>> attr.attribute(torch.ones(1, 4))  # Shapley values: the pair's 2 split in halves
        tensor([[1., 1., 1., 0.]])
        >>> inter = attr.attribute_interactions(torch.ones(1, 4))[0]
        >>> {s: round(v, 6) for s, v in inter.mobius.items() if abs(v) > 1e-6}
        {(2,): 1.0, (0, 1): 2.0}
    """

    estimator_class = ProxySPEX
