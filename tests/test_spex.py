import threading
import time

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.core import spex
from proxyspex_captum.games import PlantedGame, fourier_game, hierarchical_game


def budget_for(n, b=7, t=5):
    return psx.SPEX(max_order=t)._queries_per_bin(n) * 2**b


@pytest.mark.parametrize("n", [64, 256, 1000])
@pytest.mark.parametrize("make", [hierarchical_game, fourier_game], ids=["hierarchical", "flat"])
def test_noiseless_sparse_functions_are_recovered_exactly(n, make):
    game = make(n, n_terms=90, max_order=5, random_state=n)
    truth = game.interactions.fourier
    assert len(truth) <= 101 and max(map(len, truth)) == 5
    inter = psx.SPEX(max_order=5, random_state=0).explain(game, n_features=n, budget=budget_for(n))
    for s, v in truth.items():
        assert inter.fourier.get(s, 0.0) == pytest.approx(v, abs=1e-6), s
    assert max((abs(v) for s, v in inter.fourier.items() if s not in truth), default=0.0) < 1e-6


@pytest.mark.parametrize("decoder", ["soft", "hard"])
def test_noisy_function_is_reproduced(decoder):
    n = 128
    game = fourier_game(n, n_terms=60, max_order=4, noise=0.05, random_state=1)
    inter = psx.SPEX(max_order=4, decoder=decoder, random_state=0).explain(
        game, n_features=n, budget=budget_for(n, t=4)
    )
    clean = PlantedGame(game.mobius, n_features=n)
    assert psx.faithfulness(inter, clean, n_masks=1000, random_state=5) >= 0.95


def test_budget_picks_the_largest_b_and_reports_real_calls():
    n = 128
    spex = psx.SPEX(max_order=5, random_state=0)
    per_bin = 3 * 41
    assert spex.bits_for_budget(n, 7872) == 6  # the reference count: 3·41·2^6
    assert spex.bits_for_budget(n, 7871) == 5
    game = hierarchical_game(n, n_terms=20, max_order=3, random_state=0)
    inter = spex.explain(game, n_features=n, budget=7900)
    assert inter.metadata["b"] == 6
    # identical queries (at ℓ = 0 the mask is the delay itself, in every group) are sent
    # once, and the 28 calls the design leaves go to uniform masks for the refit
    assert inter.metadata["coded_masks"] == per_bin * 2**6 - 2 * 41
    assert inter.metadata["uniform_masks"] == 7900 - inter.metadata["coded_masks"]
    assert inter.n_queries == 7900


def test_too_small_budget_is_refused_before_any_call():
    def never(masks):
        raise AssertionError("called")

    # the smallest design: 3 groups, 8 bins, the parity bits of a degree-2 code (+1)
    need = psx.SPEX(max_order=5).min_budget(1000)
    assert need == 3 * 21 * 8
    assert psx.SPEX(max_order=5, code_degree=5).min_budget(1000) == 3 * 56 * 8
    with pytest.raises(ValueError, match=f"at least {need} model calls"):
        psx.SPEX(max_order=5).explain(never, n_features=1000, budget=need - 1)
    with pytest.raises(ValueError, match="decoder"):
        psx.SPEX(decoder="list")
    # The public design refuses it too (it built a 2-bin design, or failed on a log).
    with pytest.raises(ValueError, match=f"smallest design for 1000 features needs {need}"):
        psx.SPEX(max_order=5).design(1000, need - 1, np.random.default_rng(0))


def test_same_seed_same_result_bit_for_bit():
    game = fourier_game(200, n_terms=40, max_order=4, random_state=2)
    weights = np.random.default_rng(0).normal(size=200)

    def noisy(masks):  # noise that is a fixed function of the mask
        return game(masks) + 0.05 * np.sin(masks @ weights)

    runs = [
        psx.SPEX(max_order=4, random_state=7).explain(noisy, n_features=200, budget=6000)
        for _ in range(2)
    ]
    assert runs[0].fourier == runs[1].fourier  # exact float equality


def test_small_n_uses_the_exact_transform():
    game = PlantedGame({(0, 1): 1.0, (2,): -1.0}, n_features=6)
    inter = psx.SPEX(max_order=3).explain(game, n_features=6, budget=64)
    assert inter.metadata["exact"] and inter.mobius == pytest.approx({(0, 1): 1.0, (2,): -1.0})


def test_multi_output():
    game = fourier_game(80, n_terms=20, max_order=3, random_state=3)
    out = psx.SPEX(max_order=3, random_state=0).explain(
        lambda m: np.stack([game(m), 3 * game(m)], axis=1), n_features=80, budget=5000
    )
    assert len(out) == 2
    for s, v in out[0].fourier.items():
        assert out[1].fourier[s] == pytest.approx(3 * v, abs=1e-6)


def test_nothing_to_peel_without_refit():
    inter = psx.SPEX(max_order=2, refit=None, random_state=0).explain(
        lambda m: np.full(len(m), 3.0), n_features=30, budget=800
    )
    assert inter.baseline_value == pytest.approx(3.0)


@pytest.mark.parametrize("n, budget", [(10, 1000), (7, 127)])
def test_the_whole_budget_is_spent_when_masks_remain(n, budget):
    def model(m):
        return m[:, 0] + 0.5 * (m[:, 1] & m[:, 2])

    inter = psx.SPEX(max_order=1, random_state=0).explain(model, n_features=n, budget=budget)
    assert inter.n_queries == budget
    assert inter.metadata["coded_masks"] + inter.metadata["uniform_masks"] == budget


def test_a_code_degree_above_n_spends_nothing_on_it():
    """No set has more than n features: max_order 25 or 30 at n = 21 plans as 21 does."""
    planned = psx.SPEX(max_order=21).choose_design(21, 6000)
    assert psx.SPEX(max_order=25).choose_design(21, 6000) == planned  # was (25, 4)
    assert psx.SPEX(max_order=30).min_budget(21) == psx.SPEX(max_order=21).min_budget(21)


def test_metadata_describes_the_design_that_was_fitted():
    game = PlantedGame({(3, 9): 2.0, (1,): 1.0}, n_features=32)
    design = psx.SPEX(max_order=2, n_groups=1).design(32, 1000, np.random.default_rng(0))
    other = psx.SPEX(max_order=2, n_groups=3, refit=None, uncertainty=False)
    (fit,) = other.fit_design(design, game(design.samples), np.random.default_rng(0))
    assert fit.metadata["n_groups"] == 1  # the design's, not the estimator's 3


def test_refit_folds_run_on_threads_with_the_same_result_for_any_n_jobs(monkeypatch):
    tables, running, most = [], [], [0]
    lock = threading.Lock()
    path = spex.lasso_path_sse

    class Recorded(spex.CVErrors):
        def __init__(self):
            super().__init__()
            tables.append(self)

    def slow_first_fold(*args, **kwargs):
        with lock:
            first = not running and most[0] == 0
            running.append(1)
            most[0] = max(most[0], len(running))
        # The first fold ends last, so a merge in finishing order would show.
        time.sleep(0.3 if first else 0.05)
        try:
            return path(*args, **kwargs)
        finally:
            with lock:
                running.pop()

    monkeypatch.setattr(spex, "lasso_path_sse", slow_first_fold)
    monkeypatch.setattr(spex, "CVErrors", Recorded)
    n = 64
    results = {}
    for n_jobs in (None, 3, "auto"):
        tables.clear()
        most[0] = 0
        # A fresh game each time: the noise is drawn in call order.
        game = fourier_game(n, n_terms=30, max_order=3, noise=0.1, random_state=2)
        inter = psx.SPEX(max_order=3, n_jobs=n_jobs, random_state=0).explain(
            game, n_features=n, budget=budget_for(n, b=5, t=3)
        )
        assert inter.metadata["refit"] is not None
        merged = tables[-1]  # the folds' tables first, then the one they are merged into
        errors = [(key, sse, list(merged.by_fold(key))) for key, sse in merged.sse.items()]
        results[n_jobs] = (errors, inter.predict(np.eye(n, dtype=bool)))
        if n_jobs is None:
            assert most[0] == 1  # one fold after the other
        elif n_jobs == 3:
            assert most[0] > 1
    # Bit-identical: every candidate's error on every fold, in the same order.
    for n_jobs in (3, "auto"):
        assert results[n_jobs][0] == results[None][0]
        assert np.array_equal(results[n_jobs][1], results[None][1])
