"""The SHAP explainer shared by ProxySPEX and SPEX: SHAP's masked model in, interactions out."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, ClassVar, Literal

import numpy as np
from shap import Explainer, links
from shap.models import Model
from shap.utils import MaskedModel

from ..core import Interactions
from ..core.base import EstimatorOwner, InteractionEstimator
from ..core.checks import check_int
from ..core.executors import check_executor
from .explanation import InteractionExplanation

__all__ = ["InteractionExplainer"]


class InteractionExplainer(EstimatorOwner, Explainer):
    """Base of the SHAP explainers (ProxySPEX, SPEX and AutoSPEX).

    The model is queried through SHAP's own ``MaskedModel``, so every SHAP
    masker works unchanged (``Independent`` and ``Partition`` with background
    data, ``Text``, ``Image``). Subclasses only name their estimator.
    """

    estimator_class: ClassVar[type[InteractionEstimator]]

    def __init__(
        self,
        model: Any,
        masker: Any = None,
        *,
        link: Any = links.identity,
        feature_names: list[str] | None = None,
        output_names: list[str] | None = None,
        max_order: int | None = None,
        index: str = "shapley",
        random_state: Any = None,
        linearize_link: bool = True,
        **estimator_options: Any,
    ) -> None:
        # shap.Explainer re-enters __init__ for transformers pipelines with its own
        # `algorithm` argument; it means nothing here.
        estimator_options.pop("algorithm", None)
        self._init_estimator(
            max_order=max_order, index=index, random_state=random_state, options=estimator_options
        )
        super().__init__(
            model,
            masker,
            link=link,
            feature_names=feature_names,
            output_names=output_names,
            linearize_link=linearize_link,
        )
        if self.masker is None:
            raise ValueError(
                f"{type(self).__name__} needs a masker: background data (a 2-D array, or "
                "shap.maskers.Independent / Partition), shap.maskers.Text(tokenizer) or "
                "shap.maskers.Image(...)."
            )
        if not isinstance(self.model, Model):
            self.model = Model(self.model)

    def __call__(  # type: ignore[override]
        self,
        *args: Any,
        max_evals: int | Literal["auto"] = "auto",
        batch_size: int | Literal["auto"] = "auto",
        outputs: Any = None,
        silent: bool = False,
        executor: Executor | None = None,
    ) -> InteractionExplanation | list[InteractionExplanation]:
        """Explain the model's output on each row of ``args``.

        Args:
            *args: The inputs, as for any SHAP explainer (an array or
                DataFrame of rows, a list of strings for ``Text``, images for
                ``Image``).
            max_evals: Model calls (distinct masks) per row; ``"auto"`` uses
                the estimator's ``default_budget`` (all ``2**n`` masks up to
                ``n = 9`` varying features, then 1,000).
            batch_size: Masks per model call (``"auto"``: the masker's default).
            outputs: Which outputs of a multi-output model to explain (an
                index, a list of indices or a SHAP ``OpChain`` such as
                ``shap.Explanation.argsort.flip[:2]``); ``None`` explains all,
                from one set of model calls.
            silent: Hide the progress bar over rows.
            executor: Run each row's batches of masks on this
                ``concurrent.futures.Executor`` (threads, processes, a Dask
                client, ``psx.executors.RayExecutor``); same values as serially.

        Returns:
            An :class:`InteractionExplanation` (a list of them for several
            input arguments) whose ``.values`` are first order in ``index``
            and which carries each row's :class:`~proxyspex_captum.Interactions`.
        """
        if max_evals != "auto":
            check_int("max_evals", max_evals, 1)
        if batch_size != "auto":  # SHAP's own errors for 0, -3 or 2.5 do not say what to change
            check_int("batch_size", batch_size, 1)
        self._executor = check_executor(executor)
        self._row_interactions: list[Any] = []
        explanation = super().__call__(
            *args,
            max_evals=max_evals,
            main_effects=False,
            error_bounds=False,
            batch_size=batch_size,
            outputs=outputs,
            silent=silent,
        )
        rows = self._row_interactions
        del self._row_interactions
        if isinstance(explanation, list):
            # Several inputs: the interactions span all of them (feature ids run over the
            # inputs' features in order), so every part carries the same ones.
            return [InteractionExplanation.wrap(e, rows, index=self.index) for e in explanation]
        return InteractionExplanation.wrap(explanation, rows, index=self.index)

    def explain_row(  # type: ignore[override]
        self,
        *row_args: Any,
        max_evals: int | Literal["auto"],
        main_effects: bool,
        error_bounds: bool,
        batch_size: int | Literal["auto"],
        outputs: Any,
        silent: bool,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Explain one row: SHAP's per-row hook, called by ``Explainer.__call__``."""
        masked_model = MaskedModel(
            self.model, self.masker, self.link, self.linearize_link, *row_args
        )
        n = len(masked_model)
        # Features equal to every background row cannot change the output: leave them out
        # of the design (SHAP's Exact explainer does the same) and give them no interactions.
        varying = np.asarray(masked_model.varying_inputs(), dtype=np.int64)
        batch = None if batch_size == "auto" else batch_size

        def value_function(masks: np.ndarray) -> np.ndarray:
            full = np.zeros((masks.shape[0], n), dtype=bool)
            full[:, varying] = masks
            out = masked_model(full, batch_size=batch)
            return out if selected is None else out[:, selected]

        selected = self._select_outputs(outputs, masked_model, n)
        clustering = self._row_clustering(row_args)  # fails here, before any budget is spent
        if self.linearize_link and self.link is not links.identity:
            # SHAP computes a non-identity link's linearising weights from the call that
            # includes the all-off mask (zero_index); full-mask calls never pass one.
            masked_model(np.array([MaskedModel.delta_mask_noop_value]), zero_index=0)
        if len(varying) == 0:  # nothing can change: one call gives the constant
            constant = value_function(np.zeros((1, 0), dtype=bool))[0]
            results = [
                Interactions({(): float(c)}, n_features=n, n_queries=1, metadata={"exact": True})
                for c in np.atleast_1d(constant)
            ]
            multi = np.ndim(constant) > 0
        else:
            n_varying = len(varying)
            budget = self.estimator.default_budget(n_varying) if max_evals == "auto" else max_evals
            budget = self.estimator.check_budget(n_varying, budget)
            result = self.estimator.explain(
                value_function, n_varying, budget, executor=getattr(self, "_executor", None)
            )
            multi = isinstance(result, list)
            results = result if multi else [result]
            if n_varying < n:
                results = [r.embed(varying, n) for r in results]
        values = np.stack([r.first_order(self.index) for r in results], axis=-1)
        expected = np.array([r.baseline_value for r in results])
        self._row_interactions.append(results if multi else results[0])
        return {
            "values": values if multi else values[:, 0],
            "expected_values": expected if multi else expected[0],
            "mask_shapes": masked_model.mask_shapes,
            "main_effects": None,
            "clustering": clustering,
            # SHAP names the outputs through these (it needs them when output_names are given)
            "output_indices": selected
            if selected is not None or not multi
            else np.arange(len(results)),
            "output_names": getattr(self.model, "output_names", None),
        }

    def _select_outputs(self, outputs: Any, masked_model: MaskedModel, n: int) -> Any:
        """Output columns to explain (``None``: all), resolving a SHAP OpChain on f(x)."""
        if outputs is None:
            return None
        if hasattr(outputs, "apply"):  # an OpChain: rank the outputs by the model's f(x)
            from shap import Explanation

            full_output = masked_model(np.ones((1, n), dtype=bool))[0]
            outputs = outputs.apply(Explanation(full_output)).values
        return np.atleast_1d(np.asarray(outputs, dtype=np.int64))

    def _row_clustering(self, row_args: tuple[Any, ...]) -> Any:
        clustering = getattr(self.masker, "clustering", None)
        if callable(clustering):
            return clustering(*row_args)
        return clustering if isinstance(clustering, np.ndarray) else None

    @staticmethod
    def supports_model_with_masker(model: Any, masker: Any) -> bool:
        """Any callable model with any SHAP masker."""
        return callable(model) and masker is not None
