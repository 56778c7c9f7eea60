"""AutoSPEX: its plan, its stages, and the equalities it promises with ProxySPEX and SPEX."""

from __future__ import annotations

import numpy as np
import pytest

import proxyspex_captum as psx


class Counting:
    """A value function that counts the masks it is asked for (repeats included)."""

    def __init__(self, game):
        self.game = game
        self.masks: list[np.ndarray] = []

    def __call__(self, masks):
        self.masks.append(np.array(masks))
        return self.game(masks)

    def distinct(self) -> int:
        return len(np.unique(np.vstack(self.masks), axis=0))

    def total(self) -> int:
        return sum(len(m) for m in self.masks)


@pytest.fixture(scope="module")
def parity():
    # Fourier terms of order 2-3 with no main effects behind them: no tree split
    # sees them, SPEX's peeling does.
    return psx.games.fourier_game(64, n_terms=20, max_order=3, random_state=0)


@pytest.fixture(scope="module")
def hierarchical():
    return psx.games.hierarchical_game(64, n_terms=40, max_order=3, random_state=1)


def _same(a: psx.Interactions, b: psx.Interactions, n: int) -> None:
    masks = np.random.default_rng(5).random((300, n)) < 0.5
    np.testing.assert_array_equal(a.predict(masks), b.predict(masks))


def test_the_plan_follows_the_bins_spexs_design_affords():
    auto = psx.AutoSPEX(max_order=3)
    route, reason = auto.plan(64, 500)
    assert route == "uniform" and "8 bins" in reason
    assert auto.plan(64, 300) == ("uniform", "SPEX's smallest design needs 360 calls")
    assert auto.plan(64, 1000)[0] == "coded"
    # A lower bar buys the 8-bin design too.
    assert psx.AutoSPEX(max_order=3, min_bins=8).plan(64, 500)[0] == "coded"
    # SPEX's sampled minimum, not the 2**n cap of its min_budget; then all masks.
    assert auto.plan(8, 200) == ("uniform", "SPEX's smallest design needs 264 calls")
    assert auto.plan(8, 256) == ("exact", "the budget covers all 2**8 masks")


def test_a_budget_of_every_mask_is_exact_and_says_so():
    game = psx.games.PlantedGame({(1, 2): 1.0, (4,): -0.5}, n_features=6)
    inter = psx.AutoSPEX(max_order=3, random_state=0).explain(game, 6, 64)
    meta = inter.metadata
    assert meta["exact"] and meta["route"] == "exact" and meta["chosen"] is None
    assert meta["stages"] == [{"stage": "exact", "masks": 64}]
    assert meta["cv_r2_spex"] is None and meta["cv_r2_proxyspex"] is None
    assert psx.metrics.fourier_r2(inter, game.interactions) == pytest.approx(1.0)


def test_a_uniform_route_is_proxyspex_itself(hierarchical):
    budget = 400
    assert psx.AutoSPEX(max_order=3).plan(64, budget)[0] == "uniform"
    auto = psx.AutoSPEX(max_order=3, random_state=3).explain(hierarchical, 64, budget)
    plain = psx.ProxySPEX(max_order=3, random_state=3).explain(hierarchical, 64, budget)
    _same(auto, plain, 64)
    assert auto.metadata["chosen"] == "proxyspex" and auto.metadata["route"] == "uniform"
    assert auto.metadata["cv_r2"] == plain.metadata["cv_r2"]
    assert auto.metadata["cv_r2_spex"] is None  # not fitted
    assert auto.metadata["stages"] == [{"stage": "uniform", "masks": budget}]
    # The bootstrap resamples too: the same draws from the same generator.
    assert auto.intervals() == plain.intervals()


def test_on_the_coded_route_the_spex_candidate_is_spex_itself(parity):
    budget = 1500
    auto = psx.AutoSPEX(max_order=3, random_state=4, uncertainty=False).explain(parity, 64, budget)
    plain = psx.SPEX(max_order=3, random_state=4).explain(parity, 64, budget)
    assert auto.metadata["route"] == "coded"
    assert auto.metadata["cv_r2_spex"] == plain.metadata["cv_r2"]
    assert auto.metadata["chosen"] == "spex"
    _same(auto, plain, 64)
    for key in ("code_degree", "b", "coded_masks", "uniform_masks", "n_peeled"):
        assert auto.metadata[key] == plain.metadata[key]


def test_a_chosen_spex_carries_spexs_own_intervals_after_proxyspex_was_fitted():
    def noisy():  # the noise restarts with the game: both runs see the same values
        return psx.games.fourier_game(64, n_terms=20, max_order=3, noise=0.05, random_state=0)

    auto = psx.AutoSPEX(max_order=3, random_state=4).explain(noisy(), 64, 1500)
    plain = psx.SPEX(max_order=3, random_state=4, uncertainty=True).explain(noisy(), 64, 1500)
    assert auto.metadata["cv_r2_proxyspex"] is not None  # noise: ProxySPEX was fitted
    assert auto.metadata["chosen"] == "spex"
    _same(auto, plain, 64)
    assert auto.intervals() == plain.intervals()


def test_parity_interactions_are_found_where_proxyspex_alone_misses_them(parity):
    budget = 1500
    auto = psx.AutoSPEX(max_order=3, random_state=0).explain(parity, 64, budget)
    proxy = psx.ProxySPEX(max_order=3, random_state=0).explain(parity, 64, budget)
    exact = psx.metrics.fourier_r2(auto, parity.interactions)
    assert exact > 0.99
    assert psx.metrics.fourier_r2(proxy, parity.interactions) < 0.9
    assert auto.metadata["chosen"] == "spex"
    # SPEX cross-validates as exact: ProxySPEX's fit was not worth making.
    assert auto.metadata["cv_r2_spex"] >= 0.999 and auto.metadata["cv_r2_proxyspex"] is None


def test_the_candidate_with_the_higher_cv_r2_is_kept():
    game = psx.games.hierarchical_game(64, n_terms=40, max_order=3, noise=0.05, random_state=2)
    inter = psx.AutoSPEX(max_order=3, random_state=0).explain(game, 64, 1500)
    meta = inter.metadata
    assert meta["cv_r2_proxyspex"] is not None  # noise: SPEX is not near-exact
    better = "spex" if meta["cv_r2_spex"] > meta["cv_r2_proxyspex"] else "proxyspex"
    assert meta["chosen"] == better
    assert meta["cv_r2"] == max(meta["cv_r2_spex"], meta["cv_r2_proxyspex"])
    # A noisy hierarchical game is still fitted well, whichever won.
    assert psx.metrics.fourier_r2(inter, game.interactions) > 0.9


@pytest.mark.parametrize("budget", [400, 1500])
def test_the_budget_is_spent_exactly_on_distinct_masks(parity, budget):
    counting = Counting(parity)
    inter = psx.AutoSPEX(max_order=3, random_state=1).explain(counting, 64, budget)
    assert counting.distinct() == counting.total() == budget == inter.n_queries
    assert sum(stage["masks"] for stage in inter.metadata["stages"]) == budget


def test_a_seed_gives_the_same_result(parity):
    first = psx.AutoSPEX(max_order=3, random_state=7).explain(parity, 64, 1500)
    second = psx.AutoSPEX(max_order=3, random_state=7).explain(parity, 64, 1500)
    _same(first, second, 64)
    assert first.metadata["chosen"] == second.metadata["chosen"]
    assert first.intervals() == second.intervals()


def test_a_generator_that_cannot_spawn_works_on_the_coded_route():
    # A bit generator built from a key has no seed sequence to spawn from: the
    # ProxySPEX candidate's generator used to fail there, after every call was paid.
    def run() -> psx.Interactions:
        game = psx.games.fourier_game(64, n_terms=20, max_order=3, noise=0.05, random_state=0)
        keyed = np.random.Generator(np.random.Philox(key=7))
        return psx.AutoSPEX(max_order=3, random_state=keyed, uncertainty=False).explain(
            game, 64, 1500
        )

    first, second = run(), run()
    assert first.metadata["route"] == "coded"
    assert first.metadata["cv_r2_proxyspex"] is not None  # the candidate was fitted
    assert first.n_queries == 1500
    _same(first, second, 64)


def test_each_output_chooses_for_itself(parity, hierarchical):
    def both(masks):
        return np.column_stack([parity(masks), hierarchical(masks)])

    counting = Counting(both)
    out = psx.AutoSPEX(max_order=3, random_state=0).explain(counting, 64, 1500)
    assert counting.distinct() == counting.total() == 1500  # one set of calls for both
    assert [o.metadata["route"] for o in out] == ["coded", "coded"]
    assert out[0].metadata["chosen"] == "spex"
    assert psx.metrics.fourier_r2(out[0], parity.interactions) > 0.99
    assert psx.metrics.fourier_r2(out[1], hierarchical.interactions) > 0.99


def test_each_methods_options_reach_it():
    auto = psx.AutoSPEX(
        max_order=3, proxyspex_options={"max_depth": 2}, spex_options={"n_groups": 2}
    )
    assert auto.proxyspex.max_depth == 2 and auto.proxyspex.max_order == 3
    assert auto.spex.n_groups == 2 and auto.spex.max_order == 3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"proxyspex_options": {"max_order": 2}}, "pass it to AutoSPEX itself"),
        ({"spex_options": {"random_state": 1, "uncertainty": True}}, "pass them to AutoSPEX"),
        ({"proxyspex_options": {"keep_probability": 0.7}}, "use ProxySPEX"),
        ({"spex_options": {"refit": None}}, "cannot set refit=None"),
        ({"spex_options": {"n_groups": 0}}, "n_groups"),
        ({"proxyspex_options": {"no_such_option": 1}}, "no_such_option"),
        ({"min_bins": 1}, "min_bins"),
        ({"min_bins": 16.5}, "min_bins"),
        ({"proxyspex_options": [("max_depth", 2)]}, "must be a dict"),
        ({"proxyspex_options": {"no_such_option": 1}}, "^proxyspex_options: "),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        psx.AutoSPEX(**options)


def test_fits_on_given_samples_refuse_values_of_another_shape():
    rng = np.random.default_rng(0)
    masks = rng.random((200, 10)) < 0.5
    with pytest.raises(ValueError, match=r"shape \(200,\) or \(200, n_outputs\)"):
        psx.ProxySPEX().fit_samples(masks, np.zeros(400), rng)
    spex = psx.SPEX(max_order=2)
    design = spex.design(32, 1000, rng)
    with pytest.raises(ValueError, match="NaN or infinite"):
        spex.fit_design(design, np.full(1000, np.nan), rng)


def test_a_budget_below_proxyspexs_minimum_fails_before_any_call(parity):
    counting = Counting(parity)
    with pytest.raises(ValueError, match="at least 100"):
        psx.AutoSPEX(max_order=3).explain(counting, 64, 99)
    assert counting.masks == []
