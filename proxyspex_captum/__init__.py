"""proxyspex-captum: sparse feature-interaction attributions for Captum and SHAP.

Examples:
    >>> import proxyspex_captum as psx
    >>> game = psx.games.hierarchical_game(128, random_state=0)
    >>> estimator = psx.ProxySPEX(max_order=4, random_state=0)
    >>> inter = estimator.explain(game, n_features=128, budget=2000)
    >>> psx.faithfulness(inter, game) > 0.95
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from . import baselines, examples, executors, games, metrics, models
from .core import (
    INDICES,
    SPEX,
    AutoSPEX,
    ExpansionTooLarge,
    Interactions,
    PoorFitWarning,
    ProxySPEX,
    ValueFunction,
)
from .metrics import faithfulness

__version__ = "0.1.0"

# The Captum and SHAP adapters import torch, Captum or SHAP (seconds), so they
# load on first use: `import proxyspex_captum` stays as light as the core.
_LAZY = {
    "AutoSPEXAttribution": "attr",
    "ProxySPEXAttribution": "attr",
    "SPEXAttribution": "attr",
    "LLMAttribution": "attr",
    "LLMInteractionAttributionResult": "attr",
    "RemoteLLMAttribution": "attr",
    "ProxySPEXHeadAttribution": "attr",
    "SPEXHeadAttribution": "attr",
    "AutoSPEXExplainer": "explainers",
    "ProxySPEXExplainer": "explainers",
    "SPEXExplainer": "explainers",
    "InteractionExplanation": "explainers",
    # A function named like its module would be shadowed by the module on import.
    "report": "html_report",
}

__all__ = [
    "INDICES",
    "AutoSPEX",
    "SPEX",
    "ExpansionTooLarge",
    "Interactions",
    "PoorFitWarning",
    "ProxySPEX",
    "ValueFunction",
    "__version__",
    "baselines",
    "faithfulness",
    "examples",
    "executors",
    "metrics",
    "games",
    "models",
    "plots",
    "scoring",
    "api",
    "data",
    "influence",
    "components",
    "html_report",
    *_LAZY,
]


# Submodules that import matplotlib's pyplot load on first use too.
_LAZY_MODULES = ("plots", "scoring", "api", "data", "influence", "components", "html_report")


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
