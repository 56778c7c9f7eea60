"""core.sparse_fit: the lasso against scikit-learn's Lasso, fitted one penalty at a time,
and the cross-validated errors that choose among candidates."""

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Lasso

from proxyspex_captum.core.sparse_fit import (
    N_ALPHAS,
    PATH_PATIENCE,
    STOP_RATIO,
    CVErrors,
    clearly_better,
    fold_indices,
    lasso_alphas,
    lasso_fit,
    lasso_path_residuals,
    lasso_path_sse,
    ridge_prefix_residuals,
    ridge_prefix_sse,
    score_linear,
)


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


def _folds(*per_fold: dict) -> CVErrors:
    """Errors as the estimators gather them: each fold's own object, merged in fold order."""
    total = CVErrors()
    for errors in per_fold:
        fold = CVErrors()
        for key, sse in errors.items():
            part = CVErrors()  # one scoring job's candidates
            part.add(key, sse)
            fold.merge(part)
        total.merge(fold)
    return total


def test_cv_errors_keep_each_folds_error_through_merges():
    errors = _folds(
        {("ridge", 50): 1.0, ("lasso", 3): 2.0},
        {("ridge", 50): 4.0, ("lasso", 3): 0.5},
        {("ridge", 50): 2.0, ("lasso", 3): 1.0},
    )
    assert errors.by_fold(("ridge", 50)).tolist() == [1.0, 4.0, 2.0]
    assert errors.by_fold(("lasso", 3)).tolist() == [2.0, 0.5, 1.0]
    assert errors.sse[("ridge", 50)] == 7.0


def test_best_among_names_only():
    errors = _folds(
        {("ridge", 50): 1.0, ("lasso", 3): 2.0, ("lasso", 4): 1.5, "linear": 0.5},
        {("ridge", 50): 1.0, ("lasso", 3): 2.0, ("lasso", 4): 1.5, "linear": 0.5},
    )
    assert errors.best() == ("linear", "linear")
    assert errors.best(among=("lasso", "lasso-mobius")) == ("lasso", ("lasso", 4))
    assert errors.best(among=("ridge",)) == ("ridge", ("ridge", 50))
    with pytest.raises(KeyError, match="lasso-mobius"):
        errors.best(among=("lasso-mobius",))
    # A name given alone is that name, not its letters (nor a substring of another).
    assert errors.best(among="lasso") == ("lasso", ("lasso", 4))
    with pytest.raises(KeyError):
        errors.best(among="lasso-mobius")


def test_clearly_better_needs_the_same_folds():
    errors = _folds({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="same folds"):
        clearly_better(errors, "a", "b")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 100.0, allow_subnormal=False),
            st.floats(0.0, 100.0, allow_subnormal=False),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_clearly_better_is_the_one_standard_error_rule(pairs):
    errors = _folds(*({"a": a, "b": b} for a, b in pairs))
    if len(pairs) < 2:
        assert not clearly_better(errors, "a", "b")
        assert not clearly_better(errors, "b", "a")
        return
    excess = [b - a for a, b in pairs]  # b's excess error over a, fold by fold
    mean, se = statistics.fmean(excess), statistics.stdev(excess) / len(excess) ** 0.5
    # Away from the boundary (where rounding may decide), the rule as stated.
    if abs(mean - se) > 1e-9 * (1.0 + abs(mean) + se):
        assert clearly_better(errors, "a", "b") == (mean > se)
    assert not (clearly_better(errors, "a", "b") and clearly_better(errors, "b", "a"))


@pytest.mark.parametrize(
    ("n_samples", "n_features", "seed"), [(120, 300, 0), (200, 50, 1), (80, 500, 2)]
)
@pytest.mark.parametrize("patience", [1, 3])
def test_a_path_ended_early_is_the_whole_paths_prefix(n_samples, n_features, seed, patience):
    x, y = _problem(n_samples, n_features, seed)
    train, test = np.arange(n_samples) % 4 != 0, np.arange(n_samples) % 4 == 0
    alphas = lasso_alphas(x[train], y[train])
    whole = lasso_path_sse(x[train], y[train], x[test], y[test], alphas)
    early = lasso_path_sse(x[train], y[train], x[test], y[test], alphas, patience=patience)
    # Fitted in stretches, each resumed from the last coefficients: the same path (the
    # held-out predictions of a narrower block may round differently in the last bits).
    np.testing.assert_allclose(early, whole[: len(early)], rtol=1e-12, atol=0)
    ends = [k for k in range(1, len(whole) + 1) if _past_its_best(early[:k], patience)]
    if ends:  # it ends at the first penalty past its best, whatever the stretches
        assert len(early) == ends[0]
    else:
        assert len(early) == len(whole)


def _past_its_best(sse, patience):
    """The stopping rule as documented: the last `patience` errors above 1.1 x the least."""
    return len(sse) > patience and all(v > STOP_RATIO * min(sse) for v in sse[-patience:])


def test_a_noisy_wide_path_ends_early():
    """Many more columns than rows and a noisy target: the late penalties overfit."""
    rng = np.random.default_rng(5)
    x = rng.choice([-1.0, 1.0], size=(150, 400))
    y = x[:, 0] - 0.5 * x[:, 1] + rng.normal(size=150)
    alphas = lasso_alphas(x[:100], y[:100])
    sse = lasso_path_sse(x[:100], y[:100], x[100:], y[100:], alphas, patience=3)
    assert len(sse) < len(alphas)


def test_the_first_order_lasso_path_ends_past_its_best():
    """score_linear scores its lasso with PATH_PATIENCE: on a wide noisy problem (as
    many screened main effects as training rows) the path stops short of the grid,
    at the first penalty past its best, and the steps it scored are the whole path's."""
    rng = np.random.default_rng(7)
    main = rng.choice([-1.0, 1.0], size=(250, 400))
    y = main[:, :3] @ np.array([1.0, -0.8, 0.5]) + 0.7 * rng.normal(size=250)
    train, test = np.flatnonzero(np.arange(250) % 5 != 0), np.flatnonzero(np.arange(250) % 5 == 0)
    errors = CVErrors()
    score_linear(errors, main, y, train, test)
    steps = [key[1] for key in errors.sse if key[0] == "linear-lasso"]
    assert len(steps) < N_ALPHAS
    # The same screened columns and grid, scored whole (score_linear keeps 200 = one a row).
    scores = np.abs((main[train] - main[train].mean(axis=0)).T @ (y[train] - y[train].mean()))
    x = main[:, np.sort(np.argsort(-scores, kind="stable")[:200])]
    whole = lasso_path_sse(x[train], y[train], x[test], y[test], lasso_alphas(x[train], y[train]))
    scored = [errors.sse[("linear-lasso", step)] for step in steps]
    np.testing.assert_allclose(scored, whole[: len(steps)], rtol=1e-12, atol=0)
    ends = [k for k in range(1, N_ALPHAS + 1) if _past_its_best(whole[:k], PATH_PATIENCE)]
    assert len(steps) == ends[0]


@pytest.mark.parametrize(
    ("patience", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2.5, TypeError),
        (True, TypeError),
        ("3", TypeError),
        (float("nan"), TypeError),
    ],
)
def test_patience_is_checked(patience, error):
    x, y = _problem(60, 10, 0)
    with pytest.raises(error, match="patience"):
        lasso_path_sse(x[:40], y[:40], x[40:], y[40:], lasso_alphas(x, y), patience=patience)


def test_an_empty_grid_gives_no_errors():
    x, y = _problem(60, 10, 0)
    for patience in (None, 3):
        sse = lasso_path_sse(x[:40], y[:40], x[40:], y[40:], np.zeros(0), patience=patience)
        assert sse.shape == (0,)


@pytest.mark.parametrize("patience", [None, 2])
def test_the_residuals_are_the_held_out_predictions_errors_that_the_sse_sums(patience):
    x, y = _problem(260, 60, seed=7)
    train, test = slice(0, 200), slice(200, None)
    alphas = lasso_alphas(x[train], y[train])
    sse, residuals = lasso_path_residuals(
        x[train], y[train], x[test], y[test], alphas, patience=patience
    )
    # The same errors as lasso_path_sse, bit for bit, and each step's residual is
    # that penalty's fit predicting the held-out rows.
    plain = lasso_path_sse(x[train], y[train], x[test], y[test], alphas, patience=patience)
    assert sse.tobytes() == plain.tobytes()
    assert residuals.shape == (60, len(sse))
    np.testing.assert_allclose((residuals**2).sum(axis=0), sse, rtol=1e-12)
    for step in (0, len(sse) // 2, len(sse) - 1):
        coef, intercept = lasso_fit(x[train], y[train], alphas[step])
        np.testing.assert_allclose(
            residuals[:, step], x[test] @ coef + intercept - y[test], atol=1e-3
        )
    sizes = [5, 20, 60]
    sses, ridge = ridge_prefix_residuals(x[train], y[train], x[test], y[test], sizes)
    assert sses == ridge_prefix_sse(x[train], y[train], x[test], y[test], sizes)
    np.testing.assert_allclose([r @ r for r in ridge], sses, rtol=1e-12)


def test_a_blend_is_scored_on_the_mean_of_its_parts_held_out_predictions():
    # Ground truth: fit two models on each fold by hand, average their held-out
    # predictions, and compare with the blend that CVErrors builds from residuals.
    x, y = _problem(300, 40, seed=11)
    rng = np.random.default_rng(0)
    errors, expected = CVErrors(), []
    for train, test in fold_indices(len(y), 5, rng):
        alphas = lasso_alphas(x[train], y[train])
        sse, residuals = lasso_path_residuals(x[train], y[train], x[test], y[test], alphas)
        errors.add_path("lasso", sse, residuals)
        (ridge_sse,), (ridge,) = ridge_prefix_residuals(x[train], y[train], x[test], y[test], [10])
        errors.add(("ridge", 10), ridge_sse, ridge)
        coef, intercept = lasso_fit(x[train], y[train], alphas[6])
        lasso_prediction = x[test] @ coef + intercept
        mean = (lasso_prediction + (ridge + y[test])) / 2 - y[test]
        expected.append(float(mean @ mean))
    errors.add_mean("blend", [("ridge", 10), ("lasso", 6)])
    np.testing.assert_allclose(errors.by_fold("blend"), expected, rtol=1e-3)
    assert errors.sse["blend"] == pytest.approx(sum(expected), rel=1e-3)
    # Folds merged from separate sets keep their residuals in order: the same blend.
    merged = CVErrors()
    for fold in range(5):
        one = CVErrors()
        for key in [("ridge", 10), ("lasso", 6)]:
            one.add(key, errors.by_fold(key)[fold], errors.residuals(key)[fold])
        merged.merge(one)
    merged.add_mean("blend", [("ridge", 10), ("lasso", 6)])
    assert merged.by_fold("blend").tolist() == errors.by_fold("blend").tolist()


def test_a_mean_needs_every_parts_residuals_on_the_same_folds_and_is_added_once():
    errors = CVErrors()
    errors.add("a", 1.0, np.ones(3))
    errors.add("b", 2.0)  # scored, its residual not kept
    errors.add("c", 3.0, np.ones(4))  # another fold's size
    with pytest.raises(ValueError, match="residuals of 'b'"):
        errors.add_mean("a+b", ["a", "b"])
    with pytest.raises(ValueError, match="same folds"):
        errors.add_mean("a+c", ["a", "c"])
    assert "a+b" not in errors.sse and "a+c" not in errors.sse  # nothing half-added
    errors.add("d", 1.0, -np.ones(3))
    errors.add_mean("a+d", ["a", "d"])
    assert errors.sse["a+d"] == 0.0 and errors.residuals("a+d")[0].tolist() == [0.0] * 3
    with pytest.raises(ValueError, match="already scored"):
        errors.add_mean("a+d", ["a", "d"])
    errors.drop_residuals()  # the errors stay, the residuals go
    assert errors.residuals("a") == [] and errors.sse["a+d"] == 0.0
