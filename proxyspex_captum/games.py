"""Planted sparse games: value functions whose interactions are known exactly.

They are the ground truth for tests and benchmarks: a game is a sparse Möbius
function ``v(m) = Σ_S a(S) · [S ⊆ m]``, optionally with Gaussian noise. The
noise of a mask is a function of the game's seed and the mask alone, so a
noisy game gives the same values in any order, on any executor, and through
a cache.

Examples:
    >>> import numpy as np
    >>> from proxyspex_captum.games import PlantedGame
    >>> game = PlantedGame({(0,): 1.0, (0, 1): 2.0}, n_features=3, noise_std=0.1, random_state=0)
    >>> masks = np.array([[1, 1, 0], [1, 0, 1]], dtype=bool)
    >>> game.exact(masks).tolist()
    [3.0, 1.0]
    >>> bool(np.array_equal(game(masks), game(masks[::-1])[::-1]))  # order does not matter
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from math import comb

import numpy as np

from .core.checks import check_int, check_real
from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.subsets import PAD, pad_sets
from .core.value_function import validate_masks

__all__ = ["PlantedGame", "fourier_game", "hierarchical_game", "random_game"]


class PlantedGame:
    """A value function with known Möbius coefficients.

    Args:
        mobius: ``{sorted feature ids: a(S)}``.
        n_features: Number of features.
        noise_std: Standard deviation of the Gaussian noise added to every query.
            A mask's noise depends on the seed and the mask only: the same mask
            gets the same noise, whatever was asked before or where it runs.
        random_state: Seed of the noise (a generator gives one draw for it).

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
        self.n_features = check_int("n_features", n_features, 1)
        self.interactions = Interactions.from_mobius(mobius, n_features=self.n_features)
        self.mobius = self.interactions.mobius  # validated, duplicates summed
        self.noise_std = check_real("noise_std", noise_std, 0.0)
        self.noise_seed = _noise_seed(random_state)
        self._rows = pad_sets(self.mobius)
        self._values = np.array(list(self.mobius.values()))

    def exact(self, masks: np.ndarray) -> np.ndarray:
        """Noiseless values of boolean masks ``(k, n)`` (or one mask ``(n,)``: a number)."""
        masks = np.asarray(masks)
        single = masks.ndim == 1
        masks = validate_masks(np.atleast_2d(masks), self.n_features)
        present = np.where(self._rows == PAD, True, masks[:, np.maximum(self._rows, 0)])
        values = present.all(axis=2).astype(float) @ self._values
        return values[0] if single else values

    def noise(self, masks: np.ndarray) -> np.ndarray:
        """Each mask's standard normal draw, a function of the seed and the mask alone."""
        masks = validate_masks(np.atleast_2d(np.asarray(masks)), self.n_features)
        seed = self.noise_seed.to_bytes(16, "little")
        rows = np.packbits(masks, axis=1)
        return np.array(
            [
                np.random.default_rng(
                    int.from_bytes(hashlib.blake2b(row.tobytes(), key=seed).digest(), "little")
                ).standard_normal()
                for row in rows
            ]
        )

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        values = self.exact(masks)
        if self.noise_std > 0:
            values = values + self.noise_std * self.noise(masks).reshape(np.shape(values))
        return values


def _noise_seed(random_state: int | np.random.Generator | None) -> int:
    """A 128-bit seed of the noise: the given seed, one draw of a generator, or fresh entropy."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy) % 2**128
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    return check_int("random_state", random_state, 0) % 2**128


def _check_terms(
    n_features: int, n_terms: int, max_order: int, noise: float
) -> tuple[int, int, int]:
    """The options checked, the order clipped to ``n``; more terms than there are sets refused."""
    n_features = check_int("n_features", n_features, 1)
    n_terms = check_int("n_terms", n_terms, 1)
    check_real("noise", noise, 0.0)
    max_order = min(check_int("max_order", max_order, 1), n_features)
    available = sum(comb(n_features, k) for k in range(1, max_order + 1))
    if n_terms > available:
        raise ValueError(
            f"Only {available} non-empty sets of at most {max_order} of {n_features} features "
            f"exist; asked for {n_terms} terms."
        )
    return n_features, n_terms, max_order


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
    n_features, n_terms, max_order = _check_terms(n_features, n_terms, max_order, noise)
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
    n_features, n_terms, max_order = _check_terms(n_features, n_terms, max_order, noise)
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
        game.noise_seed = _noise_seed(rng)
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
    n_features, n_terms, max_order = _check_terms(n_features, n_terms, max_order, noise)
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
