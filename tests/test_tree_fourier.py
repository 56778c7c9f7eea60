"""The Fourier transform read off trees equals the trees' own predictions."""

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from proxyspex_captum import Interactions
from proxyspex_captum.core.tree_fourier import tree_ensemble_fourier


def data(n, k=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((k, n)) < 0.5).astype(np.float32)
    y = (
        x[:, :6].sum(1)
        + 3 * x[:, 0] * x[:, 1]
        - 2 * x[:, 2] * x[:, 3] * x[:, 4]
        + rng.normal(size=k)
    )
    test = rng.random((500, n)) < 0.5
    return x, y, test


def assert_matches_predict(model, n, test, predict):
    rows, coef = tree_ensemble_fourier(model)
    surrogate = Interactions._from_rows(rows, coef, n_features=n)
    expected = predict(test.astype(np.float32))
    np.testing.assert_allclose(surrogate.predict(test), expected, rtol=1e-9, atol=1e-9)
    return rows


def test_lightgbm_depth5_ensemble():
    n = 300
    x, y, test = data(n)
    model = lgb.LGBMRegressor(
        n_estimators=300,
        max_depth=5,
        num_leaves=32,
        min_child_samples=5,
        colsample_bytree=0.5,
        subsample=0.8,
        subsample_freq=1,
        verbose=-1,
        random_state=0,
    ).fit(x, y)
    rows = assert_matches_predict(model, n, test, model.predict)
    assert rows.shape[1] <= 5
    # the Booster works too, including an early-stopped best iteration
    assert_matches_predict(model.booster_, n, test, model.booster_.predict)


def test_lightgbm_best_iteration_is_used_like_predict():
    x, y, test = data(40)
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "max_depth": 3, "num_leaves": 8},
        lgb.Dataset(x[:1500], y[:1500]),
        num_boost_round=500,
        valid_sets=[lgb.Dataset(x[1500:], y[1500:])],
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert 0 < booster.best_iteration < 500
    assert_matches_predict(booster, 40, test, booster.predict)


def test_lightgbm_zero_as_missing():
    x, y, test = data(20)
    model = lgb.LGBMRegressor(n_estimators=50, zero_as_missing=True, verbose=-1).fit(x, y)
    assert_matches_predict(model, 20, test, model.predict)


def test_lightgbm_single_leaf_trees():
    x = np.zeros((50, 3), np.float32)
    model = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, np.full(50, 2.5))
    rows, coef = tree_ensemble_fourier(model)
    assert rows.shape == (1, 0) and coef == pytest.approx([2.5])


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeRegressor(max_depth=6, random_state=0),
        GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0),
        GradientBoostingRegressor(n_estimators=20, init="zero", random_state=0),
        RandomForestRegressor(n_estimators=15, max_depth=5, random_state=0),
        ExtraTreesRegressor(n_estimators=10, max_depth=5, random_state=0),
    ],
    ids=["tree", "gbr", "gbr-zero-init", "forest", "extra-trees"],
)
def test_sklearn_models(model):
    x, y, test = data(25)
    model.fit(x, y)
    assert_matches_predict(model, 25, test, model.predict)


def test_unusual_thresholds():
    """Splits learnt on non-binary data still give the exact function on {0,1}^n."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    y = x[:, 0] * x[:, 1] + x[:, 2]
    model = DecisionTreeRegressor(max_depth=6).fit(x, y)
    test = rng.random((200, 6)) < 0.5
    assert_matches_predict(model, 6, test, model.predict)


def test_and_function_by_hand():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    tree = DecisionTreeRegressor().fit(x, [0.0, 0.0, 0.0, 4.0])
    rows, coef = tree_ensemble_fourier(tree)
    inter = Interactions._from_rows(rows, coef, n_features=2)
    assert inter.fourier == pytest.approx({(): 1.0, (0,): -1.0, (1,): -1.0, (0, 1): 1.0})
    assert inter.mobius == pytest.approx({(0, 1): 4.0})


def test_unsupported_models():
    with pytest.raises(TypeError, match="Unsupported model"):
        tree_ensemble_fourier(object())
    x, y, _ = data(5)
    with pytest.raises(ValueError, match="single-output"):
        tree_ensemble_fourier(DecisionTreeRegressor().fit(x, np.stack([y, y], 1)))


def test_lightgbm_random_forest_mode_averages_trees():
    x, y, test = data(20)
    model = lgb.LGBMRegressor(
        boosting_type="rf", subsample=0.8, subsample_freq=1, n_estimators=20, verbose=-1
    ).fit(x, y)
    assert_matches_predict(model, 20, test, model.predict)


def test_look_alike_ensembles_are_refused():
    from sklearn.ensemble import AdaBoostRegressor, BaggingRegressor

    x, y, _ = data(10)
    for model in (AdaBoostRegressor(n_estimators=3), BaggingRegressor(n_estimators=3)):
        with pytest.raises(TypeError, match="Unsupported scikit-learn model"):
            tree_ensemble_fourier(model.fit(x, y))


def test_lightgbm_models_it_cannot_transform_are_refused():
    """Several trees per round, linear leaves and categorical splits: an error, not a wrong sum."""
    x, y, _ = data(6)
    classes = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    multiclass = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, classes)
    with pytest.raises(ValueError, match="single-output"):
        tree_ensemble_fourier(multiclass)
    linear = lgb.LGBMRegressor(linear_tree=True, n_estimators=3, verbose=-1).fit(x, y)
    with pytest.raises(ValueError, match="Linear-tree"):
        tree_ensemble_fourier(linear)
    categorical = lgb.LGBMRegressor(n_estimators=3, min_child_samples=2, verbose=-1)
    categorical.fit(x.astype(int), y, categorical_feature=[0, 1])
    with pytest.raises(ValueError, match="Categorical"):
        tree_ensemble_fourier(categorical)


def test_lightgbm_ensemble_of_single_leaf_trees():
    """Trees without a split (empty split fields in the dump) are constants, not a parse error."""
    x, y, test = data(6, k=40)
    params = {
        "boosting": "rf",
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "min_data_in_leaf": 30,  # more than half the rows: no split is possible
        "verbosity": -1,
    }
    model = lgb.train(params, lgb.Dataset(x, y, params=params), num_boost_round=4)
    assert model.num_trees() == 4
    rows = assert_matches_predict(model, 6, test, model.predict)
    assert len(rows) == 1  # the constant only
