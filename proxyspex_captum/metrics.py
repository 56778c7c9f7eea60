"""How good an explanation is: faithfulness, removal curves, recovery, explanation error, compare.

Every metric takes the model as a value function (boolean masks -> outputs),
the same object the estimators explain, so it applies to Captum, SHAP and
plain-numpy uses alike.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .baselines import COMPARED, METHODS, run_method
from .core.checks import check_int
from .core.interactions import Interactions
from .core.sampling import as_generator
from .core.subset_search import greedy_removal
from .core.value_function import MaskFunction, ValueFunction

__all__ = [
    "METHODS",
    "InteractionExplanationError",
    "compare",
    "faithfulness",
    "fourier_r2",
    "r2_score",
    "recovery_at_k",
    "removal_curve",
]


def faithfulness(
    interactions: Interactions | Sequence[Interactions],
    value_function: MaskFunction | ValueFunction,
    *,
    n_masks: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    masks: np.ndarray | None = None,
) -> float | list[float]:
    """R² of the surrogate against the value function on uniformly random masks.

    The protocol of the SPEX and ProxySPEX papers: draw ``n_masks`` masks
    uniformly from ``{0,1}^n`` (from ``random_state``, independently of any
    estimator's own draws), query the model, and report
    ``1 − Σ (v − v̂)² / Σ (v − mean v)²``.

    Args:
        interactions: The explanation to score, or the list of per-output
            explanations of a multi-output value function.
        value_function: The model's value function (the same one explained).
        n_masks: Number of held-out masks.
        random_state: Seed of the held-out masks.
        masks: Use these masks instead of drawing new ones.

    Returns:
        The R² (1 is perfect; 0 is no better than the mean; it can be negative),
        or one R² per output for a list of explanations.

    Examples:
        >>> import proxyspex_captum as psx
        >>> game = psx.games.hierarchical_game(64, n_terms=20, random_state=1)
        >>> psx.faithfulness(game.interactions, game, n_masks=200)
        1.0
    """
    several = not isinstance(interactions, Interactions)
    explanations = list(interactions) if several else [interactions]
    n = explanations[0].n_features
    if masks is None:
        if n_masks < 1:
            raise ValueError(f"n_masks must be at least 1, got {n_masks}.")
        masks = as_generator(random_state).random((n_masks, n)) < 0.5
    truth = _scoring(value_function, n)(masks).reshape(len(masks), -1)
    if truth.shape[1] != len(explanations):
        raise ValueError(
            f"The value function has {truth.shape[1]} outputs but {len(explanations)} "
            "explanation(s) were given: pass one Interactions per output."
        )
    scores = [
        r2_score(y, inter.predict(masks)) for y, inter in zip(truth.T, explanations, strict=True)
    ]
    return scores if several else scores[0]


def _scoring(value_function: MaskFunction | ValueFunction, n_features: int) -> ValueFunction:
    """A fresh wrapper: scoring must not count towards, or read from, an estimator's cache."""
    func = value_function.func if isinstance(value_function, ValueFunction) else value_function
    return ValueFunction(func, n_features, cache=False)


def r2_score(
    truth: np.ndarray | Sequence[float], predicted: np.ndarray | Sequence[float]
) -> float:
    """Coefficient of determination ``1 − Σ (y − ŷ)² / Σ (y − mean y)²`` of one output.

    A constant truth has no spread to explain: the score is then 1 when the
    prediction matches it (to ``numpy.allclose``) and 0 otherwise, instead of
    a division by zero.

    Args:
        truth: The model's values ``(k,)``.
        predicted: The surrogate's predictions ``(k,)``.

    Returns:
        The R² (1 is perfect; 0 is no better than the mean; it can be negative).

    Examples:
        >>> from proxyspex_captum.metrics import r2_score
        >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        0.5
        >>> r2_score([2.0, 2.0], [2.0, 2.0])
        1.0
        >>> r2_score([0.1, 0.1, 0.1], [1.1, 1.1, 1.1])  # a constant truth, missed
        0.0
    """
    truth = np.asarray(truth, dtype=float).reshape(-1)
    predicted = np.asarray(predicted, dtype=float).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(
            f"truth has {truth.size} values but predicted has {predicted.size}: pass one "
            "prediction per value."
        )
    # A constant truth, tested as such: its mean need not equal it in floating point
    # (0.1 three times has a spread of 1e-33), and dividing by that gave -5e33.
    if truth.size == 0 or np.all(truth == truth[0]):
        return 1.0 if np.allclose(truth, predicted) else 0.0
    # R² does not depend on the scale: dividing by the largest deviation first keeps
    # the squares of values near 1e-300 from underflowing to 0 (0 / 0 gave NaN).
    centred = truth - truth.mean()
    scale = float(np.max(np.abs(centred)))
    spread = float(np.sum((centred / scale) ** 2))
    return float(1.0 - np.sum(((truth - predicted) / scale) ** 2) / spread)


# ---------------------------------------------------------------- removal curves
def removal_curve(
    value_function: MaskFunction | ValueFunction,
    n_features: int,
    *,
    interactions: Interactions | None = None,
    attributions: np.ndarray | Sequence[float] | None = None,
    max_removed: int = 10,
) -> np.ndarray:
    """Relative output change when the top ``r`` features are removed, ``r = 1..max_removed``.

    The features are chosen either from a surrogate (``interactions``: for
    each ``r``, greedily, the features whose removal lowers the surrogate's
    output most, so that a pair that only matters together is removed
    together) or from a first-order ranking (``attributions``: the ``r``
    largest). The model is then queried on each reduced input and
    ``|f(all) − f(masked)| / |f(all)|`` reported: higher means the method
    found what drives the output.

    Args:
        value_function: The model as masks -> values (one output).
        n_features: Number of features.
        interactions: A surrogate to choose the removed sets with.
        attributions: First-order values to rank features by (largest first).
        max_removed: Largest ``r``.

    Returns:
        ``(max_removed,)`` relative changes (``max_removed + 1`` model calls).

    Examples:
        >>> import numpy as np
        >>> import proxyspex_captum as psx
        >>> def model(m):  # 0 and 1 only matter together
        ...     return 1.0 + 4 * (m[:, 0] & m[:, 1]) + m[:, 2]
        >>> inter = psx.ProxySPEX(max_order=2).explain(model, n_features=3, budget=8)
        >>> psx.metrics.removal_curve(model, 3, interactions=inter, max_removed=2).round(3)
        array([0.667, 0.833])
    """
    n_features = check_int("n_features", n_features, 1)
    max_removed = min(check_int("max_removed", max_removed, 1), n_features)
    if (interactions is None) == (attributions is None):
        raise ValueError("Pass one of interactions= (a surrogate) or attributions= (a ranking).")
    if interactions is not None:
        if interactions.n_features != n_features:
            raise ValueError(
                f"The interactions have {interactions.n_features} features, not {n_features}."
            )
        order = greedy_removal(interactions, max_removed, maximize=False)
    else:
        values = np.asarray(attributions, dtype=float).reshape(-1)
        if values.shape != (n_features,):
            raise ValueError(f"attributions must have {n_features} values, got {values.shape}.")
        order = np.argsort(-values, kind="stable")[:max_removed]
    masks = np.ones((max_removed + 1, n_features), dtype=bool)
    for r in range(1, max_removed + 1):
        masks[r:, order[r - 1]] = False
    values = _scoring(value_function, n_features)(masks)
    if values.ndim != 1:
        raise ValueError("removal_curve needs a single-output value function.")
    if values[0] == 0:
        raise ValueError("f(all) is 0, so the relative change is undefined; shift the output.")
    return np.abs(values[0] - values[1:]) / abs(values[0])


# ---------------------------------------------------------------- recovery
def recovery_at_k(
    interactions: Interactions | Mapping[Sequence[int], float],
    truth: Interactions | Mapping[Sequence[int], float],
    k: int = 10,
) -> float:
    """Share of the ``k`` largest true interactions among the ``k`` largest estimated ones.

    Both sides are compared in the Möbius basis (``{S: a(S)}`` dicts are
    read as Möbius coefficients); the empty set is left out, and ``k`` is
    capped at the number of true interactions.

    Examples:
        >>> import proxyspex_captum as psx
        >>> truth = {(0,): 3.0, (1, 2): -2.0, (4,): 0.5}
        >>> psx.metrics.recovery_at_k({(0,): 2.9, (1, 2): -2.1, (3,): 0.7}, truth, k=3)
        0.6666666666666666
    """
    k = check_int("k", k, 1)
    true_terms = _nonempty_mobius(truth)
    if not true_terms:
        raise ValueError("The true interactions are empty (nothing to recover).")
    k = min(k, len(true_terms))
    top_true = _top_sets(true_terms, k)
    top_found = _top_sets(_nonempty_mobius(interactions), k)
    return len(top_true & top_found) / k


def _nonempty_mobius(terms: Interactions | Mapping[Sequence[int], float]) -> dict:
    mobius = terms.mobius if isinstance(terms, Interactions) else terms
    return {tuple(sorted(s)): float(v) for s, v in mobius.items() if len(s) > 0 and v != 0}


def _top_sets(terms: dict, k: int) -> set:
    return {s for s, _ in sorted(terms.items(), key=lambda kv: -abs(kv[1]))[:k]}


def fourier_r2(estimate: Interactions, truth: Interactions) -> float:
    """Exact R² of ``estimate`` against ``truth`` over all ``2**n`` masks, by Parseval.

    Under the uniform distribution on masks the Fourier basis is orthonormal,
    so the mean squared error is ``Σ_S (F̂(S) − F(S))²`` and the variance of
    the truth ``Σ_{S≠∅} F(S)²``: no sampling, any ``n``.
    """
    if estimate.n_features != truth.n_features:
        raise ValueError(
            f"estimate has {estimate.n_features} features and truth {truth.n_features}: "
            "compare explanations of the same features."
        )
    est, tru = estimate.fourier, truth.fourier
    error = sum((est.get(s, 0.0) - tru.get(s, 0.0)) ** 2 for s in set(est) | set(tru))
    spread = sum(v**2 for s, v in tru.items() if s)
    if spread == 0:
        return 1.0 if error == 0 else 0.0
    return 1.0 - error / spread


# ---------------------------------------------------- SHAP's explanation error
class InteractionExplanationError:
    """``shap.benchmark.ExplanationError`` that lets an explanation use its interactions.

    SHAP's benchmark walks random feature orderings, reveals features a few
    at a time, and scores an explanation by how well ``base + Σ attributions
    of the revealed features`` predicts the model on each partially masked
    input (root mean squared error). An additive explanation cannot account
    for pairs that only matter together; this version predicts with each
    row's :class:`~proxyspex_captum.Interactions` when the explanation carries
    them (an :class:`~proxyspex_captum.InteractionExplanation`), and exactly
    as SHAP does otherwise, so both kinds are scored on the same masks and
    reported as SHAP's ``BenchmarkResult`` (``shap.plots.benchmark`` plots it).

    Args:
        masker: As for ``shap.benchmark.ExplanationError``.
        model: The model (a callable, as for SHAP).
        *model_args: The explained inputs, as for ``shap.benchmark.ExplanationError``.
        batch_size: Masks per model call.
        num_permutations: Orderings per row.
        link: SHAP's link function (identity by default).
        linearize_link: SHAP's option to linearise a non-identity link.
        seed: Seed of the orderings (a private generator: numpy's global one
            is left alone).
        output: For a multi-output model, the output column the scored
            explanations explain.
    """

    def __init__(
        self,
        masker: Any,
        model: Any,
        *model_args: Any,
        batch_size: int = 500,
        num_permutations: int = 10,
        link: Any = None,
        linearize_link: bool = True,
        seed: int = 38923,
        output: int | None = None,
    ) -> None:
        from shap import links
        from shap.models import Model

        self.masker = masker
        self.model = model if isinstance(model, Model) else Model(model)
        self.model_args = model_args
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.num_permutations = check_int("num_permutations", num_permutations, 1)
        self.link = links.identity if link is None else link
        self.linearize_link = linearize_link
        self.seed = seed
        self.output = output

    def __call__(self, explanation: Any, name: str, step_fraction: float = 0.01) -> Any:
        """Score ``explanation`` (a ``shap.Explanation``, ours or not) under the label ``name``."""
        from shap import links
        from shap.benchmark import BenchmarkResult
        from shap.utils import MaskedModel

        values = np.asarray(explanation.values)
        rows = list(zip(*self.model_args, strict=True))
        if len(values) != len(rows):
            raise ValueError(
                f"The explanation has {len(values)} rows but {len(rows)} model inputs were given."
            )
        interactions = getattr(explanation, "interactions", None)
        rng = np.random.default_rng(self.seed)
        squared = []
        for i, args in enumerate(rows):
            attributions = values[i].reshape(-1)
            n = attributions.size
            masked = MaskedModel(self.model, self.masker, self.link, self.linearize_link, *args)
            if self.linearize_link and self.link is not links.identity:
                # A linearised link takes its weights from the call with the all-off mask
                # (zero_index), which the masks below never make (SHAP's own metric failed).
                masked(np.array([MaskedModel.delta_mask_noop_value]), zero_index=0)
            if len(masked) != n:
                raise ValueError(
                    f"Row {i}: {n} attributions for {len(masked)} maskable features; explain "
                    "one output at a time (e.g. expl[..., 0])."
                )
            step = max(1, int(n * step_fraction))
            row_inter = _row_interactions(interactions, i)
            for _ in range(self.num_permutations):
                order = rng.permutation(n)
                masks = np.zeros((len(range(0, n, step)) + 1, n), dtype=bool)
                for j, start in enumerate(range(0, n, step), start=1):
                    masks[j:, order[start : start + step]] = True
                truth = np.concatenate(
                    [
                        masked(masks[j : j + self.batch_size])
                        for j in range(0, len(masks), self.batch_size)
                    ]
                )
                if truth.ndim == 2 and self.output is not None:
                    truth = truth[:, self.output]
                if truth.ndim != 1:
                    raise ValueError(
                        f"The model has {truth.shape[1]} outputs: pass output= (the column the "
                        "explanation explains) to InteractionExplanationError."
                    )
                if isinstance(row_inter, Interactions):
                    predicted = row_inter.predict(masks)
                else:
                    predicted = truth[0] + masks @ attributions
                squared.append((truth - predicted) ** 2)
        return BenchmarkResult("explanation error", name, value=float(np.sqrt(np.mean(squared))))


def _row_interactions(interactions: Any, i: int) -> Interactions | None:
    if isinstance(interactions, Interactions):
        return interactions
    if isinstance(interactions, np.ndarray) and interactions.ndim == 1:
        return interactions[i]
    return None


# ----------------------------------------------------------------- compare


def compare(
    value_function: MaskFunction,
    n_features: int,
    *,
    budget: int,
    methods: Sequence[str] = COMPARED,
    truth: Interactions | None = None,
    k: int = 10,
    n_test: int = 1000,
    random_state: int = 0,
) -> Any:
    """Run several explainers at the same budget on one value function; a tidy table.

    Every method gets ``budget`` model calls and its surrogate is scored on
    the same ``n_test`` held-out uniform masks (the papers' faithfulness R²).
    The marginal methods' surrogates are their linear models: LIME and
    KernelSHAP as Captum fits them (Captum's ``Lime`` and ``KernelShap`` on
    the binary interpretable input), Shapley value sampling (Captum's
    ``ShapleyValueSampling``) as ``v(∅) + Σ φ_i m_i``, and linear Banzhaf
    regression (least squares on uniform masks). ProxySPEX and SPEX (and
    AutoSPEX, ``"auto"``, when asked for) use their interactions.

    Args:
        value_function: The model as boolean masks ``(k, n)`` -> ``(k,)`` values.
        n_features: Number of features.
        budget: Model calls per method.
        methods: Any of :data:`METHODS` (``proxyspex_captum.baselines.METHODS``);
            by default all but ``"auto"`` (``baselines.COMPARED``).
        truth: Known interactions (a planted game): adds the exact R² over all
            masks (by Parseval) and recovery@k.
        k: For recovery@k.
        n_test: Held-out masks for the R².
        random_state: Seeds every method and the held-out masks (Captum's
            samplers run under a forked torch generator: global RNGs are left alone).

    Returns:
        A ``pandas.DataFrame``, one row per method: ``method``, ``budget``,
        ``model_calls`` (distinct masks sent; a repeated mask is scored
        once, so sampling methods may use fewer), ``r2`` (held out),
        ``exact_r2`` and ``recovery_at_k`` (with ``truth``), ``seconds``
        (the method's own time, model excluded), ``note`` (why a method did
        not run) and ``surrogate`` (its :class:`~proxyspex_captum.Interactions`).
        Plot it with :func:`proxyspex_captum.plots.comparison`.
    """
    import pandas as pd

    n_features = check_int("n_features", n_features, 1)
    budget = check_int("budget", budget, 1)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
    n_test = check_int("n_test", n_test, 1)
    random_state = check_int("random_state", random_state, 0)
    k = check_int("k", k, 1)  # with the truth below: refused before any model call
    if truth is not None:
        if not isinstance(truth, Interactions):
            raise TypeError(f"truth must be an Interactions, got {type(truth).__name__}.")
        if truth.n_features != n_features:
            raise ValueError(
                f"truth has {truth.n_features} features, the value function {n_features}."
            )
    test = as_generator(random_state).random((n_test, n_features)) < 0.5
    truth_values = ValueFunction(value_function, n_features, cache=False)(test)
    if truth_values.ndim != 1:
        raise ValueError("compare needs a single-output value function.")
    rows = []
    for name in methods:
        # Cached: a mask a method asks for twice is one model call, so none exceeds the budget.
        counted = ValueFunction(value_function, n_features)
        tic = time.perf_counter()
        try:
            surrogate, note = run_method(name, counted, n_features, budget, random_state)
        except Exception as err:  # one method failing must not lose the others' results
            surrogate, note = None, f"failed: {type(err).__name__}: {err}"
        seconds = time.perf_counter() - tic - counted.seconds
        row: dict[str, Any] = {"method": name, "budget": budget, "model_calls": counted.n_queries}
        if surrogate is None:
            row.update(r2=np.nan, seconds=np.nan, note=note, surrogate=None)
        else:
            row.update(
                r2=r2_score(truth_values, surrogate.predict(test)),
                seconds=seconds,
                note=note,
                surrogate=surrogate,
            )
        if truth is not None:
            found = surrogate is not None
            row["exact_r2"] = fourier_r2(surrogate, truth) if found else np.nan
            recoverable = found and bool(_nonempty_mobius(truth))
            row["recovery_at_k"] = recovery_at_k(surrogate, truth, k) if recoverable else np.nan
        rows.append(row)
    columns = ["method", "budget", "model_calls", "r2"]
    columns += ["exact_r2", "recovery_at_k"] if truth is not None else []
    columns += ["seconds", "note", "surrogate"]
    return pd.DataFrame(rows)[columns]
