"""Searching a fitted surrogate for the feature set it scores best or worst.

Two questions are asked of a surrogate ``v̂``: which ``r`` features, removed,
change the output most (the removal metric of
:func:`~proxyspex_captum.metrics.removal_curve`), and which ``k`` features,
kept, keep it highest (pruning heads with
:func:`~proxyspex_captum.components.prune`). Both walk the same greedy path
of single removals; pruning then polishes the kept set by swaps.

Examples:
    >>> import numpy as np
    >>> from proxyspex_captum.core import Interactions
    >>> from proxyspex_captum.core.subset_search import best_subset, greedy_removal
    >>> inter = Interactions.from_mobius({(0, 1): 4.0, (2,): 2.0, (3,): 1.0}, n_features=5)
    >>> best_subset(inter, 2)  # 0 and 1 only pay together: 4 beats 2 + 1
    array([0, 1])
    >>> greedy_removal(inter, 2, maximize=False)  # what lowers the output most
    array([0, 2])
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .checks import check_int
from .interactions import Interactions

__all__ = ["EXACT_LIMIT", "best_subset", "greedy_removal"]

#: :func:`best_subset` scores every subset of the asked size when there are at most this many.
EXACT_LIMIT = 100_000


def _involved(interactions: Interactions) -> set[int]:
    """Features in some non-empty term of the surrogate (the others change nothing).

    Read off the Fourier terms, which hold the same features as the Möbius ones:
    the Möbius expansion of a high-order term is refused as too large.
    """
    return {i for s in interactions.fourier for i in s}


def greedy_removal(interactions: Interactions, n_removed: int, *, maximize: bool) -> np.ndarray:
    """Features removed one at a time, each the one leaving the surrogate highest (or lowest).

    Args:
        interactions: The surrogate.
        n_removed: How many features to remove (at most ``n_features``).
        maximize: Remove the feature whose loss the surrogate minds least
            (``True``: pruning) or most (``False``: the removal metric).

    Returns:
        The removed features, in order of removal.
    """
    n = interactions.n_features
    n_removed = check_int("n_removed", n_removed, 0, n)
    involved = _involved(interactions)
    # Features in some term first, so ties go to features with evidence. Removing a
    # feature in no term leaves the prediction as it is, the same number for each of
    # them: the first one left stands for all (at n = 4,000 every step had scored
    # thousands of identical masks).
    kept = sorted(involved)
    idle = [i for i in range(n) if i not in involved][::-1]  # popped from the end, in order
    mask = np.ones(n, dtype=bool)
    order: list[int] = []
    for _ in range(n_removed):
        options = kept + idle[-1:]
        trial = np.repeat(mask[None], len(options), axis=0)
        trial[np.arange(len(options)), options] = False
        values = interactions.predict(trial)
        choice = int(np.argmax(values) if maximize else np.argmin(values))
        best = kept.pop(choice) if choice < len(kept) else idle.pop()
        order.append(best)
        mask[best] = False
    return np.array(order, dtype=int)


def best_subset(
    interactions: Interactions,
    size: int,
    *,
    maximize: bool = True,
    exact_limit: int = EXACT_LIMIT,
) -> np.ndarray:
    """The ``size`` features whose set the surrogate predicts highest (or lowest).

    Exact when there are at most ``exact_limit`` subsets of that size; else a
    heuristic: greedy removal from the full set, then single swaps (one kept
    feature for one removed) while a swap improves the prediction. The
    heuristic can miss an optimum that needs two swaps at once.

    Returns:
        The chosen features' indices, sorted.
    """
    n = interactions.n_features
    size = check_int("size", size, 1, n)
    sign = 1.0 if maximize else -1.0
    if math.comb(n, size) <= check_int("exact_limit", exact_limit, 1):
        return _exhaustive(interactions, size, sign)
    mask = np.ones(n, dtype=bool)
    mask[greedy_removal(interactions, n - size, maximize=maximize)] = False
    return _swapped(interactions, mask, sign)


def _exhaustive(interactions: Interactions, size: int, sign: float) -> np.ndarray:
    n = interactions.n_features
    best_value, best = -np.inf, None
    combos = itertools.combinations(range(n), size)
    while chunk := list(itertools.islice(combos, 10_000)):
        masks = np.zeros((len(chunk), n), dtype=bool)
        masks[np.repeat(np.arange(len(chunk)), size), np.ravel(chunk)] = True
        values = sign * interactions.predict(masks)
        i = int(np.argmax(values))
        if values[i] > best_value:
            best_value, best = values[i], chunk[i]
    return np.array(best, dtype=int)


def _swapped(interactions: Interactions, mask: np.ndarray, sign: float) -> np.ndarray:
    """``mask`` improved by best single swaps until none helps."""
    involved = _involved(interactions)
    value = sign * interactions.predict(mask)
    scale = max(1.0, abs(value))
    for _ in range(10 * interactions.n_features):
        # A feature in no term changes nothing: one of each side stands for all of them.
        kept = _candidates(np.flatnonzero(mask), involved)
        dropped = _candidates(np.flatnonzero(~mask), involved)
        if not kept or not dropped:
            break
        pairs = [(i, j) for i in kept for j in dropped if i in involved or j in involved]
        if not pairs:
            break
        trial = np.repeat(mask[None], len(pairs), axis=0)
        rows = np.arange(len(pairs))
        trial[rows, [i for i, _ in pairs]] = False
        trial[rows, [j for _, j in pairs]] = True
        values = sign * interactions.predict(trial)
        best = int(np.argmax(values))
        if values[best] <= value + 1e-12 * scale:
            break
        mask = trial[best]
        value = values[best]
    return np.flatnonzero(mask)


def _candidates(features: np.ndarray, involved: set[int]) -> list[int]:
    inside = [int(i) for i in features if i in involved]
    outside = [int(i) for i in features if i not in involved]
    return inside + outside[:1]
