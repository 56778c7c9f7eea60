"""``InteractionExplanation``: a ``shap.Explanation`` that also carries each row's interactions."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from shap import Explanation

from ..core import Interactions

__all__ = ["InteractionExplanation"]


class InteractionExplanation(Explanation):
    """A ``shap.Explanation`` whose rows also carry their :class:`~proxyspex_captum.Interactions`.

    ``.values`` hold first-order attributions (Shapley values by default), so
    every SHAP plot and benchmark works unchanged. ``.interactions`` holds one
    ``Interactions`` per row (and per output, for multi-output models) and
    follows indexing and slicing: ``expl[0]``, ``expl[:5]``, ``expl[:, 3]``
    (all rows' interactions; they describe every feature) and ``expl[..., 1]``
    (output 1's). Reductions over rows (``expl.mean(0)``) have no
    interactions, so there ``.interactions`` is ``None``.

    Attributes:
        interactions: ``None``, one ``Interactions``, or an object array of
            them whose axes are the explanation's row and output axes that
            are still present (see ``interaction_axes``).
        interaction_axes: For each axis of ``interactions``, the axis of
            ``.values`` it follows.
    """

    interactions: Any = None
    interaction_axes: tuple[int, ...] = ()
    index: str = "shapley"

    @classmethod
    def wrap(
        cls, explanation: Explanation, rows: list[Any], *, index: str = "shapley"
    ) -> InteractionExplanation:
        """Turn an explainer's ``Explanation`` and its per-row interactions into one of these.

        ``index`` names the first-order index held in ``.values``.
        """
        new = cls.__new__(cls)
        new.__dict__.update(explanation.__dict__)
        # A slicer of its own (SHAP's copy rebuilds it), so filling the bounds below leaves
        # the caller's explanation as it was.
        new.__dict__.update(copy.copy(explanation).__dict__)
        new.index = index
        n_rows = len(rows)
        multi = n_rows > 0 and isinstance(rows[0], list)
        array = np.empty((n_rows, len(rows[0])) if multi else (n_rows,), dtype=object)
        for i, row in enumerate(rows):
            for j, inter in enumerate(row if multi else [row]):
                array[(i, j) if multi else i] = inter
        new.interactions = array
        new.interaction_axes = (0, *new.output_dims[:1]) if multi else (0,)
        new._name_features()
        new._fill_bounds()
        return new

    def _fill_bounds(self, level: float = 0.95) -> None:
        """SHAP's ``lower_bounds``, ``upper_bounds`` and ``error_std`` from the resamples.

        Filled when every row's interactions carry bootstrap resamples
        (``uncertainty=True``, the default) or are exact, and describe the features of
        ``.values``, in the values' own shape (an image's pixels, ``(H, W, C)``), but
        not for the parts of a multi-input explanation.
        ``shap.plots.waterfall`` draws them as error bars.
        """
        cells = _flat(self.interactions)
        if not cells or not all(inter.has_uncertainty for inter in cells):
            return
        values = self.values
        if not isinstance(values, np.ndarray) or values.dtype == object:
            return  # the parts of a multi-input explanation
        multi = self.interactions.ndim == 2
        feature_shape = values.shape[1:-1] if multi else values.shape[1:]
        rows_and_outputs = (values.shape[0], *values.shape[len(feature_shape) + 1 :])
        if (
            rows_and_outputs != self.interactions.shape
            or int(np.prod(feature_shape)) != cells[0].n_features
        ):
            return
        bounds = np.zeros((3, *values.shape))
        for where, inter in np.ndenumerate(self.interactions):
            row = (where[0], Ellipsis, where[1]) if multi else (where[0], Ellipsis)
            for k, part in enumerate(inter.first_order_bounds(self.index, level)):
                bounds[k][row] = part.reshape(feature_shape)
        self._s.lower_bounds, self._s.upper_bounds, self._s.error_std = bounds

    @classmethod
    def from_interactions(
        cls,
        interactions: Interactions | list[Interactions],
        *,
        data: Any = None,
        index: str = "shapley",
        feature_names: list[str] | None = None,
    ) -> InteractionExplanation:
        """A SHAP explanation of one or more results (one row each), e.g. from Captum or the core.

        Args:
            interactions: One :class:`~proxyspex_captum.Interactions` or a list
                (one per row; all with the same number of features).
            data: The explained inputs, one row per result (optional; SHAP's
                plots show it).
            index: The first-order index put in ``.values``.
            feature_names: Default: the results' own feature names.

        Examples:
            >>> import proxyspex_captum as psx
            >>> inter = psx.Interactions.from_mobius({(0,): 1.0, (0, 1): 2.0}, n_features=2)
            >>> expl = psx.InteractionExplanation.from_interactions(inter)
            >>> expl.values.tolist(), expl.base_values.tolist()
            ([[2.0, 1.0]], [0.0])
        """
        rows = [interactions] if isinstance(interactions, Interactions) else list(interactions)
        if not rows:
            raise ValueError("No interactions given.")
        # Unnamed ones as copies: naming the features (_name_features) must not rename
        # the caller's results (a later call with other names kept "Feature 0", ...).
        rows = [r if r.feature_names is not None else copy.copy(r) for r in rows]
        n = rows[0].n_features
        if any(r.n_features != n for r in rows):
            raise ValueError("All results must have the same number of features.")
        names = feature_names if feature_names is not None else rows[0].feature_names
        names = list(names) if names is not None else [f"Feature {i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"feature_names has {len(names)} names for {n} features.")
        explanation = Explanation(
            np.stack([r.first_order(index) for r in rows]),
            base_values=np.array([r.baseline_value for r in rows]),
            data=None if data is None else np.asarray(data).reshape(len(rows), -1),
            feature_names=list(names),
        )
        return cls.wrap(explanation, rows, index=index)

    def _name_features(self) -> None:
        """Give each row's interactions the explanation's feature names, where they fit."""
        names = self.feature_names
        if names is None or self.interactions is None:
            return
        per_row = isinstance(names[0], (list, tuple, np.ndarray))  # Text: names per row
        for i in range(len(self.interactions)):
            row_names = list(names[i]) if per_row else list(names)
            for inter in _flat(self.interactions[i]):
                if inter.feature_names is None and len(row_names) == inter.n_features:
                    inter.feature_names = [str(name) for name in row_names]

    # ------------------------------------------------------------ dense views
    def interaction_matrix(
        self, index: str = "sii", *, diagonal: str = "first_order"
    ) -> np.ndarray:
        """Dense order-2 matrices ``(..., n, n)`` of an interaction index, for plotting.

        Off the diagonal, entry ``(i, j)`` is the index of the pair ``{i, j}``
        at order 2 (``"sii"``, ``"bii"``, ``"stii"``, ``"fsii"``, ``"fbii"``,
        ``"k-sii"``). On it, ``"first_order"`` puts the explanation's own
        first-order values (``.values``), ``"index"`` the index's order-1 terms,
        ``"zero"`` nothing.

        SHAP's ``shap.explainers.Exact(model, masker)(X, interactions=2)``
        computes the Shapley-Taylor interaction index of order 2: its
        off-diagonal entries are half of
        ``interaction_matrix("stii", diagonal="index")``'s (SHAP splits each
        pair's value over ``(i, j)`` and ``(j, i)``, so the matrix sums to
        ``f(x) - E[f]``), and its diagonal (the main effects ``v({i}) - v(∅)``) equals
        this diagonal. Checked to 1e-6 in the tests.

        Returns:
            An array shaped like ``interactions`` followed by ``(n, n)``.
        """
        if self.interactions is None:
            raise ValueError("This explanation has no interactions (it was reduced over rows).")
        if diagonal not in ("first_order", "index", "zero"):
            raise ValueError(
                f"diagonal must be 'first_order', 'index' or 'zero', got {diagonal!r}."
            )
        flat = _flat(self.interactions)
        shape = self.interactions.shape if isinstance(self.interactions, np.ndarray) else ()
        n = flat[0].n_features
        if any(inter.n_features != n for inter in flat):
            raise ValueError(
                "The rows have different numbers of features (e.g. texts of different "
                "lengths): take one row first, e.g. expl[0].interaction_matrix()."
            )
        out = np.zeros((len(flat), n, n))
        for k, inter in enumerate(flat):
            for subset, value in inter.to_index(index, 2).items():
                if len(subset) == 2:
                    out[k, subset[0], subset[1]] = out[k, subset[1], subset[0]] = value
                elif len(subset) == 1 and diagonal == "index":
                    out[k, subset[0], subset[0]] = value
            if diagonal == "first_order":
                out[k][np.diag_indices(n)] = inter.first_order(self.index)
        return out.reshape((*shape, n, n))

    # ------------------------------------------------- SHAP's copy and slices
    def __copy__(self) -> InteractionExplanation:
        new = super().__copy__()
        new.__class__ = type(self)
        new.interactions = self.interactions
        new.interaction_axes = self.interaction_axes
        new.index = self.index
        return new  # type: ignore[return-value]

    def __getitem__(self, item: Any) -> InteractionExplanation:
        new = super().__getitem__(item)
        if not isinstance(new, InteractionExplanation):  # SHAP built a fresh Explanation
            new = InteractionExplanation.wrap(new, [], index=self.index)
        new.interactions, new.interaction_axes = self._sliced_interactions(item)
        return new

    def _numpy_func(self, fname: str, **kwargs: Any) -> InteractionExplanation:
        new = super()._numpy_func(fname, **kwargs)
        # SHAP slices (by the axis number!) while reducing; redo the interactions' part.
        return self._reduced(new, kwargs.get("axis"), flipped=fname == "flip")

    def percentile(self, q: float, axis: int | None = None) -> InteractionExplanation:
        new = super().percentile(q, axis=axis)  # SHAP's goes by a deep copy, not _numpy_func
        return self._reduced(new, axis)

    def _reduced(
        self, new: Any, axis: int | None, *, flipped: bool = False
    ) -> InteractionExplanation:
        """``new``, the result of a numpy function over ``axis``, with the interactions it keeps.

        A reduction over a feature axis keeps them (each row's result still
        describes its row); over rows or outputs, none describes the result. A
        function that keeps the shape keeps them, row for row (``abs``,
        ``argsort`` of each row's features); ``flip`` reverses every axis, the
        rows' and outputs' too, and so reverses them.
        """
        if not isinstance(new, InteractionExplanation):
            new = InteractionExplanation.wrap(new, [], index=self.index)
        new.interactions, new.interaction_axes = self.interactions, self.interaction_axes
        if len(new.shape) < len(self.shape):  # a reduction removed an axis
            axis = None if axis is None else axis % len(self.shape)
            if axis is None or axis in self.interaction_axes:
                new.interactions, new.interaction_axes = None, ()
            else:  # a feature axis went away: later axes move down by one
                new.interaction_axes = tuple(a - (a > axis) for a in self.interaction_axes)
        elif flipped and isinstance(self.interactions, np.ndarray):
            new.interactions = np.flip(self.interactions)
        return new

    def _apply_binary_operator(self, other: Any, binary_op: Any, op_name: str) -> Any:
        new = super()._apply_binary_operator(other, binary_op, op_name)
        # expl * 2, expl - other: the values no longer are the interactions' first order.
        new.interactions, new.interaction_axes = None, ()
        return new

    def _sliced_interactions(self, item: Any) -> tuple[Any, tuple[int, ...]]:
        """Apply the row and output parts of ``item`` to ``interactions``."""
        if self.interactions is None or not isinstance(self.interactions, np.ndarray):
            return self.interactions, self.interaction_axes
        items = self._expanded(item)
        if items is None:
            warnings.warn(
                f"InteractionExplanation: cannot follow the index {item!r}; the result "
                "carries no interactions.",
                stacklevel=3,
            )
            return None, ()
        array: Any = self.interactions
        new_axes = []
        array_axis = 0
        kept_before = 0  # explanation axes kept so far (their new positions)
        for axis, key in enumerate(items):
            if axis in self.interaction_axes:
                array = _take(array, array_axis, key)
                if not _drops_axis(key):
                    new_axes.append(kept_before)
                    array_axis += 1
            if not _drops_axis(key):
                kept_before += 1
        if isinstance(array, np.ndarray) and array.ndim == 0:
            array = array.item()
        return array, tuple(new_axes)

    def _expanded(self, item: Any) -> list[Any] | None:
        """``item`` as one plain key (int, slice, list) per axis of ``.values``, or ``None``."""
        items = list(item) if isinstance(item, tuple) else [item]
        n_axes = len(self.shape)
        ellipses = [i for i, t in enumerate(items) if t is Ellipsis]  # `is`: arrays have no ==
        if len(ellipses) > 1:
            return None
        if ellipses:
            at = ellipses[0]
            items[at : at + 1] = [slice(None)] * (n_axes - len(items) + 1)
        items += [slice(None)] * (n_axes - len(items))
        out = []
        for axis, key in enumerate(items):
            if hasattr(key, "apply"):  # an OpChain, e.g. shap.Explanation.argsort
                key = key.apply(self)
                key = key.values if isinstance(key, Explanation) else key
            if isinstance(key, Explanation):
                key = key.values
            if isinstance(key, str):
                if axis not in self.interaction_axes:
                    key = 0  # a feature name: it selects one column, which drops the axis
                elif self.output_names is not None:
                    # Rows have no names: an output's. (Not by output_dims: SHAP leaves
                    # it as it was before a row was taken, expl[0][:, "pos"].)
                    key = list(np.asarray(self.output_names)).index(key)
                else:
                    return None
            if isinstance(key, (np.integer, int)) and not isinstance(key, bool):
                key = int(key)
            elif isinstance(key, np.ndarray):
                key = key.tolist()
            elif not isinstance(key, (slice, list)):
                return None
            out.append(key)
        return out if len(out) == n_axes else None

    def __repr__(self) -> str:
        return super().__repr__().replace(".values =", ".values (first order) =", 1)

    def __deepcopy__(self, memo: dict[int, Any]) -> InteractionExplanation:
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, copy.deepcopy(value, memo))
        return new


def _drops_axis(key: Any) -> bool:
    return isinstance(key, int)


def _take(array: np.ndarray, axis: int, key: Any) -> Any:
    index = [slice(None)] * array.ndim
    index[axis] = key
    return array[tuple(index)]


def _flat(cells: Any) -> list[Interactions]:
    """The Interactions in ``cells`` (one, or an object array of them), in C order."""
    if isinstance(cells, Interactions):
        return [cells]
    return list(cells.reshape(-1))
