"""The :class:`Interactions` result: a sparse set function and its readings.

A value function ``v: {0,1}^n -> R`` is stored by its sparse Fourier
(Walsh–Hadamard) coefficients,

    v(m) = Σ_S F(S) · (−1)^{|S ∩ m|},

and read out in the Möbius (AND) basis, ``v(m) = Σ_{S ⊆ m} a(S)``, or as any of
the usual interaction indices (Shapley, Banzhaf, SII, k-SII, STII, FSII, FBII,
BII). Every conversion goes through :func:`~proxyspex_captum.core.subsets.superset_sums`,
so the cost is proportional to the number of subsets of the stored terms (at
most the number of terms times ``2**order``), never to ``2**n``; expansions
beyond :data:`MAX_EXPANSION_SETS` sets are refused rather than attempted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from itertools import pairwise
from math import comb
from numbers import Real
from typing import Any

import numpy as np
from scipy.special import bernoulli

from .checks import check_feature_names, check_int, check_optional_int, check_real
from .subsets import (
    PAD,
    ExpansionTooLarge,
    aggregate,
    fourier_features,
    mobius_to_fourier,
    pad_sets,
    set_sizes,
    superset_sums,
    unpad_sets,
)
from .uncertainty import deviations
from .uncertainty import intervals as bootstrap_intervals
from .value_function import validate_masks

__all__ = [
    "INDICES",
    "MAX_EXPANSION_SETS",
    "ExpansionTooLarge",
    "Interactions",
    "require_interactions",
]

#: Index names accepted by :meth:`Interactions.to_index`.
INDICES = ("shapley", "banzhaf", "sii", "bii", "k-sii", "stii", "fsii", "fbii")
_FIRST_ORDER = ("shapley", "banzhaf")
# Indices that decompose v exactly up to the order asked for: they carry a value
# for the empty set (their constant term), as in shapiq.
_WITH_EMPTY_SET = ("k-sii", "stii", "fsii", "fbii")
_JSON_FORMAT = "proxyspex-captum/interactions"
_JSON_VERSION = 1  # written by to_dict
_JSON_VERSIONS = (1,)  # read by from_dict
# Our index names -> shapiq's.
_SHAPIQ_INDEX = {
    "mobius": "Moebius",
    "shapley": "SV",
    "banzhaf": "BV",
    "sii": "SII",
    "bii": "BII",
    "k-sii": "k-SII",
    "stii": "STII",
    "fsii": "FSII",
    "fbii": "FBII",
}
# Coefficients smaller than this share of the largest non-constant one are the
# rounding noise of the conversions (a sum of up to 2**order terms leaves
# ~1e-12 of it). The constant is left out of the scale because it never enters
# another term's sum. This is not a filter for an estimator's shrinkage: the
# estimators must not leave such artefacts (issue 11).
_ZERO_TOL = 1e-9
#: Largest number of sets a basis conversion (Fourier <-> Möbius) may produce.
#: A Fourier term of order k has 2**k Möbius terms (and a Möbius term 2**k
#: Fourier terms), so this admits any result on up to 18 features, e.g. every
#: exact fit a sampler would sensibly run. Measured on a 2-core machine: 2**16
#: sets take ~0.5 s and ~40 MB, 2**18 ~2 s and ~200 MB, 2**20 ~10 s and
#: ~0.9 GB (a dict of a million Möbius terms, besides, is no longer something
#: to read). Beyond the limit a conversion is refused at once with a
#: ValueError instead of exhausting memory; raise it here to go further.
MAX_EXPANSION_SETS = 2**18

SetFunction = dict[tuple[int, ...], float]


def _as_rows_and_values(
    coefficients: Mapping[Sequence[int], float],
) -> tuple[np.ndarray, np.ndarray]:
    sets = list(coefficients.keys())
    values = np.array([_coefficient(coefficients[s], s) for s in sets], dtype=float)
    # Keys naming the same set in another order are one set: sum them.
    return aggregate(pad_sets(sets), values)


def _coefficient(value: Any, subset: Any) -> float:
    if not isinstance(value, Real):  # refuses strings, complex numbers, None
        raise TypeError(
            f"The coefficient of {subset!r} must be a real number, got {value!r} "
            f"({type(value).__name__})."
        )
    return float(value)


def _check_finite(values: np.ndarray, what: str) -> None:
    """Refuse a conversion whose sums overflowed rather than drop or return infinities."""
    if not np.isfinite(values).all():
        raise ValueError(
            f"The {what} overflow float64 (coefficients near 1e300 are multiplied by up to "
            "2**order); rescale the value function's outputs."
        )


def _drop_zeros(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop coefficients that are rounding noise next to the largest non-constant one."""
    nonempty = (rows != PAD).any(axis=1) if rows.shape[1] else np.zeros(len(rows), bool)
    scale = np.abs(values[nonempty]).max(initial=0.0)
    keep = np.abs(values) > _ZERO_TOL * scale
    if scale == 0.0:  # a constant function: keep its constant
        keep = values != 0
    return rows[keep], values[keep]


def _to_dict(rows: np.ndarray, values: np.ndarray) -> SetFunction:
    """``{set: value}`` ordered by set size, then by feature ids."""
    sizes = set_sizes(rows)
    order = np.lexsort((*rows.T[::-1], sizes)) if rows.shape[1] else np.arange(len(rows))
    return dict(zip(unpad_sets(rows[order]), (float(v) for v in values[order]), strict=True))


def _index_weight(index: str, u: int, s: int, order: int) -> float:
    """Weight ``w`` of a Möbius term ``a(T)``, ``|T| = u``, in ``I(S)``, ``|S| = s``.

    Every index here is ``I(S) = Σ_{T ⊇ S} w(|T|, |S|) · a(T)`` (docs/design.md, "The maths").
    """
    if s > u:
        return 0.0
    if index == "shapley":
        return 1.0 / u if s == 1 else 0.0
    if index == "banzhaf":
        return 2.0 ** (1 - u) if s == 1 else 0.0
    if index == "sii":
        return 1.0 / (u - s + 1)
    if index == "bii":
        return 2.0 ** (s - u)
    if index == "stii":
        if s == u < order:
            return 1.0
        return 1.0 / comb(u, order) if s == order <= u else 0.0
    if index in ("fbii", "fsii"):
        if s == u <= order:
            return 1.0
        if not u > order >= s:
            return 0.0
        sign = (-1.0) ** (order - s)
        if index == "fbii":
            return sign * 2.0 ** (s - u) * comb(u - s - 1, order - s)
        return (
            sign
            * s
            / (order + s)
            * comb(order, s)
            * comb(u - 1, order)
            / comb(u + order - 1, order + s)
        )
    if index == "k-sii":
        # k-SII(S) = Σ_{T ⊇ S, |T| <= k} B_{|T|-|S|} SII(T) (Bernoulli numbers,
        # B_1 = -1/2), with k-SII(∅) the baseline value, as in shapiq.
        if s == 0:
            return 1.0 if u == 0 else 0.0
        if s > order:
            return 0.0
        bern = bernoulli(order)
        return float(
            sum(
                comb(u - s, t - s) * bern[t - s] / (u - t + 1) for t in range(s, min(order, u) + 1)
            )
        )
    raise ValueError(index)  # pragma: no cover - guarded by the caller


def _index_weight_table(index: str, width: int, order: int) -> np.ndarray:
    """``(width + 1, width + 1)`` weights ``w(|T|, |S|)``, row ``|T|``, column ``|S|``."""
    return np.array(
        [[_index_weight(index, u, s, order) for s in range(width + 1)] for u in range(width + 1)]
    )


def check_index(index: Any) -> str:
    """Return ``index`` lower-cased if it names a supported index, else raise."""
    if not isinstance(index, str) or index.lower() not in INDICES:
        raise ValueError(f"Unknown index {index!r}; choose one of {', '.join(INDICES)}.")
    return index.lower()


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_document(data: Any) -> None:
    """Raise a ValueError naming the field if ``data`` is not a valid Interactions document."""
    if not isinstance(data, Mapping):
        raise ValueError(
            "Not a proxyspex-captum Interactions document: expected a JSON object, "
            f"got {_json_type(data)}."
        )
    if data.get("format") != _JSON_FORMAT:
        raise ValueError(
            f"Not a proxyspex-captum Interactions document: 'format' is "
            f"{data.get('format')!r}, expected {_JSON_FORMAT!r}."
        )
    known = ", ".join(map(str, _JSON_VERSIONS))
    if "version" not in data:
        raise ValueError(f"The document has no 'version'; this release reads version {known}.")
    version = data["version"]
    if not _is_int(version) or version not in _JSON_VERSIONS:
        raise ValueError(
            f"Unsupported document version {version!r}; this release reads version {known} "
            "(a document from a newer release needs that release)."
        )
    for name in ("n_features", "fourier"):
        if name not in data:
            raise ValueError(f"The document has no {name!r} field.")
    n_features = data["n_features"]
    if not _is_int(n_features) or n_features < 1:
        raise ValueError(f"'n_features' must be a positive integer, got {n_features!r}.")
    names = data.get("feature_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(x, str) for x in names)
    ):
        raise ValueError("'feature_names' must be null or an array of strings.")
    n_queries = data.get("n_queries", 0)
    if not _is_int(n_queries) or n_queries < 0:
        raise ValueError(f"'n_queries' must be a non-negative integer, got {n_queries!r}.")
    if not isinstance(data.get("metadata") or {}, Mapping):
        raise ValueError(
            f"'metadata' must be null or an object, got {_json_type(data['metadata'])}."
        )
    _check_terms(data["fourier"], n_features, "'fourier'")
    resamples = data.get("resamples", [])
    if not isinstance(resamples, list):
        raise ValueError(
            f"'resamples' must be an array of coefficient arrays, got {_json_type(resamples)}."
        )
    for b, terms in enumerate(resamples):
        _check_terms(terms, n_features, f"'resamples'[{b}]")


def _check_terms(terms: Any, n_features: int, field: str) -> None:
    """Raise a ValueError naming ``field`` unless ``terms`` is a list of ``[ids, value]``."""
    if not isinstance(terms, list):
        raise ValueError(
            f"{field} must be an array of [ids, value] pairs, got {_json_type(terms)}."
        )
    seen: set[tuple[int, ...]] = set()
    for i, term in enumerate(terms):
        where = f"{field}[{i}]"
        if not isinstance(term, list) or len(term) != 2 or not isinstance(term[0], list):
            raise ValueError(f"{where} must be a pair [feature ids, value], got {term!r}.")
        ids, value = term
        if not all(_is_int(j) and 0 <= j < n_features for j in ids):
            raise ValueError(
                f"{where}: feature ids must be integers in [0, {n_features}), got {ids}."
            )
        if any(a >= b for a, b in pairwise(ids)):
            raise ValueError(f"{where}: feature ids must be strictly increasing, got {ids}.")
        if tuple(ids) in seen:
            raise ValueError(f"{where}: the set {ids} is listed twice.")
        seen.add(tuple(ids))
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise ValueError(f"{where}: the coefficient must be a finite number, got {value!r}.")


def _finite(value: int | float) -> bool:
    """Whether ``value`` is a finite float (an integer too large for a float is not)."""
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


class Interactions:
    """Sparse interactions that reproduce a value function.

    Args:
        fourier: Fourier coefficients ``{sorted feature ids: F(S)}``.
        n_features: Number of features ``n`` of the explained value function.
        feature_names: Optional names, one per feature, used in ``repr`` and plots.
        n_queries: Number of model calls spent to obtain the result.
        metadata: Free-form information about how the result was obtained
            (method, budget, diagnostics); kept through the JSON round trip.
        resamples: Fourier coefficients of the result refitted on bootstrap
            resamples of its model calls (what :meth:`intervals` reads); the
            estimators fill them, and the JSON round trip keeps them.

    Examples:
        >>> import proxyspex_captum as psx
        >>> inter = psx.Interactions.from_mobius(
        ...     {(): 1.0, (0,): 2.0, (0, 1): -3.0}, n_features=3, feature_names=["a", "b", "c"]
        ... )
        >>> float(inter.predict([[1, 1, 0]])[0])  # 1 + 2 - 3
        0.0
        >>> inter.to_index("shapley")
        {(0,): 0.5, (1,): -1.5}
    """

    def __init__(
        self,
        fourier: Mapping[Sequence[int], float],
        *,
        n_features: int,
        feature_names: Sequence[str] | None = None,
        n_queries: int = 0,
        metadata: Mapping[str, Any] | None = None,
        resamples: Sequence[Mapping[Sequence[int], float]] = (),
    ) -> None:
        n_features = check_int("n_features", n_features, 1)
        rows, values = _as_rows_and_values(fourier)
        self._init_from_rows(rows, values, n_features, feature_names, n_queries, metadata)
        self._set_resamples([_as_rows_and_values(terms) for terms in resamples])

    @classmethod
    def _from_rows(
        cls,
        rows: np.ndarray,
        values: np.ndarray,
        *,
        n_features: int,
        feature_names: Sequence[str] | None = None,
        n_queries: int = 0,
        metadata: Mapping[str, Any] | None = None,
        resamples: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    ) -> Interactions:
        self = cls.__new__(cls)
        n_features = check_int("n_features", n_features, 1)
        self._init_from_rows(
            np.asarray(rows, dtype=np.int64),
            values,
            n_features,
            feature_names,
            n_queries,
            metadata,
        )
        self._set_resamples(resamples)
        return self

    def _init_from_rows(self, rows, values, n_features, feature_names, n_queries, metadata):
        ids = rows[rows != PAD]
        if ids.size and (ids.max() >= n_features or ids.min() < 0):
            raise ValueError(f"Feature ids must lie in [0, {n_features}).")
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("Interaction coefficients must be finite (got NaN or inf).")
        feature_names = check_feature_names(feature_names, n_features)
        self._rows, self._values = _drop_zeros(rows, np.asarray(values, dtype=float))
        self.n_features = n_features
        self.feature_names = feature_names
        self.n_queries = check_int("n_queries", n_queries, 0)
        self.metadata = dict(metadata or {})
        self._mobius: tuple[np.ndarray, np.ndarray] | None = None
        # (limit, message) of a refused Möbius expansion: not attempted again under that limit
        self._mobius_refusal: tuple[int, str] | None = None
        self._resamples: list[tuple[np.ndarray, np.ndarray]] = []
        self._resampled_readings: dict[tuple[Any, Any], Any] = {}

    def _set_resamples(self, resamples: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        checked = []
        for rows, values in resamples:
            rows = np.asarray(rows, dtype=np.int64)
            values = np.asarray(values, dtype=float)
            if rows.ndim != 2 or values.shape != (len(rows),):
                raise ValueError("Each resample must be (padded rows, one value per row).")
            ids = rows[rows != PAD]
            if ids.size and (ids.max() >= self.n_features or ids.min() < 0):
                raise ValueError(f"Feature ids of a resample must lie in [0, {self.n_features}).")
            if not np.isfinite(values).all():
                raise ValueError("Resampled coefficients must be finite (got NaN or inf).")
            checked.append(_drop_zeros(rows, values))
        self._resamples = checked
        self._resampled_readings = {}

    @classmethod
    def from_mobius(
        cls, mobius: Mapping[Sequence[int], float], *, n_features: int, **kwargs: Any
    ) -> Interactions:
        """Build from Möbius coefficients ``{S: a(S)}`` with ``v(m) = Σ_{S ⊆ m} a(S)``.

        Raises:
            ExpansionTooLarge: the Fourier expansion (every subset of every
                term) would hold more than :data:`MAX_EXPANSION_SETS` sets,
                e.g. a term of more than 18 features.
        """
        n_features = check_int("n_features", n_features, 1)
        if "resamples" in kwargs:
            raise TypeError(
                "from_mobius takes no resamples (they are Fourier coefficients): pass them "
                "to Interactions(fourier, ..., resamples=...)."
            )
        rows, values = _as_rows_and_values(mobius)
        try:
            f_rows, f_vals = mobius_to_fourier(rows, values, max_sets=MAX_EXPANSION_SETS)
        except ExpansionTooLarge as err:
            raise ExpansionTooLarge(
                f"These Möbius coefficients have too large a Fourier expansion to store: {err} "
                "Pass fewer or lower-order terms, or raise "
                "proxyspex_captum.core.interactions.MAX_EXPANSION_SETS."
            ) from None
        return cls._from_rows(f_rows, f_vals, n_features=n_features, **kwargs)

    # ------------------------------------------------------------------ bases
    @property
    def fourier(self) -> SetFunction:
        """Fourier coefficients ``{S: F(S)}``, ``v(m) = Σ_S F(S)(−1)^{|S ∩ m|}``."""
        return _to_dict(self._rows, self._values)

    def _mobius_rows(self) -> tuple[np.ndarray, np.ndarray]:
        refused = self._mobius_refusal
        if refused is not None and refused[0] == MAX_EXPANSION_SETS:
            raise ExpansionTooLarge(refused[1])
        if self._mobius is None:
            # a(S) = (−2)^{|S|} Σ_{T ⊇ S} F(T)
            sizes = np.arange(self._rows.shape[1] + 1)
            weights = np.broadcast_to((-2.0) ** sizes[None, :], (len(sizes), len(sizes)))
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # checked below
                    rows, sums = superset_sums(
                        self._rows, self._values, weights, max_sets=MAX_EXPANSION_SETS
                    )
            except ExpansionTooLarge as err:
                message = (
                    f"The Möbius expansion of this result is too large to compute: {err} "
                    "Use the Fourier coefficients instead (`.fourier`, "
                    "`top(k, basis='fourier')`, `predict`), which need no expansion, "
                    "explain with a lower max_order, or raise "
                    "proxyspex_captum.core.interactions.MAX_EXPANSION_SETS."
                )
                self._mobius_refusal = (MAX_EXPANSION_SETS, message)
                raise ExpansionTooLarge(message) from None
            _check_finite(sums, "Möbius coefficients")
            self._mobius = _drop_zeros(rows, sums)
        return self._mobius

    @property
    def mobius(self) -> SetFunction:
        """Möbius coefficients ``{S: a(S)}``, ``v(m) = Σ_{S ⊆ m} a(S)``.

        Raises:
            ExpansionTooLarge: the expansion would hold more than
                :data:`MAX_EXPANSION_SETS` sets (a Fourier term of order ``k``
                has ``2**k`` Möbius terms).
        """
        return _to_dict(*self._mobius_rows())

    @property
    def baseline_value(self) -> float:
        """``v`` of the empty mask (every feature at its baseline): ``Σ_S F(S)``."""
        return float(self._values.sum())

    @property
    def full_value(self) -> float:
        """``v`` of the full mask (the explained input itself)."""
        return float(((-1.0) ** set_sizes(self._rows) * self._values).sum())

    @property
    def max_order(self) -> int:
        """Size of the largest interaction carried."""
        return int(set_sizes(self._rows).max(initial=0))

    def __len__(self) -> int:
        return len(self._values)

    # -------------------------------------------------------------- evaluate
    def predict(self, masks: np.ndarray | Sequence[Sequence[bool]]) -> np.ndarray:
        """Surrogate values ``v̂(m)`` for boolean masks of shape ``(k, n)`` (or ``(n,)``)."""
        masks = np.asarray(masks)
        single = masks.ndim == 1
        masks = validate_masks(np.atleast_2d(masks), self.n_features)
        out = np.empty(masks.shape[0])
        # Bound the (chunk, n_terms) parity matrix to ~32 MB.
        chunk = max(1, 4_000_000 // max(1, len(self._values)))
        for start in range(0, masks.shape[0], chunk):
            block = masks[start : start + chunk]
            out[start : start + chunk] = fourier_features(block, self._rows) @ self._values
        return out[0] if single else out

    # ---------------------------------------------------------------- indices
    def to_index(self, index: str = "shapley", order: int | None = None) -> SetFunction:
        """Interaction index values ``{S: I(S)}`` for ``1 <= |S| <= order``.

        Args:
            index: One of ``"shapley"``, ``"banzhaf"`` (first order), ``"sii"``,
                ``"bii"``, ``"k-sii"``, ``"stii"``, ``"fsii"``, ``"fbii"``.
            order: Largest interaction size; defaults to 1 for Shapley and
                Banzhaf and to 2 otherwise. For k-SII, STII, FSII and FBII it is
                the order ``ℓ`` of the index, and the empty set carries the
                index's constant term (for k-SII and STII the baseline value),
                as in shapiq.

        Returns:
            A dict from sorted feature-id tuples to index values; sets whose
            value is zero are left out.
        """
        index = check_index(index)
        order = check_optional_int("order", order, 1)
        if order is None:
            order = 1 if index in _FIRST_ORDER else 2
        if index in _FIRST_ORDER and order != 1:
            raise ValueError(f"{index} is a first-order index; use order=1 (or 'sii'/'bii').")
        return self._index_terms(index, order, keep_empty=index in _WITH_EMPTY_SET)

    def _index_terms(self, index: str, order: int, *, keep_empty: bool) -> SetFunction:
        """``{S: I(S)}`` for ``|S| <= order``, the empty set's term too if ``keep_empty``."""
        rows, values = self._mobius_rows()
        weights = _index_weight_table(index, rows.shape[1], order)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            out_rows, sums = superset_sums(rows, values, weights, max_size=order)
        _check_finite(sums, f"{index} values")
        if not keep_empty:
            nonempty = set_sizes(out_rows) > 0
            out_rows, sums = out_rows[nonempty], sums[nonempty]
        return _to_dict(*_drop_zeros(out_rows, sums))

    def first_order(self, index: str = "shapley") -> np.ndarray:
        """Dense ``(n,)`` vector of a first-order index (Shapley by default)."""
        index = check_index(index)
        values = np.zeros(self.n_features)
        for s, v in self.to_index(index, 1).items():
            if len(s) == 1:
                values[s[0]] = v
        return values

    def top(self, k: int = 10, *, basis: str = "mobius") -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` non-empty interactions of largest magnitude, largest first.

        Args:
            k: How many to return.
            basis: ``"mobius"`` (what a term adds when all its features are
                present; the default) or ``"fourier"``.

        Raises:
            ExpansionTooLarge: for ``basis="mobius"``, when the Möbius
                expansion is refused (see :attr:`mobius`); ``"fourier"`` always works.
        """
        k = check_int("k", k, 0)
        if basis not in ("mobius", "fourier"):
            raise ValueError(f"basis must be 'mobius' or 'fourier', got {basis!r}.")
        rows, values = self._mobius_rows() if basis == "mobius" else (self._rows, self._values)
        nonempty = np.flatnonzero(set_sizes(rows) > 0)
        order = nonempty[np.argsort(-np.abs(values[nonempty]), kind="stable")][:k]
        return list(zip(unpad_sets(rows[order]), (float(v) for v in values[order]), strict=True))

    def names_of(self, subset: Sequence[int]) -> tuple[str, ...]:
        """Feature names of a set of feature ids (``x{i}`` when no names were given)."""
        if self.feature_names is None:
            return tuple(f"x{i}" for i in subset)
        return tuple(self.feature_names[i] for i in subset)

    # ------------------------------------------------------------ uncertainty
    @property
    def n_resamples(self) -> int:
        """Bootstrap resamples behind :meth:`intervals` (0: none; see :attr:`has_uncertainty`)."""
        return len(self._resamples)

    @property
    def has_uncertainty(self) -> bool:
        """Whether :meth:`intervals` can be read: resamples, or an exact result (width 0)."""
        return bool(self._resamples) or bool(self.metadata.get("exact", False))

    def resamples(self) -> list[Interactions]:
        """The result refitted on each bootstrap resample of its own model calls."""
        return [
            Interactions._from_rows(
                rows,
                values,
                n_features=self.n_features,
                feature_names=self.feature_names,
                n_queries=self.n_queries,
            )
            for rows, values in self._resamples
        ]

    def intervals(
        self, level: float = 0.95, *, index: str = "mobius", order: int | None = None
    ) -> dict[tuple[int, ...], tuple[float, float]]:
        """Bootstrap confidence intervals ``{S: (low, high)}``, at no extra model call.

        The estimator refitted its chosen model on resamples of the model
        calls it had made (``uncertainty=True``, the default); each interval is
        ``estimate ± z · d`` with ``d`` the root-mean-square deviation of those
        refits from the estimate (:mod:`~proxyspex_captum.core.uncertainty`).
        An interval that contains 0 marks an interaction the calls made do
        not establish.

        Args:
            level: Coverage of each interval, in (0, 1).
            index: ``"mobius"`` (default: the non-empty Möbius terms, every
                order carried) or any index of :meth:`to_index`.
            order: Largest interaction size (the index's order, as in
                :meth:`to_index`); for Möbius, ``None`` keeps every order.

        An exact result (every mask queried) has intervals of width 0.

        Raises:
            ValueError: the result carries no resamples (made with
                ``uncertainty=False``, or read from an older file).

        Examples:
            >>> import proxyspex_captum as psx
            >>> game = psx.games.hierarchical_game(12, n_terms=10, noise=0.1, random_state=0)
            >>> inter = psx.ProxySPEX(random_state=0).explain(game, n_features=12, budget=600)
            >>> inter.n_resamples
            30
            >>> low, high = inter.intervals()[(0,)] if (0,) in inter.mobius else (0.0, 0.0)
            >>> bool(low <= high)
            True
        """
        level = check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)
        sets, estimates, replicates = self._resampled(index, order)
        low, high = bootstrap_intervals(estimates, replicates, level)
        return {s: (float(a), float(b)) for s, a, b in zip(sets, low, high, strict=True)}

    def standard_errors(
        self, *, index: str = "mobius", order: int | None = None
    ) -> dict[tuple[int, ...], float]:
        """``{S: d}``: how far the bootstrap refits lie from each value (see :meth:`intervals`).

        The root-mean-square deviation of the refits from the estimate: the
        half-width of a 68 % interval.
        """
        sets, estimates, replicates = self._resampled(index, order)
        errors = deviations(estimates, replicates)
        return dict(zip(sets, (float(v) for v in errors), strict=True))

    def selection_frequency(
        self, *, index: str = "mobius", order: int | None = None
    ) -> dict[tuple[int, ...], float]:
        """``{S: share}``: how often each interaction is found (non-zero) across the refits.

        A term found in every resample is solid; one found in a few is the
        budget's or the noise's chance. Most meaningful for Möbius terms:
        an index such as Shapley is non-zero whenever any term holds the feature.
        """
        sets, _, replicates = self._resampled(index, order)
        return dict(zip(sets, (float(v) for v in (replicates != 0).mean(axis=0)), strict=True))

    def first_order_bounds(
        self, index: str = "shapley", level: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense ``(n,)`` lower bounds, upper bounds and errors of :meth:`first_order`.

        What SHAP's ``lower_bounds`` / ``upper_bounds`` / ``error_std`` and the
        error bars of the plots need: the :meth:`intervals` and
        :meth:`standard_errors` of each feature's value, where a feature
        without a value has bounds 0 and error 0.
        """
        index = check_index(index)
        level = check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)
        # Every feature some resample gives a value, not only those of the estimate: a
        # feature whose estimate is 0 may still be uncertain.
        sets, estimates, replicates = self._resampled(index, 1, every_set=True)
        lows, highs = bootstrap_intervals(estimates, replicates, level)
        errors = deviations(estimates, replicates)
        low, high, error = (np.zeros(self.n_features) for _ in range(3))
        for subset, a, b, d in zip(sets, lows, highs, errors, strict=True):
            if len(subset) == 1:  # k-SII, STII, FSII and FBII carry an empty-set term too
                low[subset[0]], high[subset[0]], error[subset[0]] = a, b, d
        return low, high, error

    def _reading(self, index: str, order: int | None) -> SetFunction:
        """The non-empty Möbius terms up to ``order``, or the index's values."""
        if isinstance(index, str) and index.lower() == "mobius":
            order = check_optional_int("order", order, 1)
            mobius = self.mobius.items()
            return {s: v for s, v in mobius if s and (order is None or len(s) <= order)}
        return self.to_index(index, order)

    def _resampled(
        self, index: str, order: int | None, *, every_set: bool = False
    ) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
        """The sets of a reading, their values, and their values in each resample.

        ``every_set``: also the sets only some resamples give a value (0 in the estimate).
        """
        exact = bool(self.metadata.get("exact", False))
        if not self._resamples and not exact:
            raise ValueError(
                "This result carries no bootstrap resamples: explain with uncertainty=True "
                "(the estimators' default; SPEX needs a refit, not refit=None), or use a "
                "result saved with its resamples."
            )
        key = (index.lower() if isinstance(index, str) else index, order, every_set)
        if key in self._resampled_readings:  # readings are costly: 30 expansions
            return self._resampled_readings[key]
        point = self._reading(index, order)
        readings = [replicate._reading(index, order) for replicate in self.resamples()]
        sets = list(point)
        if every_set:
            extra = {s for r in readings for s in r} - set(point)
            sets += sorted(extra, key=lambda s: (len(s), s))
        estimates = np.array([point.get(s, 0.0) for s in sets])
        if not readings:  # every mask was queried: no sampling error
            out = sets, estimates, estimates[None, :]
        else:
            replicates = np.array([[r.get(s, 0.0) for s in sets] for r in readings])
            out = sets, estimates, replicates.reshape(len(readings), len(sets))
        self._resampled_readings[key] = out
        return out

    def embed(
        self,
        positions: Sequence[int],
        n_features: int,
        *,
        feature_names: Sequence[str] | None = None,
    ) -> Interactions:
        """The same interactions, feature ``i`` renamed ``positions[i]`` among ``n_features``.

        Used when only some features of an input can change the output (the
        others equal their baseline): those are explained, then placed back
        among all features, where the rest carry no interaction.

        Examples:
            >>> import proxyspex_captum as psx
            >>> inter = psx.Interactions.from_mobius({(0, 1): 2.0}, n_features=2)
            >>> inter.embed([1, 4], n_features=5).mobius
            {(1, 4): 2.0}
        """
        n_features = check_int("n_features", n_features, 1)
        positions = np.array(
            [check_int(f"positions[{i}]", p, 0) for i, p in enumerate(np.atleast_1d(positions))],
            dtype=np.int64,
        )
        if positions.shape != (self.n_features,):
            raise ValueError(f"Need {self.n_features} positions, got {positions.shape[0]}.")
        if (np.diff(positions) <= 0).any() or positions[0] < 0 or positions[-1] >= n_features:
            raise ValueError(f"positions must increase and lie in [0, {n_features}).")

        def placed(rows: np.ndarray) -> np.ndarray:
            rows = rows.copy()
            real = rows != PAD
            rows[real] = positions[rows[real]]  # increasing, so every row stays sorted
            return rows

        return Interactions._from_rows(
            placed(self._rows),
            self._values,
            n_features=n_features,
            feature_names=feature_names,
            n_queries=self.n_queries,
            metadata=self.metadata,
            resamples=[(placed(rows), values) for rows, values in self._resamples],
        )

    # ---------------------------------------------------------------- shapiq
    def to_shapiq(self, index: str = "mobius", order: int | None = None) -> Any:
        """This result as a ``shapiq.InteractionValues`` (shapiq is an optional dependency).

        Args:
            index: ``"mobius"`` (default: exact, every order carried) or any
                index of :meth:`to_index`.
            order: The index's order (as in :meth:`to_index`); for Möbius, the
                largest order carried.

        Returns:
            ``shapiq.InteractionValues`` with shapiq's conventions (the empty
            set holds ``v(∅)``, or the index's own empty-set term for SII, BII,
            Banzhaf and FBII; ``baseline_value`` is ``v(∅)``, FBII's constant for
            FBII), so shapiq's
            plots (``plot_network``, ``plot_force``, ``plot_upset``, ...)
            and tools work on it. ``InteractionValues`` has no field for
            uncertainty: read :meth:`intervals` from this result instead.
        """
        try:
            from shapiq import InteractionValues
        except ImportError as err:
            raise ImportError(
                "to_shapiq needs shapiq: pip install 'proxyspex-captum[shapiq]'."
            ) from err
        name = index.lower() if isinstance(index, str) else index
        order = check_optional_int("order", order, 1)
        if order is not None:
            order = min(order, self.n_features)  # no set is larger than n
        if name == "mobius":
            values = dict(self.mobius)
            max_order = self.max_order if order is None else order
            values = {s: v for s, v in values.items() if len(s) <= max_order}
        else:
            name = check_index(name)
            values = self.to_index(name, order)
            max_order = max((len(s) for s in values), default=1) if order is None else order
            if name in ("sii", "bii", "banzhaf"):
                # shapiq gives the empty set these indices' own term (for Banzhaf
                # indices the mean of v over all masks), not v(∅).
                own = "bii" if name == "banzhaf" else name
                values[()] = self._index_terms(own, int(max_order), keep_empty=True).get((), 0.0)
        if name in _WITH_EMPTY_SET:  # the index's own constant (dropped above when it is 0)
            values[()] = values.get((), 0.0)
        values.setdefault((), self.baseline_value)
        values = {(): values.pop(()), **values}
        lookup = {s: i for i, s in enumerate(values)}
        return InteractionValues(
            np.array(list(values.values()), dtype=float),
            index=_SHAPIQ_INDEX[name],
            max_order=max(int(max_order), 1),
            n_players=self.n_features,
            min_order=0,
            interaction_lookup=lookup,
            estimated=not self.metadata.get("exact", False),
            estimation_budget=self.n_queries or None,
            # shapiq's FBII keeps its fitted constant there; every other index keeps v(∅)
            baseline_value=values[()] if name == "fbii" else self.baseline_value,
        )

    @classmethod
    def from_shapiq(
        cls, values: Any, *, feature_names: Sequence[str] | None = None
    ) -> Interactions:
        """Build from a ``shapiq.InteractionValues`` of the Möbius index.

        Only Möbius coefficients determine the value function (every other
        index is a summary of it), so other indices are refused; compute
        ``"Moebius"`` with shapiq (e.g. ``shapiq.ExactComputer(game)("Moebius")``).
        """
        if getattr(values, "index", None) != "Moebius":
            raise ValueError(
                f"from_shapiq needs Möbius InteractionValues (index 'Moebius'), got "
                f"{getattr(values, 'index', type(values).__name__)!r}: other indices do not "
                "determine the value function."
            )
        mobius = {tuple(int(i) for i in s): float(v) for s, v in values.dict_values.items()}
        mobius.setdefault((), float(values.baseline_value))
        return cls.from_mobius(
            mobius,
            n_features=int(values.n_players),
            feature_names=feature_names,
            n_queries=int(values.estimation_budget or 0),
            metadata={"source": "shapiq"},
        )

    # ------------------------------------------------------------------- I/O
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see :meth:`from_dict`)."""
        return {
            "format": _JSON_FORMAT,
            "version": _JSON_VERSION,
            "n_features": self.n_features,
            "feature_names": self.feature_names,
            "n_queries": self.n_queries,
            "fourier": [[list(s), v] for s, v in self.fourier.items()],
            "metadata": self.metadata,
            "resamples": [
                [[list(s), v] for s, v in _to_dict(rows, values).items()]
                for rows, values in self._resamples
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interactions:
        """Inverse of :meth:`to_dict`; the document is checked field by field.

        Raises:
            ValueError: ``data`` is not an Interactions document, its format
                version is missing or not one this release reads, or a field
                is missing, of the wrong type or inconsistent (feature ids
                outside ``[0, n_features)``, unsorted or repeated; a set listed
                twice; a coefficient that is not a finite number). The message
                names the field.
        """
        _check_document(data)
        return cls(
            {tuple(s): float(v) for s, v in data["fourier"]},
            n_features=data["n_features"],
            feature_names=data.get("feature_names"),
            n_queries=data.get("n_queries", 0),
            metadata=data.get("metadata"),
            resamples=[
                {tuple(s): float(v) for s, v in terms} for terms in data.get("resamples", [])
            ],
        )

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Serialise to JSON text (floats kept exactly); also write it to ``path`` if given."""
        text = json.dumps(self.to_dict())
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    @classmethod
    def from_json(cls, text: str | bytes | os.PathLike[str]) -> Interactions:
        """Load from JSON text written by :meth:`to_json`.

        A string is always read as JSON text, never as a file name (use
        :meth:`load` for a file). A ``pathlib.Path`` (any ``os.PathLike``) is
        unambiguous, so it is read as a file, as :meth:`load` does.

        Raises:
            TypeError: ``text`` is neither text nor a path.
            ValueError: ``text`` is not valid JSON, or not a valid document
                (see :meth:`from_dict`).

        Examples:
            >>> import proxyspex_captum as psx
            >>> inter = psx.Interactions({(): 1.0, (0, 2): 0.5}, n_features=3)
            >>> psx.Interactions.from_json(inter.to_json()) == inter
            True
        """
        if isinstance(text, os.PathLike):
            return cls.load(text)
        if not isinstance(text, str | bytes | bytearray):
            raise TypeError(
                f"from_json takes JSON text (str or bytes), got {type(text).__name__}; "
                "to read a file, use Interactions.load(path)."
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"Not valid JSON ({err}). from_json takes JSON text; "
                "to read a file, use Interactions.load(path)."
            ) from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the result to the file ``path`` as JSON (read it back with :meth:`load`)."""
        self.to_json(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Interactions:
        """Read a file written by :meth:`save` (or ``to_json(path)``).

        Raises:
            OSError: the file cannot be read.
            ValueError: its content is not a valid document; the message
                names the file.
        """
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise ValueError(f"{os.fspath(path)!s} is not valid JSON ({err}).") from None
        except ValueError as err:
            raise ValueError(f"{os.fspath(path)!s}: {err}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interactions):
            return NotImplemented
        return (
            self.n_features == other.n_features
            and self.fourier == other.fourier
            and self.feature_names == other.feature_names
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = (
            f"Interactions(n_features={self.n_features}, n_terms={len(self)}, "
            f"max_order={self.max_order}, n_queries={self.n_queries}, "
            f"baseline_value={self.baseline_value:.4g}, full_value={self.full_value:.4g})"
        )
        lines = [head]
        # repr must never raise: when the Möbius terms cannot be had, show the Fourier ones.
        try:
            top, basis = self.top(10), "Möbius"
        except ExpansionTooLarge:
            top, basis = (
                self.top(10, basis="fourier"),
                "Fourier; the Möbius expansion is too large",
            )
        except ValueError:
            top, basis = self.top(10, basis="fourier"), "Fourier; the Möbius terms overflow"
        if top:
            lines.append(f"  top interactions ({basis}):")
            width = max(len(" × ".join(self.names_of(s))) for s, _ in top)
            lines += [f"    {' × '.join(self.names_of(s)):<{width}}  {v:+.4g}" for s, v in top]
        return "\n".join(lines)


def require_interactions(value: Any, caller: str) -> Interactions:
    """``value`` when it is one :class:`Interactions`, else a TypeError saying how to get one.

    For the functions that draw or report one result (``caller`` names them).

    Examples:
        >>> require_interactions([], "plots.bar")
        Traceback (most recent call last):
        ...
        TypeError: plots.bar takes one Interactions, got list.
    """
    if isinstance(value, Interactions):
        return value
    kind = type(value).__name__
    hint = ""
    if kind == "InteractionExplanation":  # the SHAP explainers' result: one per row
        hint = (
            " A SHAP explanation holds one per row (and output): pass e.g. "
            "explanation[0].interactions, or explanation[0, ..., 1].interactions for output 1."
        )
    elif isinstance(value, np.ndarray) and value.dtype == object:
        hint = " This array holds several results (rows or outputs): pass one of them."
    raise TypeError(f"{caller} takes one Interactions, got {kind}.{hint}")
