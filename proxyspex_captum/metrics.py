"""Faithfulness of interaction explanations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.value_function import MaskFunction, ValueFunction

__all__ = ["faithfulness"]


def faithfulness(
    interactions: Interactions | Sequence[Interactions],
    value_function: MaskFunction | ValueFunction,
    *,
    n_masks: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    masks: np.ndarray | None = None,
) -> float | list[float]:
    """R² of the surrogate against the value function on uniformly random masks.

    The protocol of the SPEX and ProxySPEX papers: draw ``n_masks`` masks
    uniformly from ``{0,1}^n`` (from ``random_state``, independently of any
    estimator's own draws), query the model, and report
    ``1 − Σ (v − v̂)² / Σ (v − mean v)²``.

    Args:
        interactions: The explanation to score, or the list of per-output
            explanations of a multi-output value function.
        value_function: The model's value function (the same one explained).
        n_masks: Number of held-out masks.
        random_state: Seed of the held-out masks.
        masks: Use these masks instead of drawing new ones.

    Returns:
        The R² (1 is perfect; 0 is no better than the mean; it can be negative),
        or one R² per output for a list of explanations.

    Examples:
        >>> import proxyspex_captum as psx
        >>> game = psx.games.hierarchical_game(64, n_terms=20, random_state=1)
        >>> psx.faithfulness(game.interactions, game, n_masks=200)
        1.0
    """
    several = not isinstance(interactions, Interactions)
    explanations = list(interactions) if several else [interactions]
    n = explanations[0].n_features
    if masks is None:
        if n_masks < 1:
            raise ValueError(f"n_masks must be at least 1, got {n_masks}.")
        masks = as_generator(random_state).random((n_masks, n)) < 0.5
    # A fresh wrapper: scoring must not count towards, or read from, an estimator's cache.
    func = value_function.func if isinstance(value_function, ValueFunction) else value_function
    truth = ValueFunction(func, n, cache=False)(masks).reshape(len(masks), -1)
    if truth.shape[1] != len(explanations):
        raise ValueError(
            f"The value function has {truth.shape[1]} outputs but {len(explanations)} "
            "explanation(s) were given: pass one Interactions per output."
        )
    scores = [_r2(y, inter.predict(masks)) for y, inter in zip(truth.T, explanations, strict=True)]
    return scores if several else scores[0]


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    spread = float(np.sum((truth - truth.mean()) ** 2))
    if spread == 0.0:
        return 1.0 if np.allclose(truth, predicted) else 0.0
    return float(1.0 - np.sum((truth - predicted) ** 2) / spread)
