"""SHAP adapters: the three explainers and ``InteractionExplanation``.

Names follow SHAP's: the explainers are ``shap.Explainer`` subclasses and
their results ``shap.Explanation`` subclasses.
"""

from .auto import AutoSPEXExplainer
from .base import InteractionExplainer
from .explanation import InteractionExplanation
from .proxyspex import ProxySPEXExplainer
from .spex import SPEXExplainer

__all__ = [
    "AutoSPEXExplainer",
    "InteractionExplainer",
    "InteractionExplanation",
    "ProxySPEXExplainer",
    "SPEXExplainer",
]
