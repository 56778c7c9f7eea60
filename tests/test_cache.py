"""The persistent cache: what was paid for survives the process, and is never mixed up."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import distributed_helpers as helpers
import numpy as np
import pytest

from proxyspex_captum.core import SPEX, ProxySPEX, ValueFunction
from proxyspex_captum.core.cache import MaskStore, NondeterminismWarning
from proxyspex_captum.core.sampling import uniform_masks

N, BUDGET = 40, 300


class Counted:
    def __init__(self, game):
        self.game, self.calls = game, 0

    def __call__(self, masks):
        self.calls += len(masks)
        return self.game(masks)


@pytest.fixture(scope="module")
def game():
    return helpers.planted(N)


def test_a_rerun_makes_no_call_and_gives_the_same_result(game, tmp_path):
    path = tmp_path / "values.sqlite"
    first = Counted(game)
    a = ProxySPEX(random_state=0).explain(first, N, BUDGET, cache=path, fingerprint="planted")
    assert first.calls == BUDGET == a.metadata["new_model_calls"]
    again = Counted(game)
    b = ProxySPEX(random_state=0).explain(again, N, BUDGET, cache=path, fingerprint="planted")
    assert again.calls == 0 and b.metadata["cached_masks"] == BUDGET
    assert b == a
    # Another budget or method shares what is there: only the new masks cost calls.
    more = Counted(game)
    ProxySPEX(random_state=0).explain(more, N, 2 * BUDGET, cache=path, fingerprint="planted")
    with MaskStore(path, fingerprint="planted", n_features=N) as store:
        assert len(store) == BUDGET + more.calls
    assert more.calls < 2 * BUDGET


def test_multi_output_values_come_back_from_the_cache(game, tmp_path):
    def two(masks):
        return np.stack([game(masks), -game(masks)], axis=1)

    path = tmp_path / "two.sqlite"
    first = SPEX(max_order=3, random_state=1).explain(two, N, 2000, cache=path, fingerprint="2")
    calls = []
    second = SPEX(max_order=3, random_state=1).explain(
        lambda m: calls.append(1) or two(m), N, 2000, cache=path, fingerprint="2"
    )
    assert calls == [] and isinstance(second, list) and second == first
    with pytest.raises(ValueError, match="2 outputs per mask"):
        ProxySPEX(random_state=5).explain(game, N, BUDGET, cache=path, fingerprint="2")


def test_the_fingerprint_is_read_from_the_value_function(game, tmp_path):
    class Named(Counted):
        fingerprint = "my-model / my-input"

    path = tmp_path / "named.sqlite"
    ProxySPEX(random_state=0).explain(Named(game), N, BUDGET, cache=path)
    with MaskStore(path, fingerprint="my-model / my-input", n_features=N) as store:
        assert len(store) == BUDGET


# -- bad input: refused before any model call -----------------------------------


@pytest.mark.parametrize(
    ("setup", "kwargs", "error", "match"),
    [
        ("other", {"fingerprint": "mine"}, ValueError, "another value function"),
        ("other-n", {"fingerprint": "mine"}, ValueError, "masks of 12 features"),
        ("none", {}, ValueError, "needs a fingerprint"),
        ("not-sqlite", {"fingerprint": "mine"}, ValueError, "not a cache file"),
        ("foreign-sqlite", {"fingerprint": "mine"}, ValueError, "holds other tables"),
        ("under-a-file", {"fingerprint": "mine"}, OSError, "Cannot open the cache file"),
        ("folder", {"fingerprint": "mine"}, OSError, "is a folder"),
    ],
)
def test_a_cache_that_cannot_serve_is_refused_before_any_call(
    game, tmp_path, setup, kwargs, error, match
):
    path = tmp_path / "values.sqlite"
    if setup == "other":
        MaskStore(path, fingerprint="theirs", n_features=N).close()
    elif setup == "other-n":
        MaskStore(path, fingerprint="mine", n_features=12).close()
    elif setup == "not-sqlite":
        path.write_text("results, not a database\n" * 100)
    elif setup == "foreign-sqlite":  # another program's database: refused, left as it was
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    elif setup == "under-a-file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "values.sqlite"
    elif setup == "folder":
        path = tmp_path
    counted = Counted(game)
    with pytest.raises(error, match=match):
        ProxySPEX().explain(counted, N, BUDGET, cache=path, **kwargs)
    assert counted.calls == 0
    if setup == "foreign-sqlite":
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT * FROM meta").fetchall() == []
            assert db.execute("PRAGMA journal_mode").fetchone()[0] != "wal"


def test_a_model_of_several_outputs_read_whole_from_a_file_another_run_filled(tmp_path):
    # This function opened the file while it was empty; another run filled it. Every
    # value then came from the file and the function never learnt their width: a
    # model of two outputs came back as one.
    def two(masks):
        m = masks.astype(float)
        return np.column_stack([m[:, 0] + 2 * m[:, 1] * m[:, 2], m[:, 3]])

    path = tmp_path / "values.sqlite"
    vf = ValueFunction(two, 20, store=MaskStore(path, fingerprint="f", n_features=20))
    ProxySPEX(random_state=0).explain(two, 20, 200, cache=path, fingerprint="f")
    result = ProxySPEX(random_state=0).explain(vf, 20, 200)
    assert isinstance(result, list) and len(result) == 2
    assert vf.n_queries == 0  # all from the file


def test_a_fingerprint_without_a_cache_is_refused(game):
    with pytest.raises(ValueError, match="pass a cache path too"):
        ProxySPEX().explain(game, N, BUDGET, fingerprint="mine")


def test_a_cache_of_the_wrong_type_is_refused(game):
    with pytest.raises(TypeError, match="file path or a MaskStore"):
        ProxySPEX().explain(game, N, BUDGET, cache=123, fingerprint="x")


# -- faults -------------------------------------------------------------------------


KILLED_RUN = textwrap.dedent(
    """
    import sys
    import distributed_helpers as helpers
    from proxyspex_captum.core import ProxySPEX

    folder, path = sys.argv[1], sys.argv[2]
    slow = helpers.Logged(helpers.planted({n}), folder, delay=0.2)
    ProxySPEX(random_state=3).explain(slow, {n}, {budget}, cache=path, fingerprint="slow")
    """
)


def _rows(path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM mask_values").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_run_killed_mid_way_resumes_with_only_the_missing_calls(game, tmp_path):
    path, folder = tmp_path / "values.sqlite", tmp_path / "calls"
    folder.mkdir()
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN.format(n=N, budget=BUDGET))
    env = {**os.environ, "PYTHONPATH": os.path.dirname(helpers.__file__)}
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while _rows(path) < 3 * BUDGET // 20 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # kill -9: no cleanup, no flush
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = _rows(path)
    paid = sum(len(c) for c in helpers.logged_masks(folder))
    assert 3 * BUDGET // 20 <= kept < BUDGET
    assert paid - kept <= BUDGET // 20  # at most the one batch in flight was lost
    resumed = Counted(game)
    result = ProxySPEX(random_state=3).explain(resumed, N, BUDGET, cache=path, fingerprint="slow")
    assert resumed.calls == BUDGET - kept == result.metadata["new_model_calls"]
    assert result.metadata["cached_masks"] == kept
    assert result == ProxySPEX(random_state=3).explain(game, N, BUDGET)


def test_a_failed_batch_leaves_everything_else_in_the_cache(game, tmp_path):
    path = tmp_path / "values.sqlite"
    full = np.ones(N, dtype=bool)

    def fails_on_full(masks):
        if (masks == full).all(axis=1).any():
            raise ConnectionError("planted")
        return game(masks)

    with ThreadPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="failed 2 time"):
        ProxySPEX(random_state=0).explain(
            fails_on_full, N, BUDGET, executor=pool, retries=1, cache=path, fingerprint="g"
        )
    assert _rows(path) == BUDGET - BUDGET // 20
    resumed = Counted(game)
    ProxySPEX(random_state=0).explain(resumed, N, BUDGET, cache=path, fingerprint="g")
    assert resumed.calls == BUDGET // 20


def _write(path: str, seed: int, barrier) -> int:
    game = helpers.planted(N)
    masks = uniform_masks(N, 400, np.random.default_rng(seed % 2))  # two processes overlap
    barrier.wait()
    with MaskStore(path, fingerprint="shared", n_features=N) as store:
        for start in range(0, 400, 20):
            store.put(masks[start : start + 20], game(masks[start : start + 20]))
    return 0


def test_concurrent_writers_share_one_file(game, tmp_path):
    path = str(tmp_path / "shared.sqlite")
    MaskStore(path, fingerprint="shared", n_features=N).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(4)
    with ctx.Pool(4) as pool:
        assert pool.starmap(_write, [(path, seed, barrier) for seed in range(4)]) == [0] * 4
    union = np.vstack([uniform_masks(N, 400, np.random.default_rng(s)) for s in (0, 1)])
    union = np.unique(union, axis=0)
    with MaskStore(path, fingerprint="shared", n_features=N) as store:
        assert len(store) == len(union)
        values = np.stack(store.get(union))
        assert store.conflicts == 0
    np.testing.assert_allclose(values, game(union), rtol=1e-12, atol=1e-12)


def test_a_nondeterministic_model_is_detected_from_the_cache(game, tmp_path):
    path = tmp_path / "values.sqlite"
    other = MaskStore(path, fingerprint="noisy", n_features=N)

    def racing(masks):
        # Another run writes its own (different) answers for the same masks first.
        other.put(masks, game(masks) + 0.5)
        return game(masks)

    masks = uniform_masks(N, 50, np.random.default_rng(0))
    with MaskStore(path, fingerprint="noisy", n_features=N) as store:
        vf = ValueFunction(racing, N, batch_size=25, store=store)
        with pytest.warns(NondeterminismWarning, match="different values for 25 mask"):
            values = vf(masks)
        assert store.conflicts == 50
    other.close()
    # The first answers stored are the ones every run sees.
    np.testing.assert_allclose(values, game(masks) + 0.5, rtol=1e-12)


def test_one_store_can_be_shared_by_threads(game, tmp_path):
    masks = uniform_masks(N, 400, np.random.default_rng(3))
    with MaskStore(tmp_path / "threads.sqlite", fingerprint="t", n_features=N) as store:
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda s: store.put(masks[s : s + 25], game(masks[s : s + 25])),
                    range(0, 400, 25),
                )
            )
            found = list(pool.map(lambda s: store.get(masks[s : s + 25]), range(0, 400, 25)))
        assert len(store) == len(np.unique(masks, axis=0))
    np.testing.assert_array_equal(np.stack([v for part in found for v in part]), game(masks))
