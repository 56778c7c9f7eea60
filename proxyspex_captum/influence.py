"""Captum's data-influence API for ProxySPEX and SPEX: training examples that act together.

``ProxySPEXInfluence`` and ``SPEXInfluence`` are ``captum.influence.DataInfluence``
subclasses. Where TracIn or influence functions approximate the effect of a
training example from gradients of one trained model, these retrain the
model on training subsets (your ``train_fn``) and explain the test outputs
as a sparse function of which examples were kept: one score per training
example, as Captum's influence methods give (``influence``), and the
interactions behind it (``influence_interactions``): synergy between
examples, and redundancy between near-duplicates that no marginal method
can show.

Examples:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> import proxyspex_captum as psx
    >>> X = torch.tensor([[0.0], [0.1], [1.0], [1.1]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> def train(indices):  # a 1-nearest-neighbour "model" of the kept examples
    ...     return X[indices], y[indices]
    >>> def margin(model, inputs):  # +1 if the nearest kept example has the true label
    ...     points, labels = model
    ...     x, target = inputs
    ...     if len(points) == 0:
    ...         return torch.zeros(len(x))
    ...     nearest = labels[torch.cdist(x, points).argmin(dim=1)]
    ...     return (nearest == target).float() * 2 - 1
    >>> influence = psx.influence.ProxySPEXInfluence(
    ...     train(torch.arange(4)), TensorDataset(X, y), train, score_fn=margin, random_state=0
    ... )
    >>> test = (torch.tensor([[0.05]]), torch.tensor([0]))
    >>> influence.influence(test).round(decimals=2)  # Shapley values; 0 and 1 share the credit
    tensor([[ 0.7500,  0.7500, -0.2500, -0.2500]])
    >>> inter = influence.influence_interactions(test)[0]
    >>> round(inter.mobius[(0, 1)], 2)  # either suffices: a redundant (negative) pair
    -1.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from captum.influence import DataInfluence
from captum.influence._utils.common import KMostInfluentialResults

from .core import SPEX, Interactions, ProxySPEX
from .core.base import EstimatorOwner, InteractionEstimator
from .core.checks import check_int, check_optional_int
from .data import check_scores, group_members, training_game
from .models import eval_mode

__all__ = ["InteractionInfluence", "ProxySPEXInfluence", "SPEXInfluence", "correct_class_margin"]


def correct_class_margin(model: Any, inputs: tuple) -> torch.Tensor:
    """The true class's logit minus the largest other: ``inputs`` is ``(*features, labels)``.

    The default ``score_fn``: positive when the model gets the test point
    right, and larger the surer it is (the output datamodels explain).
    """
    *features, labels = inputs
    # In eval mode, as Captum's influence methods score: in train mode dropout made the
    # same subset score differently, and batch norm learnt the test batch's statistics.
    with eval_mode(model), torch.no_grad():
        logits = model(*features)
    rows = torch.arange(len(labels))
    true = logits[rows, labels]
    others = logits.clone()
    others[rows, labels] = -torch.inf
    return true - others.max(dim=1).values


class InteractionInfluence(EstimatorOwner, DataInfluence):
    """Base of :class:`ProxySPEXInfluence` and :class:`SPEXInfluence`.

    Args:
        model: The model trained on the whole ``train_dataset`` (``score_fn``
            is tried on it first, so a broken one fails before any retraining).
        train_dataset: The training examples (a ``torch.utils.data.Dataset``
            or anything with a length); feature ``i`` is example ``i``.
        train_fn: ``train_fn(indices) -> model``: trains a fresh model on the
            examples ``indices`` (a sorted integer array, possibly empty).
            Seed it inside, with generators of its own (``torch.Generator``,
            ``np.random.default_rng``): the same subset must give the same
            model, and with ``n_jobs`` threads the global ones are shared.
        score_fn: ``score_fn(model, inputs) -> (n_test,)``: what is explained
            for each test point. Default: :func:`correct_class_margin`.
        groups: One group label per training example: features are then the
            groups, and scores come per group.
        max_order: Largest interaction order (the estimator's default if ``None``).
        index: First-order index of :meth:`influence` (``"shapley"``, ``"banzhaf"``, ...).
        random_state: Seed of the retraining design.
        n_jobs: Retrain on this many threads at once.
        **estimator_options: Further keyword arguments of the estimator.
    """

    estimator_class: ClassVar[type[InteractionEstimator]]

    def __init__(
        self,
        model: Any,
        train_dataset: Any,
        train_fn: Callable[[np.ndarray], Any],
        *,
        score_fn: Callable[[Any, Any], Any] = correct_class_margin,
        groups: Sequence[Any] | None = None,
        max_order: int | None = None,
        index: str = "shapley",
        random_state: Any = None,
        n_jobs: int | None = None,
        **estimator_options: Any,
    ) -> None:
        if not callable(train_fn) or not callable(score_fn):
            raise TypeError("train_fn and score_fn must be callables.")
        self.model = model
        self.train_dataset = train_dataset
        self.train_fn = train_fn
        self.score_fn = score_fn
        self.groups = groups
        self.n_jobs = check_optional_int("n_jobs", n_jobs)  # joblib's: -1 is every core
        self.n_train = check_int("len(train_dataset)", len(train_dataset), 2)
        # The features as the retraining game will count them (groups checked here, once).
        self.n_features = len(group_members(groups, self.n_train)[1])
        if self.n_features < 2:
            raise ValueError(f"groups holds {self.n_features} group; data attribution needs 2.")
        self._init_estimator(
            max_order=max_order, index=index, random_state=random_state, options=estimator_options
        )

    def _game(self, inputs: Any) -> Any:
        """The retraining game of ``inputs``, after ``score_fn`` was checked on ``model``."""
        check_scores(self.score_fn(self.model, inputs), [], "score_fn(model, inputs)")
        return training_game(
            self.train_fn,
            lambda trained: self.score_fn(trained, inputs),
            self.n_train,
            groups=self.groups,
            n_jobs=self.n_jobs,
        )

    def influence_interactions(
        self,
        inputs: Any,
        *,
        budget: int | None = None,
        show_progress: bool = False,
        **explain_options: Any,
    ) -> list[Interactions]:
        """One :class:`~proxyspex_captum.Interactions` per test point, over the training examples.

        All test points are explained from the same retrainings: pass them in
        one call (each point's result is what it would get alone). ``budget``
        is the number of retrainings (default: the estimator's
        ``default_budget``); ``show_progress`` shows a bar over them;
        ``explain_options`` go to the estimator's ``explain`` (``executor``,
        ``cache``, ``fingerprint``, ...).
        """
        game = self._game(inputs)
        n = game.n_features
        budget = self.estimator.default_budget(n) if budget is None else budget
        kind = "train" if self.groups is None else "group"
        names = [f"{kind} {label}" for label in game.group_labels]
        estimator = self.estimator
        if show_progress and not estimator.show_progress:  # for this call only
            estimator = copy.copy(estimator)
            estimator.show_progress = True
        result = estimator.explain(game, n, budget, feature_names=names, **explain_options)
        return result if isinstance(result, list) else [result]

    def influence(  # type: ignore[override]
        self,
        inputs: Any = None,
        k: int | None = None,
        proponents: bool = True,
        *,
        budget: int | None = None,
        show_progress: bool = False,
        **explain_options: Any,
    ) -> torch.Tensor | KMostInfluentialResults:
        """First-order influence of every training example on every test point.

        Args:
            inputs: The test batch, as ``score_fn`` takes it (by default
                ``(*features, labels)``, as Captum's TracIn takes it).
            k: ``None``: all scores, ``(n_test, n_train)`` (``n_groups`` with
                groups). Else the ``k`` strongest proponents (or opponents).
                With groups, ``indices`` are positions in the sorted group
                labels (the features' order), not training-example indices.
            proponents: With ``k``: the largest scores (examples that raise the
                test output) or, ``False``, the smallest (those that lower it).
            budget: Retrainings (default: the estimator's ``default_budget``).
            show_progress: A progress bar over the retrainings (as Captum's
                influence methods take it).
            **explain_options: Passed to the estimator's ``explain``.

        Returns:
            A float tensor of scores in ``self.index``, or Captum's
            ``KMostInfluentialResults(indices, influence_scores)``.
        """
        # Checked before any retraining is paid for.
        if k is not None:
            k = check_int("k", k, 1, self.n_features)
        if not isinstance(proponents, bool | np.bool_):
            raise TypeError(f"proponents must be True or False, got {proponents!r}.")
        inters = self.influence_interactions(
            inputs, budget=budget, show_progress=show_progress, **explain_options
        )
        scores = torch.as_tensor(np.stack([i.first_order(self.index) for i in inters])).float()
        if k is None:
            return scores
        values, indices = torch.topk(scores, k, dim=1, largest=bool(proponents))
        return KMostInfluentialResults(indices, values)


class ProxySPEXInfluence(InteractionInfluence):
    """Data influence from ProxySPEX: a nonlinear datamodel with interactions (see the module)."""

    estimator_class = ProxySPEX


class SPEXInfluence(InteractionInfluence):
    """Data influence from SPEX (no proxy; coded retraining design)."""

    estimator_class = SPEX
