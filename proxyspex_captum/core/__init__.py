"""The framework-free core: numpy, LightGBM and scikit-learn only."""

from .auto import AutoSPEX
from .base import InteractionEstimator, PoorFitWarning
from .interactions import INDICES, ExpansionTooLarge, Interactions
from .proxyspex import ProxySPEX
from .spex import SPEX
from .value_function import ValueFunction

__all__ = [
    "INDICES",
    "SPEX",
    "AutoSPEX",
    "ExpansionTooLarge",
    "InteractionEstimator",
    "Interactions",
    "PoorFitWarning",
    "ProxySPEX",
    "ValueFunction",
]
