"""Model calls on any ``concurrent.futures.Executor``: threads, processes, Dask, Ray.

:class:`~proxyspex_captum.core.value_function.ValueFunction` cuts a request
into batches of masks; :func:`run_batches` sends them to an executor, retries
a batch whose worker raised or died, and hands each result back *in the
calling thread* as it arrives (so the cache and the progress bar need no
locks). The values are assembled in mask order from the same batches as a
serial run, so a seeded explanation is bit-identical on every executor.

Executors that work: ``ThreadPoolExecutor`` (remote APIs, models that release
the GIL), ``ProcessPoolExecutor`` (the value function must pickle),
``distributed.Client(...).get_executor()`` (Dask; a ``Client`` itself is
accepted too) and :class:`RayExecutor` (an actor pool). A worker that has to
load a model once, not once per batch, gets it from :func:`replica`.

Examples:
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import numpy as np
    >>> from proxyspex_captum.core import ProxySPEX
    >>> game = lambda masks: masks[:, 0] * 2.0 + masks[:, 1] * masks[:, 2]
    >>> with ThreadPoolExecutor(2) as pool:
    ...     inter = ProxySPEX(random_state=0).explain(game, 3, 8, executor=pool)
    >>> [(s, round(v, 6)) for s, v in inter.top(2)]
    [((0,), 2.0), ((1, 2), 1.0)]
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import math
import pickle
import random
import threading
import time
import types
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from .checks import check_int, usable_cores

__all__ = [
    "BatchFailedError",
    "RayExecutor",
    "check_executor",
    "check_picklable",
    "check_retries",
    "replica",
    "run_batches",
]

# Seconds before the first retry of a failed batch; each further retry waits
# twice as long, with up to 50 % jitter so that workers that failed together
# (a restarted node, a rate limit) do not come back together.
DEFAULT_BACKOFF = 0.5
DEFAULT_RETRIES = 2
# Longest wait a failed batch's error may ask for (``retry_after``, e.g. HTTP 429's
# Retry-After), in seconds.
MAX_RETRY_AFTER = 300.0
# Seconds RayExecutor waits for its actors to start (and build their models).
ACTOR_START_TIMEOUT = 600.0
# Batches in flight per worker of an executor that says how many it has: enough to keep
# every worker busy, few enough that a stop waits only for those, and that a failing
# batch's retries come round before the rest of the budget is sent (with every batch
# queued at once, a dead server saw each of them fail retries + 1 times: 769 requests
# over 69 s at 128 masks, found by review).
IN_FLIGHT_PER_WORKER = 2


class BatchFailedError(RuntimeError):
    """A batch of masks kept failing on the executor; the run stopped.

    Attributes:
        rows: The batch's rows in the request (the masks' positions).
        masks: The batch's masks (boolean, one row per mask).
        attempts: How many times it was tried.
    """

    def __init__(self, message: str, rows: np.ndarray, masks: np.ndarray, attempts: int) -> None:
        super().__init__(message)
        self.rows = rows
        self.masks = masks
        self.attempts = attempts


def check_executor(executor: Any) -> cf.Executor | None:
    """``executor=`` as given, if it can run model calls; a Dask ``Client`` becomes its executor.

    Raises:
        TypeError: ``executor`` is neither ``None``, a ``concurrent.futures.Executor``
            nor a Dask ``Client``.
    """
    if executor is None or isinstance(executor, cf.Executor):
        return executor
    if type(executor).__name__ == "Client" and hasattr(executor, "get_executor"):
        return executor.get_executor()  # distributed.Client
    raise TypeError(
        f"executor must be a concurrent.futures.Executor (ThreadPoolExecutor, "
        f"ProcessPoolExecutor, a Dask client's get_executor(), psx.executors.RayExecutor) "
        f"or None for serial calls, got {type(executor).__name__}."
    )


def check_retries(retries: Any, backoff: Any) -> tuple[int, float]:
    """``retries`` (a count ≥ 0) and ``backoff`` (seconds ≥ 0) as given, or raise."""
    retries = check_int("retries", retries, 0)
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)):
        raise TypeError(f"retry_backoff must be a number of seconds, got {backoff!r}.")
    if not np.isfinite(backoff) or backoff < 0:
        raise ValueError(f"retry_backoff must be a finite number of seconds >= 0, got {backoff}.")
    return retries, float(backoff)


def check_picklable(func: Callable, executor: cf.Executor | None) -> None:
    """A process pool pickles the value function with ``pickle``: fail before any call if not.

    Dask and Ray use cloudpickle, which takes lambdas and closures.
    """
    if not isinstance(executor, cf.ProcessPoolExecutor):
        return
    try:
        pickle.dumps(func)
    except Exception as err:
        raise TypeError(
            f"A ProcessPoolExecutor must pickle the value function, and this one cannot be "
            f"pickled ({type(err).__name__}: {err}). Define it at module level (a function or "
            "a picklable object, loading its model with psx.executors.replica), or use "
            "threads, Dask or Ray."
        ) from err


def run_batches(
    func: Callable[[np.ndarray], Any],
    masks: np.ndarray,
    starts: Sequence[int],
    *,
    executor: cf.Executor,
    on_result: Callable[[int, Any], None],
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    origin: np.ndarray | None = None,
    seed: int = 0,
) -> None:
    """Evaluate ``func`` on each batch ``masks[starts[i] : starts[i + 1]]`` on ``executor``.

    ``on_result(i, output)`` is called in this thread as each batch finishes,
    in completion order. At most :data:`IN_FLIGHT_PER_WORKER` batches per
    worker are submitted at a time (all at once to an executor that does not
    say how many workers it has). A batch whose call raises (its worker died,
    the network dropped) is resubmitted up to ``retries`` times, waiting
    ``backoff · 2**attempt`` seconds (with jitter) first, or the error's
    ``retry_after`` seconds (at most 300) if it has one and they are longer;
    no new batch is submitted while one waits to be retried, so a dead server
    is found after a few requests, not after every batch failed. An error whose
    ``retryable`` attribute is false (a request the server refused as
    malformed: sending it again would not help) is not retried. A batch that still
    fails cancels the batches not yet started, lets the running ones finish
    (their results still reach ``on_result``: nothing paid for is lost), and
    raises :class:`BatchFailedError` from its last exception. An error raised
    by ``on_result`` (a value check) stops the run the same way, unretried.

    Args:
        starts: First row of every batch, followed by ``len(masks)``.
        origin: Each mask's row in the caller's request (for the error message).
        seed: Seeds the retry jitter, so a rerun waits the same.
    """
    bounds = list(itertools.pairwise(starts))
    jitter = random.Random(seed)
    attempts = [0] * len(bounds)
    pending: dict[cf.Future, int] = {}
    waiting: list[tuple[float, int]] = []  # (when, batch) for the backoffs under way
    workers = _workers(executor)
    window = len(bounds) if workers is None else IN_FLIGHT_PER_WORKER * workers
    sent = 0  # batches submitted a first time

    def submit(i: int) -> None:
        lo, hi = bounds[i]
        try:
            pending[executor.submit(func, masks[lo:hi])] = i
        except RuntimeError as error:  # the executor broke (or shut down) meanwhile
            stop(error, i)

    def send_more() -> None:
        """New batches, up to the window, unless a failed one waits for its retry."""
        nonlocal sent
        while not waiting and len(pending) < window and sent < len(bounds):
            sent += 1
            submit(sent - 1)

    def keep_running() -> None:
        """Cancel the batches not started; wait for the running ones and keep their values.

        What is already running is paid for. (A future cancelled here is left
        out: only its executor would mark it done, and Ray's never does.) Dask's
        and Ray's futures never say they run, so ``cancel`` would drop batches
        their workers are computing: all of theirs in flight (the window) are
        waited for instead.
        """
        if _says_running(executor):
            running = [future for future in pending if not future.cancel()]
        else:
            running = list(pending)
        for future in cf.as_completed(running):
            if not future.cancelled() and future.exception() is None:
                on_result(pending[future], future.result())
        pending.clear()

    def stop(error: BaseException, i: int | None) -> None:
        keep_running()
        if i is None:
            raise error
        lo, hi = bounds[i]
        rows = np.arange(lo, hi) if origin is None else origin[lo:hi]
        kept = np.flatnonzero(masks[lo])
        raise BatchFailedError(
            f"A batch of {hi - lo} masks (rows {rows[:10].tolist()}"
            f"{' …' if hi - lo > 10 else ''} of the request; the first keeps features "
            f"{kept[:20].tolist()}{' …' if len(kept) > 20 else ''}) failed {attempts[i]} "
            f"time(s) on {type(executor).__name__}; last error: "
            f"{type(error).__name__}: {str(error).rstrip('.')}. Values already computed are "
            "kept (in the cache, if one was given): rerunning resumes.",
            rows=np.asarray(rows),
            masks=masks[lo:hi],
            attempts=attempts[i],
        ) from error

    try:
        send_more()
        while pending or waiting or sent < len(bounds):
            now = time.monotonic()
            for when, i in [w for w in waiting if w[0] <= now]:
                waiting.remove((when, i))
                submit(i)  # e.g. BrokenProcessPool (a worker died) stops the run here
            send_more()
            if not pending:
                time.sleep(max(0.0, min(w[0] for w in waiting) - time.monotonic()))
                continue
            timeout = None if not waiting else max(0.0, min(w[0] for w in waiting) - now)
            done, _ = cf.wait(list(pending), timeout=timeout, return_when=cf.FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                attempts[i] += 1
                error = future.exception()
                if error is None:
                    try:
                        on_result(i, future.result())
                    except Exception as check_error:  # a bad value: retrying would not help
                        stop(check_error, None)
                    continue
                if attempts[i] > retries or not getattr(error, "retryable", True):
                    stop(error, i)
                delay = backoff * 2 ** (attempts[i] - 1) * (1 + 0.5 * jitter.random())
                # A server that says when to come back (HTTP 429's Retry-After) is obeyed,
                # up to a limit (a day-long Retry-After would hang the run silently).
                asked = _seconds(getattr(error, "retry_after", None))
                delay = max(delay, min(asked, MAX_RETRY_AFTER))
                waiting.append((time.monotonic() + delay, i))
            send_more()
    except KeyboardInterrupt:  # Ctrl-C: start nothing new, keep what is being paid for
        keep_running()  # (a second Ctrl-C abandons the running batches too)
        raise
    except BaseException:  # the errors above: start nothing new
        for future in pending:
            future.cancel()
        raise


def _workers(executor: cf.Executor) -> int | None:
    """How many batches ``executor`` runs at once, when it says (else None)."""
    if isinstance(executor, cf.ThreadPoolExecutor | cf.ProcessPoolExecutor):
        return int(executor._max_workers)  # the standard library's, set in __init__
    if isinstance(executor, RayExecutor):
        return executor.num_workers
    client = getattr(executor, "_client", None)  # a Dask client's executor
    if client is not None and hasattr(client, "nthreads"):
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a client that cannot answer: no window
            return None
    return None


def _says_running(executor: cf.Executor) -> bool:
    """Whether ``cancel()`` on the executor's futures spares the batches already running."""
    return not (isinstance(executor, RayExecutor) or hasattr(executor, "_client"))


def _seconds(retry_after: Any) -> float:
    """An error's ``retry_after`` as seconds; 0 when it is not a number (e.g. an HTTP date).

    A value that is not a number raised here, past the handler that keeps the
    running batches, and lost them.
    """
    try:
        seconds = float(retry_after or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return seconds if np.isfinite(seconds) else 0.0


# -- one model per worker ----------------------------------------------------------

_REPLICAS: dict[Hashable, Any] = {}
_REPLICAS_LOCK = threading.Lock()


def replica(
    factory: Callable[[], Any], key: Hashable | None = None, *, rebuild: bool = False
) -> Any:
    """The object ``factory()`` built once per worker process (and reused by every batch there).

    A value function sent to processes, Dask or Ray should not carry its model
    (it would be pickled with every batch): it calls ``replica(load_model)``
    instead, and each worker loads the model on its first batch. In a
    :class:`RayExecutor` given ``model_factory``, each actor builds it at start.

    Args:
        factory: Builds the model (or any object).
        key: Names the replica. Default: the factory's module and qualified
            name for a module-level function (so that copies of it unpickled
            separately share one replica), else the factory object itself (a
            bound method: its object and function).
        rebuild: Build it again even if this process holds one (e.g. to hand
            over a model the process has just loaded).

    Examples:
        >>> from proxyspex_captum.core.executors import replica
        >>> replica(dict) is replica(dict)
        True
    """
    if key is None:
        name = getattr(factory, "__qualname__", "<")
        owner = getattr(factory, "__self__", None)
        if "<" in name or not (owner is None or isinstance(owner, types.ModuleType)):
            # A closure, a lambda or a bound method: the object itself. Two instances'
            # methods share a qualified name, not a model (one got the other's).
            key = factory
            try:
                hash(key)
            except TypeError:  # a method of an unhashable object
                key = (getattr(factory, "__module__", None), name, id(owner))
        else:
            key = (getattr(factory, "__module__", None), name)
    with _REPLICAS_LOCK:
        if rebuild or key not in _REPLICAS:
            _REPLICAS[key] = factory()
        return _REPLICAS[key]


# -- Ray -----------------------------------------------------------------------------


class _Worker:
    """The body of one Ray actor: builds the model replica, then runs batches."""

    def __init__(self, model_factory: Callable[[], Any] | None) -> None:
        self._functions: dict[str, Callable] = {}
        if model_factory is not None:
            replica(model_factory)

    def ready(self) -> bool:
        return True

    def run(self, function_ref: list, args: tuple, kwargs: dict) -> Any:
        import ray

        # The function arrives as a reference (inside a list, so Ray does not
        # resolve it): fetched once per actor, not pickled with every batch.
        (ref,) = function_ref
        key = ref.hex()
        if key not in self._functions:
            self._functions[key] = ray.get(ref)
        return self._functions[key](*args, **kwargs)


class RayExecutor(cf.Executor):
    """A ``concurrent.futures.Executor`` over a pool of Ray actors.

    Each actor is one worker process that builds one model replica from
    ``model_factory`` at start (see :func:`replica`) and runs the batches sent
    to it. A submitted function is put in Ray's object store once and fetched
    once per actor.

    Faults: an actor whose process dies is restarted by Ray (up to
    ``max_restarts`` times), and Ray runs the batches it held, or that were sent
    to it while it restarted, again on the restarted actor (at-least-once: a
    batch that had finished but whose answer died with the process runs twice;
    its values are the same, and the result counts it once). An exception
    raised by the function itself is the caller's to retry (:func:`run_batches`).
    An actor past its restarts is dropped from the pool; when none is left,
    ``submit`` raises ``RuntimeError``.

    Args:
        num_workers: Number of actors.
        model_factory: Called once in each actor; what it returns is what
            :func:`replica` returns there.
        num_cpus: CPUs reserved per actor.
        num_gpus: GPUs reserved per actor (fractions share one GPU).
        address: A running cluster's address; ``None`` joins the cluster this
            process is connected to, or starts a local one.
        max_restarts: Times Ray restarts a dead actor (and runs its batches
            again on it); -1: without limit.

    Examples:
        >>> from proxyspex_captum.core.executors import RayExecutor  # doctest: +SKIP
        >>> with RayExecutor(num_workers=2) as ray_pool:  # doctest: +SKIP
        ...     inter = ProxySPEX().explain(game, n, 1000, executor=ray_pool)
    """

    def __init__(
        self,
        num_workers: int = 1,
        model_factory: Callable[[], Any] | None = None,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
        address: str | None = None,
        max_restarts: int = 3,
    ) -> None:
        try:
            import ray
        except ImportError as err:
            raise ImportError(
                "RayExecutor needs Ray: pip install 'proxyspex-captum[distributed]'."
            ) from err
        self.num_workers = check_int("num_workers", num_workers, 1)
        for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        if model_factory is not None and not callable(model_factory):
            raise TypeError(f"model_factory must be callable, got {type(model_factory).__name__}.")
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                # A local instance: room for every actor, even past the cores (Ray
                # would otherwise wait forever to place the ones that do not fit).
                cores = usable_cores()
                options["num_cpus"] = max(cores, math.ceil(self.num_workers * num_cpus))
            ray.init(address=address, **options)
            self._owns_ray = True
        else:
            self._owns_ray = False
        max_restarts = check_int("max_restarts", max_restarts, -1)  # -1: Ray's "for ever"
        # Task retries = restarts: a batch in flight when its actor died (or sent
        # while it restarts) waits for the restarted actor instead of failing at
        # once; the caller's retries would otherwise be spent on an actor that is
        # still loading its model.
        actor = ray.remote(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_restarts,
            max_task_retries=max_restarts,
        )(_Worker)
        # Set before the actors start: a failed start shuts down through them.
        self._load = [0] * self.num_workers
        self._dead: set[int] = set()  # actors past their restarts: never sent work again
        self._refs: dict[int, tuple[Callable, Any]] = {}  # id(fn) -> (fn, object ref)
        self._lock = threading.Lock()
        self._shutdown = False
        self._order = itertools.count()
        self._actors = [actor.remote(model_factory) for _ in range(self.num_workers)]
        try:  # replicas built, errors raised here
            ray.get([a.ready.remote() for a in self._actors], timeout=ACTOR_START_TIMEOUT)
        except ray.exceptions.GetTimeoutError as err:
            resources = ray.cluster_resources()
            self.shutdown()
            raise RuntimeError(
                f"Ray could not start {self.num_workers} actors of {num_cpus} CPU(s) and "
                f"{num_gpus} GPU(s) each within {ACTOR_START_TIMEOUT:.0f} s: the cluster has "
                f"{resources}. Lower num_workers, num_cpus or num_gpus."
            ) from err
        except BaseException:  # model_factory failed: no actors, no Ray left behind
            self.shutdown()
            raise

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> cf.Future:
        """Run ``fn(*args, **kwargs)`` on the least busy actor."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            entry = self._refs.get(id(fn))
            if entry is None or entry[0] is not fn:
                entry = (fn, self._ray.put(fn))  # holding fn keeps its id unique
                self._refs[id(fn)] = entry
            alive = [a for a in range(self.num_workers) if a not in self._dead]
            if not alive:
                raise RuntimeError(
                    "every actor of this RayExecutor died more often than max_restarts "
                    "allows; start a new RayExecutor."
                )
            # Least loaded first; ties go round-robin, so equal batches spread evenly.
            turn = next(self._order)
            index = min(alive, key=lambda a: (self._load[a], (a - turn) % self.num_workers))
            self._load[index] += 1
        ref = self._actors[index].run.remote([entry[1]], args, kwargs)
        future = ref.future()
        died = self._ray.exceptions.ActorDiedError

        def release(done: cf.Future) -> None:
            with self._lock:
                self._load[index] -= 1
                # With task retries on, a task fails with ActorDiedError only once
                # the actor is gone for good (restarts spent, or killed outright).
                if not done.cancelled() and isinstance(done.exception(), died):
                    self._dead.add(index)

        future.add_done_callback(release)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the actors (and the local Ray instance this executor started)."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        self._refs.clear()
        if self._owns_ray:
            self._ray.shutdown()
