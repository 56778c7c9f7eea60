"""ProxySPEX as a SHAP explainer."""

from __future__ import annotations

from ..core import ProxySPEX
from .base import InteractionExplainer

__all__ = ["ProxySPEXExplainer"]


class ProxySPEXExplainer(InteractionExplainer):
    """Sparse feature interactions from a LightGBM proxy, as a SHAP explainer.

    Drop it in where ``shap.Explainer``, ``PermutationExplainer`` or
    ``PartitionExplainer`` stood: it takes the same model and masker, queries
    the model through SHAP's ``MaskedModel`` and returns an
    :class:`InteractionExplanation` whose ``.values`` are Shapley values (or
    another first-order index), so SHAP's plots work, and which carries each
    row's interactions.

    Args:
        model: A callable on a batch of inputs (a function, a model's
            ``predict``, a ``shap.models.TransformersPipeline``).
        masker: Background data or any SHAP masker (``Independent``,
            ``Partition``, ``Text``, ``Image``).
        link: SHAP's link function (identity by default).
        feature_names: As in ``shap.Explainer``.
        output_names: As in ``shap.Explainer``.
        max_order: Largest interaction order (default 4).
        index: The first-order index in ``.values`` (default ``"shapley"``).
        random_state: Seed or ``numpy.random.Generator``.
        **estimator_options: Further keyword arguments of
            :class:`~proxyspex_captum.ProxySPEX`.

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(x):  # features 0 and 1 only matter together
        ...     return 2 * x[:, 0] * x[:, 1] + x[:, 2]
        >>> background = np.zeros((1, 4))
        >>> explainer = psx.ProxySPEXExplainer(model, background, max_order=2)
        >>> expl = explainer(np.ones((2, 4)))
        >>> expl.values[0].round(6).tolist()  # Shapley values
        [1.0, 1.0, 1.0, 0.0]
        >>> [(s, round(v, 6)) for s, v in expl[0].interactions.top(2)]
        [((0, 1), 2.0), ((2,), 1.0)]
    """

    estimator_class = ProxySPEX
