import warnings

import brute_force as bf
import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.games import PlantedGame, hierarchical_game


@pytest.mark.parametrize("n", [32, 128, 512])
@pytest.mark.parametrize("noise, floor", [(0.0, 0.95), (0.05, 0.9)], ids=["clean", "noisy"])
def test_planted_hierarchical_games(n, noise, floor):
    game = hierarchical_game(n, n_terms=75, max_order=4, noise=noise, random_state=n)
    assert 50 <= len(game.mobius) <= 100
    inter = psx.ProxySPEX(max_order=4, random_state=0).explain(game, n_features=n, budget=2000)
    assert inter.n_queries == 2000
    clean = PlantedGame(game.mobius, n_features=n)  # score against the noiseless truth
    assert psx.faithfulness(inter, clean, n_masks=1000, random_state=123) >= floor
    # The strongest planted pair interactions are found with the right sign.
    truth = sorted(
        ((s, v) for s, v in game.mobius.items() if len(s) == 2), key=lambda t: -abs(t[1])
    )
    for s, v in truth[:3]:
        assert np.sign(inter.mobius.get(s, 0.0)) == np.sign(v)


def test_full_budget_gives_the_exact_transform():
    n = 7
    rng = np.random.default_rng(0)
    mobius = {s: float(rng.normal()) for s in bf.sets_up_to(n, 3) if rng.random() < 0.15}
    game = PlantedGame(mobius, n_features=n)
    inter = psx.ProxySPEX(max_order=3, random_state=0).explain(game, n_features=n, budget=2**n)
    assert inter.n_queries == 2**n and inter.metadata["exact"]
    expected = game.interactions.fourier
    assert set(inter.fourier) == set(expected)  # no spurious terms
    for s, v in expected.items():
        assert inter.fourier[s] == pytest.approx(v, abs=1e-6)
    for s, v in mobius.items():
        assert inter.mobius[s] == pytest.approx(v, abs=1e-6)


def test_exact_path_truncates_to_max_order_and_says_so():
    game = PlantedGame({(0, 1, 2): 1.0, (3,): 1.0}, n_features=4)
    inter = psx.ProxySPEX(max_order=2).explain(game, n_features=4, budget=1000)
    assert inter.max_order <= 2
    assert inter.metadata["energy_above_max_order"] == pytest.approx(1 / 64)


def test_exact_path_warns_when_the_dropped_orders_move_shapley_values():
    """x0 + ... + x5 + x0·...·x5: the product is 0.1 % of the variance but moves every
    Shapley value 2.7 % (1.135 instead of 7/6); the variance rule alone did not warn."""

    def model(masks):
        return masks.sum(axis=1) + masks.all(axis=1)

    with pytest.warns(psx.PoorFitWarning, match=r"move a Shapley value by 2\.7%.*max_order=6"):
        truncated = psx.ProxySPEX(max_order=4).explain(model, n_features=6, budget=64)
    assert truncated.first_order()[0] == pytest.approx(1.1354, abs=1e-3)
    whole = psx.ProxySPEX(max_order=6).explain(model, n_features=6, budget=64)
    np.testing.assert_allclose(whole.first_order(), 7 / 6)


def test_same_seed_same_result_and_global_rng_untouched():
    game = hierarchical_game(64, n_terms=40, random_state=5)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (must stay untouched)
    a = psx.ProxySPEX(random_state=3).explain(game, n_features=64, budget=400)
    b = psx.ProxySPEX(random_state=3).explain(game, n_features=64, budget=400)
    assert a == b
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_multi_output_uses_one_set_of_calls():
    game = hierarchical_game(40, n_terms=30, random_state=1)
    calls = []

    def two_outputs(masks):
        calls.append(len(masks))
        v = game(masks)
        return np.stack([v, -2 * v], axis=1)

    out = psx.ProxySPEX(random_state=0).explain(two_outputs, n_features=40, budget=600)
    assert isinstance(out, list) and len(out) == 2
    assert sum(calls) == 600
    masks = np.random.default_rng(9).random((200, 40)) < 0.5
    np.testing.assert_allclose(
        out[1].predict(masks), -2 * out[0].predict(masks), atol=0.05 * np.std(game(masks))
    )


def test_constant_model():
    inter = psx.ProxySPEX(random_state=0).explain(
        lambda m: np.full(len(m), 3.0), n_features=50, budget=200
    )
    assert inter.fourier == {(): 3.0}


def test_feature_names_and_metadata():
    game = hierarchical_game(30, n_terms=20, random_state=2)
    names = [f"w{i}" for i in range(30)]
    inter = psx.ProxySPEX(random_state=0).explain(
        game, n_features=30, budget=300, feature_names=names
    )
    assert inter.feature_names == names
    assert inter.metadata["method"] == "proxyspex" and inter.metadata["budget"] == 300
    assert inter.metadata["algorithm_seconds"] > 0
    assert "w" in repr(inter)


class Never:
    """A model that must not be called."""

    def __call__(self, masks):
        raise AssertionError("the model was called")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_features": 50, "budget": 99}, ValueError, "at least 100 model calls"),
        ({"n_features": 5, "budget": 31}, ValueError, "at least 32 model calls"),
        ({"n_features": 0, "budget": 1000}, ValueError, "n_features must be at least 1"),
        ({"n_features": 2.5, "budget": 1000}, TypeError, "n_features must be an integer"),
        ({"n_features": 10, "budget": 0}, ValueError, "budget must be at least 1"),
    ],
)
def test_bad_arguments_fail_before_any_model_call(kwargs, error, message):
    with pytest.raises(error, match=message):
        psx.ProxySPEX().explain(Never(), **kwargs)


def test_bad_feature_names_and_parameters():
    with pytest.raises(ValueError, match="2 feature names"):
        psx.ProxySPEX().explain(Never(), n_features=3, budget=100, feature_names=["a", "b"])
    with pytest.raises(ValueError, match="max_order"):
        psx.ProxySPEX(max_order=0)
    with pytest.raises(ValueError, match="energy"):
        psx.ProxySPEX(energy=1.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_model_output(bad):
    def model(masks):
        out = masks.sum(axis=1).astype(float)
        out[5] = bad
        return out

    with pytest.raises(ValueError, match="NaN or infinite"):
        psx.ProxySPEX(random_state=0).explain(model, n_features=20, budget=200)


def test_wrong_output_shape():
    with pytest.raises(ValueError, match="expected"):
        psx.ProxySPEX(random_state=0).explain(lambda m: np.zeros(3), n_features=20, budget=200)


def test_single_feature():
    inter = psx.ProxySPEX().explain(lambda m: 1.0 + 2.0 * m[:, 0], n_features=1, budget=10)
    assert inter.mobius == pytest.approx({(): 1.0, (0,): 2.0})
    assert inter.n_queries == 2


def test_nearly_constant_model_is_still_fitted():
    # A variation of 1e-9 on a level of 1: the values are centred before the proxy sees
    # them (as float32 labels, 1 + 1e-9 was 1), and it comes back at the output's scale.
    with warnings.catch_warnings():
        warnings.simplefilter("error", psx.PoorFitWarning)
        inter = psx.ProxySPEX(max_order=2, random_state=0).explain(
            lambda m: 1 + 1e-9 * m[:, 0], n_features=25, budget=100
        )
    assert inter.metadata["cv_r2"] == pytest.approx(1.0, abs=1e-6)
    mobius = {s: v for s, v in inter.mobius.items() if abs(v) > 1e-12}
    assert mobius == pytest.approx({(): 1.0, (0,): 1e-9}, rel=1e-3)


RIDGES, LASSOS = ("ridge", "ridge-energy"), ("lasso", "lasso-mobius")
# A clearly better ridge is averaged with the best lasso: "ridge+lasso" and the like.
CANDIDATES = (
    "proxy",
    *RIDGES,
    *LASSOS,
    "linear",
    "linear-lasso",
    *(f"{ridge}+{lasso}" for ridge in RIDGES for lasso in LASSOS),
)


def test_tree_depth_is_chosen_by_validation_unless_given():
    game = hierarchical_game(40, n_terms=30, random_state=4)
    chosen = psx.ProxySPEX(max_order=4, random_state=0).explain(game, n_features=40, budget=500)
    low = psx.ProxySPEX(max_order=2, random_state=0).explain(game, n_features=40, budget=500)
    fixed = psx.ProxySPEX(max_order=4, max_depth=2, random_state=0).explain(
        game, n_features=40, budget=500
    )
    # Candidates 2, 3 and 5, capped by max_order; the result says which won and how well.
    assert chosen.metadata["tree_depth"] in (2, 3, 4)
    assert low.metadata["tree_depth"] == 2
    assert fixed.metadata["tree_depth"] == 2 and fixed.max_order <= 2
    for inter in (chosen, low, fixed):
        assert inter.metadata["n_trees"] >= 1 and 0.0 < inter.metadata["cv_r2"] <= 1.0
        assert inter.metadata["refit"] in CANDIDATES
    with pytest.raises(ValueError, match="max_depth"):
        psx.ProxySPEX(max_order=3, max_depth=4)
    # Several candidates: each capped by max_order (like the defaults), all screened.
    several = psx.ProxySPEX(max_order=3, max_depth=(2, 5), learning_rate=(0.1, 0.3))
    assert several.proxy_configs() == [(2, 0.1), (2, 0.3), (3, 0.1), (3, 0.3)]
    inter = psx.ProxySPEX(
        max_order=3, max_depth=(2, 5), learning_rate=(0.1, 0.3), random_state=0
    ).explain(game, n_features=40, budget=500)
    assert (
        inter.metadata["tree_depth"],
        inter.metadata["learning_rate"],
    ) in several.proxy_configs()


def test_screening_on_every_fold_picks_the_best_cross_validated_depth():
    # Ground truth: each depth run alone is cross-validated on every fold, and its
    # cv_r2 is that of its best candidate. Screening the depths on all five folds
    # must pick the one whose cv_r2 is highest; on two folds, one of them.
    game = hierarchical_game(60, n_terms=40, max_order=4, random_state=6)
    options = {"max_order": 4, "uncertainty": False, "random_state": 3}
    alone = {
        d: psx.ProxySPEX(max_depth=d, **options).explain(game, n_features=60, budget=400)
        for d in (2, 3, 4)
    }
    best = max(inter.metadata["cv_r2"] for inter in alone.values())
    assert min(inter.metadata["cv_r2"] for inter in alone.values()) < best - 0.01  # not a tie
    full = psx.ProxySPEX(max_depth=(2, 3, 4), screen_folds=5, **options)
    inter = full.explain(game, n_features=60, budget=400)
    assert inter.metadata["cv_r2"] == pytest.approx(best, abs=1e-9)
    assert alone[inter.metadata["tree_depth"]].metadata["cv_r2"] == pytest.approx(best, abs=1e-9)
    for bad in (0, 6, 2.5, "2"):
        with pytest.raises((ValueError, TypeError), match="screen_folds"):
            psx.ProxySPEX(screen_folds=bad)


@pytest.mark.parametrize("estimator", [psx.ProxySPEX, psx.SPEX], ids=["proxyspex", "spex"])
def test_cross_validated_fits_leave_numpys_global_generator_alone(estimator):
    # scikit-learn's coordinate descent seeds itself from numpy's global generator
    # unless given a random_state: the lasso candidates must pass one.
    game = hierarchical_game(48, n_terms=20, max_order=2, random_state=5)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    estimator(max_order=2, random_state=0).explain(game, n_features=48, budget=800)
    assert (np.random.get_state()[1] == before).all()  # noqa: NPY002


@pytest.mark.parametrize("options", [{"refit": "proxy"}, {"max_order": 1}])
def test_the_proxy_as_result_keeps_its_constant(options):
    # The proxy candidate once came back with an intercept of 0 (v(∅) = -1 for 5).
    def model(m):
        return 5.0 + 2.0 * (m[:, 0] & m[:, 1]) + m[:, 2]

    inter = psx.ProxySPEX(**{"max_order": 2, "random_state": 0, **options}).explain(
        model, n_features=10, budget=200
    )
    spread = 1.5  # the model ranges over 5..8
    assert abs(inter.baseline_value - 5.0) < 0.5 * spread
    assert abs(inter.full_value - 8.0) < 0.5 * spread


def test_a_fold_whose_proxy_finds_no_split_counts_as_a_constant():
    # v = AND of 20 features is 1 on one mask in a million: a fold's proxy sees only
    # zeros. Its candidates are scored as the constant, so cv_r2 stays honest.
    with pytest.warns(psx.PoorFitWarning):
        inter = psx.ProxySPEX(refit="ridge", random_state=0).explain(
            lambda m: m.all(axis=1).astype(float), n_features=20, budget=100
        )
    assert inter.metadata["cv_r2"] < 0.5


@pytest.mark.parametrize("refit", ["ridge", "lasso"])
def test_no_split_in_any_fold_under_a_restricted_refit_gives_the_fitted_mean(refit):
    # No fold's proxy splits on a 1e-9 variation: the no-split scores must stay in
    # the allowed family (a ridge key once won under refit="lasso" and crashed).
    inter = psx.ProxySPEX(refit=refit, random_state=0, uncertainty=False).explain(
        lambda m: 1 + 1e-9 * m[:, 0], n_features=25, budget=100
    )
    assert inter.metadata["refit"].startswith(refit)
    assert inter.fourier[()] == pytest.approx(1.0, abs=1e-8)


def test_keep_probability_concentrates_calls_and_still_recovers_a_planted_game():
    game = psx.games.hierarchical_game(64, random_state=1)
    calls = []

    def model(masks):
        calls.append(masks)
        return game(masks)

    est = psx.ProxySPEX(keep_probability=0.8, random_state=0)
    inter = est.explain(model, n_features=64, budget=1500)
    assert np.concatenate(calls)[2:].mean() == pytest.approx(0.8, abs=0.02)
    assert inter.metadata["keep_probability"] == 0.8
    assert psx.faithfulness(inter, game) > 0.9
    assert (
        "keep_probability"
        not in psx.ProxySPEX(random_state=0).explain(game, n_features=64, budget=200).metadata
    )
    with pytest.raises(ValueError, match="keep_probability"):
        psx.ProxySPEX(keep_probability=1.0)


def _unanimity_game(masks):
    m = np.asarray(masks, dtype=bool)
    return (
        3.0 * m[:, [0, 1, 2, 3]].all(axis=1)
        + 2.0 * m[:, [4, 5, 6]].all(axis=1)
        - 1.5 * m[:, [7, 8]].all(axis=1)
        + 1.0 * m[:, 9]
    )


def _noisy_unanimity_game(seed):
    rng = np.random.default_rng(seed)
    return lambda masks: _unanimity_game(masks) + 0.1 * rng.standard_normal(len(masks))


PLANTED_UNANIMITY = {(0, 1, 2, 3): 3.0, (4, 5, 6): 2.0, (7, 8): -1.5, (9,): 1.0}


def test_mobius_lasso_recovers_a_sum_of_unanimity_games():
    # Each unanimity term is one Möbius column but 2^|S| Fourier ones: with noise,
    # the lasso in the Möbius basis keeps exactly the four planted terms, and the
    # cross-validation prefers it to the lasso in the Fourier basis, which keeps more.
    options = {"max_order": 4, "random_state": 0, "uncertainty": False, "refit": "lasso"}
    test = np.random.default_rng(9).random((2000, 40)) < 0.5
    results = {}
    for bases in (("fourier", "mobius"), "fourier"):
        estimator = psx.ProxySPEX(lasso_bases=bases, **options)
        inter = estimator.explain(_noisy_unanimity_game(3), n_features=40, budget=400)
        r2 = psx.metrics.r2_score(_unanimity_game(test), inter.predict(test))
        found = {s: v for s, v in inter.mobius.items() if abs(v) > 0.05 and s}
        results[estimator.lasso_bases] = (inter.metadata["refit"], r2, found)
    refit, r2, found = results[("fourier", "mobius")]
    assert refit == "lasso-mobius" and r2 > 0.995
    assert found == pytest.approx(PLANTED_UNANIMITY, abs=0.15)
    refit, fourier_r2, fourier_found = results[("fourier",)]
    assert refit == "lasso" and fourier_r2 < r2 and len(fourier_found) > len(found)
    for bad in ((), "walsh", ("fourier", "and")):
        with pytest.raises(ValueError, match="lasso_bases"):
            psx.ProxySPEX(lasso_bases=bad)
    with pytest.raises(TypeError, match="lasso_bases"):
        psx.ProxySPEX(lasso_bases=3)
    # The caller's order does not matter (ties go to the first candidate added).
    assert psx.ProxySPEX(lasso_bases=["mobius", "fourier"]).lasso_bases == ("fourier", "mobius")


def test_mobius_lasso_resamples_give_intervals():
    # The bootstrap refits the same candidate (unshrunk) on each resample.
    estimator = psx.ProxySPEX(max_order=4, random_state=1, refit="lasso", lasso_bases="mobius")
    inter = estimator.explain(_noisy_unanimity_game(4), n_features=30, budget=800)
    assert inter.metadata["refit"] == "lasso-mobius" and inter.has_uncertainty
    bounds = inter.intervals(0.99, index="mobius")
    for s, value in PLANTED_UNANIMITY.items():
        low, high = bounds[s]
        assert low - 0.05 <= value <= high + 0.05 and high - low < 0.5


@pytest.mark.parametrize("estimator", ["ProxySPEX", "SPEX", "AutoSPEX"])
def test_an_output_gets_what_it_gets_alone(estimator):
    """Each output is fitted from the same draws: batch order and neighbours change nothing."""
    games = [
        hierarchical_game(24, n_terms=20, max_order=3, random_state=seed) for seed in (1, 2, 3)
    ]

    def outputs(order):
        return lambda masks: np.stack([games[i](masks) for i in order], axis=1)

    def explain(function):
        est = getattr(psx, estimator)(max_order=3, random_state=0, uncertainty=False)
        return est.explain(function, n_features=24, budget=600)

    alone = explain(games[2])
    batch = explain(outputs([0, 1, 2]))
    reversed_batch = explain(outputs([2, 1, 0]))
    for result in (batch[2], reversed_batch[0]):
        np.testing.assert_array_equal(
            result.predict(np.eye(24, dtype=bool)), alone.predict(np.eye(24, dtype=bool))
        )
        assert result.fourier == alone.fourier


@pytest.mark.parametrize("noise", [0.0, 1e-4])
def test_a_nearly_exact_ridge_is_not_averaged_with_a_shrunk_lasso(noise):
    # Sparse, noiseless or nearly: the ridge is (nearly) exact on every held-out row,
    # and the mean with the lasso would only add its shrinkage (2.0 read as 1.99).
    rng = np.random.default_rng(1)

    def model(masks):
        clean = 2.0 * (masks[:, 0] & masks[:, 1]) + masks[:, 2]
        return clean + noise * rng.normal(size=len(masks))

    inter = psx.ProxySPEX(max_order=2, random_state=0, uncertainty=False).explain(
        model, n_features=30, budget=500
    )
    assert inter.metadata["refit"] in RIDGES
    assert inter.mobius[(0, 1)] == pytest.approx(2.0, abs=1e-3)
    assert inter.mobius[(2,)] == pytest.approx(1.0, abs=1e-3)


def test_a_clearly_better_ridge_is_averaged_with_the_best_lasso():
    # Ground truth: with one tree depth, the folds and proxies are the same whatever
    # the refit option, so the blend must be the mean of the ridge and the lasso that
    # refit="ridge" and refit="lasso" choose on their own.
    game = hierarchical_game(60, n_terms=60, max_order=4, random_state=1)
    options = {"max_order": 4, "max_depth": 3, "random_state": 0, "uncertainty": False}
    fits = {
        refit: psx.ProxySPEX(refit=refit, **options).explain(game, n_features=60, budget=150)
        for refit in ("auto", "ridge", "lasso")
    }
    ridge, lasso = fits["ridge"].metadata["refit"], fits["lasso"].metadata["refit"]
    assert fits["auto"].metadata["refit"] == f"{ridge}+{lasso}"
    masks = np.random.default_rng(0).random((300, 60)) < 0.5
    mean = (fits["ridge"].predict(masks) + fits["lasso"].predict(masks)) / 2
    np.testing.assert_allclose(fits["auto"].predict(masks), mean, atol=1e-9)
    # Its cross-validated R² is the mean prediction's, scored on the same folds.
    assert 0.0 < fits["auto"].metadata["cv_r2"] < 1.0
    # The bootstrap refits both parts on each resample.
    sure = psx.ProxySPEX(**{**options, "uncertainty": True, "n_resamples": 8}).explain(
        game, n_features=60, budget=150
    )
    assert sure.metadata["refit"] == f"{ridge}+{lasso}" and sure.has_uncertainty
    np.testing.assert_allclose(sure.predict(masks), fits["auto"].predict(masks), atol=1e-9)
