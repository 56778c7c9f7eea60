"""The SHAP explainer shared by ProxySPEX and SPEX: SHAP's masked model in, interactions out."""

from __future__ import annotations

import pickle
from concurrent.futures import Executor
from typing import Any, ClassVar, Literal

import numpy as np
from shap import Explainer, links
from shap._serializable import Deserializer, Serializer
from shap.models import Model
from shap.utils import MaskedModel

from ..core import Interactions
from ..core.base import EstimatorOwner, InteractionEstimator
from ..core.checks import check_int
from ..core.executors import check_executor
from .explanation import InteractionExplanation

__all__ = ["InteractionExplainer"]

# The name of the block save() adds to SHAP's.
_SERIALIZED = "proxyspex_captum.InteractionExplainer"


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
        if max_evals != "auto":
            self._check_row_budgets(args, max_evals)
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
        if outputs is not None:
            for part in explanation if isinstance(explanation, list) else [explanation]:
                _keep_output_axis(part)
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

        if self.linearize_link and self.link is not links.identity:
            # SHAP computes a non-identity link's linearising weights from the call that
            # includes the all-off mask (zero_index); full-mask calls never pass one. First:
            # choosing the outputs calls the model too, and needs them.
            masked_model(np.array([MaskedModel.delta_mask_noop_value]), zero_index=0)
        selected = self._select_outputs(outputs, masked_model, n)
        clustering = self._row_clustering(row_args)  # fails here, before any budget is spent
        if len(varying) == 0:  # nothing can change: one call gives the constant
            constant = value_function(np.zeros((1, 0), dtype=bool))[0]
            results = [
                Interactions({(): float(c)}, n_features=n, n_queries=1, metadata={"exact": True})
                for c in np.atleast_1d(constant)
            ]
            multi = np.ndim(constant) > 0 or selected is not None
        else:
            n_varying = len(varying)
            budget = self.estimator.default_budget(n_varying) if max_evals == "auto" else max_evals
            budget = self.estimator.check_budget(n_varying, budget)
            result = self.estimator.explain(
                value_function, n_varying, budget, executor=getattr(self, "_executor", None)
            )
            # Outputs chosen by the caller keep their axis, one of them included (as SHAP's).
            multi = isinstance(result, list) or selected is not None
            results = result if isinstance(result, list) else [result]
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

    def _check_row_budgets(self, args: tuple[Any, ...], max_evals: int) -> None:
        """Refuse a ``max_evals`` too small for any row before the first row is paid for.

        Each row's design depends on its varying features; building its
        ``MaskedModel`` to count them calls no model. (Checked row by row, a
        budget too small for row 3 was refused after rows 1 and 2 were paid.)
        """
        columns = [a.to_numpy() if hasattr(a, "to_numpy") else a for a in args]
        for row in zip(*columns, strict=False):
            masked = MaskedModel(self.model, self.masker, self.link, self.linearize_link, *row)
            n_varying = len(masked.varying_inputs())
            if n_varying:
                self.estimator.check_budget(n_varying, max_evals)

    def _select_outputs(self, outputs: Any, masked_model: MaskedModel, n: int) -> Any:
        """Output columns to explain (``None``: all), resolving a SHAP OpChain on f(x).

        One call of the model on the full input, before the budget: the chosen
        columns must exist (an index beyond them failed after the calls were paid).
        """
        if outputs is None:
            return None
        full = np.asarray(masked_model(np.ones((1, n), dtype=bool)))
        width = full.shape[1] if full.ndim > 1 else 0  # 0: a model of one output
        if hasattr(outputs, "apply"):  # an OpChain: rank the outputs by the model's f(x)
            from shap import Explanation

            outputs = outputs.apply(Explanation(np.atleast_1d(full[0]))).values
        selected = np.atleast_1d(np.asarray(outputs, dtype=np.int64))
        if width == 0 or selected.min() < -width or selected.max() >= width:
            raise ValueError(
                f"outputs={outputs!r} names outputs the model does not have: it has "
                + (f"{width} (indices 0 to {width - 1})." if width else "a single output.")
            )
        return selected

    def _row_clustering(self, row_args: tuple[Any, ...]) -> Any:
        clustering = getattr(self.masker, "clustering", None)
        if callable(clustering):
            return clustering(*row_args)
        return clustering if isinstance(clustering, np.ndarray) else None

    # ------------------------------------------------------------ SHAP's save and load
    def save(self, out_file: Any, model_saver: Any = ".save", masker_saver: Any = ".save") -> None:
        """Write the explainer to a file stream, as SHAP's do, with its index and estimator.

        SHAP's own keep the model, masker and link only: loaded, an explainer of
        ``index="banzhaf"``, ``max_order=2`` and a seed came back with the defaults.
        """
        super().save(out_file, model_saver, masker_saver)
        with Serializer(out_file, _SERIALIZED, version=0) as s:
            s.save("index", self.index)
            s.save("estimator", self.estimator)

    @classmethod
    def load(  # type: ignore[override]
        cls,
        in_file: Any,
        model_loader: Any = None,
        masker_loader: Any = None,
        instantiate: bool = True,
    ) -> Any:
        """Read an explainer :meth:`save` wrote (``instantiate=False``: its arguments)."""
        if instantiate:
            return cls._instantiated_load(
                in_file, model_loader=model_loader, masker_loader=masker_loader
            )
        kwargs = super().load(in_file, model_loader, masker_loader, instantiate=False)
        with Deserializer(in_file, _SERIALIZED, min_version=0, max_version=0) as s:
            kwargs["index"] = s.load("index")
            kwargs["estimator"] = s.load("estimator")
        return kwargs

    @classmethod
    def _instantiated_load(cls, in_file: Any, **kwargs: Any) -> Any:
        # SHAP's passes on the positional parameters of __init__ only; ours are keywords.
        kind = pickle.load(in_file)
        if not (isinstance(kind, type) and issubclass(kind, cls)):
            raise TypeError(f"The file holds a {kind!r}, not a {cls.__name__}.")
        arguments = kind.load(in_file, instantiate=False, **kwargs)
        estimator, index = arguments.pop("estimator"), arguments.pop("index")
        explainer = kind(arguments.pop("model"), arguments.pop("masker"), **arguments)
        explainer.estimator, explainer.index = estimator, index
        return explainer

    @staticmethod
    def supports_model_with_masker(model: Any, masker: Any) -> bool:
        """Any callable model with any SHAP masker."""
        return callable(model) and masker is not None


def _keep_output_axis(explanation: Any) -> None:
    """Give back the axis of one chosen output, which SHAP's assembly squeezes out.

    SHAP reshapes a row's ``(features, 1)`` values to its mask's shape, so with
    ``outputs=[k]`` the values lost their output axis while the base values kept
    it (``expl[0].base_values`` was every row's, and ``shap.plots.waterfall``
    failed). Ragged rows (text) are left as they are.
    """
    values, base = explanation.values, np.asarray(explanation.base_values)
    if isinstance(values, np.ndarray) and values.dtype != object and base.ndim == 2:
        if values.ndim == 2 and base.shape == (values.shape[0], 1):
            explanation.values = values[..., None]
