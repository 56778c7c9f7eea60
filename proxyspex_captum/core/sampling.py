"""Mask designs: which feature subsets to query.

All randomness comes from the ``numpy.random.Generator`` passed in; the global
numpy RNG is never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np

from .checks import check_int, check_real

__all__ = [
    "MAX_ENUMERATED_FEATURES",
    "all_masks",
    "as_generator",
    "child_generator",
    "each_from_the_same_draws",
    "uniform_masks",
]

T = TypeVar("T")
R = TypeVar("R")

# Up to this many features, all 2**n masks may be enumerated (2**22 masks of 22
# features: 92 MB of booleans) and sampling without replacement is done on mask
# codes, which cannot loop however close the sample comes to all 2**n masks.
MAX_ENUMERATED_FEATURES = 22
# Rounds of fresh draws before biased sampling gives up on finding enough distinct masks.
MAX_DRAW_ROUNDS = 1000


def as_generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a generator, or ``None`` (fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        raise TypeError("Pass a seed or numpy.random.Generator, not a legacy RandomState.")
    return np.random.default_rng(random_state)


def child_generator(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator derived from ``rng``, whose own stream it leaves as it was.

    ``rng.spawn`` where the bit generator's seed sequence can spawn (any
    generator made from a seed). A bit generator built from a key or a raw
    state cannot: the child is then seeded from the numbers ``rng`` would draw
    next, read off a copy, behind a tag of its own so that it does not replay
    ``rng``'s stream.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> child = child_generator(rng)
        >>> int(rng.integers(100)) == int(np.random.default_rng(0).integers(100))
        True
        >>> keyed = np.random.Generator(np.random.Philox(key=7))
        >>> child = child_generator(keyed)  # no seed sequence to spawn from
        >>> same = np.random.Generator(np.random.Philox(key=7))
        >>> int(keyed.integers(100)) == int(same.integers(100))
        True
    """
    if isinstance(getattr(rng.bit_generator, "seed_seq", None), np.random.SeedSequence):
        return rng.spawn(1)[0]
    upcoming = np.random.Generator(copy.deepcopy(rng.bit_generator)).integers(2**32, size=4)
    return np.random.default_rng([0xC41D, *upcoming.tolist()])


def each_from_the_same_draws(
    rng: np.random.Generator, items: Iterable[T], fit: Callable[[T], R]
) -> list[R]:
    """``[fit(item) for item in items]``, each call starting from ``rng``'s present state.

    Used for the outputs of one explanation: an output's fit (its folds, its
    seeds) then depends neither on the other outputs nor on their order, so a
    test point explained in a batch gets what it gets alone. ``rng`` ends
    where the first call left it, as with one output.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> each_from_the_same_draws(rng, ["a", "b"], lambda item: (item, int(rng.integers(100))))
        [('a', 85), ('b', 85)]
        >>> int(rng.integers(100)) == int(np.random.default_rng(0).integers(100, size=2)[1])
        True
    """
    start, end, out = rng.bit_generator.state, None, []
    for item in items:
        rng.bit_generator.state = start
        out.append(fit(item))
        if end is None:
            end = rng.bit_generator.state
    if end is not None:
        rng.bit_generator.state = end
    return out


def all_masks(n_features: int) -> np.ndarray:
    """All ``2**n`` masks; row ``r`` holds the bits of the integer ``r`` (feature 0 lowest)."""
    n_features = check_int("n_features", n_features, 0)
    if n_features > MAX_ENUMERATED_FEATURES:
        raise ValueError(
            f"Refusing to enumerate 2**{n_features} masks (at most "
            f"2**{MAX_ENUMERATED_FEATURES} fit in memory at once); sample fewer masks."
        )
    return _codes_to_masks(np.arange(2**n_features, dtype=np.int64), n_features)


def _codes_to_masks(codes: np.ndarray, n_features: int) -> np.ndarray:
    return ((codes[:, None] >> np.arange(n_features, dtype=np.int64)) & 1).astype(bool)


def uniform_masks(
    n_features: int,
    n_samples: int,
    rng: np.random.Generator,
    *,
    include_extremes: bool = True,
    antithetic: bool = False,
    keep_probability: float = 0.5,
) -> np.ndarray:
    """Distinct masks drawn uniformly from ``{0,1}^n`` (or biased toward keeping features).

    Args:
        n_features: Number of features ``n``.
        n_samples: Number of masks wanted; capped at ``2**n`` (then every mask
            is returned once).
        rng: Source of randomness.
        include_extremes: Always include the empty and the full mask (rows 0 and
            1, except when all ``2**n`` masks are returned in their natural order).
        antithetic: Draw masks in complementary pairs ``m, 1 − m`` (measured to
            hurt faithfulness on average: half as many independent draws).
        keep_probability: Each feature is kept with this probability,
            independently (0.5: every mask alike). Repeated draws are
            discarded, so with few features the distinct masks lean less
            than this toward large subsets.

    Returns:
        A ``(min(n_samples, 2**n), n)`` boolean array with no repeated row.
    """
    n_features = check_int("n_features", n_features, 1)
    n_samples = check_int("n_samples", n_samples, 1)
    keep_probability = check_real(
        "keep_probability", keep_probability, 0.0, 1.0, low_open=True, high_open=True
    )
    uniform = keep_probability == 0.5
    if antithetic and not uniform:
        raise ValueError("antithetic pairs m, 1 - m need keep_probability=0.5.")
    if n_features < 63 and n_samples >= 2**n_features:
        return all_masks(n_features)  # refuses when 2**n masks do not fit in memory
    fixed = []
    if include_extremes:
        fixed = [np.zeros(n_features, bool), np.ones(n_features, bool)][: min(2, n_samples)]
    if uniform and n_features <= MAX_ENUMERATED_FEATURES:
        return _small_n_masks(n_features, n_samples, rng, fixed, antithetic)
    # Large n: collisions are astronomically rare, but check anyway. (Biased draws at
    # small n collide more: the rounds are bounded.)
    out = np.array(fixed, dtype=bool).reshape(-1, n_features)
    seen = {row.tobytes() for row in np.packbits(out, axis=1)}
    for _ in range(MAX_DRAW_ROUNDS):
        if len(out) >= n_samples:
            break
        need = n_samples - len(out)
        draw = rng.random((need if not antithetic else (need + 1) // 2, n_features))
        draw = draw < keep_probability
        if antithetic:
            draw = np.stack([draw, ~draw], axis=1).reshape(-1, n_features)
        fresh = []
        for row, packed in zip(draw, np.packbits(draw, axis=1), strict=True):
            key = packed.tobytes()
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        if fresh:
            out = np.concatenate([out, np.array(fresh)])
    if len(out) < n_samples:
        raise ValueError(
            f"Could not draw {n_samples} distinct masks of {n_features} features with "
            f"keep_probability={keep_probability}: lower the budget or move the probability "
            "toward 0.5."
        )
    return out[:n_samples]


def _small_n_masks(
    n_features: int,
    n_samples: int,
    rng: np.random.Generator,
    fixed: list[np.ndarray],
    antithetic: bool,
) -> np.ndarray:
    full = 2**n_features - 1
    reserved = [0, full][: len(fixed)]
    if antithetic:
        # Pairs {c, full ^ c}: pick among the codes below the half.
        half = np.setdiff1d(np.arange(2 ** (n_features - 1), dtype=np.int64), reserved)
        k = min(len(half), -(-(n_samples - len(reserved)) // 2))
        picked = rng.choice(half, size=k, replace=False)
        # Which of a pair comes first, at random: below the half, the first always
        # dropped feature n - 1, and so did an odd sample's unpaired last mask.
        picked = np.where(rng.random(k) < 0.5, picked, full ^ picked)
        codes = np.stack([picked, full ^ picked], axis=1).ravel()
    else:
        pool = np.setdiff1d(np.arange(2**n_features, dtype=np.int64), reserved)
        codes = rng.choice(pool, size=n_samples - len(reserved), replace=False)
    codes = np.concatenate([np.array(reserved, dtype=np.int64), codes])[:n_samples]
    return _codes_to_masks(codes, n_features)


def coded_masks(
    n_features: int, b: int, delays: np.ndarray, n_groups: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """SPEX's design: masks ``M_c ℓ ⊕ d`` for every group ``c``, delay ``d`` and ``ℓ ∈ {0,1}^b``.

    Args:
        n_features: Number of features ``n``.
        b: Bits per group: each group aliases the Fourier spectrum into ``2**b`` bins.
        delays: ``(P, n)`` boolean delay rows (the zero row first).
        n_groups: Number of independent subsampling groups ``C``.
        rng: Source of the uniform random matrices ``M_c ∈ {0,1}^{n×b}``.

    Returns:
        ``(subsampling, masks)``: the ``(C, n, b)`` matrices and the
        ``(C, P, 2**b, n)`` masks, where index bit ``i`` of ``ℓ`` is ``ℓ_i``
        (the order :func:`.walsh.fwht` expects).
    """
    subsampling = rng.random((n_groups, n_features, b)) < 0.5
    ell = all_masks(b).astype(np.int64)  # (2**b, b)
    # (C, 2**b, n): M_c ℓ mod 2 for every ℓ
    aliased = (np.einsum("lb,cnb->cln", ell, subsampling.astype(np.int64)) & 1).astype(bool)
    masks = aliased[:, None, :, :] ^ delays[None, :, None, :]
    return subsampling, masks
