"""Interactions <-> shapiq.InteractionValues, and a path to a shap.Explanation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import shap
from brute_force import all_masks

import proxyspex_captum as psx

shapiq = pytest.importorskip("shapiq")

INDICES = [
    ("mobius", "Moebius", None),
    ("shapley", "SV", None),
    ("banzhaf", "BV", None),
    ("sii", "SII", 2),
    ("bii", "BII", 2),
    ("k-sii", "k-SII", 2),
    ("stii", "STII", 2),
    ("fsii", "FSII", 2),
    ("fbii", "FBII", 2),
]


@pytest.fixture(scope="module")
def exact():
    game = psx.games.hierarchical_game(8, n_terms=8, random_state=0)

    def shifted(masks):  # v(∅) = 2 so that baseline conventions show
        return game(masks) + 2.0

    ours = psx.ProxySPEX(max_order=8).explain(shifted, n_features=8, budget=256)
    computer = shapiq.ExactComputer(lambda c: shifted(c.astype(bool)), n_players=8)
    return ours, computer


@pytest.mark.parametrize(("ours_name", "shapiq_name", "order"), INDICES)
def test_to_shapiq_equals_shapiqs_exact_computer(exact, ours_name, shapiq_name, order):
    ours, computer = exact
    mine = ours.to_shapiq(ours_name, order)
    theirs = computer(shapiq_name, order=order or (8 if shapiq_name == "Moebius" else 1))
    assert mine.index == theirs.index
    keys = set(mine.dict_values) | set(theirs.dict_values)
    for key in keys:
        assert mine.dict_values.get(key, 0.0) == pytest.approx(
            theirs.dict_values.get(key, 0.0), abs=1e-8
        ), key
    assert mine.baseline_value == pytest.approx(theirs.baseline_value, abs=1e-8)


def test_round_trip_through_shapiq(exact):
    ours, _ = exact
    back = psx.Interactions.from_shapiq(ours.to_shapiq(), feature_names=list("abcdefgh"))
    masks = all_masks(8)
    np.testing.assert_allclose(back.predict(masks), ours.predict(masks), atol=1e-12)
    assert back.feature_names == list("abcdefgh")
    with pytest.raises(ValueError, match="Möbius"):
        psx.Interactions.from_shapiq(ours.to_shapiq("k-sii", 2))


def test_shapiq_plots_work_on_our_results(exact):
    ours, _ = exact
    values = ours.to_shapiq("k-sii", 2)
    values.plot_network(show=False)
    values.plot_force(show=False)
    values.plot_upset(show=False)
    plt.close("all")


def test_a_result_becomes_a_shap_explanation():
    inter = psx.Interactions.from_mobius(
        {(): 0.5, (0,): 1.0, (1, 2): 2.0}, n_features=3, feature_names=["a", "b", "c"]
    )
    expl = psx.InteractionExplanation.from_interactions([inter, inter], data=np.ones((2, 3)))
    assert isinstance(expl, shap.Explanation)
    np.testing.assert_allclose(expl.values, [[1.0, 1.0, 1.0]] * 2)
    np.testing.assert_allclose(expl.base_values, [0.5, 0.5])
    assert expl.feature_names == ["a", "b", "c"]
    assert expl[1].interactions is inter
    shap.plots.waterfall(expl[0], show=False)
    plt.close("all")


def test_fbii_constant_of_zero_is_kept():
    inter = psx.Interactions.from_mobius({(): 1.0, (0, 1): 4.0, (2,): 0.5}, n_features=3)
    computer = shapiq.ExactComputer(lambda c: inter.predict(c.astype(bool)), n_players=3)
    theirs = computer("FBII", order=1)
    mine = inter.to_shapiq("fbii", 1)
    assert mine.dict_values[()] == pytest.approx(theirs.dict_values.get((), 0.0), abs=1e-9)
    assert mine.baseline_value == pytest.approx(theirs.baseline_value, abs=1e-9)
    assert inter.to_shapiq("k-sii", 9).max_order == 3  # capped at n


def test_from_interactions_names_copies_and_checks_the_names():
    inter = psx.Interactions.from_mobius({(0,): 1.0, (0, 1): 2.0}, n_features=2)
    expl = psx.InteractionExplanation.from_interactions(inter, feature_names=np.array(["u", "v"]))
    assert expl.interactions[0].feature_names == ["u", "v"]
    assert inter.feature_names is None  # the caller's result was renamed in place
    with pytest.raises(ValueError, match="1 names for 2 features"):
        psx.InteractionExplanation.from_interactions(inter, feature_names=["u"])
