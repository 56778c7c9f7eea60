"""Interaction indices computed from their definitions by enumerating all 2**n masks.

Deliberately slow and literal: this is the ground truth the fast sparse
conversions are checked against. Sets are bitmask integers here.
"""

from __future__ import annotations

from itertools import combinations
from math import comb, factorial

import numpy as np
from scipy.special import bernoulli


def all_masks(n: int) -> np.ndarray:
    """Every mask of n features, row r being the bits of the integer r."""
    codes = np.arange(2**n)[:, None]
    return ((codes >> np.arange(n)) & 1).astype(bool)


def to_bits(subset) -> int:
    return sum(1 << i for i in subset)


def popcount(x: int) -> int:
    return bin(x).count("1")


def subsets_of(x: int):
    sub = x
    while True:
        yield sub
        if sub == 0:
            return
        sub = (sub - 1) & x


def sets_up_to(n: int, order: int, min_size: int = 0):
    for k in range(min_size, order + 1):
        yield from combinations(range(n), k)


def mobius(table: np.ndarray, n: int) -> dict:
    out = {}
    for k in range(n + 1):
        for s in combinations(range(n), k):
            b = to_bits(s)
            out[s] = sum((-1) ** (k - popcount(t)) * table[t] for t in subsets_of(b))
    return out


def fourier(table: np.ndarray, n: int) -> dict:
    masks = all_masks(n)
    out = {}
    for k in range(n + 1):
        for s in combinations(range(n), k):
            parity = (-1.0) ** masks[:, list(s)].sum(axis=1)
            out[s] = float(table @ parity) / 2**n
    return out


def derivative(table, s_bits, t_bits) -> float:
    s = popcount(s_bits)
    return sum((-1) ** (s - popcount(sub)) * table[t_bits | sub] for sub in subsets_of(s_bits))


def _outside(n, s_bits):
    rest = (2**n - 1) & ~s_bits
    return list(subsets_of(rest))


def shapley(table, n):
    out = np.zeros(n)
    for i in range(n):
        for t in _outside(n, 1 << i):
            k = popcount(t)
            out[i] += (
                factorial(k) * factorial(n - k - 1) / factorial(n) * (table[t | 1 << i] - table[t])
            )
    return out


def banzhaf(table, n):
    out = np.zeros(n)
    for i in range(n):
        out[i] = sum(table[t | 1 << i] - table[t] for t in _outside(n, 1 << i)) / 2 ** (n - 1)
    return out


def sii(table, n, order):
    out = {}
    for s in sets_up_to(n, order, 1):
        b, k = to_bits(s), len(s)
        out[s] = sum(
            factorial(n - popcount(t) - k)
            * factorial(popcount(t))
            / factorial(n - k + 1)
            * derivative(table, b, t)
            for t in _outside(n, b)
        )
    return out


def bii(table, n, order):
    out = {}
    for s in sets_up_to(n, order, 1):
        b = to_bits(s)
        out[s] = sum(derivative(table, b, t) for t in _outside(n, b)) / 2 ** (n - len(s))
    return out


def stii(table, n, order):
    out = {}
    for s in sets_up_to(n, order):
        b = to_bits(s)
        if len(s) < order:
            out[s] = derivative(table, b, 0)
        else:
            out[s] = (
                order
                / n
                * sum(derivative(table, b, t) / comb(n - 1, popcount(t)) for t in _outside(n, b))
            )
    return out


def k_sii(table, n, order):
    base = sii(table, n, order)
    bern = bernoulli(order)
    out = {(): table[0]}
    for s in sets_up_to(n, order, 1):
        out[s] = sum(
            bern[len(t) - len(s)] * value for t, value in base.items() if set(s) <= set(t)
        )
    return out


def _faithful(table, n, order, weights, constrained):
    """Weighted least squares of v by Σ_{S ⊆ m, |S| <= order} I(S)."""
    sets = list(sets_up_to(n, order))
    masks = all_masks(n)
    design = np.array([[all(m[i] for i in s) for s in sets] for m in masks], dtype=float)
    if not constrained:
        w = np.sqrt(weights)
        coef = np.linalg.lstsq(design * w[:, None], table * w, rcond=None)[0]
    else:
        # Exact at the empty and full masks (Lagrange multipliers).
        inner = np.arange(1, 2**n - 1)
        a, y, w = design[inner], table[inner], weights[inner]
        c = design[[0, 2**n - 1]]
        d = table[[0, 2**n - 1]]
        kkt = np.block([[2 * a.T @ (w[:, None] * a), c.T], [c, np.zeros((2, 2))]])
        rhs = np.concatenate([2 * a.T @ (w * y), d])
        coef = np.linalg.solve(kkt, rhs)[: len(sets)]
    return dict(zip(sets, coef, strict=True))


def fbii(table, n, order):
    return _faithful(table, n, order, np.ones(2**n), constrained=False)


def fsii(table, n, order):
    sizes = all_masks(n).sum(axis=1)
    weights = np.zeros(2**n)
    inner = (sizes > 0) & (sizes < n)
    k = sizes[inner]
    weights[inner] = (n - 1) / (np.array([comb(n, int(j)) for j in k]) * k * (n - k))
    return _faithful(table, n, order, weights, constrained=True)


def table_from_fourier(fourier: dict, n: int) -> np.ndarray:
    """v(m) = Σ_S F(S)·(−1)^{|S ∩ m|} at every mask, straight from the definition."""
    masks = all_masks(n)
    table = np.zeros(2**n)
    for s, value in fourier.items():
        table += value * (-1.0) ** masks[:, list(s)].sum(axis=1)
    return table


def table_from_mobius(mobius: dict, n: int) -> np.ndarray:
    """v(m) = Σ_{S ⊆ m} a(S) at every mask, straight from the definition."""
    masks = all_masks(n)
    table = np.zeros(2**n)
    for s, value in mobius.items():
        table += value * masks[:, list(s)].all(axis=1)
    return table
