"""Planted sparse games: value functions whose interactions are known exactly.

They are the ground truth for tests and benchmarks: a game is a sparse Möbius
function ``v(m) = Σ_S a(S) · [S ⊆ m]``, optionally with Gaussian noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb

import numpy as np

from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.subsets import PAD, pad_sets

__all__ = ["PlantedGame", "fourier_game", "hierarchical_game", "random_game"]


class PlantedGame:
    """A value function with known Möbius coefficients.

    Args:
        mobius: ``{sorted feature ids: a(S)}``.
        n_features: Number of features.
        noise_std: Standard deviation of Gaussian noise added to every query.
        random_state: Seed of the noise.

    Attributes:
        interactions: The exact :class:`Interactions` of the noiseless game.
    """

    def __init__(
        self,
        mobius: Mapping[Sequence[int], float],
        *,
        n_features: int,
        noise_std: float = 0.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.interactions = Interactions.from_mobius(mobius, n_features=n_features)
        self.mobius = self.interactions.mobius  # validated, duplicates summed
        self.n_features = n_features
        self.noise_std = noise_std
        self._rng = as_generator(random_state)
        self._rows = pad_sets(self.mobius)
        self._values = np.array(list(self.mobius.values()))

    def exact(self, masks: np.ndarray) -> np.ndarray:
        """Noiseless values of boolean masks ``(k, n)``."""
        masks = np.asarray(masks, dtype=bool)
        present = np.where(self._rows == PAD, True, masks[:, np.maximum(self._rows, 0)])
        return present.all(axis=2).astype(float) @ self._values

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        values = self.exact(masks)
        if self.noise_std > 0:
            values = values + self._rng.normal(0.0, self.noise_std, size=values.shape)
        return values


def _check_terms(n_features: int, n_terms: int, max_order: int) -> int:
    """Clip the order to ``n`` and refuse more terms than there are sets."""
    max_order = min(max_order, n_features)
    available = sum(comb(n_features, k) for k in range(1, max_order + 1))
    if n_terms > available:
        raise ValueError(
            f"Only {available} non-empty sets of at most {max_order} of {n_features} features "
            f"exist; asked for {n_terms} terms."
        )
    return max_order


def _coefficient(rng: np.random.Generator, size: int, decay: float) -> float:
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * decay ** (size - 1))


def hierarchical_game(
    n_features: int,
    *,
    n_terms: int = 75,
    max_order: int = 4,
    decay: float = 0.8,
    noise: float = 0.0,
    random_state: int | None = 0,
) -> PlantedGame:
    """A game whose Möbius support is closed under taking subsets.

    Terms are grown from random top sets of size ``max_order``; every subset of a
    term is a term too (the hierarchy ProxySPEX's trees exploit). Coefficients
    are ±U(0.5, 1.5) shrunk by ``decay`` per order above one.

    Args:
        n_features: Number of features.
        n_terms: Approximate number of non-empty terms (the support stops growing
            at the first top set that reaches it).
        max_order: Size of the top sets.
        decay: Factor applied to the coefficient scale per extra order.
        noise: Noise standard deviation as a fraction of the noiseless output's
            standard deviation over uniform masks.
        random_state: Seed.
    """
    max_order = _check_terms(n_features, n_terms, max_order)
    rng = as_generator(random_state)
    support: set[tuple[int, ...]] = set()
    for _ in range(100 * n_terms):
        if len(support) >= n_terms:
            break
        top = np.sort(rng.choice(n_features, size=max_order, replace=False))
        for code in range(1, 2 ** len(top)):
            support.add(tuple(int(f) for j, f in enumerate(top) if code >> j & 1))
    mobius = {s: _coefficient(rng, len(s), decay) for s in sorted(support)}
    return _with_noise(mobius, n_features, noise, rng)


def random_game(
    n_features: int,
    *,
    n_terms: int = 75,
    max_order: int = 4,
    decay: float = 0.8,
    noise: float = 0.0,
    random_state: int | None = 0,
) -> PlantedGame:
    """A sum of unanimity games (SOUM): random terms of orders 1..max_order, no hierarchy."""
    max_order = _check_terms(n_features, n_terms, max_order)
    rng = as_generator(random_state)
    support: set[tuple[int, ...]] = set()
    for _ in range(100 * n_terms):
        if len(support) >= n_terms:
            break
        size = int(rng.integers(1, max_order + 1))
        support.add(tuple(int(f) for f in np.sort(rng.choice(n_features, size, replace=False))))
    mobius = {s: _coefficient(rng, len(s), decay) for s in sorted(support)}
    return _with_noise(mobius, n_features, noise, rng)


def _with_noise(
    mobius: dict[tuple[int, ...], float], n_features: int, noise: float, rng: np.random.Generator
) -> PlantedGame:
    game = PlantedGame(mobius, n_features=n_features)
    if noise > 0:
        probe = rng.random((2000, n_features)) < 0.5
        game.noise_std = noise * float(np.std(game.exact(probe)))
        game._rng = rng
    return game


def fourier_game(
    n_features: int,
    *,
    n_terms: int = 75,
    max_order: int = 5,
    noise: float = 0.0,
    random_state: int | None = 0,
) -> PlantedGame:
    """A game with ``n_terms`` Fourier coefficients (plus a constant) on random sets.

    The support has no hierarchy: the case SPEX's coding handles and a shallow
    tree proxy does not. Coefficients are ±U(0.5, 1.5) on sets of uniformly
    random size 1..max_order.
    """
    max_order = _check_terms(n_features, n_terms, max_order)
    rng = as_generator(random_state)
    fourier: dict[tuple[int, ...], float] = {(): float(rng.normal())}
    for _ in range(100 * n_terms):
        if len(fourier) >= n_terms + 1:
            break
        size = int(rng.integers(1, max_order + 1))
        subset = tuple(int(f) for f in np.sort(rng.choice(n_features, size, replace=False)))
        fourier[subset] = _coefficient(rng, 1, 1.0)
    mobius = Interactions(fourier, n_features=n_features).mobius
    return _with_noise(mobius, n_features, noise, rng)
