"""Vectorised bookkeeping for sparse set functions.

Every transform in the library (trees to Fourier, Fourier to Möbius and back,
Möbius to the interaction indices) has the same shape: each *source* set ``T``
with some per-size weight spreads a contribution over all of its subsets
``S ⊆ T``, and contributions landing on the same ``S`` are summed. This module
does that once, with numpy, so that no transform loops over sets in Python and
nothing of size ``2**n`` or ``n**order`` is ever allocated.

Sets are held as *padded rows*: an ``int64`` matrix whose row ``r`` lists the
sorted feature ids of set ``r`` followed by ``-1`` padding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PAD = -1


def pad_sets(sets: Iterable[Sequence[int]], width: int | None = None) -> np.ndarray:
    """Return the padded-row matrix of ``sets`` (each sorted, ``-1`` padded).

    Raises:
        ValueError: for a negative or non-integer feature id, or an id repeated in a set.
    """
    sets = [tuple(sorted(_feature_id(i) for i in s)) for s in sets]
    for s in sets:
        if len(set(s)) != len(s):
            raise ValueError(f"Feature ids repeat in the set {s}.")
    longest = max((len(s) for s in sets), default=0)
    width = longest if width is None else max(width, longest)
    rows = np.full((len(sets), width), PAD, dtype=np.int64)
    for r, s in enumerate(sets):
        rows[r, : len(s)] = s
    return rows


def _feature_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"Feature ids must be non-negative integers, got {value!r}.")
    if value < 0:
        raise ValueError(f"Feature ids must be non-negative integers, got {value}.")
    return int(value)


def unpad_sets(rows: np.ndarray) -> list[tuple[int, ...]]:
    """Inverse of :func:`pad_sets`: a list of sorted tuples."""
    return [tuple(int(i) for i in row if i != PAD) for row in np.asarray(rows)]


def set_sizes(rows: np.ndarray) -> np.ndarray:
    """Number of features in each padded row."""
    return (rows != PAD).sum(axis=1)


def aggregate(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` over identical sets.

    Args:
        rows: ``(m, w)`` padded rows, each sorted with padding at the end.
        values: ``(m,)`` contributions.

    Returns:
        ``(unique_rows, sums)`` with one row per distinct set, sorted.
    """
    rows = np.asarray(rows, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if rows.shape[0] == 0:
        return rows, values
    # Pack each row into one integer when it fits: np.unique on int64 is many
    # times faster than on rows.
    width = rows.shape[1]
    if width == 0:  # only the empty set
        return rows[:1], np.array([values.sum()])
    base = int(rows.max()) + 2
    if width * np.log2(base) < 62:
        keys = np.zeros(rows.shape[0], dtype=np.int64)
        for j in range(width):
            keys = keys * base + (rows[:, j] + 1)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=values, minlength=len(first))
    return rows[first], sums


def _subset_table(size: int) -> np.ndarray:
    """All ``2**size`` subsets of ``range(size)`` as a boolean ``(2**size, size)`` table."""
    codes = np.arange(2**size, dtype=np.int64)[:, None]
    return ((codes >> np.arange(size, dtype=np.int64)) & 1).astype(bool)


def spread_to_subsets(
    rows: np.ndarray,
    weights: np.ndarray,
    *,
    signs: np.ndarray | None = None,
    max_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Spread every source set's weight over all of its subsets and sum.

    The contribution of source set ``T`` (row ``r``) to a subset ``S ⊆ T`` is
    ``weights[r, |S|] * prod(signs[r, j] for j in S)``.

    Args:
        rows: ``(m, w)`` padded source sets.
        weights: ``(m, w + 1)`` weight of each source set for each subset size.
        signs: optional ``(m, w)`` ±1 factor per feature of each source set.
        max_size: only produce subsets with at most this many features.

    Returns:
        ``(subset_rows, sums)``: distinct subsets with a nonzero source, and
        their summed contributions.
    """
    rows = np.asarray(rows, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    width = rows.shape[1]
    max_size = width if max_size is None else min(max_size, width)
    sizes = set_sizes(rows)
    out_rows, out_vals = [], []
    for size in np.unique(sizes):
        size = int(size)
        members = np.flatnonzero(sizes == size)
        feats = rows[members, :size]
        table = _subset_table(size)
        sub_sizes = table.sum(axis=1)
        keep = sub_sizes <= max_size
        table, sub_sizes = table[keep], sub_sizes[keep]
        contrib = weights[members][:, sub_sizes]
        if signs is not None:
            sg = np.asarray(signs, dtype=float)[members, :size]
            contrib = contrib * np.where(table[None], sg[:, None, :], 1.0).prod(axis=2)
        # Subset rows: keep chosen features, push the holes to the end. Rows are
        # sorted, so a stable sort with holes as +inf preserves the order.
        sub = np.where(table[None], feats[:, None, :], np.iinfo(np.int64).max)
        sub = np.sort(sub, axis=2)
        sub = np.where(sub == np.iinfo(np.int64).max, PAD, sub)[:, :, :max_size]
        padded = np.full((*sub.shape[:2], max_size), PAD, dtype=np.int64)
        padded[:, :, : sub.shape[2]] = sub
        out_rows.append(padded.reshape(len(members) * len(table), max_size))
        out_vals.append(contrib.reshape(-1))
    if not out_rows:
        return np.zeros((0, max_size), dtype=np.int64), np.zeros(0)
    return aggregate(np.concatenate(out_rows), np.concatenate(out_vals))


def fourier_features(masks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fourier basis ``(−1)^{|S ∩ m|}`` of each set (column) at each mask (row).

    Args:
        masks: ``(k, n)`` boolean masks.
        rows: ``(m, w)`` padded sets.

    Returns:
        A dense ``(k, m)`` array of ±1.
    """
    masks = np.asarray(masks, dtype=bool)
    parity = np.zeros((masks.shape[0], rows.shape[0]), dtype=bool)
    # One XOR per position in the sets (w <= the interaction order), never over all n.
    for j in range(rows.shape[1]):
        column = rows[:, j]
        present = column != PAD
        parity[:, present] ^= masks[:, column[present]]
    return np.where(parity, -1.0, 1.0)
