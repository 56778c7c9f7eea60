"""The framework-free core: numpy, LightGBM and scikit-learn only."""

from .base import InteractionEstimator
from .interactions import INDICES, Interactions
from .proxyspex import ProxySPEX
from .spex import SPEX
from .value_function import ValueFunction

__all__ = ["INDICES", "SPEX", "InteractionEstimator", "Interactions", "ProxySPEX", "ValueFunction"]
