"""Planted sparse games: value functions whose interactions are known exactly.

They are the ground truth for tests and benchmarks: a game is a sparse Möbius
function ``v(m) = Σ_S a(S) · [S ⊆ m]``, optionally with Gaussian noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.subsets import PAD, pad_sets

__all__ = ["PlantedGame", "hierarchical_game", "random_game"]


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
        self.mobius = {tuple(sorted(s)): float(v) for s, v in mobius.items()}
        self.n_features = n_features
        self.noise_std = noise_std
        self._rng = as_generator(random_state)
        self._rows = pad_sets(self.mobius)
        self._values = np.array(list(self.mobius.values()))
        self.interactions = Interactions.from_mobius(self.mobius, n_features=n_features)

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
    rng = as_generator(random_state)
    support: set[tuple[int, ...]] = set()
    while len(support) < n_terms:
        top = np.sort(rng.choice(n_features, size=min(max_order, n_features), replace=False))
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
    rng = as_generator(random_state)
    support: set[tuple[int, ...]] = set()
    while len(support) < n_terms:
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
