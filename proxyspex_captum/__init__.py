"""proxyspex-captum: sparse feature-interaction attributions for Captum and SHAP.

Examples:
    >>> import proxyspex_captum as psx
    >>> game = psx.games.hierarchical_game(128, random_state=0)
    >>> estimator = psx.ProxySPEX(max_order=4, random_state=0)
    >>> inter = estimator.explain(game, n_features=128, budget=2000)
    >>> psx.faithfulness(inter, game) > 0.95
    True
"""

from . import games
from .core import INDICES, SPEX, Interactions, ProxySPEX, ValueFunction
from .metrics import faithfulness

__version__ = "0.1.0"

__all__ = [
    "INDICES",
    "SPEX",
    "Interactions",
    "ProxySPEX",
    "ValueFunction",
    "__version__",
    "faithfulness",
    "games",
]
