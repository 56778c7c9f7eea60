"""Fast Walsh–Hadamard transform."""

from __future__ import annotations

import numpy as np

__all__ = ["fwht"]


def fwht(values: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh–Hadamard transform along the first axis.

    ``out[k] = Σ_j values[j] · (−1)^{popcount(j & k)}``, for a first axis of
    length ``2**b``; further axes are transformed independently (batched).
    Index bit ``i`` stands for feature ``i``, as in :func:`.sampling.all_masks`,
    so the Fourier coefficients of a full table of values are ``fwht(table) / 2**n``.

    Examples:
        >>> fwht(np.array([1.0, 0.0, 0.0, 0.0]))
        array([1., 1., 1., 1.])
    """
    out = np.array(values, dtype=float)
    size = out.shape[0]
    if size == 0 or size & (size - 1):
        raise ValueError(f"The transformed axis must have a power-of-two length, got {size}.")
    rest = out.shape[1:]
    half = 1
    while half < size:
        view = out.reshape(size // (2 * half), 2, half, *rest)
        top = view[:, 0].copy()
        view[:, 0] += view[:, 1]
        view[:, 1] = top - view[:, 1]
        half *= 2
    return out
