"""Metrics against ground truth: planted games, brute force, SHAP's own benchmark."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shap
import shap.benchmark
from brute_force import all_masks

import proxyspex_captum as psx
from proxyspex_captum import metrics


def pair_model(masks):
    """0 and 1 only matter together; 2 alone."""
    m = masks.astype(float)
    return 1.0 + 4.0 * m[:, 0] * m[:, 1] + 1.5 * m[:, 2]


def test_removal_curve_removes_pairs_together():
    inter = psx.ProxySPEX(max_order=2).explain(pair_model, n_features=5, budget=32)
    surrogate = metrics.removal_curve(pair_model, 5, interactions=inter, max_removed=3)
    # Removing 0 (or 1) kills the pair; next the surrogate removes 2, not the pair's partner.
    np.testing.assert_allclose(surrogate, [4 / 6.5, 5.5 / 6.5, 5.5 / 6.5])
    ranking = metrics.removal_curve(pair_model, 5, attributions=inter.first_order(), max_removed=3)
    # Shapley ranks 0 and 1 first (2 each): the second removal is wasted.
    np.testing.assert_allclose(ranking, [4 / 6.5, 4 / 6.5, 5.5 / 6.5])


def test_removal_curve_checks_its_input():
    with pytest.raises(ValueError, match="one of"):
        metrics.removal_curve(pair_model, 5)
    with pytest.raises(ValueError, match="5 values"):
        metrics.removal_curve(pair_model, 5, attributions=[1, 2])
    with pytest.raises(ValueError, match="f\\(all\\) is 0"):
        metrics.removal_curve(lambda m: m[:, 0] * 0.0, 3, attributions=[1, 0, 0])


def test_recovery_at_k_on_a_planted_game():
    game = psx.games.hierarchical_game(128, n_terms=40, random_state=0)
    inter = psx.ProxySPEX(random_state=0).explain(game, n_features=128, budget=2000)
    assert metrics.recovery_at_k(inter, game.interactions, k=10) >= 0.8
    assert metrics.recovery_at_k(game.interactions, game.interactions, k=10) == 1.0
    empty = psx.Interactions({(): 1.0}, n_features=128)
    assert metrics.recovery_at_k(empty, game.interactions, k=10) == 0.0


def test_fourier_r2_is_the_r2_over_all_masks():
    game = psx.games.hierarchical_game(10, n_terms=12, random_state=3)
    inter = psx.ProxySPEX(random_state=0).explain(game, n_features=10, budget=200)
    masks = all_masks(10)
    assert metrics.fourier_r2(inter, game.interactions) == pytest.approx(
        psx.faithfulness(inter, game, masks=masks), abs=1e-10
    )
    with pytest.raises(ValueError, match="10 features and truth 12"):
        metrics.fourier_r2(inter, psx.Interactions({(0,): 1.0}, n_features=12))


def test_compare_ranks_methods_as_the_ground_truth_does():
    game = psx.games.hierarchical_game(32, n_terms=30, random_state=0)
    table = metrics.compare(game, 32, budget=1000, truth=game.interactions, random_state=0)
    assert list(table["method"]) == [m for m in metrics.METHODS if m != "auto"]
    assert (table["model_calls"] <= 1000).all()
    best = table.sort_values("r2", ascending=False)["method"].iloc[0]
    assert best == table.sort_values("exact_r2", ascending=False)["method"].iloc[0]
    assert table.set_index("method").loc["proxyspex", "exact_r2"] > 0.99
    # Every pair of methods that the truth tells apart is ordered the same way by compare.
    rows = table.set_index("method")
    for a, b in itertools.combinations(rows.index, 2):
        gap = rows.loc[a, "exact_r2"] - rows.loc[b, "exact_r2"]
        if abs(gap) > 0.02:
            assert np.sign(rows.loc[a, "r2"] - rows.loc[b, "r2"]) == np.sign(gap)


def test_compare_reports_methods_that_cannot_run():
    game = psx.games.hierarchical_game(64, n_terms=10, random_state=0)
    table = metrics.compare(game, 64, budget=50, methods=("spex", "shapley_sampling"))
    assert table["r2"].isna().all()
    assert "at least" in table["note"][0] and "65" in table["note"][1]
    with pytest.raises(ValueError, match="Unknown method"):
        metrics.compare(game, 64, budget=50, methods=("gradcam",))


def test_compare_leaves_global_generators_alone():
    import torch

    state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()  # noqa: NPY002
    metrics.compare(pair_model, 5, budget=40, methods=("lime", "kernelshap", "banzhaf"))
    assert (np.random.get_state()[1] == state).all()  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_interaction_aware_explanation_error_in_shaps_format():
    def model(x):
        return x[:, 0] * x[:, 1] * 3 + x[:, 2]

    background, x = np.zeros((1, 4)), np.ones((3, 4))
    masker = shap.maskers.Independent(background)
    expl = psx.ProxySPEXExplainer(model, masker)(x)  # all 16 masks: exact
    bench = metrics.InteractionExplanationError(masker, model, x)
    with_interactions = bench(expl, "ProxySPEX")
    additive = bench(shap.Explanation(expl.values, expl.base_values), "Shapley only")
    assert isinstance(with_interactions, shap.benchmark.BenchmarkResult)
    assert with_interactions.metric == "explanation error"
    assert with_interactions.value == pytest.approx(0.0, abs=1e-9)
    assert additive.value > 0.5  # the pair cannot be split into additive parts
    # Additive explanations are scored as SHAP's own benchmark scores them (other orderings).
    theirs = shap.benchmark.ExplanationError(masker, model, x)(expl, "ProxySPEX")
    assert additive.value == pytest.approx(theirs.value, rel=0.3)


def test_compare_survives_a_failing_method_and_checks_its_input():
    def one_feature(masks):
        return 2.0 * masks[:, 0]

    table = metrics.compare(one_feature, 1, budget=20, methods=("proxyspex", "kernelshap"))
    assert table["r2"][0] == pytest.approx(1.0)
    assert np.isnan(table["r2"][1]) and table["note"][1].startswith("failed")
    with pytest.raises(ValueError, match="n_test"):
        metrics.compare(one_feature, 1, budget=20, n_test=0)
    constant = psx.Interactions({(): 1.0}, n_features=1)
    table = metrics.compare(one_feature, 1, budget=20, methods=("banzhaf",), truth=constant)
    assert np.isnan(table["recovery_at_k"][0])


def test_shapley_sampling_stays_within_the_budget():
    table = metrics.compare(pair_model, 4, budget=41, methods=("shapley_sampling",))
    assert table["model_calls"][0] <= 41


def test_removal_curve_checks_the_surrogates_size():
    inter = psx.Interactions.from_mobius({(0,): 1.0}, n_features=2)
    with pytest.raises(ValueError, match="2 features, not 5"):
        metrics.removal_curve(pair_model, 5, interactions=inter)


def test_r2_score_is_public_and_checks_its_input():
    assert metrics.r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert metrics.r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(0.0)
    assert metrics.r2_score([5.0, 5.0], [5.0, 5.0]) == 1.0  # no spread: exact or not
    assert metrics.r2_score([5.0, 5.0], [5.0, 6.0]) == 0.0
    # 0.1 three times has a mean of 0.10000000000000002: a constant all the same.
    assert metrics.r2_score([0.1] * 3, [0.1 + 1e-13] * 3) == 1.0
    assert metrics.r2_score([0.1] * 3, [1.1] * 3) == 0.0
    with pytest.raises(ValueError, match="one prediction per value"):
        metrics.r2_score([1.0, 2.0], [1.0])
    # R² does not depend on the scale, down to values whose squares underflow.
    for scale in (1e-300, 1e-160, 1.0, 1e300):
        truth, predicted = np.array([1.0, 2.0, 3.0]) * scale, np.array([1.0, 2.0, 4.0]) * scale
        assert metrics.r2_score(truth, predicted) == pytest.approx(0.5, abs=1e-12)


def test_one_list_of_methods_for_compare_and_the_baselines():
    from proxyspex_captum import baselines

    assert metrics.METHODS is baselines.METHODS
    assert set(baselines.LINEAR_METHODS) < set(baselines.METHODS)
    with pytest.raises(ValueError, match="choose from proxyspex, spex"):
        baselines.run_method("gradcam", pair_model, 5, 40)
    assert baselines.min_budget("banzhaf", 5) == 6
    assert baselines.min_budget("proxyspex", 5) == psx.ProxySPEX().min_budget(5)
    surrogate, note = baselines.run_method("banzhaf", pair_model, 3, 64)
    assert note == "" and surrogate.mobius[(2,)] == pytest.approx(1.5)
    # Every method runs by name, at one budget, on one value function.
    for method in baselines.METHODS:
        surrogate, note = baselines.run_method(method, pair_model, 5, 40, random_state=1)
        assert surrogate is not None or "at least" in note, method


def test_compare_wants_an_integer_seed():
    with pytest.raises(TypeError, match="random_state must be an integer"):
        metrics.compare(pair_model, 5, budget=40, methods=("banzhaf",), random_state=1.5)


def test_explanation_error_with_a_linearised_link():
    """SHAP's own metric fails here (the link's weights come from a call it never makes)."""

    rng = np.random.default_rng(0)
    x, weights = rng.normal(size=(4, 3)), rng.normal(size=3)

    def model(v):
        return 1 / (1 + np.exp(-(v @ weights + v[:, 0] * v[:, 1])))

    masker = shap.maskers.Independent(x[:2])
    link = shap.links.logit
    expl = psx.ProxySPEXExplainer(model, masker, link=link)(x[2:])  # all 8 masks: exact
    bench = metrics.InteractionExplanationError(masker, model, x[2:], link=link)
    assert bench(expl, "ProxySPEX").value == pytest.approx(0.0, abs=1e-9)


def test_compare_refuses_its_arguments_before_any_model_call():
    calls = []

    def model(masks):
        calls.append(len(masks))
        return masks.sum(axis=1).astype(float)

    truth = psx.Interactions.from_mobius({(0,): 1.0}, n_features=7)
    with pytest.raises(ValueError, match="truth has 7 features"):
        metrics.compare(model, 6, budget=50, truth=truth)
    for bad, error in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(error, match="k must"):
            metrics.compare(model, 6, budget=50, k=bad)
    assert calls == []


def test_linear_baselines_below_their_minimum_do_not_run():
    def model(masks):
        return masks.sum(axis=1).astype(float)

    table = metrics.compare(model, 8, budget=4, methods=("banzhaf", "lime", "kernelshap"))
    assert table["r2"].isna().all()  # an underdetermined fit came back as a result
    assert all("needs at least 9 calls" in note for note in table["note"])
