"""Every plot renders on real results and shows what it should (Agg backend)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch, Polygon

import proxyspex_captum as psx

WORDS = ["The", "acting", "was", "not", "bad", "at", "all"]
RED, BLUE = to_rgba(psx.plots.POSITIVE), to_rgba(psx.plots.NEGATIVE)


def review_model(masks):
    """'not' and 'bad' each lower the output, together they raise it; a triple too."""
    m = masks.astype(float)
    return (
        1.0
        - 1.0 * m[:, 3]
        - 0.8 * m[:, 4]
        + 3.0 * m[:, 3] * m[:, 4]
        + 0.4 * m[:, 1]
        - 1.2 * m[:, 0] * m[:, 1] * m[:, 2]
    )


@pytest.fixture(scope="module")
def result():
    inter = psx.ProxySPEX(max_order=3).explain(review_model, n_features=7, budget=128)
    inter.feature_names = WORDS
    return inter


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _same_colour(a, b):
    return np.allclose(to_rgba(a)[:3], to_rgba(b)[:3], atol=1e-6)


def test_bar_labels_values_and_signs(result):
    _, ax = psx.plots.bar(result, k=4)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["not × bad", "The × acting × was", "not", "bad"]
    bars = ax.patches
    assert [round(b.get_width(), 6) for b in bars] == [3.0, -1.2, -1.0, -0.8]
    assert _same_colour(bars[0].get_facecolor(), RED)
    assert all(_same_colour(b.get_facecolor(), BLUE) for b in bars[1:])


def test_bar_value_labels_stay_inside_the_axes(result):
    fig, ax = psx.plots.bar(result, k=4)
    fig.canvas.draw()
    axes_box = ax.get_window_extent()
    labels = [t for t in ax.texts if t.get_text().startswith(("+", "-"))]
    assert [t.get_text() for t in labels] == ["+3", "-1.2", "-1", "-0.8"]
    for label in labels:  # the negative ones used to cover the tick labels
        box = label.get_window_extent()
        assert axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1, label.get_text()


def test_bar_of_an_index(result):
    _, ax = psx.plots.bar(result, k=3, index="fsii", order=2)
    assert ax.get_yticklabels()[0].get_text() == "not × bad"
    assert "FSII" in ax.get_xlabel()


def test_heatmap_holds_the_index_and_shapley_values(result):
    _, ax = psx.plots.heatmap(result, index="sii")
    matrix = ax.get_images()[0].get_array()
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), result.first_order())
    assert matrix[3, 4] == pytest.approx(result.to_index("sii", 2)[(3, 4)])
    assert [t.get_text() for t in ax.get_yticklabels()] == WORDS
    # A first-order index is refused in the heatmap's own terms, not to_index's order=.
    with pytest.raises(ValueError, match=r"heatmap shows pairs.*pass one of sii, bii"):
        psx.plots.heatmap(result, index="shapley")


def test_heatmap_picks_the_features_of_the_strongest_pairs():
    pairs = {(10, 20): 4.0, (30, 40): 3.0, (5, 50): 2.0, (1, 2): 1.0, (7,): 0.5}
    inter = psx.Interactions.from_mobius(pairs, n_features=60)
    _, ax = psx.plots.heatmap(inter, max_features=6)
    assert ax.get_images()[0].get_array().shape == (6, 6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"x{i}" for i in (5, 10, 20, 30, 40, 50)]


def test_network_draws_pairs_and_hyperedges(result):
    _, ax = psx.plots.network(result, k=2)
    pairs = [a for a in ax.get_children() if isinstance(a, Line2D) and a.get_gid() == "pair"]
    hyper = [a for a in ax.get_children() if isinstance(a, Polygon) and a.get_gid() == "hyperedge"]
    assert len(pairs) == 1 and len(hyper) == 1
    assert _same_colour(pairs[0].get_color(), RED)  # not × bad raises the output
    assert _same_colour(hyper[0].get_edgecolor(), BLUE)  # the triple lowers it
    assert {t.get_text() for t in ax.texts} == {"The", "acting", "was", "not", "bad"}


def test_text_colours_words_by_sign_and_draws_arcs(result):
    _, ax = psx.plots.text(result, k=1)
    words = [t for t in ax.texts if t.get_gid() == "word"]
    assert [w.get_text() for w in words] == WORDS
    shapley = result.first_order()
    for word, value in zip(words, shapley, strict=True):
        colour = word.get_bbox_patch().get_facecolor()
        if abs(value) > 1e-9:
            assert (colour[0] > colour[2]) == (value > 0)  # red when positive, blue when negative
    arcs = [p for p in ax.patches if isinstance(p, PathPatch) and p.get_gid() == "arc"]
    assert len(arcs) == 1 and _same_colour(arcs[0].get_edgecolor(), RED)


def test_text_legend_says_what_colours_and_arcs_mean(result):
    fig, ax = psx.plots.text(result, k=2)
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "word raises the output (Shapley value > 0)",
        "word lowers the output (Shapley value < 0)",
        "pair raises it together (Möbius > 0)",
        "pair lowers it together (Möbius < 0)",
    ]
    patches, lines = legend.get_patches(), legend.get_lines()
    assert _same_colour(patches[0].get_facecolor(), RED)
    assert _same_colour(patches[1].get_facecolor(), BLUE)
    assert _same_colour(lines[0].get_color(), RED) and _same_colour(lines[1].get_color(), BLUE)
    assert "larger effect" in legend.get_title().get_text()
    # The legend lies inside the figure, so a plain savefig (no bbox_inches="tight") keeps it.
    fig.canvas.draw()
    box = legend.get_window_extent().transformed(fig.transFigure.inverted())
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= 1 and box.y1 <= 1
    # The legend's band is below every word.
    words = [t for t in ax.texts if t.get_gid() == "word"]
    lowest = min(w.get_window_extent().y0 for w in words)
    assert legend.get_window_extent().y1 <= lowest


def test_text_legend_lists_arcs_only_when_drawn_and_can_be_turned_off():
    inter = psx.Interactions.from_mobius(
        {(0,): 1.0, (1,): -0.5}, n_features=2, feature_names=["good", "film"]
    )
    _, ax = psx.plots.text(inter)
    assert len(ax.get_legend().get_texts()) == 2  # no pair: no arc, no arc entries
    _, ax = psx.plots.text(inter, legend=False)
    assert ax.get_legend() is None


def test_image_marks_interacting_patches():
    segments = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 4, axis=0), 4, axis=1)

    def model(masks):  # patches 0 and 3 together; 1, 2 and 3 together
        m = masks.astype(float)
        return 2 * m[:, 0] * m[:, 3] - m[:, 1] * m[:, 2] * m[:, 3] + 0.5 * m[:, 1]

    inter = psx.ProxySPEX(max_order=3).explain(model, n_features=4, budget=16)
    picture = np.random.default_rng(0).random((8, 8, 3))
    _, ax = psx.plots.image(inter, picture, segments, k=2)
    pairs = [a for a in ax.get_children() if isinstance(a, Line2D) and a.get_gid() == "pair"]
    hyper = [a for a in ax.get_children() if isinstance(a, Polygon) and a.get_gid() == "hyperedge"]
    assert len(pairs) == 1 and len(hyper) == 1
    np.testing.assert_allclose(pairs[0].get_xydata(), [[1.5, 1.5], [5.5, 5.5]])
    with pytest.raises(ValueError, match="feature ids"):
        psx.plots.image(inter, picture, segments + 4)


def test_comparison_plots_every_method():
    game = psx.games.hierarchical_game(12, n_terms=8, random_state=0)
    table = psx.metrics.compare(
        game, 12, budget=200, methods=("proxyspex", "banzhaf"), truth=game.interactions
    )
    _, ax = psx.plots.comparison(table)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["proxyspex", "banzhaf"]
    assert len(ax.patches) == 4  # two metrics per method
    heights = [p.get_height() for p in ax.patches]
    assert heights[0] == pytest.approx(table["r2"][0])


def test_dollar_signs_are_shown_literally_and_unpatched_features_are_skipped(tmp_path):
    inter = psx.Interactions.from_mobius(
        {(0, 1): 1.0, (2, 3): 2.0, (0,): 0.5}, n_features=4, feature_names=["$5", "$_$", "a", "b"]
    )
    fig, ax = psx.plots.bar(inter)
    fig.savefig(tmp_path / "bar.png")  # would raise a mathtext ParseException
    assert "$5 × $_$" in [t.get_text().replace("\\$", "$") for t in ax.get_yticklabels()]
    psx.plots.text(inter)[0].savefig(tmp_path / "text.png")
    segments = np.zeros((4, 4), dtype=int)
    segments[:, 2:] = 1  # features 2 and 3 have no patch
    with pytest.warns(UserWarning, match="no patch"):
        _, ax = psx.plots.image(inter, np.ones((4, 4)), segments)
    assert len([a for a in ax.get_children() if a.get_gid() == "pair"]) == 1


def test_training_examples_shows_each_pair_as_its_images():
    from proxyspex_captum.core import Interactions

    inter = Interactions(
        {(): 0.0, (0,): 1.0, (1,): 1.0, (0, 1): -1.5, (2, 3): 0.5},
        n_features=4,
        feature_names=["a", "b", "c", "d"],
    )
    images = [np.full((8, 8), i, dtype=float) for i in range(4)]
    fig, axes = psx.plots.training_examples(inter, images, query=np.zeros((8, 8)), k=2)
    assert axes.shape == (2, 4)
    first, second = axes
    assert first[1].get_title().startswith("a") and first[3].get_title().startswith("b")
    assert "redundant" in first[2].texts[0].get_text()  # the strongest pair, negative
    assert "synergy" in second[2].texts[0].get_text()
    (line,) = [child for child in first[2].get_lines() if child.get_gid() == "pair"]
    assert line.get_color() == psx.plots.NEGATIVE
    with pytest.raises(ValueError, match="one image per feature"):
        psx.plots.training_examples(inter, images[:3])
    rows = np.arange(12.0).reshape(4, 3)  # tabular examples: strips of cells
    _, axes = psx.plots.training_examples(inter, rows, k=1)
    assert axes[0][0].get_images()[0].get_array().shape == (1, 3)
    plt.close(fig)


@pytest.fixture(scope="module")
def unsure_result():
    """A noisy result with bootstrap intervals (ProxySPEX's default)."""
    game = psx.games.PlantedGame(
        {(0,): 1.0, (1,): -1.5, (0, 1): 2.0, (2, 3): -0.7, (4,): 0.1},
        n_features=10,
        noise_std=0.3,
        random_state=0,
    )
    return psx.ProxySPEX(max_order=2, random_state=0).explain(game, n_features=10, budget=200)


def test_bar_value_labels_start_beyond_their_error_bars(unsure_result):
    _, ax = psx.plots.bar(unsure_result, k=5)
    bounds = unsure_result.intervals()
    labels = [t for t in ax.texts if t.get_text().startswith(("+", "-"))]
    top = unsure_result.top(5)
    assert len(labels) == len(top)
    for label, (subset, value) in zip(labels, top, strict=True):
        low, high = bounds[subset]
        # On the whisker, "-1.5" was read as "1.5".
        assert label.xy[0] == pytest.approx(high if value >= 0 else low)


def test_bar_reads_mobius_by_name_and_says_which_index(result):
    _, by_default = psx.plots.bar(result, k=3)
    _, by_name = psx.plots.bar(result, k=3, index="mobius")
    assert [p.get_width() for p in by_name.patches] == [p.get_width() for p in by_default.patches]
    _, ax = psx.plots.bar(result, k=3, index="sii", order=2)
    assert ax.get_xlabel() == "SII values (order 2)"


@pytest.mark.parametrize(
    ("draw", "error", "message"),
    [
        (lambda r: psx.plots.bar(r, k=-1), ValueError, "k must be at least 1"),
        (lambda r: psx.plots.bar(r, k=2.5), TypeError, "k must be an integer"),
        (lambda r: psx.plots.network(r, k=0), ValueError, "k must be at least 1"),
        (lambda r: psx.plots.heatmap(r, max_features=0), ValueError, "max_features"),
        (lambda r: psx.plots.heatmap(r, features=[1, -1]), ValueError, "features\\[1\\]"),
        (lambda r: psx.plots.heatmap(r, features=[1, 1]), ValueError, "an id twice"),
        (lambda r: psx.plots.heatmap(r, features=[]), ValueError, "features is empty"),
        (lambda r: psx.plots.text(r, words_per_line=0), ValueError, "words_per_line"),
        (lambda r: psx.plots.text(r, "The acting was"), TypeError, "not one string"),
        (lambda r: psx.plots.training_examples(r, [0] * 7, k=0), ValueError, "k must be"),
    ],
)
def test_bad_options_are_refused_with_their_name(result, draw, error, message):
    with pytest.raises(error, match=message):
        draw(result)


def test_plots_say_how_to_get_one_result_from_several(result):
    several = np.empty(2, dtype=object)
    several[:] = [result, result]
    for draw in (psx.plots.bar, psx.plots.heatmap, psx.plots.network, psx.plots.text):
        with pytest.raises(TypeError, match="several results"):
            draw(several)


def test_heatmap_fills_its_places_with_the_strongest_main_effects():
    inter = psx.Interactions.from_mobius(
        {(500,): 3.0, (700,): -2.0, (900,): 1.0, (3, 4): 0.01}, n_features=1000
    )
    _, ax = psx.plots.heatmap(inter, max_features=5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["x3", "x4", "x500", "x700", "x900"]  # was x3 and x4 only


def test_image_refuses_a_picture_its_segments_do_not_cover():
    inter = psx.Interactions.from_mobius({(0, 1): 1.0}, n_features=16)
    segments = np.arange(16).reshape(4, 4)
    with pytest.raises(ValueError, match="channels last"):
        psx.plots.image(inter, np.zeros((64, 64)), segments)
    with pytest.raises(ValueError, match="integer patch ids"):
        psx.plots.image(inter, np.zeros((4, 4)), segments.astype(float))
    psx.plots.image(inter, np.zeros((4, 4, 3)), segments)  # (H, W, C): drawn


def test_training_examples_keep_small_coefficients_readable():
    inter = psx.Interactions.from_mobius(
        {(0,): 0.004, (1,): 0.003, (0, 1): -0.0012}, n_features=2, feature_names=["a", "b"]
    )
    _, axes = psx.plots.training_examples(inter, [np.zeros((2, 2))] * 2, k=1)
    assert "-0.0012" in axes[0][1].texts[0].get_text()  # was "-0.00"
    assert "+0.0034" in axes[0][0].get_title()  # Shapley of a: 0.004 - 0.0012 / 2


def test_subnormal_values_still_draw():
    inter = psx.Interactions.from_mobius({(0,): 1e-320, (0, 1): -1e-320}, n_features=3)
    for draw in (psx.plots.heatmap, psx.plots.network, psx.plots.text):
        fig, _ = draw(inter)
        fig.canvas.draw()


def test_heads_arcs_along_a_layer_bend_off_the_row():
    names = [f"L0.H{h}" for h in range(4)]
    inter = psx.Interactions.from_mobius({(0, 2): 1.0}, n_features=4, feature_names=names)
    _, ax = psx.plots.heads(inter)
    (arc,) = [p for p in ax.patches if isinstance(p, PathPatch)]
    start, control, end = arc.get_path().vertices
    assert start[1] == end[1] == 0 and control[1] != 0  # a straight arc ran through L0.H1
