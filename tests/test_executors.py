"""Model calls on executors: threads, processes, Dask and Ray give the serial result, bit for bit.

The Dask and Ray tests start real local clusters (marked ``distributed``; a
few seconds each), kill real workers mid-run and check that every mask is
still evaluated once in the result and the model calls are counted right.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import distributed_helpers as helpers
import numpy as np
import pytest

from proxyspex_captum.core import SPEX, ProxySPEX, ValueFunction
from proxyspex_captum.core.cache import MaskStore
from proxyspex_captum.core.executors import (
    BatchFailedError,
    check_executor,
    replica,
    run_batches,
)
from proxyspex_captum.core.sampling import uniform_masks

N, BUDGET = 40, 300


def serial(estimator, game):
    return estimator.explain(game, N, BUDGET)


def assert_identical(a, b):
    assert a == b
    assert a.metadata["cv_r2"] == b.metadata["cv_r2"]
    assert a.n_queries == b.n_queries


@pytest.fixture(scope="module")
def game():
    return helpers.planted(N)


# -- threads and processes ---------------------------------------------------------


@pytest.mark.parametrize("estimator_class", [ProxySPEX, SPEX])
def test_thread_pool_is_bit_identical_to_serial(game, estimator_class):
    options = {"max_order": 3, "random_state": 7}
    budget = BUDGET if estimator_class is ProxySPEX else 2000
    reference = estimator_class(**options).explain(game, N, budget)
    with ThreadPoolExecutor(3) as pool:
        parallel = estimator_class(**options).explain(game, N, budget, executor=pool)
    assert parallel == reference
    assert parallel.metadata["new_model_calls"] == reference.metadata["new_model_calls"]


def test_process_pool_is_bit_identical_to_serial(game, tmp_path):
    reference = serial(ProxySPEX(random_state=1), game)
    logged = helpers.Logged(game, tmp_path)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = ProxySPEX(random_state=1).explain(logged, N, BUDGET, executor=pool)
    assert_identical(parallel, reference)
    calls = helpers.logged_masks(tmp_path)
    assert sum(len(c) for c in calls) == BUDGET  # every mask once, in other processes


def test_process_pool_refuses_an_unpicklable_value_function_before_any_call(game):
    calls = []

    def local(masks):
        calls.append(len(masks))
        return game(masks)

    with ProcessPoolExecutor(1) as pool, pytest.raises(TypeError, match="cannot be pickled"):
        ProxySPEX().explain(local, N, BUDGET, executor=pool)
    assert calls == []


@pytest.mark.parametrize("bad", ["threads", 4, object()])
def test_an_executor_that_is_not_one_is_refused(game, bad):
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        ProxySPEX().explain(game, N, BUDGET, executor=bad)


def test_explain_refuses_an_executor_for_a_value_function_that_has_one(game):
    vf = ValueFunction(game, N)
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="has its own"):
        ProxySPEX().explain(vf, N, BUDGET, executor=pool)


# -- retries -------------------------------------------------------------------------


class Flaky:
    """Raises on the first attempt of every batch (thread-safe: a lock per call)."""

    def __init__(self, game, fail_times=1):
        import threading

        self.game, self.fail_times = game, fail_times
        self.seen: dict[bytes, int] = {}
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, masks):
        key = np.packbits(masks).tobytes()
        with self.lock:
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] <= self.fail_times:
                raise TimeoutError("the request timed out (planted)")
            self.calls += len(masks)
        return self.game(masks)


def test_failing_batches_are_retried_and_nothing_is_lost(game):
    reference = serial(ProxySPEX(random_state=2), game)
    flaky = Flaky(game)
    with ThreadPoolExecutor(2) as pool:
        vf = ValueFunction(flaky, N, batch_size="auto", executor=pool, retry_backoff=0.0)
        result = ProxySPEX(random_state=2).explain(vf, N, BUDGET)
    assert_identical(result, reference)
    assert vf.n_queries == flaky.calls == BUDGET  # the failed attempts cost no value


def test_a_batch_that_keeps_failing_names_its_masks_and_keeps_the_others(game, tmp_path):
    masks = uniform_masks(N, 100, np.random.default_rng(0))
    bad = masks[37]

    class FailsOn:
        def __call__(self, batch):
            if (batch == bad).all(axis=1).any():
                raise ConnectionError("connection reset (planted)")
            time.sleep(0.01)
            return game(batch)

    with ThreadPoolExecutor(2) as pool:
        vf = ValueFunction(
            FailsOn(),
            N,
            batch_size=10,
            executor=pool,
            retries=2,
            retry_backoff=0.01,
            store=None,
        )
        with pytest.raises(BatchFailedError, match=r"A batch of 10 masks \(rows \[") as info:
            vf(masks)
        assert info.value.attempts == 3
        assert 37 in info.value.rows
        assert (info.value.masks == masks[info.value.rows]).all()
        assert isinstance(info.value.__cause__, ConnectionError)
        # What was paid for is kept: asking again only calls the model on the rest. (No
        # new batch goes out while one waits for its retry, so not all 9 others ran.)
        paid = vf.n_queries
        assert paid % 10 == 0 and 0 < paid <= 90
        calls = []
        vf.func = lambda batch: calls.append(len(batch)) or game(batch)
        assert np.array_equal(vf(masks), game(masks))
        assert sum(calls) == 100 - paid and vf.n_queries == 100


def test_a_dead_server_is_found_after_a_few_requests():
    # Every batch used to be queued at once, and each failed retries + 1 times before
    # the run stopped: 150 requests here. Two workers hold at most 4 batches in
    # flight, and none is sent while one waits for its retry.
    calls = []

    def dead(masks):
        calls.append(len(masks))
        raise ConnectionError("connection refused (planted)")

    masks = uniform_masks(N, 100, np.random.default_rng(0))
    with ThreadPoolExecutor(2) as pool:
        vf = ValueFunction(dead, N, batch_size=2, executor=pool, retries=2, retry_backoff=0.0)
        with pytest.raises(BatchFailedError, match="failed 3 time"):
            vf(masks)
    assert len(calls) <= 2 * 2 * 3


def test_bad_values_from_a_worker_stop_the_run_unretried(game):
    attempts = []

    def nan_once(masks):
        attempts.append(1)
        out = game(masks)
        out[0] = np.nan
        return out

    with ThreadPoolExecutor(2) as pool:
        vf = ValueFunction(nan_once, N, batch_size=50, executor=pool)
        with pytest.raises(ValueError, match="NaN or infinite"):
            vf(uniform_masks(N, 100, np.random.default_rng(0)))
    assert len(attempts) <= 2  # each batch at most once: a bad value is no fault to retry


def test_run_batches_calls_back_in_the_calling_thread(game):
    import threading

    masks = uniform_masks(N, 60, np.random.default_rng(1))
    threads, seen = set(), {}
    with ThreadPoolExecutor(3) as pool:
        run_batches(
            game,
            masks,
            [0, 20, 40, 60],
            executor=pool,
            on_result=lambda i, out: (threads.add(threading.get_ident()), seen.update({i: out})),
        )
    assert threads == {threading.get_ident()}
    assert np.array_equal(np.concatenate([seen[i] for i in range(3)]), game(masks))


def test_progress_counts_masks_from_all_workers(game):
    updates = []
    with ThreadPoolExecutor(3) as pool:
        vf = ValueFunction(game, N, batch_size=7, executor=pool, on_progress=updates.append)
        vf(uniform_masks(N, 100, np.random.default_rng(2)))
    assert sum(updates) == 100 and len(updates) == 15


def test_replica_builds_once_per_process_and_key():
    built = []

    def factory():
        built.append(1)
        return object()

    assert replica(factory) is replica(factory)
    assert replica(factory, key="other") is not replica(factory)
    assert len(built) == 2


def test_replicas_of_two_objects_methods_are_two():
    # Bound methods were keyed by their qualified name: one instance got the other's model.
    class Loader:
        def __init__(self, name):
            self.name = name

        def load(self):
            return f"model from {self.name}"

    small, large = Loader("small.bin"), Loader("large.bin")
    assert replica(small.load) == "model from small.bin"
    assert replica(large.load) == "model from large.bin"
    assert replica(small.load) is replica(small.load)


def test_a_retry_after_that_is_not_a_number_waits_the_backoff(game):
    # An HTTP date in Retry-After raised ValueError past the handler that keeps the
    # running batches; it now counts as no advice.
    class Throttled(Exception):
        retry_after = "Wed, 21 Oct 2026 07:28:00 GMT"

    calls = []

    def func(masks):
        calls.append(len(masks))
        if len(calls) == 1:
            raise Throttled("429 Too Many Requests")
        return game(masks)

    masks = uniform_masks(N, 20, np.random.default_rng(0))
    out = {}
    with ThreadPoolExecutor(1) as pool:
        run_batches(
            func, masks, [0, 10, 20], executor=pool, on_result=out.__setitem__, backoff=0.0
        )
    assert sorted(out) == [0, 1] and len(calls) == 3


@pytest.mark.distributed
def test_dask_keeps_the_batches_running_when_another_fails(dask_client, tmp_path):
    # Dask's futures never say they run: cancel() dropped the batches its workers were
    # computing when another failed, and none reached the cache.
    masks = np.random.default_rng(0).random((23, 12)) < 0.5
    masks[0] = False  # sorted first: batch 0 (of 10, 10 and 3 masks) is refused at once
    assert (~masks.any(axis=1)).sum() == 1
    store = MaskStore(tmp_path / "values.sqlite", fingerprint="f", n_features=12)
    executor = check_executor(dask_client)
    vf = ValueFunction(
        helpers.refuses_the_empty_mask, 12, batch_size=10, executor=executor, store=store
    )
    with pytest.raises(BatchFailedError, match="empty mask is refused"):
        vf(masks)
    assert vf.n_queries == len(store) == 13
    store.close()


@pytest.mark.distributed
def test_ray_whose_model_factory_fails_leaves_no_ray_behind():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance is running already: this test starts its own")
    from proxyspex_captum.core.executors import RayExecutor

    def factory():
        raise RuntimeError("no model here")

    with pytest.raises(Exception, match="no model here"):
        RayExecutor(num_workers=1, model_factory=factory, num_cpus=1)
    assert not ray.is_initialized()


def test_a_dask_client_is_turned_into_its_executor():
    class Client:  # the duck type check_executor relies on
        def get_executor(self):
            return ThreadPoolExecutor(1)

    executor = check_executor(Client())
    assert isinstance(executor, ThreadPoolExecutor)
    executor.shutdown()


# -- Dask ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.distributed
def test_dask_is_bit_identical_to_serial(game, dask_client, tmp_path):
    reference = serial(ProxySPEX(random_state=4), game)
    logged = helpers.Logged(game, tmp_path)
    result = ProxySPEX(random_state=4).explain(logged, N, BUDGET, executor=dask_client)
    assert_identical(result, reference)
    assert sum(len(c) for c in helpers.logged_masks(tmp_path)) == BUDGET
    spex = SPEX(max_order=3, random_state=4)
    assert spex.explain(game, N, 2000, executor=dask_client.get_executor()) == spex.explain(
        game, N, 2000
    )


@pytest.mark.distributed
def test_dask_worker_killed_mid_run_loses_nothing(game, dask_client, tmp_path):
    reference = serial(ProxySPEX(random_state=5), game)
    dying = helpers.DiesOnce(game, tmp_path, np.ones(N, dtype=bool))  # in every sample
    result = ProxySPEX(random_state=5).explain(dying, N, BUDGET, executor=dask_client)
    assert (tmp_path / "died").exists()  # a worker really died
    assert_identical(result, reference)
    assert result.metadata["new_model_calls"] == BUDGET
    # Every mask was answered, the dead worker's batch on another worker. Dask also
    # recomputes the batches the dead worker had finished but not yet sent back
    # (they died with its memory): whole batches, never a mask counted twice.
    calls = helpers.logged_masks(tmp_path)
    answered = {row.tobytes() for call in calls for row in call}
    assert len(answered) == BUDGET
    assert sum(len(c) for c in calls) % (BUDGET // 20) == 0
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test


# -- Ray -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_pool(tmp_path_factory):
    ray = pytest.importorskip("ray")
    folder = tmp_path_factory.mktemp("replicas")
    tests = os.path.dirname(helpers.__file__)
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p)
    # Ray's workers are fresh processes: they import tests/ like a user's module.
    env = {"PYTHONPATH": path, "PSX_TEST_REPLICA_DIR": str(folder)}
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}
    )
    from proxyspex_captum.core.executors import RayExecutor

    pool = RayExecutor(num_workers=2, model_factory=helpers.load_model, num_cpus=1)
    yield pool, folder
    pool.shutdown()
    ray.shutdown()


@pytest.mark.distributed
def test_ray_is_bit_identical_and_builds_one_replica_per_actor(game, ray_pool):
    pool, folder = ray_pool
    reference = serial(ProxySPEX(random_state=6), helpers.planted())
    result = ProxySPEX(random_state=6).explain(helpers.replica_game, N, BUDGET, executor=pool)
    assert_identical(result, reference)
    built = sorted(p.name.split("-")[1] for p in folder.glob("built-*"))
    assert len(built) == 2 and len(set(built)) == 2  # one model per actor, at start


@pytest.mark.distributed
def test_ray_actor_killed_mid_run_is_retried(game, ray_pool, tmp_path):
    pool, _ = ray_pool
    reference = serial(ProxySPEX(random_state=8), game)
    dying = helpers.DiesOnce(game, tmp_path, np.ones(N, dtype=bool))  # in every sample
    result = ProxySPEX(random_state=8).explain(dying, N, BUDGET, executor=pool)
    assert (tmp_path / "died").exists()
    assert_identical(result, reference)
    assert result.metadata["new_model_calls"] == BUDGET
    # Ray runs the dead actor's batch again on the restarted actor. Batches that
    # finished just before the death but whose answers died with it run again too
    # (at-least-once; seen on a loaded machine): whole batches, counted once.
    calls = helpers.logged_masks(tmp_path)
    answered = {row.tobytes() for call in calls for row in call}
    assert len(answered) == BUDGET
    assert sum(len(c) for c in calls) % (BUDGET // 20) == 0


@pytest.mark.distributed
def test_ray_routes_around_an_actor_dead_for_good(game, ray_pool, tmp_path):
    import ray

    from proxyspex_captum.core.executors import RayExecutor

    reference = serial(ProxySPEX(random_state=9), game)
    with RayExecutor(num_workers=2, num_cpus=0) as pool:  # the fixture holds the CPUs
        ray.kill(pool._actors[0], no_restart=True)  # past its restarts
        logged = helpers.Logged(game, tmp_path)
        result = ProxySPEX(random_state=9).explain(logged, N, BUDGET, executor=pool)
        assert_identical(result, reference)
        ray.kill(pool._actors[1], no_restart=True)
        with pytest.raises(BatchFailedError, match="every actor"):
            ProxySPEX(random_state=9).explain(game, N, BUDGET, executor=pool)


def test_a_process_pool_with_a_dead_worker_stops_with_the_batch_named(game, tmp_path):
    # A dead worker breaks a ProcessPoolExecutor for good: the retry cannot run, and
    # the run stops with a batch named; what finished is in the cache, and a rerun
    # pays only for the rest.
    dying = helpers.DiesOnce(game, tmp_path, np.ones(N, dtype=bool))
    path = tmp_path / "values.sqlite"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(BatchFailedError, match=r"failed [01] time") as info:
            ProxySPEX(random_state=0).explain(
                dying, N, BUDGET, executor=pool, cache=path, fingerprint="g", retries=2
            )
    # Every batch still pending failed with the pool; whichever came back first is named.
    assert len(info.value.rows) == len(info.value.masks) > 0
    assert isinstance(info.value.__cause__, RuntimeError)  # BrokenProcessPool

    with MaskStore(path, fingerprint="g", n_features=N) as store:
        kept = len(store)
    assert kept <= sum(len(c) for c in helpers.logged_masks(tmp_path))
    resumed = helpers.Logged(game, tmp_path / "again")
    (tmp_path / "again").mkdir()
    result = ProxySPEX(random_state=0).explain(resumed, N, BUDGET, cache=path, fingerprint="g")
    assert result.metadata["new_model_calls"] == BUDGET - kept


# -- psx.executors.start: executors by name, as the command line builds them ----------


def test_start_builds_executors_by_name(game):
    import proxyspex_captum as psx

    reference = serial(ProxySPEX(random_state=9), game)
    with psx.executors.start("serial") as none:
        assert none is None
    with psx.executors.start("threads", workers=2) as pool:
        assert isinstance(pool, ThreadPoolExecutor) and pool._max_workers == 2
        assert ProxySPEX(random_state=9).explain(game, N, BUDGET, executor=pool) == reference
    with pytest.raises(ValueError, match="Unknown executor 'cloud'"):
        with psx.executors.start("cloud"):
            pass
    with pytest.raises(ValueError, match="address= is for a Dask or Ray cluster"):
        with psx.executors.start("threads", address="tcp://127.0.0.1:8786"):
            pass
    with pytest.raises(ValueError, match="workers must be"):
        with psx.executors.start("threads", workers=0):
            pass


@pytest.mark.distributed
def test_start_dask_runs_a_local_cluster_and_closes_it(game):
    import proxyspex_captum as psx

    reference = serial(ProxySPEX(random_state=9), game)
    with psx.executors.start("dask", workers=2) as pool:
        assert ProxySPEX(random_state=9).explain(game, N, BUDGET, executor=pool) == reference
        client = pool._client
    assert client.status == "closed"


def test_ctrl_c_keeps_the_batches_already_running():
    import threading

    masks = np.ones((9, 2), dtype=bool)
    kept: dict[int, np.ndarray] = {}
    started: list[int] = []
    both_running = threading.Event()

    def slow(batch):  # the first batch (one mask) comes back at once, the others in 2 s
        if len(batch) > 1:
            started.append(1)
            if len(started) == 2:
                both_running.set()
            time.sleep(2.0)
        return batch.sum(axis=1)

    def on_result(i, out):
        if i == 0:  # Ctrl-C as the first batch comes back, its freed worker busy again
            both_running.wait(timeout=30)
            raise KeyboardInterrupt
        kept[i] = out

    with ThreadPoolExecutor(2) as pool, pytest.raises(KeyboardInterrupt):
        run_batches(slow, masks, [0, 1, 3, 5, 7, 9], executor=pool, on_result=on_result)
    # Batches 1 and 2 were running: paid for, kept. Batches 3 and 4 never started.
    assert sorted(kept) == [1, 2]
    assert len(started) == 2
