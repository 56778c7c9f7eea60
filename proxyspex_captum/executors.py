"""Where the model calls run: ``psx.executors``.

Any ``concurrent.futures.Executor`` can be passed as ``explain(..., executor=...)``;
this module gathers what is needed around that: :class:`RayExecutor` (an actor
pool, one model replica per actor), :func:`replica` (one model per worker
process), :class:`BatchFailedError`, and :func:`start`, which builds an
executor by name as the command line does.

Examples:
    >>> import proxyspex_captum as psx
    >>> game = psx.games.hierarchical_game(30, n_terms=10, max_order=2, random_state=0)
    >>> with psx.executors.start("threads", workers=2) as pool:
    ...     inter = psx.ProxySPEX(random_state=0).explain(game, 30, 300, executor=pool)
    >>> inter.n_queries
    300
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from .core.checks import check_int, usable_cores
from .core.executors import BatchFailedError, RayExecutor, check_executor, replica

__all__ = ["KINDS", "BatchFailedError", "RayExecutor", "check_executor", "replica", "start"]

KINDS = ("serial", "threads", "processes", "dask", "ray")


@contextmanager
def start(
    kind: str,
    *,
    workers: int | None = None,
    address: str | None = None,
    model_factory: Callable[[], Any] | None = None,
) -> Iterator[Executor | None]:
    """An executor of ``kind``, shut down (with any cluster it started) on leaving.

    Args:
        kind: ``"serial"`` (``None``: calls in this thread), ``"threads"``,
            ``"processes"`` (started with ``spawn``: safe with torch loaded),
            ``"dask"`` or ``"ray"``.
        workers: Number of workers (default: the usable CPU cores; for an
            existing cluster given by ``address``, Dask uses all of its workers).
        address: A running Dask scheduler (``tcp://host:8786``) or Ray cluster
            (``ray://host:10001`` or ``auto``); default: start a local one.
        model_factory: Ray only: built once in each actor (see :func:`replica`).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown executor {kind!r}; choose one of {', '.join(KINDS)}.")
    if workers is not None:
        workers = check_int("workers", workers, 1)
    if address is not None and kind not in ("dask", "ray"):
        raise ValueError(f"address= is for a Dask or Ray cluster, not for {kind!r}.")
    if model_factory is not None and kind != "ray":
        raise ValueError("model_factory= is for Ray's actors; elsewhere use replica().")
    count = workers or usable_cores()
    if kind == "serial":
        yield None
    elif kind == "threads":
        with ThreadPoolExecutor(count, thread_name_prefix="psx-model") as pool:
            yield pool
    elif kind == "processes":
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            yield pool
    elif kind == "dask":
        with _dask(count if address is None else workers, address) as pool:
            yield pool
    else:
        pool = RayExecutor(num_workers=count, model_factory=model_factory, address=address)
        try:
            yield pool
        finally:
            pool.shutdown()


@contextmanager
def _dask(workers: int | None, address: str | None) -> Iterator[Executor]:
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "The dask executor needs Dask: pip install 'proxyspex-captum[distributed]'."
        ) from err
    cluster = None
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = distributed.Client(cluster if cluster is not None else address)
    try:
        if workers is not None and cluster is None:
            client.wait_for_workers(workers, timeout=120)
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
