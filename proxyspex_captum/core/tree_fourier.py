"""Exact Fourier transform of tree ensembles over binary inputs.

On inputs in ``{0,1}^n`` a regression tree is a sum over its leaves of
``value × Π_{(i, b) on the path} 1[x_i = b]``, and ``1[x_i = b] = (1 ± (−1)^{x_i})/2``.
Multiplying out, a leaf whose path fixes ``d`` distinct features with signs
``s_i`` (``+1`` when the path needs ``x_i = 0``, ``−1`` for ``x_i = 1``) adds
``value / 2^d · Π_{i ∈ S} s_i`` to ``F(S)`` for every ``S`` among its path
features. This is the recursion ``F(S) = (F_L(S) + F_R(S))/2``,
``F(S ∪ {i}) = (F_L(S) − F_R(S))/2`` unrolled along root-to-leaf paths, which
lets one vectorised pass (:func:`~.subsets.spread_to_subsets`) handle every
leaf of every tree at once.

Split thresholds are read as the model stores them: LightGBM keeps 0/1 features
as numerical ``x <= threshold`` splits with a tiny threshold (so ``x = 0`` goes
left), scikit-learn as ``x <= 0.5``. Any threshold works; a split that sends both
values the same way simply adds no constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .subsets import PAD, add_constant, spread_to_subsets

__all__ = ["tree_ensemble_fourier"]

# Values of a binary feature that may follow a branch, as a 2-bit set:
# bit 0 = "x = 0 may pass", bit 1 = "x = 1 may pass".
_ZERO, _ONE, _BOTH = 0b01, 0b10, 0b11
# The fields of a LightGBM text dump that the transform reads (the first two to refuse
# models it cannot transform).
_LIGHTGBM_FIELDS = (
    "num_tree_per_iteration",
    "is_linear",
    "num_leaves",
    "split_feature",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
)


@dataclass
class _Nodes:
    """All nodes of all trees of an ensemble, with globally unique ids."""

    left: np.ndarray  # child ids; -1 marks a leaf
    right: np.ndarray
    feature: np.ndarray
    left_allowed: np.ndarray  # which of x=0 / x=1 follow each branch (2-bit sets)
    right_allowed: np.ndarray
    value: np.ndarray  # leaf outputs, already scaled (shrinkage, averaging)

    @classmethod
    def concat(cls, parts: list[_Nodes]) -> _Nodes:
        offsets = np.cumsum([0] + [len(p.left) for p in parts[:-1]])
        shift = [lambda ids, o=o: np.where(ids >= 0, ids + o, -1) for o in offsets]
        return cls(
            left=np.concatenate([f(p.left) for f, p in zip(shift, parts, strict=True)]),
            right=np.concatenate([f(p.right) for f, p in zip(shift, parts, strict=True)]),
            feature=np.concatenate([p.feature for p in parts]),
            left_allowed=np.concatenate([p.left_allowed for p in parts]),
            right_allowed=np.concatenate([p.right_allowed for p in parts]),
            value=np.concatenate([p.value for p in parts]),
        )


def _branch_sets(threshold: np.ndarray, zero_left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed-value sets of the left and right branches of ``x <= threshold`` splits."""
    one_left = threshold >= 1.0
    left = np.where(zero_left, _ZERO, 0) | np.where(one_left, _ONE, 0)
    right = np.where(zero_left, 0, _ZERO) | np.where(one_left, 0, _ONE)
    return left.astype(np.int8), right.astype(np.int8)


def _lightgbm_nodes(model: Any) -> _Nodes:
    """Nodes of a LightGBM regressor, read from its text dump (much faster than JSON).

    Every tree's fields are gathered as text first and parsed once per field
    for the whole ensemble: thousands of small trees would otherwise cost a
    few numpy calls each.
    """
    booster = getattr(model, "booster_", model)
    dump = booster.model_to_string().partition("\nend of trees\n")[0]
    # One pass over the lines: each ``key=value`` is filed under its key when wanted.
    fields: dict[str, list[str]] = {key: [] for key in _LIGHTGBM_FIELDS}
    for key, _, value in (line.partition("=") for line in dump.splitlines()):
        # Empty values skipped: a single-leaf tree writes "split_feature=", and
        # np.fromstring reads a blank string as one number, not none.
        if value and key in fields:
            fields[key].append(value)
    if fields["num_tree_per_iteration"] not in ([], ["1"]):
        raise ValueError("Only single-output LightGBM models can be transformed.")
    if any(flag != "0" for flag in fields["is_linear"]):
        raise ValueError("Linear-tree LightGBM models are not supported.")
    # Random-forest mode: the prediction is the mean of the trees.
    average = "\naverage_output\n" in dump

    def parse(key: str, dtype: type) -> np.ndarray:
        return np.fromstring(" ".join(fields[key]), dtype=dtype, sep=" ")

    leaves = parse("num_leaves", np.int64)
    inner = leaves - 1  # a single-leaf tree has no split fields at all
    decision = parse("decision_type", np.int64)
    if (decision & 1).any():
        raise ValueError(
            "Categorical LightGBM splits are not supported: fit on numerical 0/1 features."
        )
    threshold = parse("threshold", float)
    leaf_value = parse("leaf_value", float)
    # Each tree's nodes: its splits, then its leaves (ids local to the tree, offset by base).
    size = inner + leaves
    base = np.cumsum(size) - size
    inner_base = np.repeat(base, inner)
    inner_ids = inner_base + _local_ids(inner)
    leaf_ids = np.repeat(base + inner, leaves) + _local_ids(leaves)

    def child_ids(key: str) -> np.ndarray:
        c = parse(key, np.int64)  # leaves are stored as ~leaf_index
        return inner_base + np.where(c >= 0, c, np.repeat(inner, inner) + ~c)

    total = int(size.sum())
    left = np.full(total, -1, np.int64)
    right = np.full(total, -1, np.int64)
    feature = np.zeros(total, np.int64)
    left_allowed = np.full(total, _BOTH, np.int8)
    right_allowed = np.full(total, _BOTH, np.int8)
    value = np.zeros(total)
    left[inner_ids], right[inner_ids] = child_ids("left_child"), child_ids("right_child")
    feature[inner_ids] = parse("split_feature", np.int64)
    # Bits 2-3 of decision_type: missing type (1 = zero is missing, routed by default_left).
    zero_missing = ((decision >> 2) & 3) == 1
    zero_left = np.where(zero_missing, (decision & 2) > 0, threshold >= 0.0)
    left_allowed[inner_ids], right_allowed[inner_ids] = _branch_sets(threshold, zero_left)
    value[leaf_ids] = leaf_value
    if average:
        value /= len(leaves)
    return _Nodes(left, right, feature, left_allowed, right_allowed, value)


def _local_ids(counts: np.ndarray) -> np.ndarray:
    """``0..c-1`` for each count ``c``, concatenated."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


def _sklearn_tree_nodes(tree: Any, scale: float) -> _Nodes:
    t = tree.tree_
    if t.n_outputs != 1 or t.value.shape[2] != 1:
        raise ValueError("Only single-output regression trees can be transformed.")
    threshold = np.asarray(t.threshold, dtype=float)
    left_sets, right_sets = _branch_sets(threshold, threshold >= 0.0)
    return _Nodes(
        left=np.asarray(t.children_left, dtype=np.int64),
        right=np.asarray(t.children_right, dtype=np.int64),
        feature=np.maximum(np.asarray(t.feature, dtype=np.int64), 0),
        left_allowed=left_sets,
        right_allowed=right_sets,
        value=scale * np.asarray(t.value[:, 0, 0], dtype=float),
    )


def _sklearn_nodes(model: Any) -> tuple[_Nodes, float]:
    """Nodes of a scikit-learn regression tree or tree ensemble, and its constant offset.

    Supports ``DecisionTreeRegressor``, ``ExtraTreeRegressor``,
    ``RandomForestRegressor``, ``ExtraTreesRegressor`` and ``GradientBoostingRegressor``
    (with the default mean or ``"zero"`` initial estimator).
    """
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeRegressor

    # Exact types only: look-alikes (AdaBoost's weighted median, bagging over
    # feature subsets) would be transformed wrongly without a word.
    if isinstance(model, DecisionTreeRegressor):  # ExtraTreeRegressor is a subclass
        return _sklearn_tree_nodes(model, 1.0), 0.0
    if isinstance(model, GradientBoostingRegressor):
        init = model.init_
        if isinstance(init, str) and init == "zero":
            offset = 0.0
        elif hasattr(init, "constant_"):
            offset = float(np.ravel(init.constant_)[0])
        else:
            raise ValueError("Only a constant initial estimator (the default) is supported.")
        rate = float(model.learning_rate)
        return _Nodes.concat(
            [_sklearn_tree_nodes(t, rate) for t in np.ravel(model.estimators_)]
        ), offset
    if isinstance(model, RandomForestRegressor | ExtraTreesRegressor):
        trees = list(model.estimators_)
        return _Nodes.concat([_sklearn_tree_nodes(t, 1.0 / len(trees)) for t in trees]), 0.0
    raise TypeError(
        f"Unsupported scikit-learn model {type(model).__name__}: use a DecisionTree, ExtraTree, "
        "RandomForest, ExtraTrees or GradientBoosting regressor."
    )


def _leaf_paths(nodes: _Nodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root-to-leaf constraints of every reachable leaf, walked up all leaves at once.

    Returns ``(rows, signs, values)``: padded sorted features each path fixes,
    ``+1`` where it needs ``x = 0`` and ``−1`` where it needs ``x = 1``, and the leaf values.
    """
    inner = np.flatnonzero(nodes.left >= 0)
    parent = np.full(len(nodes.left), -1, dtype=np.int64)
    arrival = np.full(len(nodes.left), _BOTH, dtype=np.int8)  # values that reach each node
    parent[nodes.left[inner]] = inner
    parent[nodes.right[inner]] = inner
    arrival[nodes.left[inner]] = nodes.left_allowed[inner]
    arrival[nodes.right[inner]] = nodes.right_allowed[inner]

    leaves = np.flatnonzero(nodes.left < 0)
    feats, allowed = [], []
    current = leaves
    while True:
        up = parent[current]
        active = up >= 0
        if not active.any():
            break
        feats.append(np.where(active, nodes.feature[np.maximum(up, 0)], PAD))
        allowed.append(np.where(active, arrival[current], _BOTH))
        current = np.where(active, up, current)
    if not feats:
        return (
            np.zeros((len(leaves), 0), np.int64),
            np.zeros((len(leaves), 0)),
            nodes.value[leaves],
        )
    feat = np.stack(feats, axis=1)
    allow = np.stack(allowed, axis=1).astype(np.int8)
    feat = np.where(allow == _BOTH, PAD, feat)

    # Sort each path by feature (padding last) and merge repeated features,
    # which a tree may split on twice; their allowed sets intersect.
    key = np.where(feat == PAD, np.iinfo(np.int64).max, feat)
    order = np.argsort(key, axis=1, kind="stable")
    feat = np.take_along_axis(feat, order, axis=1)
    allow = np.take_along_axis(allow, order, axis=1)
    repeat = (feat[:, 1:] == feat[:, :-1]) & (feat[:, 1:] != PAD)
    for r, c in zip(*np.nonzero(repeat), strict=True):  # rare: fix those rows one by one
        allow[r, c + 1] &= allow[r, c]
        feat[r, c], allow[r, c] = PAD, _BOTH
    if repeat.any():
        key = np.where(feat == PAD, np.iinfo(np.int64).max, feat)
        order = np.argsort(key, axis=1, kind="stable")
        feat = np.take_along_axis(feat, order, axis=1)
        allow = np.take_along_axis(allow, order, axis=1)

    reachable = ~(allow == 0).any(axis=1)
    feat, allow = feat[reachable], allow[reachable]
    width = int((feat != PAD).sum(axis=1).max(initial=0))
    signs = np.where(allow == _ZERO, 1.0, -1.0)[:, :width]
    return feat[:, :width], signs, nodes.value[leaves][reachable]


def tree_ensemble_fourier(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Exact Fourier coefficients of a fitted tree ensemble on ``{0,1}^n``.

    Args:
        model: A fitted single-output LightGBM model (``LGBMRegressor`` or
            ``Booster``, boosted or random-forest mode; the best iteration is used
            when one is set, as ``predict`` does; for a binary classifier the raw
            score, as ``predict(raw_score=True)``) or a scikit-learn
            ``DecisionTreeRegressor``, ``ExtraTreeRegressor``, ``RandomForestRegressor``,
            ``ExtraTreesRegressor`` or ``GradientBoostingRegressor``.

    Returns:
        ``(rows, coefficients)``: padded sorted feature-id rows (``-1`` padding,
        see :mod:`.subsets`) and ``F(S)`` for each, such that
        ``model.predict(m) = Σ_S F(S) (−1)^{|S ∩ m|}`` for every binary ``m``.

    Examples:
        >>> import numpy as np
        >>> from sklearn.tree import DecisionTreeRegressor
        >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        >>> tree = DecisionTreeRegressor().fit(x, [0.0, 0.0, 0.0, 4.0])  # AND
        >>> rows, coef = tree_ensemble_fourier(tree)
        >>> sorted(zip(map(tuple, rows.tolist()), coef.tolist()))
        [((-1, -1), 1.0), ((0, -1), -1.0), ((0, 1), 1.0), ((1, -1), -1.0)]
    """
    module = type(model).__module__
    if module.startswith("lightgbm") or hasattr(model, "booster_"):
        nodes, offset = _lightgbm_nodes(model), 0.0
    elif module.startswith("sklearn"):
        nodes, offset = _sklearn_nodes(model)
    else:
        raise TypeError(
            f"Unsupported model {type(model).__name__}: "
            "pass a LightGBM or scikit-learn tree model."
        )
    rows, signs, values = _leaf_paths(nodes)
    sizes = (rows != PAD).sum(axis=1)
    weights = np.repeat((values / 2.0**sizes)[:, None], rows.shape[1] + 1, axis=1)
    out_rows, coef = spread_to_subsets(rows, weights, signs=signs)
    if offset:
        out_rows, coef = add_constant(out_rows, coef, offset)
    return out_rows, coef
