"""SHAP adapters: ``ProxySPEXExplainer``, ``SPEXExplainer`` and ``InteractionExplanation``.

Names follow SHAP's: the explainers are ``shap.Explainer`` subclasses and
their results ``shap.Explanation`` subclasses.
"""

from .base import InteractionExplainer
from .explanation import InteractionExplanation
from .proxyspex import ProxySPEXExplainer
from .spex import SPEXExplainer

__all__ = [
    "InteractionExplainer",
    "InteractionExplanation",
    "ProxySPEXExplainer",
    "SPEXExplainer",
]
