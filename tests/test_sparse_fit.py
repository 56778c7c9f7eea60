"""core.sparse_fit's lasso against scikit-learn's Lasso, fitted one penalty at a time."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from proxyspex_captum.core.sparse_fit import lasso_alphas, lasso_fit, lasso_path_sse


def _problem(n_samples: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """±1 features (as ProxySPEX's Fourier pools), a sparse signal with an offset, some noise."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n_samples, n_features))
    beta = np.zeros(n_features)
    beta[:8] = rng.normal(size=8)
    return x, 3.0 + x @ beta + 0.2 * rng.normal(size=n_samples)


def _reference_sse(x, y, x_test, y_test, alpha):
    model = Lasso(alpha=alpha, tol=1e-12, max_iter=200_000).fit(x, y)
    residual = model.predict(x_test) - y_test
    return float(residual @ residual)


# More samples than columns, as many (the screened main effects: one per row), and
# fewer (a 500-term pool seen by 200-400 training rows): the Gram matrix in these three;
# over 2,000 columns, scikit-learn's own choice (here: none).
@pytest.mark.parametrize(
    ("n_samples", "n_features"), [(300, 40), (150, 150), (120, 300), (100, 2100)]
)
def test_lasso_path_sse_matches_lasso_at_each_penalty(n_samples, n_features):
    x, y = _problem(n_samples + 100, n_features, seed=n_features)
    train, test = slice(0, n_samples), slice(n_samples, None)
    alphas = lasso_alphas(x[train], y[train], n_alphas=8, ratio=1e-2)
    sse = lasso_path_sse(x[train], y[train], x[test], y[test], alphas)
    expected = [_reference_sse(x[train], y[train], x[test], y[test], a) for a in alphas]
    # The path stops at a dual gap of 1e-4 (relative), the reference far below: 1e-3 apart here.
    np.testing.assert_allclose(sse, expected, rtol=1e-2)
    assert sse[-1] < 0.2 * sse[0]  # the path does go from the constant to the signal


def test_lasso_fit_matches_lasso():
    x, y = _problem(150, 200, seed=3)
    alpha = lasso_alphas(x, y, n_alphas=5, ratio=1e-2)[3]
    coef, intercept = lasso_fit(x, y, alpha)
    model = Lasso(alpha=alpha, tol=1e-12, max_iter=200_000).fit(x, y)
    np.testing.assert_allclose(coef, model.coef_, atol=1e-3)
    assert intercept == pytest.approx(model.intercept_, abs=1e-3)
    assert set(np.flatnonzero(np.abs(coef) > 0.05)) == set(
        np.flatnonzero(np.abs(model.coef_) > 0.05)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.int8, bool])
def test_lasso_takes_the_dtypes_scikit_learn_takes(dtype):
    """float32 stays float32 (y follows it), other types become float64, as Lasso does."""
    x, y = _problem(200, 60, seed=7)
    x_typed = (x > 0).astype(dtype) if dtype is bool else x.astype(dtype)
    alpha = lasso_alphas(x_typed.astype(float), y)[10]
    coef, intercept = lasso_fit(x_typed, y, alpha)
    model = Lasso(alpha=alpha, tol=1e-12, max_iter=200_000).fit(x_typed, y)
    np.testing.assert_allclose(coef, model.coef_, atol=1e-3)
    assert intercept == pytest.approx(model.intercept_, abs=1e-3)
