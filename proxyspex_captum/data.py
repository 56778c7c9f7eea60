"""Training examples as features: retraining games for data attribution.

A mask is a training subset; its value is what the model trained on that
subset predicts for the test points. ProxySPEX on such a game is a
*nonlinear datamodel*: beyond one weight per training example (a linear
datamodel, an influence function), it finds examples that only matter
together (synergy: a positive Möbius coefficient) and examples that stand in
for each other (redundancy: two near-duplicates, a negative pair: removing
either changes nothing, removing both does).

Every test point is explained from the same retrainings: the value function
returns one column per test point, ``(k, n_test)``.

Examples:
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from proxyspex_captum.data import retraining_game
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]])
    >>> y = np.array([0, 0, 1, 1])
    >>> game = retraining_game(KNeighborsClassifier(1), X, y, [[0.05]], [0])
    >>> masks = np.array([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=bool)
    >>> np.round(game(masks).ravel(), 2)  # drop one close example, then both
    array([ 13.82,  13.82, -13.82])
    >>> game.n_fallbacks  # subsets that could not be fitted (none here)
    0
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core.checks import check_int

__all__ = [
    "OUTPUTS",
    "RetrainingGame",
    "check_scores",
    "group_members",
    "retraining_game",
    "training_game",
]

#: What a retrained classifier gives per test point: the correct class's margin
#: over the strongest other class (log-probabilities, or decision values), its
#: probability, its log loss, or (regressors) the prediction itself.
OUTPUTS = ("margin", "probability", "loss", "prediction")
# Probabilities are clipped here before their log: a class the subset never
# showed has probability 0, and a margin of -inf would not be a value.
MIN_PROBABILITY = 1e-6


class RetrainingGame:
    """Masks over training examples (or groups) -> the retrained model's test outputs.

    Build one with :func:`retraining_game` (scikit-learn) or
    :func:`training_game` (any training loop). Call it with boolean masks
    ``(k, n_features)``; it retrains once per mask (in parallel with
    ``n_jobs``) and returns ``(k, n_test)``.

    Attributes:
        n_features: Training examples, or groups of them.
        group_labels: Each feature's label: the example's index, or the group's
            label (groups in sorted order).
        groups: For each feature, the indices of the training examples it keeps.
        n_fallbacks: Subsets that could not be fitted (empty, one class
            left, ...) and got the fallback value instead.
        notes: One line per kind of fitting failure met (the first error's text).
    """

    def __init__(
        self,
        fit_and_score: Callable[[np.ndarray], np.ndarray],
        n_train: int,
        *,
        groups: Sequence[Any] | None = None,
        n_jobs: int | None = None,
        quiet: tuple[type[Warning], ...] = (),
    ) -> None:
        self._fit_and_score = fit_and_score
        self.n_train = check_int("n_train", n_train, 1)
        self.group_labels, self.groups = group_members(groups, self.n_train)
        self._quiet = quiet
        self.n_features = len(self.groups)
        if self.n_features < 2:
            raise ValueError(
                f"Data attribution needs at least 2 training examples (or groups); got "
                f"{self.n_features}."
            )
        self.n_jobs = n_jobs
        self.n_fallbacks = 0
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def indices(self, mask: np.ndarray) -> np.ndarray:
        """The training examples a mask keeps (sorted)."""
        kept = [self.groups[j] for j in np.flatnonzero(mask)]
        return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=int)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.n_features:
            raise ValueError(f"masks must have shape (k, {self.n_features}), got {masks.shape}.")
        if len(masks) == 0:  # the outputs' number is known only after a fit
            raise ValueError("masks has no rows: pass at least one subset to retrain on.")
        jobs = [self.indices(mask) for mask in masks]
        # Once, in this thread: warnings.catch_warnings is not thread-safe.
        with warnings.catch_warnings():
            for category in self._quiet:
                warnings.simplefilter("ignore", category)
            if self.n_jobs in (None, 1) or len(jobs) == 1:
                rows = [self._fit_and_score(kept) for kept in jobs]
            else:
                from joblib import Parallel, delayed

                # Threads: scikit-learn's fits release the GIL in their numeric cores,
                # and a thread shares the data instead of copying it to each worker.
                rows = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                    delayed(self._fit_and_score)(kept) for kept in jobs
                )
        return np.stack(rows)

    def note_fallback(self, error: Exception) -> None:
        """Count a subset that could not be fitted (or scored), and keep a note of why."""
        with self._lock:
            self.n_fallbacks += 1
            kind = f"{type(error).__name__}: {error}"
            if len(self.notes) < 10 and not any(n.startswith(kind[:60]) for n in self.notes):
                self.notes.append(kind)


def group_members(
    groups: Sequence[Any] | None, n_train: int
) -> tuple[list[Any], list[np.ndarray]]:
    """Each feature's label and training-example indices: one each, or one per group (sorted)."""
    if groups is None:
        return list(range(n_train)), [np.array([i]) for i in range(n_train)]
    labels = np.asarray(groups)
    if labels.shape != (n_train,):
        raise ValueError(
            f"groups must give one group label per training example ({n_train}), got shape "
            f"{labels.shape}."
        )
    unique, inverse = np.unique(labels, return_inverse=True)
    return unique.tolist(), [np.flatnonzero(inverse == g) for g in range(len(unique))]


def retraining_game(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any = None,
    *,
    output: str = "margin",
    groups: Sequence[Any] | None = None,
    n_jobs: int | None = None,
) -> RetrainingGame:
    """A scikit-learn estimator retrained on each training subset, scored on the test points.

    Each mask clones ``estimator`` (its ``random_state`` with it: a seeded
    estimator gives the same model for the same subset) and fits it on the
    kept training examples.

    Args:
        estimator: An unfitted scikit-learn estimator (classifier or regressor).
        X_train: Training features, ``(n_train, ...)``.
        y_train: Training labels or targets, ``(n_train,)``.
        X_test: The points whose predictions are explained, ``(n_test, ...)``.
        y_test: Their true labels (targets): needed for ``"margin"``,
            ``"probability"`` and ``"loss"``.
        output: ``"margin"`` (classifiers: the true class's log-probability
            minus the largest other's, or decision values for models without
            probabilities), ``"probability"`` (of the true class), ``"loss"``
            (log loss for classifiers, squared error for regressors) or
            ``"prediction"`` (a regressor's prediction).
        groups: One group label per training example: features are then the
            groups (a mask keeps or drops a whole group), for thousands of
            examples in hundreds of groups.
        n_jobs: Retrain masks in parallel on this many threads (joblib;
            ``-1``: every core); ``None``: one after another.

    Returns:
        A :class:`RetrainingGame`. A subset the estimator refuses to fit
        (scikit-learn's ``ValueError``: empty, a classifier left with one
        class, fewer examples than a k-NN's neighbours) gets the prediction of
        the subset's label frequencies (add-one smoothed; a margin of 0 for a
        model with decision values only; a regressor: the mean of the kept
        targets, or of all when empty), counted in ``n_fallbacks``. The whole
        training set must fit. Errors of scoring a fitted model are not caught.
        For a model without ``predict_proba``, ``"probability"`` and ``"loss"``
        read a softmax of its decision values (not calibrated).

    Retrainings run on threads (``n_jobs``, or a thread pool as
    ``explain(..., executor=...)``): the game holds its data and a lock, and
    does not pickle for process pools or clusters.
    """
    from sklearn.base import clone, is_classifier

    try:
        template = clone(estimator)
    except Exception as err:
        raise TypeError(
            f"estimator must be a scikit-learn estimator that can be cloned, got "
            f"{type(estimator).__name__} ({err})."
        ) from err
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    y_train = np.asarray(y_train)
    for name, X in (("X_train", X_train), ("X_test", X_test)):
        if X.ndim < 2:
            raise ValueError(
                f"{name} must have one row per example and at least one column, got shape "
                f"{X.shape} (a single feature is X.reshape(-1, 1))."
            )
        if _non_finite(X):
            raise ValueError(f"{name} holds NaN or infinite values: every fit would fail.")
    if y_train.ndim != 1 or len(X_train) != len(y_train):
        raise ValueError(
            f"X_train has {len(X_train)} rows and y_train {len(y_train)}: one label per example."
        )
    if _non_finite(y_train):
        raise ValueError("y_train holds NaN or infinite values: every fit would fail.")
    if len(X_test) == 0:
        raise ValueError("X_test is empty: give at least one test point to explain.")
    if X_test.shape[1:] != X_train.shape[1:]:
        raise ValueError(
            f"X_test's rows have shape {X_test.shape[1:]}, X_train's {X_train.shape[1:]}."
        )
    if output not in OUTPUTS:
        raise ValueError(f"Unknown output {output!r}; choose one of {', '.join(OUTPUTS)}.")
    classifier = is_classifier(template)
    if classifier and output == "prediction":
        raise ValueError("output='prediction' is for regressors; a classifier has 'margin'.")
    if not classifier and output in ("margin", "probability"):
        raise ValueError(f"output={output!r} is for classifiers; a regressor has 'prediction'.")
    if output != "prediction":
        if y_test is None:
            raise ValueError(f"output={output!r} needs y_test, the test points' true labels.")
        y_test = np.asarray(y_test)
        if y_test.ndim != 1 or len(y_test) != len(X_test):
            raise ValueError(
                f"y_test must hold one label per test point ({len(X_test)}), got shape "
                f"{y_test.shape}."
            )
        if _non_finite(y_test):
            raise ValueError("y_test holds NaN or infinite values: its scores would be NaN.")
    classes = np.unique(y_train) if classifier else None
    if classifier and output != "prediction":
        unknown = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
        if unknown:
            raise ValueError(f"y_test has labels {unknown} that y_train never shows.")
    if classifier and not hasattr(template, "predict_proba") and _one_vs_one(template):
        # Its decision_function scores pairs of classes: with 3 classes as many columns
        # as classes, which the scorer would read as one score per class.
        raise TypeError(
            f"{type(template).__name__} scores pairs of classes (decision_function_shape="
            "'ovo'): use decision_function_shape='ovr' or a model with predict_proba."
        )
    scorer = _Scorer(output, classes, y_test, not hasattr(template, "predict_proba"))
    # k-NN (also inside a pipeline) cannot predict from fewer examples than neighbours.
    neighbours = max(
        (
            v
            for k, v in template.get_params().items()
            if k.endswith("n_neighbors") and isinstance(v, int)
        ),
        default=None,
    )
    game: RetrainingGame

    def fit_and_score(kept: np.ndarray) -> np.ndarray:
        model = clone(template)
        try:
            if len(kept) == 0:
                raise ValueError("the training subset is empty")
            if neighbours is not None and len(kept) < neighbours:
                raise ValueError(f"{len(kept)} examples for {neighbours} neighbours")
            model.fit(X_train[kept], y_train[kept])
        except ValueError as err:  # one class left, too few examples, ...
            if len(kept) == len(X_train):  # the whole training set must fit: a real error
                raise
            game.note_fallback(err)
            return scorer.from_prior(y_train, kept, len(X_test))
        return scorer(model, X_test)

    game = RetrainingGame(
        fit_and_score, len(X_train), groups=groups, n_jobs=n_jobs, quiet=_convergence_warnings()
    )
    return game


def _convergence_warnings() -> tuple[type[Warning], ...]:
    """scikit-learn's convergence warnings: expected on tiny subsets, silenced while retraining."""
    from sklearn.exceptions import ConvergenceWarning

    return (ConvergenceWarning,)


def training_game(
    train_fn: Callable[[np.ndarray], Any],
    score_fn: Callable[[Any], Any],
    n_train: int,
    *,
    groups: Sequence[Any] | None = None,
    n_jobs: int | None = None,
) -> RetrainingGame:
    """A retraining game over your own training loop (torch, JAX, anything).

    Args:
        train_fn: ``train_fn(indices) -> model``: trains on the training
            examples ``indices`` (a sorted integer array; may be empty) and
            returns the model. Seed it inside for reproducible masks.
        score_fn: ``score_fn(model) -> (n_test,)``: the trained model's
            outputs on the test points (e.g. correct-class margins).
        n_train: Number of training examples.
        groups: One group label per training example (features are groups).
        n_jobs: Train masks in parallel on this many threads.

    Examples:
        >>> import numpy as np
        >>> from proxyspex_captum.data import training_game
        >>> values = np.array([1.0, 2.0, 4.0])
        >>> game = training_game(lambda idx: values[idx].sum(), lambda m: [m], 3)
        >>> game(np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)).ravel()
        array([5., 2.])
    """
    if not callable(train_fn) or not callable(score_fn):
        raise TypeError("train_fn and score_fn must be callables.")

    widths: list[int] = []

    def fit_and_score(kept: np.ndarray) -> np.ndarray:
        return check_scores(score_fn(train_fn(kept)), widths, "score_fn(train_fn(indices))")

    return RetrainingGame(fit_and_score, n_train, groups=groups, n_jobs=n_jobs)


def check_scores(values: Any, widths: list[int], what: str) -> np.ndarray:
    """``values`` as a finite float vector, as long as the first one seen (kept in ``widths``).

    One number per test point: a vector ``(n_test,)``, a column ``(n_test, 1)``
    or, for one test point, a scalar. A row ``(1, m)`` is refused: it reads as
    one test point's ``m`` outputs (a classifier's logits) as well as ``m`` points.
    """
    if hasattr(values, "detach"):  # a torch tensor, of any dtype (bfloat16 has no numpy twin)
        values = values.detach().double().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:  # one test point, as a scalar
        array = array.reshape(1)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # (n_test, 1)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(
            f"{what} must return one number per test point, (n_test,) or (n_test, 1); got "
            f"shape {array.shape}. For a classifier, score one class (e.g. the true class's "
            "margin, psx.influence.correct_class_margin), not every logit."
        )
    if not widths:
        widths.append(len(array))
    if len(array) != widths[0]:
        raise ValueError(f"{what} returned {widths[0]} scores, then {len(array)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} returned NaN or infinite scores.")
    return array


def _non_finite(array: np.ndarray) -> bool:
    """Whether a numeric array holds NaN or an infinity (labels may be strings)."""
    return bool(np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all())


def _one_vs_one(estimator: Any) -> bool:
    """Whether ``estimator`` (or a pipeline's last step) scores pairs of classes."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return getattr(final, "decision_function_shape", None) == "ovo"


class _Scorer:
    """Turns a fitted model (or a fallback prior) into the chosen output per test point."""

    def __init__(
        self,
        output: str,
        classes: np.ndarray | None,
        y_test: np.ndarray | None,
        decision_values: bool = False,
    ):
        self.output, self.classes = output, classes
        self.y_test = y_test
        self.decision_values = decision_values  # margins from decision_function
        if classes is not None and y_test is not None:
            self.true = np.searchsorted(classes, y_test)  # column of each true class

    def __call__(self, model: Any, X_test: np.ndarray) -> np.ndarray:
        if self.classes is None:  # a regressor
            prediction = np.asarray(model.predict(X_test), dtype=float).reshape(len(X_test))
            return self._regression(prediction)
        if hasattr(model, "predict_proba"):
            return self._from_probabilities(self._full(model, model.predict_proba(X_test), 0.0))
        scores = np.asarray(model.decision_function(X_test), dtype=float)
        if scores.ndim == 1:  # binary: the score of classes_[1] against classes_[0]
            scores = np.stack([-scores / 2, scores / 2], axis=1)
        if scores.shape[1] != len(model.classes_):
            raise TypeError(
                f"{type(model).__name__}.decision_function gives {scores.shape[1]} columns for "
                f"{len(model.classes_)} classes (one-vs-one?): use one score per class "
                "(e.g. decision_function_shape='ovr') or a model with predict_proba."
            )
        # A class the subset never showed scores below every class it did.
        floor = scores.min(axis=1, keepdims=True) - 1.0
        return self._from_scores(self._full(model, scores, floor))

    def from_prior(self, y_train: np.ndarray, kept: np.ndarray, n_test: int) -> np.ndarray:
        """What a model that learnt only the label frequencies of ``kept`` predicts."""
        if self.classes is None:
            mean = y_train[kept].mean() if len(kept) else y_train.mean()
            return self._regression(np.full(n_test, float(mean)))
        counts = np.array([(y_train[kept] == c).sum() for c in self.classes], dtype=float)
        probabilities = (counts + 1) / (counts.sum() + len(self.classes))
        if self.output == "margin" and self.decision_values:
            # Decision values have no probability scale: no preference is a margin of 0.
            return np.zeros(n_test)
        return self._from_probabilities(np.tile(probabilities, (n_test, 1)))

    def _full(self, model: Any, columns: np.ndarray, fill: Any) -> np.ndarray:
        """Per-class columns over every class of ``y_train`` (the model may know fewer)."""
        columns = np.asarray(columns, dtype=float)
        full = np.empty((len(columns), len(self.classes)))
        full[:] = fill
        where = np.searchsorted(self.classes, model.classes_)
        if not np.array_equal(
            self.classes[np.minimum(where, len(self.classes) - 1)], model.classes_
        ):
            raise TypeError(f"{type(model).__name__} has classes the training labels do not.")
        full[:, where] = columns
        return full

    def _from_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        rows = np.arange(len(probabilities))
        p_true = probabilities[rows, self.true]
        if self.output == "probability":
            return p_true
        log_p = np.log(np.clip(probabilities, MIN_PROBABILITY, 1.0))
        if self.output == "loss":
            return -log_p[rows, self.true]
        return self._from_scores(log_p)

    def _from_scores(self, scores: np.ndarray) -> np.ndarray:
        rows = np.arange(len(scores))
        true = scores[rows, self.true]
        others = scores.copy()
        others[rows, self.true] = -np.inf
        if self.output == "margin":
            return true - others.max(axis=1)
        # probability / loss from decision values: a softmax over the classes' scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        return self._from_probabilities(probabilities)

    def _regression(self, prediction: np.ndarray) -> np.ndarray:
        if self.output == "prediction":
            return prediction
        return (prediction - np.asarray(self.y_test, dtype=float)) ** 2
