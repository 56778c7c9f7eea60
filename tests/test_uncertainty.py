"""Bootstrap intervals: free of model calls, reproducible, readable in every basis and face."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.core.uncertainty import bootstrap, deviations, intervals
from proxyspex_captum.games import PlantedGame, hierarchical_game

# A planted game with two strong terms, one weak one, and noise of 0.3.
MOBIUS = {(): 1.0, (2,): 1.5, (0, 1): 2.0, (3, 4): -1.0, (5,): 0.05}


class Counted:
    """A noisy planted game that counts its calls (noise drawn from its own seed)."""

    def __init__(self, seed: int = 0, n_features: int = 24) -> None:
        self.game = PlantedGame(MOBIUS, n_features=n_features, noise_std=0.3, random_state=seed)
        self.calls = 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        self.calls += len(masks)
        return self.game(masks)


@pytest.fixture(scope="module")
def result() -> psx.Interactions:
    return psx.ProxySPEX(max_order=2, random_state=0).explain(Counted(), n_features=24, budget=500)


def test_uncertainty_costs_no_model_call_and_leaves_the_estimate_unchanged():
    on, off = Counted(), Counted()
    with_intervals = psx.ProxySPEX(max_order=2, random_state=3).explain(
        on, n_features=24, budget=400
    )
    without = psx.ProxySPEX(max_order=2, random_state=3, uncertainty=False).explain(
        off, n_features=24, budget=400
    )
    assert on.calls == off.calls == 400
    assert with_intervals.fourier == without.fourier  # bit for bit
    assert with_intervals.n_resamples == 30 and without.n_resamples == 0
    assert not without.has_uncertainty
    with pytest.raises(ValueError, match="uncertainty=True"):
        without.intervals()


def test_several_outputs_share_the_resamples_and_keep_their_estimates():
    def two(masks):
        return np.stack([Counted().game.exact(masks), -2.0 * Counted().game.exact(masks)], 1)

    both = psx.ProxySPEX(max_order=2, random_state=1).explain(two, n_features=24, budget=300)
    plain = psx.ProxySPEX(max_order=2, random_state=1, uncertainty=False).explain(
        two, n_features=24, budget=300
    )
    assert [r.fourier for r in both] == [r.fourier for r in plain]
    assert all(r.n_resamples == 30 for r in both)
    # The same resamples: output 1 is -2 × output 0, and so is each of its refits.
    for first, second in zip(both[0].resamples(), both[1].resamples(), strict=True):
        a, b = first.fourier, second.fourier
        assert set(a) == set(b)
        assert [b[s] for s in a] == pytest.approx([-2.0 * v for v in a.values()], abs=1e-9)


def test_seeded_resamples_are_reproducible_and_independent_of_threads():
    runs = [
        psx.ProxySPEX(max_order=2, random_state=5, n_jobs=jobs).explain(
            Counted(), n_features=24, budget=300
        )
        for jobs in (1, 2, 1)
    ]
    first = runs[0].intervals()
    for other in runs[1:]:
        assert other.intervals() == first


def test_intervals_cover_the_strong_planted_terms_and_not_zero(result):
    covered = []
    for seed in range(4):
        inter = psx.ProxySPEX(max_order=2, random_state=seed).explain(
            Counted(seed), n_features=24, budget=500
        )
        bounds = inter.intervals(0.95)
        for subset in [(0, 1), (2,), (3, 4)]:
            low, high = bounds[subset]
            covered.append(low <= MOBIUS[subset] <= high)
            assert not low <= 0.0 <= high
            assert inter.selection_frequency()[subset] == 1.0
    assert sum(covered) >= 10  # of 12, at a nominal 95 %; bench_uncertainty.py measures it
    # narrower at a lower level, and every interval holds its estimate
    bounds = result.intervals(0.95)
    narrow = result.intervals(0.5)
    for subset, value in result.mobius.items():
        if subset:
            low, high = bounds[subset]
            assert low <= value <= high
            assert narrow[subset][1] - narrow[subset][0] <= high - low + 1e-12


def test_unplanted_terms_are_mostly_not_established(result):
    bounds = result.intervals()
    spurious = [s for s in bounds if s not in MOBIUS]
    if spurious:
        flagged = [bounds[s][0] <= 0.0 <= bounds[s][1] for s in spurious]
        assert np.mean(flagged) >= 0.8


def test_readings_in_other_indices(result):
    shapley = result.intervals(index="shapley")
    assert set(shapley) == set(result.to_index("shapley"))
    for (i,), (low, high) in shapley.items():
        assert low <= result.first_order()[i] <= high
    errors = result.standard_errors(index="fsii", order=2)
    assert set(errors) == set(result.to_index("fsii", 2))
    assert all(e >= 0 for e in errors.values())
    frequency = result.selection_frequency(order=1)
    assert all(len(s) == 1 and 0.0 <= f <= 1.0 for s, f in frequency.items())
    low, high, error = result.first_order_bounds("banzhaf")
    assert low.shape == high.shape == error.shape == (24,)
    assert np.all(low <= result.first_order("banzhaf") + 1e-12)
    # a feature whose estimate is 0 still shows how much its resamples move
    banzhaf = result.first_order("banzhaf")
    moved = np.zeros(24, bool)
    for resample in result.resamples():
        moved |= resample.first_order("banzhaf") != 0
    unsure = np.flatnonzero((banzhaf == 0) & moved)
    assert np.all(error[unsure] > 0) and np.all(low[unsure] < 0) and np.all(high[unsure] > 0)
    # indices with an empty-set term (k-SII, STII, FSII, FBII) read their singletons
    low, high, _ = result.first_order_bounds("k-sii")
    assert np.all(low <= result.first_order("k-sii") + 1e-12)


def test_an_estimator_returning_plain_triples_still_works():
    class Constant(psx.core.InteractionEstimator):
        def _min_sampled_budget(self, n_features):
            return 1

        def _explain(self, value_function, n_features, budget, rng):
            y = value_function(np.ones((1, n_features), bool))
            return [(np.zeros((1, 0), np.int64), np.array([float(y[0])]), {})]

    inter = Constant(max_order=1).explain(lambda m: m.sum(1) * 1.0, n_features=30, budget=5)
    assert inter.baseline_value == 30.0 and inter.n_resamples == 0


def test_exact_results_have_intervals_of_width_zero():
    game = PlantedGame(MOBIUS, n_features=6)
    exact = psx.ProxySPEX(max_order=2).explain(game, n_features=6, budget=64)
    assert exact.metadata["exact"] and exact.n_resamples == 0 and exact.has_uncertainty
    assert all(low == high for low, high in exact.intervals().values())


def test_spex_intervals_keep_the_decoded_support():
    game = hierarchical_game(32, n_terms=12, max_order=2, noise=0.05, random_state=2)
    assert not psx.SPEX().uncertainty  # off by default: intervals given the decoded support
    on = psx.SPEX(max_order=2, random_state=0, uncertainty=True).explain(
        game, n_features=32, budget=1500
    )
    game2 = hierarchical_game(32, n_terms=12, max_order=2, noise=0.05, random_state=2)
    off = psx.SPEX(max_order=2, random_state=0, uncertainty=False).explain(
        game2, n_features=32, budget=1500
    )
    assert on.fourier == off.fourier
    assert on.n_resamples == 30
    for resample in on.resamples():
        assert set(resample.fourier) <= set(on.fourier) | set(
            (i,) for i in range(32)
        )  # the support, plus main effects a lasso candidate may take
    no_refit = psx.SPEX(max_order=2, random_state=0, refit=None, uncertainty=True).explain(
        game, n_features=32, budget=1500
    )
    assert no_refit.n_resamples == 0


def test_json_round_trip_and_embed_keep_the_resamples(result, tmp_path):
    loaded = psx.Interactions.from_json(result.to_json())
    assert loaded.n_resamples == result.n_resamples
    bounds = result.intervals()
    assert set(loaded.intervals()) == set(bounds)
    for subset, (low, high) in loaded.intervals().items():
        assert (low, high) == pytest.approx(bounds[subset], rel=1e-9, abs=1e-12)
    placed = result.embed(list(range(0, 48, 2)), n_features=48)
    assert placed.intervals()[(0, 2)] == pytest.approx(result.intervals()[(0, 1)], rel=1e-9)
    bad = result.to_dict()
    bad["resamples"][0][0][0] = [99]
    with pytest.raises(ValueError, match=r"'resamples'\[0\]\[0\]"):
        psx.Interactions.from_dict(bad)


def test_bad_options_are_refused_before_any_call():
    with pytest.raises(TypeError, match="uncertainty"):
        psx.ProxySPEX(uncertainty="yes")
    with pytest.raises(ValueError, match="n_resamples"):
        psx.ProxySPEX(n_resamples=1)
    with pytest.raises(TypeError, match="n_resamples"):
        psx.SPEX(n_resamples=2.5)
    with pytest.raises(TypeError, match="from_mobius takes no resamples"):
        psx.Interactions.from_mobius({(0,): 1.0}, n_features=2, resamples=[{(0,): 1.0}])
    with pytest.raises(ValueError, match="resample"):
        psx.Interactions._from_rows(
            np.array([[0]]), [1.0], n_features=2, resamples=[(np.array([0]), [1.0])]
        )
    inter = psx.Interactions.from_mobius({(0,): 1.0}, n_features=2, metadata={"exact": True})
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level"):
            inter.intervals(level)


def test_the_bootstrap_helpers():
    y = np.array([1.0, 2.0, 3.0, 4.0])

    def mean(indices):
        return np.zeros((1, 0), np.int64), np.array([y[indices].mean()])

    serial = bootstrap(mean, 4, 50, seed=7)
    threaded = bootstrap(mean, 4, 50, seed=7, n_workers=3)
    assert [c[0] for _, c in serial] == [c[0] for _, c in threaded]
    low, high = intervals(np.array([0.0]), np.array([[3.0], [-3.0]]), 0.6827)
    assert low[0] == pytest.approx(-3.0, abs=1e-3) and high[0] == pytest.approx(3.0, abs=1e-3)
    assert deviations(np.array([1.0]), np.array([[1.0], [1.0]]))[0] == 0.0


# ------------------------------------------------------------------ ecosystems
def test_shap_explanation_carries_bounds():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(0)
    background = rng.normal(size=(30, 10))

    def model(x):
        return x[:, 0] * x[:, 1] + x[:, 2] + 0.05 * np.sin(x.sum(1))

    explainer = psx.ProxySPEXExplainer(
        model, shap.maskers.Independent(background), random_state=0, max_order=2
    )
    expl = explainer(rng.normal(size=(2, 10)), max_evals=300)
    assert expl.lower_bounds.shape == expl.upper_bounds.shape == expl.values.shape
    for row, inter in enumerate(expl.interactions):  # each row's own bounds, feature by feature
        low, high, error = inter.first_order_bounds("shapley")
        assert np.array_equal(expl.lower_bounds[row], low)
        assert np.array_equal(expl.upper_bounds[row], high)
        assert np.array_equal(expl.error_std[row], error)
    assert np.all(expl.lower_bounds <= expl.values + 1e-12)
    assert np.all(expl.values <= expl.upper_bounds + 1e-12)
    assert np.all(expl.error_std >= 0)
    assert expl[0].lower_bounds.shape == (10,)  # slicing follows
    shap.plots.waterfall(expl[0], show=False)  # draws the bounds as error bars
    plt.close("all")
    plain = psx.ProxySPEXExplainer(
        model, shap.maskers.Independent(background), random_state=0, uncertainty=False
    )(rng.normal(size=(1, 10)), max_evals=300)
    assert plain.lower_bounds is None


def test_shap_bounds_follow_outputs_and_any_index():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(1)
    background = rng.normal(size=(30, 8))

    def model(x):
        return np.stack([x[:, 0] * x[:, 1] + x[:, 2], x[:, 3] - x[:, 4] * x[:, 5]], axis=1)

    masker = shap.maskers.Independent(background)
    expl = psx.ProxySPEXExplainer(model, masker, random_state=0, max_order=2, index="k-sii")(
        rng.normal(size=(2, 8)), max_evals=250
    )
    assert expl.values.shape == expl.lower_bounds.shape == (2, 8, 2)
    for (row, output), inter in np.ndenumerate(expl.interactions):
        low, high, _ = inter.first_order_bounds("k-sii")
        assert np.array_equal(expl.lower_bounds[row, :, output], low)
        assert np.array_equal(expl.upper_bounds[row, :, output], high)
    assert np.array_equal(expl[1, :, 0].upper_bounds, expl.upper_bounds[1, :, 0])


def test_captum_attribute_returns_intervals():
    torch = pytest.importorskip("torch")

    def model(x):
        return x[:, 0] * x[:, 1] + 2 * x[:, 2]

    attr = psx.ProxySPEXAttribution(model, random_state=0)
    x = torch.ones(2, 12)
    values, low, high = attr.attribute(x, n_samples=300, return_intervals=True)
    assert values.shape == low.shape == high.shape == x.shape
    assert bool(((low <= values + 1e-6) & (values <= high + 1e-6)).all())
    plain = attr.attribute(x, n_samples=300)
    assert torch.equal(plain, values)
    (inter, *_) = attr.attribute_interactions(x, n_samples=300)
    expected_low, expected_high, _ = inter.first_order_bounds("shapley")
    assert np.allclose(low[0].numpy(), expected_low, atol=1e-6)
    assert np.allclose(high[0].numpy(), expected_high, atol=1e-6)
    with pytest.raises(ValueError, match="refit=None"):
        psx.SPEXAttribution(model, refit=None, uncertainty=True).attribute(
            x, n_samples=300, return_intervals=True
        )
    with pytest.raises(ValueError, match="uncertainty=True"):
        psx.ProxySPEXAttribution(model, uncertainty=False).attribute(
            x, n_samples=300, return_intervals=True
        )
    with pytest.raises(ValueError, match="level"):
        attr.attribute(x, n_samples=300, return_intervals=True, level=2.0)


def test_plots_show_the_intervals(result):
    def interval_artists(ax):
        return [a for a in ax.get_children() if a.get_gid() == "interval"]

    fig, ax = psx.plots.bar(result, k=8)
    assert interval_artists(ax)
    hatched = [p.get_hatch() for p in ax.patches if p.get_hatch()]
    bounds = result.intervals()
    unsure = sum(low <= 0 <= high for s, (low, high) in bounds.items() if s in dict(result.top(8)))
    assert len(hatched) == unsure
    plt.close(fig)
    fig, ax = psx.plots.bar(result, k=8, intervals=False)
    assert not interval_artists(ax)
    plt.close(fig)
    fig, ax = psx.plots.network(result, k=20)
    styles = {line.get_linestyle() for line in ax.get_lines() if line.get_gid() == "pair"}
    assert "-" in styles  # the established pairs
    plt.close(fig)


def test_an_outputs_intervals_do_not_depend_on_a_constant_neighbour():
    """A constant output took no draws, which moved the other outputs' bootstrap seed."""
    game = hierarchical_game(12, n_terms=10, max_order=2, noise=0.3, random_state=5)

    def explain(function):
        return psx.ProxySPEX(random_state=0, n_resamples=4).explain(function, 12, 200)

    alone = explain(game)
    with_constant = explain(lambda m: np.stack([np.full(len(m), 2.0), game(m)], axis=1))[1]
    assert with_constant.fourier == alone.fourier
    assert with_constant.intervals(0.9) == alone.intervals(0.9)
