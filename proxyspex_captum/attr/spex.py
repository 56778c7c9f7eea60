"""SPEX as a Captum attribution method."""

from __future__ import annotations

from ..core import SPEX
from .base import InteractionAttribution

__all__ = ["SPEXAttribution"]


class SPEXAttribution(InteractionAttribution):
    """Sparse feature interactions decoded with a BCH code, as a Captum attribution.

    SPEX queries the model on coded masks, hashes the sparse Fourier
    transform into bins and decodes each bin's interaction from its parity
    bits. It needs no proxy model and finds interactions whether or not
    they are hierarchical (an effect that exists only for the whole set),
    at a cost of several thousand model calls for hundreds of features.

    Args:
        forward_func: The model, or any function of the inputs returning one
            number per example (or an output vector, with ``target``).
        max_order: Largest interaction order (default 5).
        index: The first-order index :meth:`attribute` reports (default ``"shapley"``).
        random_state: Seed or ``numpy.random.Generator``.
        **estimator_options: Further keyword arguments of
            :class:`~proxyspex_captum.SPEX` (``decoder``, ``n_groups``, ``refit``, ...).

    Examples:
        >>> import torch
        >>> import proxyspex_captum as psx
        >>> def model(x):  # features 3, 7 and 9 only matter all together
        ...     return 4 * x[:, 3] * x[:, 7] * x[:, 9] - x[:, 0]
        >>> attr = psx.SPEXAttribution(model, max_order=3, random_state=0)
        >>> inter = attr.attribute_interactions(torch.ones(1, 40), n_samples=3000)[0]
        >>> {s: round(v, 6) for s, v in inter.mobius.items() if abs(v) > 1e-6}
        {(0,): -1.0, (3, 7, 9): 4.0}
    """

    estimator_class = SPEX
