"""Value-function plumbing: batching, deduplication, call counting, validation.

Every estimator talks to the model only through :class:`ValueFunction`, so the
number of model calls reported in a result is the number actually made, no
mask is ever sent twice, and a model that returns garbage is stopped with a
message that says which masks did it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .cache import MaskStore, describe_width
from .checks import check_int
from .executors import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    check_executor,
    check_picklable,
    check_retries,
    run_batches,
)

__all__ = ["AUTO_BATCHES", "ValueFunction", "check_batch_size", "unique_masks", "validate_masks"]

MaskFunction = Callable[[np.ndarray], Any]
# ``batch_size="auto"`` splits a request into this many model calls: a progress
# bar moves in 5 % steps, and 20 calls cost a vectorised model next to nothing.
AUTO_BATCHES = 20


def check_batch_size(batch_size: Any) -> int | str | None:
    """``batch_size`` as given if it is a positive integer, ``None`` or ``"auto"``, else raise."""
    if batch_size is None or batch_size == "auto":
        return batch_size
    if isinstance(batch_size, str):
        raise ValueError(
            f"batch_size must be a positive integer, None or 'auto', got {batch_size!r}."
        )
    return check_int("batch_size", batch_size, 1)


def validate_masks(masks: Any, n_features: int) -> np.ndarray:
    """Return ``masks`` as a C-contiguous ``(k, n_features)`` boolean array or raise."""
    masks = np.asarray(masks)
    if masks.ndim != 2 or masks.shape[1] != n_features:
        raise ValueError(
            f"masks must have shape (k, {n_features}) (one column per feature), got {masks.shape}."
        )
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("masks must be boolean or contain only 0 and 1.")
        masks = masks.astype(bool)
    return np.ascontiguousarray(masks)


def unique_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of a boolean mask array.

    Returns:
        ``(packed, first, inverse)``: the bit-packed distinct rows, the index of
        each one's first occurrence, and for every row the index of its distinct row.
    """
    packed = np.ascontiguousarray(np.packbits(masks, axis=1))
    # One opaque item per row: a 1-D unique, several times faster than axis=0.
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return packed[first], first, inverse.ravel()


class ValueFunction:
    """Wrap a callable ``masks -> values`` for use by the estimators.

    Args:
        func: Called with a boolean array of shape ``(k, n_features)`` (True =
            feature kept) and returning ``k`` values, or a ``(k, n_outputs)``
            array for a multi-output model. Anything ``numpy.asarray`` accepts
            works, CPU torch tensors included.
        n_features: Number of features ``n``.
        batch_size: Largest number of masks passed to ``func`` in one call;
            ``None`` passes everything at once; ``"auto"`` splits each request
            into about 20 calls (at least one mask each), so that a progress bar
            moves and an interrupted run keeps most of what it paid for.
        show_progress: Show a tqdm bar over the masks evaluated.
        cache: Remember the value of every mask already evaluated, so that a
            mask asked for again (by a later call) costs no model call.
        description: Label of the progress bar.
        executor: Send the batches to this ``concurrent.futures.Executor``
            (threads, processes, a Dask client,
            :class:`~proxyspex_captum.core.executors.RayExecutor`);
            ``None`` calls ``func`` here, batch after batch. The values are
            the same either way (same batches, assembled in mask order).
        store: A persistent :class:`~proxyspex_captum.core.cache.MaskStore`:
            masks found there cost no call, and every batch is written to it
            as it returns.
        retries: Times a batch that raised on the executor is sent again
            (serial calls are never retried: the error is raised at once).
        retry_backoff: Seconds before the first retry; doubled for each next one.
        on_progress: Called with the number of masks of each finished batch,
            in this thread (e.g. an outer progress bar's ``update``).

    Attributes:
        n_queries: Number of distinct masks sent to ``func`` so far (model calls paid).
        n_requested: Number of distinct masks asked for, request by request, cached
            ones included (what the estimators' results are built on).
        n_stored: Number of masks read from the persistent store instead of the model.
        n_calls: Number of times ``func`` was called (batches).
        n_outputs: ``None`` for a scalar model, else the output width.
        seconds: Wall time spent waiting for ``func`` (the model's share of the work).

    Examples:
        >>> import numpy as np
        >>> from proxyspex_captum.core.value_function import ValueFunction
        >>> vf = ValueFunction(lambda m: m.sum(axis=1), n_features=3, batch_size=2)
        >>> vf(np.array([[1, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=bool))
        array([1., 3., 1.])
        >>> vf.n_queries, vf.n_calls
        (2, 1)
    """

    def __init__(
        self,
        func: MaskFunction,
        n_features: int,
        *,
        batch_size: int | str | None = None,
        show_progress: bool = False,
        cache: bool = True,
        description: str = "model calls",
        executor: Executor | None = None,
        store: MaskStore | None = None,
        retries: int = DEFAULT_RETRIES,
        retry_backoff: float = DEFAULT_BACKOFF,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"value_function must be callable, got {type(func).__name__}.")
        self.func = func
        self.n_features = check_int("n_features", n_features, 1)
        self.batch_size = check_batch_size(batch_size)
        self.show_progress = show_progress
        self.description = description
        self.executor = check_executor(executor)
        check_picklable(func, self.executor)
        if store is not None and store.n_features != self.n_features:
            raise ValueError(
                f"The cache holds masks of {store.n_features} features, not {self.n_features}."
            )
        self.store = store
        self.retries, self.retry_backoff = check_retries(retries, retry_backoff)
        self.on_progress = on_progress
        self.n_queries = 0
        self.n_requested = 0
        self.n_stored = 0
        self.n_calls = 0
        self.n_outputs: int | None = None
        self._width_known = False
        if store is not None and store.n_outputs != "unknown":
            self.n_outputs, self._width_known = store.n_outputs, True  # type: ignore[assignment]
        self.seconds = 0.0
        self._cache: dict[bytes, np.ndarray] | None = {} if cache else None

    @classmethod
    def wrap(
        cls, func: MaskFunction | ValueFunction, n_features: int, **kwargs: Any
    ) -> ValueFunction:
        """Return ``func`` itself if it already is a :class:`ValueFunction` for ``n_features``.

        A :class:`ValueFunction` keeps its own executor and store: passing
        ``executor`` or ``store`` for one is refused rather than ignored.
        """
        if isinstance(func, ValueFunction):
            if func.n_features != n_features:
                raise ValueError(
                    f"The ValueFunction has {func.n_features} features, expected {n_features}."
                )
            for name, option in (("executor", "executor="), ("store", "cache=")):
                if kwargs.get(name) is not None:
                    raise ValueError(
                        f"{option} was given with a ValueFunction, which has its own: give it "
                        "to the ValueFunction, or pass the plain callable."
                    )
            return func
        return cls(func, n_features, **kwargs)

    def __call__(self, masks: Any) -> np.ndarray:
        """Values of ``masks``: shape ``(k,)``, or ``(k, n_outputs)`` for multi-output models."""
        masks = validate_masks(masks, self.n_features)
        if masks.shape[0] == 0:
            shape = (0,) if self.n_outputs is None else (0, self.n_outputs)
            return np.zeros(shape)
        unique, first, inverse = unique_masks(masks)
        self.n_requested += len(unique)
        keys = [row.tobytes() for row in unique]
        results: list[np.ndarray | None] = [None] * len(keys)
        if self._cache is not None:
            for j, key in enumerate(keys):
                results[j] = self._cache.get(key)
        missing = [j for j, value in enumerate(results) if value is None]
        if self.store is not None and missing:
            for j, value in zip(missing, self.store.get(masks[first[missing]]), strict=True):
                if value is not None:
                    results[j] = value
                    self.n_stored += 1
                    if self._cache is not None:
                        self._cache[keys[j]] = value
            if not self._width_known and self.n_stored:
                # Another writer filled the file since this function opened it: its
                # width is the values' (else a model of several outputs read as one).
                width = self.store.n_outputs
                if width != "unknown":
                    self.n_outputs, self._width_known = width, True  # type: ignore[assignment]
        todo = np.array([j for j, value in enumerate(results) if value is None], dtype=int)
        fresh = self._evaluate(masks[first[todo]], first[todo], [keys[j] for j in todo])
        for row, j in enumerate(todo):
            results[j] = fresh[row]
        return np.stack(results)[inverse]  # type: ignore[arg-type]

    def known(self, masks: Any) -> np.ndarray:
        """Which rows of ``masks`` this function has already evaluated (or read from its store).

        Free: no model call. For example, to score a fit on masks it has not seen.

        Examples:
            >>> import numpy as np
            >>> from proxyspex_captum.core.value_function import ValueFunction
            >>> vf = ValueFunction(lambda m: m.sum(axis=1), n_features=2)
            >>> _ = vf(np.array([[1, 0]], dtype=bool))
            >>> vf.known(np.array([[1, 0], [0, 1]], dtype=bool)).tolist()
            [True, False]
        """
        masks = validate_masks(masks, self.n_features)
        if self._cache is None or not len(masks):
            return np.zeros(len(masks), dtype=bool)
        packed = np.packbits(masks, axis=1)
        return np.array([row.tobytes() in self._cache for row in packed], dtype=bool)

    def _evaluate(self, masks: np.ndarray, origin: np.ndarray, keys: list[bytes]) -> list:
        """Call the model on ``masks`` (rows ``origin`` of the caller's request) in batches.

        Each batch is cached (and written to the store) as soon as it returns,
        so an interrupted run (Ctrl-C, out of memory, a killed process) keeps
        what it has paid for: calling again resumes.
        """
        k = masks.shape[0]
        if self.batch_size == "auto":
            step = max(1, -(-k // AUTO_BATCHES))
        else:
            step = max(k, 1) if self.batch_size is None else self.batch_size
        starts = [*range(0, k, step), k]
        values: list = [None] * k
        with _progress(k, self.description, self.show_progress and k > 0) as bar:

            def keep(i: int, out: Any) -> None:
                lo, hi = starts[i], starts[i + 1]
                checked = self._check(out, masks[lo:hi], origin[lo:hi])
                self.n_calls += 1
                self.n_queries += hi - lo
                if self.store is not None:
                    checked = self.store.put(masks[lo:hi], checked)
                if self._cache is not None:
                    self._cache.update(zip(keys[lo:hi], checked, strict=True))
                values[lo:hi] = list(checked)
                bar.update(hi - lo)
                if self.on_progress is not None:
                    self.on_progress(hi - lo)

            if self.executor is None:
                for i in range(len(starts) - 1):
                    tic = time.perf_counter()
                    out = self.func(masks[starts[i] : starts[i + 1]])
                    self.seconds += time.perf_counter() - tic
                    keep(i, out)
            elif k:
                tic = time.perf_counter()
                try:
                    run_batches(
                        self.func,
                        masks,
                        starts,
                        executor=self.executor,
                        on_result=keep,
                        retries=self.retries,
                        backoff=self.retry_backoff,
                        origin=origin,
                    )
                finally:
                    # The wall time of the parallel calls: the model's share of the work.
                    self.seconds += time.perf_counter() - tic
        return values

    def _check(self, out: Any, batch: np.ndarray, origin: np.ndarray) -> np.ndarray:
        if hasattr(out, "detach"):  # a torch tensor: leave the graph and go to the CPU
            out = out.detach().cpu()
            if str(out.dtype) in ("torch.bfloat16", "torch.float16"):
                out = out.float()  # numpy cannot read bf16; float64 outputs stay float64
        try:
            values = np.asarray(out)
            # Strings would convert ("1.5" is 1.5): refused as what they are.
            if values.dtype.kind in "USV":
                raise TypeError(f"strings or bytes ({values.dtype})")
            if not np.iscomplexobj(values):
                values = values.astype(float)  # objects and ints beyond float64 fail here
        except (TypeError, ValueError, OverflowError) as err:
            raise TypeError(
                f"The value function must return numbers, got {type(out).__name__} ({err})."
            ) from err
        if np.iscomplexobj(values):
            if np.any(values.imag != 0):
                raise ValueError(
                    "The value function returned complex values with non-zero imaginary "
                    "parts; explain a real number (e.g. the real part, the modulus or a "
                    "log-probability), or each part as its own output."
                )
            values = values.real.astype(float)
        k = batch.shape[0]
        if values.ndim == 0 and k == 1:  # e.g. model(x).squeeze() on a batch of one
            values = values.reshape(1)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim not in (1, 2) or values.shape[0] != k:
            raise ValueError(
                f"The value function returned shape {values.shape} for {k} masks; "
                f"expected ({k},) or ({k}, n_outputs)."
            )
        if values.ndim == 2 and values.shape[1] == 0:
            raise ValueError(
                f"The value function returned shape {values.shape}: no outputs for {k} masks. "
                "It must return at least one number per mask."
            )
        n_outputs = None if values.ndim == 1 else values.shape[1]
        if (self.n_calls or self._width_known) and n_outputs != self.n_outputs:
            raise ValueError(
                f"The value function changed its output shape between batches (or from the "
                f"cache's values): {describe_width(self.n_outputs)} then "
                f"{describe_width(n_outputs)}."
            )
        self.n_outputs = n_outputs
        bad = ~np.isfinite(values.reshape(k, -1)).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            example = np.flatnonzero(batch[rows[0]]).tolist()
            raise ValueError(
                f"The value function returned NaN or infinite values for {len(rows)} of {k} masks "
                f"(rows {sorted(origin[rows].tolist())[:10]}{' …' if len(rows) > 10 else ''} of "
                f"the request; one keeps features {example[:20]}"
                f"{' …' if len(example) > 20 else ''}). Check the model on those inputs."
            )
        return values


class _NoBar:
    """A progress bar that shows nothing (``update`` is all the fits call)."""

    def update(self, n: int = 1) -> None:
        """Ignore ``n`` masks done."""


@contextlib.contextmanager
def _progress(total: int, description: str, show: bool) -> Iterator[Any]:
    """A tqdm bar over ``total`` masks when ``show``, else one that does nothing.

    Not ``tqdm(disable=True)``: its first instance in a process starts tqdm's
    monitor thread and builds a multiprocessing lock even when disabled (about
    14 ms, and a thread left running in the user's process), paid by every
    fresh worker process that evaluates masks without a bar.
    """
    if not show:
        yield _NoBar()
        return
    with tqdm(total=total, desc=description, leave=False) as bar:
        yield bar
