"""core.boosting.boost grows the trees lgb.train grows with early stopping, bit for bit,
on each fold's own bins or on subsets of rows binned once."""

import lightgbm as lgb
import numpy as np
import pytest

from proxyspex_captum.core.boosting import binned_once, boost
from proxyspex_captum.core.proxyspex import ProxySPEX
from proxyspex_captum.core.sparse_fit import fold_indices


def _reference(params, train, valid, max_rounds, patience):
    train_set = lgb.Dataset(*train, params=params)
    return lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[lgb.Dataset(*valid, reference=train_set)],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
        keep_training_booster=True,
    )


def _trees(booster):
    dump = booster.model_to_string()
    return dump[: dump.index("end of trees")]


@pytest.mark.parametrize("seed", range(6))
def test_boost_grows_lgb_trains_trees(seed):
    rng = np.random.default_rng(seed)
    n, rows = (8, 32, 128)[seed % 3], (150, 400)[seed % 2]
    x = (rng.random((rows, n)) < 0.5).astype(float)
    noise = (0.0, 0.3, 2.0)[seed % 3]  # noisy targets stop early, clean ones run long
    y = (
        x[:, 0] * x[:, 1] * 2
        - x[:, 2]
        + x @ rng.normal(size=n) * 0.1
        + noise * rng.normal(size=rows)
    )
    cut = rows * 4 // 5
    train, valid = (x[:cut], y[:cut]), (x[cut:], y[cut:])
    params = ProxySPEX().lightgbm_params((2, 3, 5)[seed % 3], 0.1, seed)
    for max_rounds, patience in ((2000, 20), (37, 5), (1, 1)):
        ours = boost(params, train, valid, max_rounds=max_rounds, patience=patience)
        theirs = _reference(params, train, valid, max_rounds, patience)
        assert ours.best_iteration == theirs.best_iteration
        assert ours.num_trees() == theirs.num_trees()  # the rounds after the best kept too
        assert _trees(ours) == _trees(theirs)
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


@pytest.mark.parametrize("seed", range(6))
def test_subsets_of_rows_binned_once_grow_each_folds_trees(seed):
    x, y, folds, estimator = _folds_with_awkward_features(seed, keep_probability=0.5)
    binned = binned_once(x, y, estimator.lightgbm_params(1, 0.1, seed))
    for depth in (2, 3, 5):
        params = estimator.lightgbm_params(depth, 0.1, seed)
        for train, test in folds[:2]:
            ours, own = _shared_and_own_bins(params, binned, x, y, train, test)
            assert ours.best_iteration == own.best_iteration
            # The trees, not the header (feature_infos says which features a fold dropped).
            assert _tree_part(ours) == _tree_part(own)
            np.testing.assert_array_equal(ours.predict(x), own.predict(x))


@pytest.mark.parametrize("seed", range(6))
def test_subsets_predict_alike_where_a_features_most_frequent_value_differs(seed):
    # At 0.7 ones a feature, a fold's share of ones and all rows' fall on both sides
    # of LightGBM's 0.7 most-frequent-bin rule: its sums are added in another order,
    # leaf values may differ in the last bit, and where splits tie to rounding (the
    # late rounds of a noiseless fit) another may be chosen (binned_once's docstring).
    x, y, folds, estimator = _folds_with_awkward_features(seed, keep_probability=0.7)
    binned = binned_once(x, y, estimator.lightgbm_params(1, 0.1, seed))
    for depth in (3, 5):
        params = estimator.lightgbm_params(depth, 0.1, seed)
        ours, own = _shared_and_own_bins(params, binned, x, y, *folds[0])
        np.testing.assert_allclose(ours.predict(x), own.predict(x), rtol=0, atol=1e-6)


def _shared_and_own_bins(params, binned, x, y, train, test):
    """One fold's proxy boosted on subsets of ``binned``, and on the fold's own bins."""
    rounds = {"max_rounds": 500, "patience": 20}
    ours = boost(params, binned.subset(train), binned.subset(test), **rounds)
    own = boost(params, (x[train], y[train]), (x[test], y[test]), **rounds)
    return ours, own


def _folds_with_awkward_features(seed, keep_probability):
    """0/1 rows whose features a fold's own bins treat differently from all rows'."""
    rng = np.random.default_rng(100 + seed)
    n, rows = (8, 32, 128)[seed % 3], (150, 400)[seed % 2]
    x = (rng.random((rows, n)) < keep_probability).astype(np.float32)
    y = x[:, 0] * x[:, 1] * 2 - x[:, 2] + (0.0, 0.3)[seed % 2] * rng.normal(size=rows)
    folds = list(fold_indices(rows, 5, rng))
    train, test = folds[0]
    x[:, 3] = 0.0  # constant everywhere: LightGBM drops it
    x[train, 4] = 0.0  # constant in the first fold's training rows only
    x[:, 5] = 0.0
    x[train[:1], 5] = 1.0  # one 1 in those training rows, more in the others
    x[test[:5], 5] = 1.0
    y = y + x[:, 5]  # which a leaf of one sample can split off
    return x, y, folds, ProxySPEX(min_child_samples=(1, 5)[seed % 2])


def _tree_part(booster):
    dump = _trees(booster)
    return dump[dump.index("Tree=0") :]


def test_boost_refuses_what_it_would_not_do_as_lgb_train_does():
    x = np.eye(20)
    data = {"train": (x, x[:, 0]), "valid": (x, x[:, 1])}
    plain = {"objective": "regression", "verbosity": -1}
    with pytest.raises(ValueError, match="one metric that is minimised; params give 2"):
        boost({**plain, "metric": ["l2", "l1"]}, *data.values(), max_rounds=5, patience=2)
    with pytest.raises(ValueError, match=r"\(auc, maximised\)"):
        boost(
            {**plain, "objective": "binary", "metric": "auc"},
            *data.values(),
            max_rounds=5,
            patience=2,
        )
    for key in ("n_estimators", "early_stopping_round"):
        with pytest.raises(ValueError, match=f"params name \\['{key}'\\]"):
            boost({**plain, key: 3}, *data.values(), max_rounds=5, patience=2)
    for rounds, patience in ((0, 2), (5, 0)):
        with pytest.raises(ValueError, match="at least 1"):
            boost(plain, *data.values(), max_rounds=rounds, patience=patience)
