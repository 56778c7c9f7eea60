"""Ridge with GCV: the nested-prefix fits equal one fit per prefix."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyspex_captum.core.ridge import ridge_gcv, ridge_gcv_nested


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(3, 40),
    n_cols=st.integers(1, 50),
    noise=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_nested_prefixes_match_separate_fits(n_rows, n_cols, noise, seed):
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n_rows, n_cols))
    y = x[:, : min(3, n_cols)] @ rng.normal(size=min(3, n_cols)) + noise * rng.normal(size=n_rows)
    # Every regime: the empty design, primal (k < N) and dual (k >= N) prefixes, widest first.
    sizes = sorted({0, 1, n_cols, n_cols // 2, min(n_rows - 1, n_cols)}, reverse=True)
    sizes += sizes[::2]  # repeated sizes (capped candidates coincide), each answered
    for k, nested in zip(sizes, ridge_gcv_nested(x, y, sizes), strict=True):
        alone = ridge_gcv(x[:, :k], y)
        assert nested.coef.shape == (k,)
        scale = 1.0 + np.abs(y).max()
        # Same penalty unless two GCV values tie to rounding; the fits agree to rounding.
        if nested.alpha != alone.alpha:
            assert np.isclose(nested.gcv, alone.gcv, rtol=1e-6, atol=1e-12 * scale**2)
            continue
        np.testing.assert_allclose(nested.coef, alone.coef, rtol=1e-6, atol=1e-8 * scale)
        assert np.isclose(nested.intercept, alone.intercept, rtol=1e-6, atol=1e-8 * scale)
