"""Bad input and edge cases of the estimators: refused clearly before any model call, or working.

Each test names the behaviour it guards (issue 11 §2); the model functions
here raise if called when the input must be refused first.
"""

import warnings

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.core.sampling import uniform_masks
from proxyspex_captum.games import PlantedGame, hierarchical_game

ESTIMATORS = [psx.ProxySPEX, psx.SPEX, psx.AutoSPEX]


def never(masks):
    raise AssertionError("the model must not be called")


class Counting:
    """A planted game that counts its calls and the masks it was sent."""

    def __init__(self, game):
        self.game, self.calls, self.masks = game, 0, 0

    def __call__(self, masks):
        self.calls += 1
        self.masks += len(masks)
        return self.game(masks)


# ---------------------------------------------------------------- budgets
def test_budget_beyond_all_masks_means_every_mask():
    # 21 <= n <= 62 used to loop forever looking for more distinct masks than exist.
    est = psx.ProxySPEX()
    assert est.check_budget(20, 2**20 + 5) == 2**20
    assert est.check_budget(5, 10**9) == 32
    masks = uniform_masks(21, 2**21 + 5, np.random.default_rng(0))
    assert masks.shape == (2**21, 21)
    assert len(np.unique(np.packbits(masks, axis=1), axis=0)) == 2**21
    inter = psx.ProxySPEX(max_order=2).explain(
        lambda m: m[:, 0] * m[:, 1] + 0.5 * m[:, 2], n_features=10, budget=10**6
    )
    assert inter.n_queries == 2**10 and inter.metadata["exact"]


@pytest.mark.parametrize("n, budget", [(30, 10**12), (21, 2**21 + 5), (23, 2**23)])
def test_all_masks_beyond_memory_are_refused(n, budget):
    for estimator in ESTIMATORS:
        with pytest.raises(ValueError, match=f"all 2\\*\\*{n} masks"):
            estimator(max_order=2).explain(never, n_features=n, budget=budget)


def test_budget_whose_masks_exceed_memory_is_refused():
    # 10**7 masks of 1,000 features used to die in a raw MemoryError.
    with pytest.raises(ValueError, match=r"9\.3 GiB .* at most 1073741 calls"):
        psx.ProxySPEX().explain(never, n_features=1000, budget=10**7)


# ---------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"max_order": 2.7}, TypeError, "max_order must be an integer, got 2.7"),
        ({"max_order": "3"}, TypeError, "max_order must be an integer, got '3'"),
        ({"max_order": True}, TypeError, "max_order must be an integer"),
        ({"max_order": 0}, ValueError, "max_order must be at least 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"batch_size": "all"}, ValueError, "batch_size must be a positive integer, None or"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"random_state": 1.5}, TypeError, "random_state must be an integer"),
        ({"random_state": -1}, ValueError, "random_state must be at least 0"),
    ],
)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_shared_options_are_checked(estimator, options, error, message):
    with pytest.raises(error, match=message):
        estimator(**options)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"max_depth": 2.0}, TypeError, "max_depth must be an integer"),
        ({"max_order": 9, "max_depth": 9}, ValueError, "max_depth must be at most 8"),
        ({"max_depth": ()}, ValueError, "max_depth must be a value or a non-empty sequence"),
        ({"max_depth": (3, 9)}, ValueError, r"max_depth\[1\] must be at most 8"),
        ({"max_depth": (3, "5")}, TypeError, r"max_depth\[1\] must be an integer"),
        ({"learning_rate": (0.1, 0.0)}, ValueError, r"learning_rate\[1\] must lie in"),
        ({"max_trees": 10.5}, TypeError, "max_trees must be an integer"),
        ({"min_child_samples": 0}, ValueError, "min_child_samples must be at least 1"),
        ({"early_stopping_rounds": "50"}, TypeError, "early_stopping_rounds"),
        ({"n_jobs": 2.0}, TypeError, "n_jobs must be an integer"),
        ({"n_jobs": "all"}, ValueError, "n_jobs must be 'auto', None or an integer"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate must be a real number"),
        ({"learning_rate": float("nan")}, ValueError, r"learning_rate must lie in \(0.0, 1.0\]"),
        ({"energy": 0.0}, ValueError, r"energy must lie in \(0.0, 1.0\]"),
        ({"n_folds": 1}, ValueError, "n_folds must be at least 2"),
        ({"n_folds": 5.0}, TypeError, "n_folds must be an integer"),
        ({"refit": "ols"}, ValueError, "refit must be one of"),
    ],
)
def test_proxyspex_options_are_checked(options, error, message):
    with pytest.raises(error, match=message):
        psx.ProxySPEX(**options)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"n_groups": 2.5}, TypeError, "n_groups must be an integer"),
        ({"chase_depth": 17}, ValueError, "chase_depth must be at most 16"),
        ({"max_iterations": 0}, ValueError, "max_iterations must be at least 1"),
        ({"residual_cutoff": 1}, ValueError, "residual_cutoff must lie in"),
        ({"n_jobs": 2.0}, TypeError, "n_jobs must be an integer"),
        ({"n_jobs": "all"}, ValueError, "n_jobs must be 'auto', None or an integer"),
    ],
)
def test_spex_options_are_checked(options, error, message):
    with pytest.raises(error, match=message):
        psx.SPEX(**options)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_features": 30.0, "budget": 500}, TypeError),
        ({"n_features": 0, "budget": 500}, ValueError),
        ({"n_features": 30, "budget": 500.0}, TypeError),
        ({"n_features": 30, "budget": "500"}, TypeError),
    ],
)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_explain_arguments_are_integers(estimator, kwargs, error):
    with pytest.raises(error):
        estimator(max_order=2).explain(never, **kwargs)


def test_high_max_order_builds_bounded_trees_quickly():
    # max_order=20 used to fail in LightGBM (2**20 leaves) after the whole budget was spent,
    # and max_order=17 took minutes; without max_depth the depth is now 2, 3 or 5.
    game = hierarchical_game(30, n_terms=20, random_state=0)
    inter = psx.ProxySPEX(max_order=20, random_state=0).explain(game, n_features=30, budget=1000)
    assert inter.metadata["tree_depth"] in (2, 3, 5)
    assert psx.faithfulness(inter, game, random_state=1) > 0.9


def test_spex_with_a_code_too_long_for_the_budget_is_refused_first():
    # A forced code degree is kept; by default the degree is lowered (down to 2) first.
    with pytest.raises(ValueError, match="needs a budget of at least"):
        psx.SPEX(max_order=20, code_degree=20).explain(never, n_features=1000, budget=2000)
    with pytest.raises(ValueError, match="needs a budget of at least 504 "):
        psx.SPEX(max_order=20).explain(never, n_features=1000, budget=500)


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_outputs_with_no_columns_are_refused(estimator):
    with pytest.raises(ValueError, match=r"shape \(\d+, 0\): no outputs"):
        estimator(max_order=2, random_state=0).explain(
            lambda m: np.zeros((len(m), 0)), n_features=30, budget=3000
        )


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_complex_outputs_are_refused_unless_real(estimator):
    game = PlantedGame({(0,): 1.0, (1, 2): 2.0}, n_features=30)
    with pytest.raises(ValueError, match="complex values with non-zero imaginary parts"):
        estimator(max_order=2, random_state=0).explain(
            lambda m: game(m) * (1 + 1j), n_features=30, budget=3000
        )
    inter = estimator(max_order=2, random_state=0).explain(
        lambda m: game(m) + 0j, n_features=30, budget=3000
    )
    assert inter.mobius == pytest.approx({(0,): 1.0, (1, 2): 2.0}, abs=1e-6)


def test_exact_fit_whose_terms_could_not_be_read_is_refused_first():
    # max_order=19 at n = 19 paid 2**19 calls, then first_order() refused the expansion.
    with pytest.raises(ValueError, match="use max_order <= 18"):
        psx.ProxySPEX(max_order=19).explain(never, n_features=19, budget=2**19)


@pytest.mark.parametrize("n, budget", [(40, 3000), (3, 8)], ids=["sampled", "exact"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_outputs_near_the_float_limit_work(estimator, n, budget):
    planted = {(0,): 1.5, (1, 2): -1.0}
    game = PlantedGame(planted, n_features=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inter = estimator(max_order=2, random_state=0).explain(
            lambda m: 1e308 * game(m), n_features=n, budget=budget
        )
    assert {s: v / 1e308 for s, v in inter.mobius.items()} == pytest.approx(planted, rel=1e-9)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_huge_and_tiny_outputs_work(estimator, scale):
    # Near 1e300, SPEX used to return an empty result with overflow warnings.
    planted = {(3,): 1.0, (7, 40): -2.0, (1, 2, 5): 0.5}
    game = PlantedGame(planted, n_features=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, underflow or poor-fit warning
        inter = estimator(max_order=3, random_state=0).explain(
            lambda m: scale * game(m), n_features=64, budget=3000
        )
    found = {s: v / scale for s, v in inter.mobius.items()}
    assert found == pytest.approx(planted, rel=1e-9)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_string_of_feature_names_is_refused_before_any_call(estimator):
    def never(masks):
        raise AssertionError("called")

    with pytest.raises(TypeError, match="single string"):
        estimator(random_state=0).explain(
            never, n_features=20, budget=1000, feature_names="abcdefghijklmnopqrst"
        )


@pytest.mark.parametrize("factor", [2.0**530, 2.0**-530])  # about 1e160 and 1e-160
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_intervals_scale_with_huge_and_tiny_outputs(estimator, factor):
    # The bootstrap's squared deviations overflowed to infinite intervals near
    # 1e160 and underflowed to zero-width ones near 1e-160. A power of two keeps
    # the scaled outputs exact, so both runs make the same choices.
    game = PlantedGame({(3,): 1.0, (7, 40): -2.0}, n_features=64)

    def errors(scale: float) -> dict:
        rng = np.random.default_rng(5)
        inter = estimator(max_order=2, random_state=0, uncertainty=True, n_resamples=10).explain(
            lambda m: scale * (game(m) + 0.05 * rng.standard_normal(len(m))),
            n_features=64,
            budget=1500,
        )
        return {s: v / scale for s, v in inter.standard_errors().items()}

    reference, scaled = errors(1.0), errors(factor)
    assert max(reference.values()) > 0.0
    assert scaled == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("offset, amplitude", [(1.0, 1e-8), (1000.0, 1e-4), (-5e3, 1e-2)])
@pytest.mark.parametrize("estimator", [psx.ProxySPEX, psx.AutoSPEX])
def test_an_output_offset_only_moves_the_constant(estimator, offset, amplitude):
    # Values were scaled, not centred: LightGBM keeps labels as float32, so
    # 1 + 1e-8·g(m) was one constant to it and only main effects were found.
    planted = {(0,): 1.0, (1, 2): 0.5, (3, 4, 5): 0.25}
    game = PlantedGame(planted, n_features=32)
    inter = estimator(max_order=3, random_state=0, uncertainty=False).explain(
        lambda m: offset + amplitude * game(m), n_features=32, budget=400
    )
    found = {s: v / amplitude for s, v in inter.mobius.items() if s and abs(v) > 1e-6 * amplitude}
    assert found == pytest.approx(planted, rel=1e-6)
    assert inter.mobius[()] == pytest.approx(offset, rel=1e-12)


# ---------------------------------------------------------------- exact fits
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_noiseless_sparse_function_leaves_no_shrinkage_artefacts(estimator):
    # The ridge refit used to leave ~6e-9 pair terms next to a recovered triple,
    # and which penalty it chose depended on the BLAS kernel.
    planted = {(0,): -1.0, (3, 7, 9): 4.0}
    game = PlantedGame(planted, n_features=40)
    inter = estimator(max_order=3, random_state=0).explain(game, n_features=40, budget=3000)
    assert set(inter.mobius) == set(planted)
    assert inter.mobius == pytest.approx(planted, rel=1e-9)
    assert inter.metadata["cv_r2"] == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------- reuse and reporting
def test_reused_value_function_reports_masks_used_and_new_calls():
    game = Counting(hierarchical_game(40, n_terms=20, random_state=2))
    vf = psx.ValueFunction(game, 40)
    first = psx.ProxySPEX(random_state=0).explain(vf, n_features=40, budget=500)
    again = psx.ProxySPEX(random_state=0).explain(vf, n_features=40, budget=500)
    assert first.n_queries == again.n_queries == 500  # used to be 500, then 0
    assert (first.metadata["new_model_calls"], first.metadata["cached_masks"]) == (500, 0)
    assert (again.metadata["new_model_calls"], again.metadata["cached_masks"]) == (0, 500)
    assert game.masks == 500
    other = psx.ProxySPEX(random_state=1).explain(vf, n_features=40, budget=500)
    assert other.metadata["new_model_calls"] + other.metadata["cached_masks"] == 500
    assert game.masks == 500 + other.metadata["new_model_calls"]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_model_calls_are_batched_by_default(estimator):
    # The whole budget used to go to the model in one call: a progress bar went 0 -> 100 %.
    game = Counting(hierarchical_game(40, n_terms=20, random_state=2))
    inter = estimator(max_order=2, random_state=0).explain(game, n_features=40, budget=2000)
    assert 15 <= game.calls <= 21 and game.masks == inter.n_queries
    whole = Counting(game.game)
    estimator(max_order=2, batch_size=None, random_state=0).explain(
        whole, n_features=40, budget=2000
    )
    assert whole.calls == 1


def test_poor_fit_warns_and_good_fit_does_not():
    game = hierarchical_game(64, n_terms=20, random_state=1)
    rng = np.random.default_rng(0)
    spread = float(np.std(game(rng.random((500, 64)) < 0.5)))

    def noisy(masks):
        return game(masks) + rng.normal(0.0, 3 * spread, len(masks))

    with pytest.warns(psx.PoorFitWarning, match="cross-validated R²"):
        inter = psx.ProxySPEX(random_state=0).explain(noisy, n_features=64, budget=500)
    assert inter.metadata["cv_r2"] < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", psx.PoorFitWarning)
        inter = psx.ProxySPEX(random_state=0).explain(game, n_features=64, budget=500)
    assert inter.metadata["cv_r2"] > 0.9


def test_folds_run_in_parallel_with_the_same_result_for_any_n_jobs(monkeypatch):
    import threading

    import lightgbm

    seen, threads, running = [], set(), []
    lock = threading.Lock()
    train = lightgbm.train

    def spy(params, *args, **kwargs):
        seen.append(params.get("num_threads"))
        with lock:
            threads.add(threading.get_ident())
            running.append(1)
            most[0] = max(most[0], len(running))
        try:
            return train(params, *args, **kwargs)
        finally:
            with lock:
                running.pop()

    most = [0]

    monkeypatch.setattr(lightgbm, "train", spy)
    game = hierarchical_game(40, n_terms=10, random_state=3)
    filters = list(warnings.filters)
    results = {}
    for n_jobs in (None, 3, "auto"):
        threads.clear()
        most[0] = 0
        inter = psx.ProxySPEX(n_jobs=n_jobs, random_state=0).explain(
            game, n_features=40, budget=500
        )
        results[n_jobs] = inter.predict(np.eye(40, dtype=bool))
        if n_jobs is None:
            assert most[0] == 1  # one after the other (folds, then the bootstrap refits)
        elif n_jobs == 3:
            assert len(threads) > 1
    assert set(seen) == {1}  # every LightGBM fit single-threaded: the folds are the parallelism
    assert np.array_equal(results[None], results[3])  # bit-identical: errors summed in fold order
    assert np.array_equal(results[None], results["auto"])
    # Worker threads never enter warnings.catch_warnings (not thread-safe): no filter leaks.
    assert warnings.filters == filters
    cores = psx.core.checks.usable_cores()
    assert [psx.ProxySPEX(n_jobs=j).n_workers() for j in (None, 1, 3, -1, 0, "auto")] == [
        1,
        1,
        3,
        cores,
        cores,
        cores,
    ]
