"""Attention heads as the features of a Captum attribution: which heads a task needs, and together.

Captum's layer methods attribute to a layer's neurons from gradients of one
forward pass. :class:`ProxySPEXHeadAttribution` and
:class:`SPEXHeadAttribution` attribute a task's score to the model's attention
heads by ablating them (``psx.components``): a score per head, as a layer ×
head grid (:meth:`~HeadAttribution.attribute`), and the interactions behind
it (:meth:`~HeadAttribution.attribute_interactions`): heads that only work
together, and heads that stand in for each other.

Examples:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> import proxyspex_captum as psx
    >>> config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> with torch.random.fork_rng():
    ...     _ = torch.manual_seed(0)
    ...     model = LlamaForCausalLM(config).eval()
    >>> def score(model, ids):  # log-probability of token 2 after each prompt
    ...     return model(ids).logits[:, -1].log_softmax(-1)[:, 2]
    >>> attr = psx.ProxySPEXHeadAttribution(model, score, max_order=8, random_state=0)
    >>> grid = attr.attribute(torch.tensor([[1, 5, 7, 3]]))  # all 2**8 masks: exact Shapley values
    >>> grid.shape  # layers x heads
    torch.Size([2, 4])
    >>> inter = attr.last_interactions  # named by head
    >>> inter.feature_names[:2]
    ['L0.H0', 'L0.H1']
    >>> gap = inter.full_value - inter.baseline_value  # f(all heads) - f(none)
    >>> abs(float(grid.sum()) - gap) < 1e-5  # Shapley values add up to it
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, ClassVar

import torch
from captum.attr import PerturbationAttribution
from captum.log import log_usage

from ..components import ABLATIONS, HeadGame, attention_heads, head_game
from ..core import SPEX, Interactions, ProxySPEX
from ..core.base import EstimatorOwner, InteractionEstimator
from ..core.cache import MaskStore

__all__ = ["HeadAttribution", "ProxySPEXHeadAttribution", "SPEXHeadAttribution"]


class HeadAttribution(EstimatorOwner, PerturbationAttribution):
    """Base of :class:`ProxySPEXHeadAttribution` and :class:`SPEXHeadAttribution`.

    Args:
        model: A Hugging Face decoder (Llama, SmolLM2, Qwen, Mistral or GPT-2 style).
        score_fn: ``score_fn(model, inputs)``: the task's score, a number or
            one per example (then their mean), e.g. a
            :class:`~proxyspex_captum.components.NextTokenTask`.
        heads: The heads that are features (default: all).
        ablation: ``"zero"`` or ``"mean"`` (see ``psx.components``).
        max_order: Largest interaction order (the estimator's default if ``None``).
        index: The first-order index :meth:`attribute` reports.
        random_state: Seed of the masks.
        **estimator_options: Further keyword arguments of the estimator.
    """

    estimator_class: ClassVar[type[InteractionEstimator]]

    def __init__(
        self,
        model: Any,
        score_fn: Callable[[Any, Any], Any],
        *,
        heads: Sequence[Any] | None = None,
        ablation: str = "zero",
        max_order: int | None = None,
        index: str = "shapley",
        random_state: Any = None,
        **estimator_options: Any,
    ) -> None:
        if ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}.")
        PerturbationAttribution.__init__(self, model)
        self.model = model
        self.score_fn = score_fn
        # A list: a generator would be used up by the first call.
        self.heads = None if heads is None else list(heads)
        self.ablation = ablation
        self.last_interactions: Interactions | None = None
        self._init_estimator(
            max_order=max_order, index=index, random_state=random_state, options=estimator_options
        )

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def has_convergence_delta(self) -> bool:
        return False

    def game(self, inputs: Any, *, mean_inputs: Any = None, masks_per_pass: int = 1) -> HeadGame:
        """The head game this attribution explains (see :func:`psx.components.head_game`)."""
        return head_game(
            self.model,
            inputs,
            self.score_fn,
            heads=self.heads,
            ablation=self.ablation,
            mean_batch=mean_inputs,
            masks_per_pass=masks_per_pass,
        )

    @log_usage()
    def attribute_interactions(
        self,
        inputs: Any,
        *,
        mean_inputs: Any = None,
        n_samples: int | None = None,
        masks_per_pass: int = 1,
        show_progress: bool = False,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
    ) -> Interactions:
        """The interactions among the heads behind the task's score, named ``L{layer}.H{head}``.

        Args:
            inputs: What ``score_fn`` takes: token ids, or a mapping of model arguments.
            mean_inputs: Reference batch of mean ablation (default: ``inputs``).
            n_samples: Masks (ablated forward passes); default: the
                estimator's ``default_budget`` for the number of heads.
            masks_per_pass: Masks per forward pass (needs per-example scores).
            show_progress: A progress bar over the masks.
            executor: Run batches of masks here (threads only: the model's
                hooks serialise the calls; mostly useful to keep a UI live).
            cache: A file keeping every value paid for (see ``explain``).
            fingerprint: Names the values in ``cache``; required with a
                cache file (this class cannot digest your model and score).
        """
        return self._explain(
            inputs,
            mean_inputs=mean_inputs,
            n_samples=n_samples,
            masks_per_pass=masks_per_pass,
            show_progress=show_progress,
            executor=executor,
            cache=cache,
            fingerprint=fingerprint,
        )[0]

    def _explain(
        self,
        inputs: Any,
        *,
        mean_inputs: Any,
        n_samples: int | None,
        masks_per_pass: int,
        show_progress: bool,
        executor: Executor | None,
        cache: str | os.PathLike | MaskStore | None,
        fingerprint: str | None,
    ) -> tuple[Interactions, HeadGame]:
        # Everything the arguments alone decide is checked before the game is built:
        # building it runs the model (the intact score, and the means of mean ablation).
        if cache is not None and fingerprint is None and not isinstance(cache, MaskStore):
            raise ValueError(
                "A cache file needs fingerprint=: a name for this model, task, heads and "
                "ablation (the values of another would otherwise be reused)."
            )
        n = len(attention_heads(self.model)) if self.heads is None else len(self.heads)
        budget = self.estimator.default_budget(n) if n_samples is None else n_samples
        budget = self.estimator.check_budget(n, budget)
        game = self.game(inputs, mean_inputs=mean_inputs, masks_per_pass=masks_per_pass)
        was = self.estimator.show_progress
        self.estimator.show_progress = bool(show_progress)
        try:
            inter = self.estimator.explain(
                game,
                n,
                budget,
                feature_names=game.feature_names,
                executor=executor,
                cache=cache,
                fingerprint=fingerprint,
            )
        finally:
            self.estimator.show_progress = was
        assert isinstance(inter, Interactions)  # a head game has one output
        self.last_interactions = inter
        return inter, game

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: Any,
        *,
        mean_inputs: Any = None,
        n_samples: int | None = None,
        masks_per_pass: int = 1,
        show_progress: bool = False,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
    ) -> torch.Tensor:
        """First-order head scores (``self.index``) as a ``(n_layers, n_heads)`` grid.

        Takes :meth:`attribute_interactions`' arguments. Cells of heads that
        were not features (``heads=`` a subset) are NaN: they were not measured.
        The interactions of the last call are kept in ``last_interactions``.
        """
        inter, game = self._explain(
            inputs,
            mean_inputs=mean_inputs,
            n_samples=n_samples,
            masks_per_pass=masks_per_pass,
            show_progress=show_progress,
            executor=executor,
            cache=cache,
            fingerprint=fingerprint,
        )
        cells = [(head.layer, head.head) for head in game.heads]
        return head_grid(inter.first_order(self.index), cells, game.layer_grid)

    def attribute_future(self) -> Callable:
        """Not supported: the estimators need the model's outputs, not futures."""
        raise NotImplementedError(f"{type(self).__name__} does not support attribute_future.")


def head_grid(
    values: Sequence[float], cells: Sequence[tuple[int, int]], shape: tuple[int, int]
) -> torch.Tensor:
    """Per-head values placed on a ``(layers, heads)`` grid, NaN where no head was measured."""
    grid = torch.full(shape, float("nan"))
    for (layer, head), value in zip(cells, values, strict=True):
        grid[layer, head] = float(value)
    return grid


class ProxySPEXHeadAttribution(HeadAttribution):
    """Attention-head attribution with ProxySPEX (see the module)."""

    estimator_class = ProxySPEX


class SPEXHeadAttribution(HeadAttribution):
    """Attention-head attribution with SPEX (see the module)."""

    estimator_class = SPEX
