"""The Captum attribution shared by ProxySPEX and SPEX: arguments in, interactions out."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, ClassVar

import numpy as np
import torch
from captum._utils.progress import progress
from captum._utils.typing import BaselineType, TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from ..core import Interactions
from ..core.base import EstimatorOwner, InteractionEstimator
from ..core.cache import MaskStore, open_store
from ..core.checks import check_int, check_real
from ..core.executors import check_executor
from ..core.value_function import AUTO_BATCHES, ValueFunction
from .masking import CaptumProblem, MaskedForward, detect_whole_batch, prepare
from .masking import fingerprint as problem_fingerprint

__all__ = ["InteractionAttribution"]


class InteractionAttribution(EstimatorOwner, PerturbationAttribution):
    """Base of the Captum attributions (ProxySPEX, SPEX and AutoSPEX).

    Subclasses only name their estimator (``estimator_class``). The work is
    the same for all: turn Captum's arguments into one value function per
    example, let the estimator find the sparse interactions, and report them
    as :class:`~proxyspex_captum.Interactions` or as first-order attributions
    in the chosen index.
    """

    estimator_class: ClassVar[type[InteractionEstimator]]

    def __init__(
        self,
        forward_func: Callable[..., Any],
        *,
        max_order: int | None = None,
        index: str = "shapley",
        random_state: Any = None,
        **estimator_options: Any,
    ) -> None:
        PerturbationAttribution.__init__(self, forward_func)
        self._init_estimator(
            max_order=max_order, index=index, random_state=random_state, options=estimator_options
        )

    @property
    def max_order(self) -> int:
        """Largest interaction order searched for."""
        return self.estimator.max_order

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def has_convergence_delta(self) -> bool:
        return False

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Tensor | tuple[Tensor, ...] | None = None,
        n_samples: int | None = None,
        perturbations_per_eval: int = 1,
        return_input_shape: bool = True,
        show_progress: bool = False,
        *,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
        return_intervals: bool = False,
        level: float = 0.95,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[Any, Any, Any]:
        """First-order attributions (in ``self.index``, Shapley by default).

        Every argument has Captum's meaning (as in ``KernelShap.attribute``),
        and the result has ``KernelShap``'s shape for the same arguments, so
        this drops in where KernelShap stood.

        Args:
            inputs: A tensor or a tuple of tensors, batch on dimension 0. Each
                example of the batch is explained on its own (unless the model
                returns one number for the whole batch: then the batch is one
                example, as in Captum).
            baselines: The value of a removed feature: ``None`` (zero), a
                number, a tensor broadcastable to an input, or a tuple of
                those, one per input.
            target: Output index for models with several outputs per example
                (an int, a tuple, a list or a tensor, one per example).
            additional_forward_args: Extra arguments passed to the model.
            feature_mask: Integer ids grouping input elements into features,
                one tensor per input; an id used in several tensors is one
                feature. Ids must be ``0 .. n-1``. Default: every scalar
                element is a feature.
            n_samples: Model calls per example (distinct masks). Default: the
                estimator's ``default_budget(n)``: all ``2**n`` masks up to
                ``n = 9`` features, hence the exact transform up to
                ``max_order`` (exact Shapley values when nothing lies above it;
                a ``PoorFitWarning`` says when more than 1 % of the variance
                does), else 1,000 calls (or twice SPEX's smallest design when
                that is more).
            perturbations_per_eval: Masks sent to the model per forward call.
            return_input_shape: Return attributions shaped like the inputs
                (True) or one ``(n_examples, n_features)`` tensor (False).
            show_progress: Show a progress bar over the model calls.
            executor: Run the model calls on this ``concurrent.futures.Executor``
                (threads, processes, a Dask client, ``psx.executors.RayExecutor``);
                same result as serially.
            cache: A file keeping every model output paid for (SQLite),
                written batch by batch: a rerun after a crash, or with another
                budget or method, calls the model only on masks it lacks.
            fingerprint: Names the values in ``cache``. Default: a digest of
                the model's class and parameters and of every argument above
                that changes an output.
            return_intervals: Also return the lower and upper bounds of each
                attribution's ``level`` confidence interval, from bootstrap
                refits over the calls made (no extra model call; needs the
                estimator's ``uncertainty=True``, the default), shaped like
                the attributions.
            level: Coverage of those intervals, in (0, 1).

        Returns:
            A tensor (or tuple of tensors) of float attributions; with
            ``return_intervals``, ``(attributions, lower, upper)``.

        Examples:
            >>> import torch
            >>> import proxyspex_captum as psx
            >>> model = lambda x: x[:, 0] * x[:, 1] + x[:, 2]
            >>> attr = psx.ProxySPEXAttribution(model, random_state=0)
            >>> x = torch.ones(1, 12)
            >>> values, low, high = attr.attribute(x, n_samples=300, return_intervals=True)
            >>> bool(((low <= values) & (values <= high)).all())
            True
        """
        if not isinstance(return_intervals, bool | np.bool_):
            raise TypeError(f"return_intervals must be True or False, got {return_intervals!r}.")
        if return_intervals:
            check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)
            if not self.estimator.makes_resamples:
                raise ValueError(
                    "return_intervals=True needs the estimator's bootstrap resamples: "
                    f"create {type(self).__name__} with uncertainty=True (the default) and, "
                    "for SPEX, a refit (not refit=None)."
                )
        problem, results = self._explain(
            inputs,
            baselines,
            target,
            additional_forward_args,
            feature_mask,
            n_samples,
            perturbations_per_eval,
            show_progress,
            executor=executor,
            cache=cache,
            fingerprint=fingerprint,
        )

        def shaped(rows: list[Any]) -> Any:
            values = torch.stack([torch.as_tensor(row, dtype=torch.float) for row in rows])
            if return_input_shape:
                return problem.to_input_shape(values)
            return values.to(problem.inputs[0].device)

        attributions = shaped([r.first_order(self.index) for r in results])
        if not return_intervals:
            return attributions  # type: ignore[no-any-return]
        # first_order_bounds refuses a result without resamples, with a message.
        bounds = [r.first_order_bounds(self.index, level) for r in results]
        return attributions, shaped([b[0] for b in bounds]), shaped([b[1] for b in bounds])

    @log_usage()
    def attribute_interactions(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Tensor | tuple[Tensor, ...] | None = None,
        n_samples: int | None = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
        *,
        feature_names: Sequence[str] | None = None,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
    ) -> list[Interactions]:
        """The sparse interactions behind each example's output.

        Takes :meth:`attribute`'s arguments (without ``return_input_shape``).

        Args:
            feature_names: Optional names of the features, one per feature-mask id.

        Returns:
            One :class:`~proxyspex_captum.Interactions` per example (one in
            all when the model returns a number for the whole batch); its
            feature ids are the feature-mask ids.
        """
        return self._explain(
            inputs,
            baselines,
            target,
            additional_forward_args,
            feature_mask,
            n_samples,
            perturbations_per_eval,
            show_progress,
            feature_names=feature_names,
            executor=executor,
            cache=cache,
            fingerprint=fingerprint,
        )[1]

    def attribute_future(self) -> Callable:
        """Not supported: the estimators need the model's outputs, not futures."""
        raise NotImplementedError(f"{type(self).__name__} does not support attribute_future.")

    def _explain(
        self,
        inputs: Any,
        baselines: BaselineType,
        target: TargetType,
        additional_forward_args: Any,
        feature_mask: Any,
        n_samples: int | None,
        perturbations_per_eval: int,
        show_progress: bool,
        feature_names: Sequence[str] | None = None,
        *,
        executor: Executor | None = None,
        cache: str | os.PathLike | MaskStore | None = None,
        fingerprint: str | None = None,
    ) -> tuple[CaptumProblem, list[Interactions]]:
        problem = prepare(
            self.forward_func, inputs, baselines, target, additional_forward_args, feature_mask
        )
        n = problem.n_features
        budget = self.estimator.default_budget(n) if n_samples is None else n_samples
        budget = self.estimator.check_budget(n, budget)
        check_int("perturbations_per_eval", perturbations_per_eval, 1)
        if feature_names is not None and len(feature_names) != n:
            raise ValueError(f"Got {len(feature_names)} feature names for {n} features.")
        executor = check_executor(executor)
        if cache is not None and fingerprint is None and not isinstance(cache, MaskStore):
            fingerprint = problem_fingerprint(self.forward_func, problem)
        store = open_store(cache, fingerprint, n)
        problem.whole_batch = detect_whole_batch(self.forward_func, problem)
        if problem.whole_batch and perturbations_per_eval != 1:
            if store is not None and store is not cache:
                store.close()
            raise ValueError(
                "The model returns one number for the whole batch, so each mask needs its own "
                "forward call: use perturbations_per_eval=1 (as Captum requires), or make the "
                "model return one number per example."
            )
        bar = None
        if show_progress:
            # A ceiling: SPEX's design and the removal of repeated masks can use fewer.
            bar = progress(
                desc=f"{type(self).__name__} attribution",
                total=self.estimator.max_queries(n, budget) * problem.n_examples,
                unit="masks",
            )
        # About AUTO_BATCHES calls to the model per example, each of whole forward passes: the
        # cache keeps every finished call, so an interrupted run loses little.
        per_eval = 1 if problem.whole_batch else perturbations_per_eval
        batch_size = self.estimator.batch_size  # an explicit choice of the user's stands
        if batch_size == "auto":
            batch_size = per_eval * max(1, -(-budget // (AUTO_BATCHES * per_eval)))
        update = None if bar is None else bar.update
        results = []
        try:
            for i, example in enumerate(problem.examples()):
                # With an executor the forward calls run elsewhere (perhaps in another
                # process): the bar moves as each batch comes back instead.
                value_function = ValueFunction(
                    MaskedForward(
                        self.forward_func,
                        example,
                        perturbations_per_eval=perturbations_per_eval,
                        on_batch=update if executor is None else None,
                    ),
                    n,
                    batch_size=batch_size,
                    executor=executor,
                    store=None if store is None else store.section(i),
                    on_progress=None if executor is None else update,
                )
                try:
                    inter = self.estimator.explain(
                        value_function, n, budget, feature_names=feature_names
                    )
                except Exception as err:
                    # What the finished examples paid for stays with the error.
                    err.partial_results = results  # type: ignore[attr-defined]
                    if results and hasattr(err, "add_note"):  # Python >= 3.11
                        err.add_note(
                            f"{type(self).__name__}: example {len(results)} failed; the "
                            f"results of the {len(results)} example(s) before it are in "
                            "this exception's `partial_results`."
                        )
                    raise
                assert isinstance(inter, Interactions)  # MaskedForward returns one value per mask
                results.append(inter)
        finally:
            if bar is not None:
                bar.close()
            if store is not None and store is not cache:
                store.close()
        return problem, results
