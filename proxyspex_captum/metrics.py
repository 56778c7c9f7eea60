"""Faithfulness of interaction explanations."""

from __future__ import annotations

import numpy as np

from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.value_function import MaskFunction, ValueFunction

__all__ = ["faithfulness"]


def faithfulness(
    interactions: Interactions,
    value_function: MaskFunction | ValueFunction,
    *,
    n_masks: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    masks: np.ndarray | None = None,
) -> float:
    """R² of the surrogate against the value function on uniformly random masks.

    The protocol of the SPEX and ProxySPEX papers: draw ``n_masks`` masks
    uniformly from ``{0,1}^n`` (from ``random_state``, independently of any
    estimator's own draws), query the model, and report
    ``1 − Σ (v − v̂)² / Σ (v − mean v)²``.

    Args:
        interactions: The explanation to score.
        value_function: The model's value function (the same one explained).
        n_masks: Number of held-out masks.
        random_state: Seed of the held-out masks.
        masks: Use these masks instead of drawing new ones.

    Returns:
        The R² (1 is perfect; 0 is no better than the mean; it can be negative).

    Examples:
        >>> import proxyspex_captum as psx
        >>> game = psx.games.hierarchical_game(64, n_terms=20, random_state=1)
        >>> psx.faithfulness(game.interactions, game, n_masks=200)
        1.0
    """
    n = interactions.n_features
    if masks is None:
        rng = as_generator(random_state)
        masks = rng.random((n_masks, n)) < 0.5
    truth = np.asarray(ValueFunction.wrap(value_function, n, cache=False)(masks), dtype=float)
    if truth.ndim != 1:
        raise ValueError("faithfulness scores one output: pass a single-output value function.")
    predicted = interactions.predict(masks)
    spread = float(np.sum((truth - truth.mean()) ** 2))
    if spread == 0.0:
        return 1.0 if np.allclose(truth, predicted) else 0.0
    return float(1.0 - np.sum((truth - predicted) ** 2) / spread)
