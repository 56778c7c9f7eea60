"""LightGBM boosting with early stopping, the same trees as ``lgb.train`` at less overhead.

ProxySPEX trains nine to fifteen small proxies per fit, each for a few
hundred to a few thousand rounds of about 50 µs of C++ work. Around each
round ``lgb.train`` builds a ``CallbackEnv``, runs the early-stopping
callback and reads the validation metric through ``Booster.eval_valid``
(named tuples, a fresh ctypes pointer per call): together more Python time
than the round itself, and held under the GIL, which the folds' threads share.
:func:`boost` runs the same rounds and the same stopping rule on the metric
LightGBM computes, so the trees are the ones ``lgb.train`` grows, bit for bit
(tested against it).

Examples:
    >>> import numpy as np
    >>> import lightgbm as lgb
    >>> from proxyspex_captum.core.boosting import boost
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.random((300, 6)) < 0.5).astype(float)
    >>> y = 2 * x[:, 0] * x[:, 1] + x[:, 2] + 0.1 * rng.normal(size=300)
    >>> params = {"objective": "regression", "learning_rate": 0.1, "verbosity": -1, "seed": 0}
    >>> train, valid = (x[:240], y[:240]), (x[240:], y[240:])
    >>> booster = boost(params, train, valid, max_rounds=500, patience=20)
    >>> train_set = lgb.Dataset(*train, params=params)
    >>> reference = lgb.train(
    ...     params, train_set, num_boost_round=500,
    ...     valid_sets=[lgb.Dataset(*valid, reference=train_set)],
    ...     callbacks=[lgb.early_stopping(20, verbose=False)],
    ... )
    >>> booster.best_iteration == reference.best_iteration
    True
    >>> bool(np.array_equal(booster.predict(x), reference.predict(x)))
    True
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import lightgbm as lgb
import numpy as np

from .checks import check_int

__all__ = ["binned_once", "boost"]

# LightGBM's default number of rows it finds bins on (``bin_construct_sample_cnt``).
_DEFAULT_BIN_SAMPLE = 200_000

# LightGBM's names (and aliases) for the rounds and the early stopping, which
# lgb.train resolves from params and boost takes as arguments only.
_ROUND_AND_STOPPING_KEYS = frozenset(
    {
        "num_iterations",
        "num_iteration",
        "n_iter",
        "num_tree",
        "num_trees",
        "num_round",
        "num_rounds",
        "nrounds",
        "num_boost_round",
        "n_estimators",
        "max_iter",
        "early_stopping_round",
        "early_stopping_rounds",
        "early_stopping",
        "n_iter_no_change",
        "first_metric_only",
        "early_stopping_min_delta",
    }
)


def boost(
    params: dict,
    train: tuple[np.ndarray, np.ndarray] | lgb.Dataset,
    valid: tuple[np.ndarray, np.ndarray] | lgb.Dataset,
    *,
    max_rounds: int,
    patience: int,
) -> lgb.Booster:
    """Boost on ``train`` until the validation metric has not improved for ``patience`` rounds.

    The rule of ``lgb.early_stopping(patience)`` with one validation set and
    one metric (the objective's): a round improves when its metric is
    strictly below the best so far; training stops ``patience`` rounds after
    the best, or after ``max_rounds``; ``best_iteration`` is the best round
    (1-based), and the booster keeps the rounds after it, as ``lgb.train``
    with ``keep_training_booster=True`` does.

    Args:
        params: LightGBM parameters (one metric: the objective's default).
        train: The training features and targets, or a ``lgb.Dataset`` of them
            (such as a subset of :func:`binned_once`'s rows). A Dataset is used
            as constructed: its bins come from its own (or its parent's)
            parameters, not from ``params``.
        valid: The validation features and targets, or a ``lgb.Dataset`` binned
            as ``train`` is (a subset of the same parent); LightGBM refuses one
            whose bins differ.
        max_rounds: Most boosting rounds.
        patience: Rounds without improvement before stopping.

    Returns:
        The trained booster, its ``best_iteration`` set.

    Raises:
        ValueError: ``max_rounds`` or ``patience`` below 1; ``params`` naming a
            number of rounds or an early-stopping option of their own (this
            function's arguments say them), or a metric other than one that is
            minimised.
    """
    max_rounds = check_int("max_rounds", max_rounds, 1)
    patience = check_int("patience", patience, 1)
    ruled = sorted(set(params) & _ROUND_AND_STOPPING_KEYS)
    if ruled:
        raise ValueError(
            f"params name {ruled}: pass the rounds and the stopping rule as max_rounds "
            "and patience."
        )
    params = {**params, "num_iterations": max_rounds}  # as lgb.train records it
    if isinstance(train, lgb.Dataset):
        train_set = train
    else:
        train_set = lgb.Dataset(*train, params=params)
    if not isinstance(valid, lgb.Dataset):
        valid = lgb.Dataset(*valid, reference=train_set, params=params)
    booster = lgb.Booster(params=params, train_set=train_set)
    booster.add_valid(valid, "valid_0")
    metric = _validation_metric(booster)
    best, best_round = np.inf, 0
    for i in range(max_rounds):
        booster.update()
        score = metric()
        if i == 0 or score < best:
            best, best_round = score, i
        elif i - best_round >= patience:
            break
    booster.best_iteration = best_round + 1
    return booster


def _validation_metric(booster: lgb.Booster) -> Callable[[], float]:
    """A reader of the booster's first validation metric, as LightGBM computes it.

    Calls ``LGBM_BoosterGetEval`` into one buffer made once; with a LightGBM
    whose Python module no longer exposes its library handle, the public
    ``eval_valid`` (the same number, more slowly).
    """
    results = booster.eval_valid()
    if len(results) != 1 or results[0][3]:  # (data, metric, value, higher is better)
        raise ValueError(
            f"boost stops on one metric that is minimised; params give {len(results)}"
            + (f" ({results[0][1]}, maximised)." if len(results) == 1 else ".")
        )
    library, check = getattr(lgb.basic, "_LIB", None), getattr(lgb.basic, "_safe_call", None)
    handle = getattr(booster, "_handle", None)
    if library is None or check is None or handle is None:
        return lambda: float(booster.eval_valid()[0][2])
    out = np.empty(1)
    pointer = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    length = ctypes.c_int(0)
    first_valid = ctypes.c_int(1)  # data index 0 is the training set

    def read() -> float:
        check(library.LGBM_BoosterGetEval(handle, first_valid, ctypes.byref(length), pointer))
        return float(out[0])

    return read


def binned_once(x: np.ndarray, y: np.ndarray, params: dict) -> lgb.Dataset:
    """``(x, y)`` binned by LightGBM once, for :func:`boost` to train on subsets of its rows.

    LightGBM finds each feature's bins on the rows it trains on and bins the
    validation rows with them. For each proxy of a cross-validation that was
    17 of a proxy's 27 ms of set-up at n = 128 features and 4,000 rows, and
    42 of 85 ms at n = 1,000 and 1,000 rows; two subsets of rows binned once
    (training and validation) cost 2-6 ms (``docs/design.md``). A 0/1
    feature's bin boundaries are the same whichever rows they are found on;
    every row is used to find them (LightGBM samples 200,000 by default,
    which could miss a rare value that a fold's rows hold). The trees are
    then the ones each fold's own bins grow, bit for bit, unless a feature's
    share of ones is at least 0.7 in one set of rows and not in the other
    (masks that keep features with probability 0.6 or more): LightGBM then
    takes the other value as the feature's most frequent bin, whose sums it
    rebuilds by subtraction, so a leaf value can differ in its last bit, and
    a split that ties to rounding (in the late rounds of a noiseless fit) can
    go another way. Tested: identical at ``keep_probability`` 0.5; at 0.6,
    0.7 and 0.75 the predictions agreed to 5e-9 (36 proxies).

    Args:
        x: Features (one row per sample).
        y: Targets.
        params: LightGBM parameters; the subsets, made without parameters of
            their own, take its binning ones.

    Returns:
        The constructed dataset: ``.subset(rows)`` gives a fold's rows.

    Examples:
        >>> import numpy as np
        >>> from proxyspex_captum.core.boosting import binned_once, boost
        >>> rng = np.random.default_rng(0)
        >>> x = (rng.random((300, 6)) < 0.5).astype(np.float32)
        >>> y = 2 * x[:, 0] * x[:, 1] + x[:, 2]
        >>> params = {"objective": "regression", "verbosity": -1, "seed": 0}
        >>> binned = binned_once(x, y, params)
        >>> train, valid = np.arange(240), np.arange(240, 300)
        >>> booster = boost(params, binned.subset(train), binned.subset(valid),
        ...                 max_rounds=100, patience=10)
        >>> own_bins = (x[train], y[train]), (x[valid], y[valid])
        >>> own = boost(params, *own_bins, max_rounds=100, patience=10)
        >>> bool(np.array_equal(booster.predict(x), own.predict(x)))
        True
    """
    every_row = max(len(y), _DEFAULT_BIN_SAMPLE)
    return lgb.Dataset(x, y, params={**params, "bin_construct_sample_cnt": every_row}).construct()
