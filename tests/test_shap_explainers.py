"""ProxySPEXExplainer and SPEXExplainer inside SHAP, checked against SHAP's own pieces."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import shap
import shap.benchmark
from brute_force import all_masks
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

import proxyspex_captum as psx

EXPLAINERS = [psx.ProxySPEXExplainer, psx.SPEXExplainer, psx.AutoSPEXExplainer]


class Counter:
    """A model wrapper that counts calls and rows."""

    def __init__(self, model):
        self.model, self.calls, self.rows = model, 0, 0

    def __call__(self, x):
        self.calls += 1
        self.rows += len(x)
        return self.model(x)


def interacting(x):
    """Main effects, a pair and a triple (no term above order 3)."""
    return x[:, 0] - 2 * x[:, 1] + 3 * x[:, 0] * x[:, 2] - x[:, 3] * x[:, 4] * x[:, 5] + x[:, 6]


@pytest.fixture(scope="module")
def wine():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    model = LogisticRegression(max_iter=1000).fit(x, data.target)
    return model, x, data.feature_names


# ------------------------------------------------------------------ the classes
@pytest.mark.parametrize("cls", EXPLAINERS)
def test_is_a_shap_explainer_returning_an_explanation(cls):
    explainer = cls(interacting, np.zeros((1, 7)), random_state=0)
    assert isinstance(explainer, shap.Explainer)
    expl = explainer(np.ones((2, 7)))
    assert isinstance(expl, shap.Explanation)
    assert isinstance(expl, psx.InteractionExplanation)
    assert expl.values.shape == (2, 7)
    assert expl.base_values.shape == (2,)
    assert expl.interactions.shape == (2,)
    assert expl.feature_names == [f"Feature {i}" for i in range(7)]
    assert expl.interactions[0].feature_names == expl.feature_names


# ------------------------------------------------------- exact against SHAP's Exact
@pytest.mark.parametrize("cls", EXPLAINERS)
def test_shapley_values_equal_shaps_exact_explainer(cls):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=8)

    def linear(x):  # no interactions
        return x @ weights

    background, x = rng.normal(size=(1, 8)), rng.normal(size=(3, 8))
    masker = shap.maskers.Independent(background)
    ours = cls(linear, masker, random_state=0)(x)
    exact = shap.explainers.Exact(linear, masker)(x)
    np.testing.assert_allclose(ours.values, exact.values, atol=1e-6)
    np.testing.assert_allclose(ours.base_values, exact.base_values, atol=1e-6)


@pytest.mark.parametrize("cls", EXPLAINERS)
def test_shap_exact_pairwise_values_are_half_our_shapley_taylor_pairs(cls):
    """SHAP's Exact(interactions=2) = STII order 2: pairs halved off the diagonal."""
    rng = np.random.default_rng(1)
    background, x = rng.normal(size=(1, 7)), rng.normal(size=(2, 7))
    masker = shap.maskers.Independent(background)
    ours = cls(interacting, masker, max_order=7, random_state=0)(x)  # 2**7 <= budget: exact
    exact = shap.explainers.Exact(interacting, masker)(x, interactions=2)
    stii = ours.interaction_matrix("stii", diagonal="index")
    off = ~np.eye(7, dtype=bool)
    np.testing.assert_allclose(exact.values[:, off], stii[:, off] / 2, atol=1e-6)
    np.testing.assert_allclose(
        np.diagonal(exact.values, axis1=1, axis2=2), np.diagonal(stii, axis1=1, axis2=2), atol=1e-6
    )


def test_interactions_equal_brute_force_with_a_background_row():
    background, x = np.zeros((1, 7)), np.array([[1.0, 2, 3, 4, 5, 6, 7]])
    expl = psx.ProxySPEXExplainer(interacting, background, max_order=3)(x)
    inter = expl[0].interactions
    masks = all_masks(7)
    truth = interacting(np.where(masks, x, background))
    np.testing.assert_allclose(inter.predict(masks), truth, atol=1e-9)
    assert inter.mobius == pytest.approx({(0,): 1, (1,): -4, (6,): 7, (0, 2): 9, (3, 4, 5): -120})


def test_features_equal_to_the_background_are_left_out():
    counter = Counter(interacting)
    background = np.zeros((1, 7))
    x = np.array([[1.0, 1, 1, 0, 0, 0, 1]])  # features 3, 4, 5 equal the background
    expl = psx.ProxySPEXExplainer(counter, background)(x)
    assert counter.rows == 2**4  # all masks of the 4 varying features
    assert expl.values[0, 3:6].tolist() == [0, 0, 0]
    assert expl[0].interactions.n_features == 7


# ------------------------------------------------------------- multi-output
def test_a_multi_class_model_is_explained_from_one_set_of_calls(wine):
    model, x, names = wine
    counter = Counter(model.predict_proba)
    explainer = psx.ProxySPEXExplainer(counter, x[:20], feature_names=names, random_state=0)
    expl = explainer(x[:2], max_evals=300)
    assert expl.values.shape == (2, 13, 3)
    assert expl.base_values.shape == (2, 3)
    assert expl.interactions.shape == (2, 3)
    assert [i.n_queries for i in expl.interactions.ravel()] == [300] * 6
    # The same masks for one output cost exactly as much: the three outputs shared the calls.
    one = Counter(lambda d: model.predict_proba(d)[:, 0])
    psx.ProxySPEXExplainer(one, x[:20], random_state=0)(x[:2], max_evals=300)
    assert counter.rows == one.rows and counter.calls == one.calls
    # One output's interactions reproduce that output's values.
    inter = expl.interactions[1, 2]
    assert inter.first_order() == pytest.approx(expl.values[1, :, 2], abs=1e-9)
    assert inter.feature_names == names


def test_slicing_keeps_the_matching_interactions(wine):
    model, x, _ = wine
    expl = psx.ProxySPEXExplainer(model.predict_proba, x[:20], random_state=0)(
        x[:3], max_evals=200
    )
    cells = expl.interactions
    assert expl[0].interactions.tolist() == cells[0].tolist()
    assert expl[1:].interactions.shape == (2, 3)
    assert expl[..., 1].interactions.tolist() == cells[:, 1].tolist()
    assert expl[:, :, 2].interactions.tolist() == cells[:, 2].tolist()
    assert expl[:, 3].interactions.shape == (3, 3)  # a feature column: all rows' interactions
    assert expl[2, :, 0].interactions is cells[2, 0]
    assert expl[2, 5, 0].interactions is cells[2, 0]
    assert expl.abs.interactions is cells
    assert expl.mean(0).interactions is None  # rows averaged away
    single = psx.ProxySPEXExplainer(lambda d: model.predict_proba(d)[:, 1], x[:20])(x[:3])
    assert single[1].interactions is single.interactions[1]
    assert single[[0, 2]].interactions.tolist() == [single.interactions[0], single.interactions[2]]


def test_outputs_selects_what_is_explained(wine):
    model, x, _ = wine
    explainer = psx.ProxySPEXExplainer(model.predict_proba, x[:20], random_state=0)
    # The chosen output keeps its axis, as in SHAP's Partition explainer (the one of
    # SHAP's that takes outputs=): values (rows, features, 1).
    expl = explainer(x[:2], max_evals=200, outputs=[2])
    assert expl.values.shape == (2, 13, 1)
    top = explainer(x[:2], max_evals=200, outputs=shap.Explanation.argsort.flip[:1])
    assert top.values.shape == (2, 13, 1)


def test_interaction_matrix_shapes_and_symmetry(wine):
    model, x, _ = wine
    expl = psx.ProxySPEXExplainer(model.predict_proba, x[:20], random_state=0)(
        x[:2], max_evals=200
    )
    matrices = expl.interaction_matrix()
    assert matrices.shape == (2, 3, 13, 13)
    np.testing.assert_allclose(matrices, np.swapaxes(matrices, -1, -2))
    diagonals = np.diagonal(matrices, axis1=-2, axis2=-1)
    np.testing.assert_allclose(diagonals, np.moveaxis(expl.values, 1, 2))
    assert expl[0, :, 1].interaction_matrix().shape == (13, 13)


# ----------------------------------------------------------------- maskers
@pytest.mark.parametrize("masker_kind", ["independent", "partition"])
def test_tabular_maskers_match_permutation_shapes(wine, masker_kind):
    model, x, _ = wine
    masker = (
        shap.maskers.Independent(x[:30])
        if masker_kind == "independent"
        else shap.maskers.Partition(x[:30])
    )
    explainer = psx.ProxySPEXExplainer(model.predict_proba, masker, random_state=0)
    ours = explainer(x[:2], max_evals=200)
    theirs = shap.explainers.Permutation(model.predict_proba, masker)(x[:2], max_evals=200)
    assert ours.values.shape == theirs.values.shape
    assert np.shape(ours.base_values) == np.shape(theirs.base_values)
    # Same estimand (interventional Shapley values): close at this budget.
    np.testing.assert_allclose(ours.values, theirs.values, atol=0.05)


@pytest.mark.parametrize("mask_value", ["blur(3,3)", "inpaint_telea"])
def test_image_maskers(mask_value):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, 6, 6, 3)).astype(np.float32)

    def model(batch):  # brightness of the top-left corner times that of the centre
        return batch[:, :2, :2].mean((1, 2, 3)) * batch[:, 2:4, 2:4].mean((1, 2, 3)) / 255

    masker = shap.maskers.Image(mask_value, images[0].shape)
    expl = psx.ProxySPEXExplainer(model, masker, random_state=0)(images, max_evals=300)
    assert expl.values.shape == (2, 6, 6, 3)
    assert expl.interactions.shape == (2,)
    assert expl[0].interactions.n_features == 6 * 6 * 3
    # The bounds follow the pixels' shape, as the values do.
    assert expl.lower_bounds.shape == expl.upper_bounds.shape == expl.values.shape
    low, high, _ = expl[1].interactions.first_order_bounds("shapley")
    assert np.array_equal(expl.lower_bounds[1], low.reshape(6, 6, 3))
    assert np.array_equal(expl.upper_bounds[1], high.reshape(6, 6, 3))
    shap.plots.image(expl, show=False)
    plt.close("all")


@pytest.fixture(scope="module")
def text_pipeline():
    model, tokenizer = psx.models.load_sentence_encoder()
    return psx.examples.EmbeddingSentiment(model, tokenizer), tokenizer


def test_text_pipeline_with_a_real_transformer(text_pipeline):
    classify, tokenizer = text_pipeline
    masker = shap.maskers.Text(tokenizer)
    texts = ["The plot was not bad at all.", "A dull, slow and boring film."]
    explainer = psx.ProxySPEXExplainer(
        classify, masker, output_names=list(classify.output_names), random_state=0
    )
    expl = explainer(texts, max_evals=200)
    assert expl[0].values.shape[-1] == 2
    inter = expl[0, :, "positive"].interactions
    assert inter.feature_names == [str(t) for t in expl[0].feature_names]
    assert "bad" in inter.feature_names
    # The surrogate reproduces the pipeline on the full text.
    assert inter.full_value == pytest.approx(classify([texts[0]])[0, 1], abs=0.05)
    shap.plots.text(expl[:, :, "positive"], display=False)


def test_the_example_pipeline_takes_no_text_and_a_bfloat16_encoder(text_pipeline):
    import copy

    import torch

    classify, tokenizer = text_pipeline
    assert classify(np.array([], dtype=str)).shape == (0, 2)
    half = psx.examples.EmbeddingSentiment(
        copy.deepcopy(classify.model).to(torch.bfloat16), tokenizer
    )
    texts = ["The plot was not bad at all.", "A dull, slow and boring film."]
    np.testing.assert_allclose(half(texts), classify(texts), atol=0.1)


# ---------------------------------------------------------------- SHAP plots
def test_shap_plots_render_from_our_explanations(wine):
    model, x, names = wine
    expl = psx.ProxySPEXExplainer(
        lambda d: model.predict_proba(d)[:, 1], x[:20], feature_names=names, random_state=0
    )(x[:6], max_evals=200)
    for plot in (
        lambda: shap.plots.bar(expl, show=False),
        lambda: shap.plots.waterfall(expl[0], show=False),
        lambda: shap.plots.heatmap(expl, show=False),
        lambda: shap.plots.beeswarm(expl, show=False),
    ):
        plot()
        labels = " ".join(t.get_text() for ax in plt.gcf().axes for t in ax.get_yticklabels())
        assert any(name in labels for name in names)
        plt.close("all")


def test_shap_benchmarks_run_on_our_explanations(wine):
    model, x, _ = wine

    def positive(d):
        return model.predict_proba(d)[:, 1]

    masker = shap.maskers.Independent(x[:20])
    expl = psx.ProxySPEXExplainer(positive, masker, random_state=0)(x[:4], max_evals=200)
    error = shap.benchmark.ExplanationError(masker, positive, x[:4])(expl, "ProxySPEX")
    assert np.isfinite(error.value) and error.value >= 0
    sequential = shap.benchmark.SequentialMasker("remove", "positive", masker, positive, x[:4])
    result = sequential(expl, "ProxySPEX")
    assert np.isfinite(result.value)


# --------------------------------------------------------------- bad input
def test_bad_requests_fail_before_any_model_call():
    counter = Counter(interacting)
    explainer = psx.ProxySPEXExplainer(counter, np.zeros((1, 30)))
    with pytest.raises(ValueError, match="at least 100"):
        explainer(np.ones((1, 30)), max_evals=50)
    with pytest.raises(TypeError, match="max_evals must be an integer"):
        explainer(np.ones((1, 30)), max_evals=12.5)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        explainer(np.ones((1, 30)), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        explainer(np.ones((1, 30)), batch_size=2.5)
    assert counter.calls == 0
    with pytest.raises(ValueError, match="needs a masker"):
        psx.ProxySPEXExplainer(interacting, None)
    with pytest.raises(ValueError, match="Unknown index"):
        psx.ProxySPEXExplainer(interacting, np.zeros((1, 7)), index="lime")
    with pytest.raises(TypeError, match="decoder"):
        psx.ProxySPEXExplainer(interacting, np.zeros((1, 7)), decoder="hard")


@pytest.mark.llm
def test_a_transformers_pipeline_as_the_model():
    """SHAP's classic text workflow: the pipeline itself as the model (SHAP wraps it)."""
    pipe = psx.models.sentiment_pipeline()
    text = ["The acting was not bad at all."]
    expl = psx.ProxySPEXExplainer(pipe, random_state=0)(text, max_evals=100)
    assert list(expl.output_names) == ["NEGATIVE", "POSITIVE"]
    assert expl.values.shape == (1, 8, 2)  # 8 tokens, from one set of 100 calls
    wrapped = shap.models.TransformersPipeline(pipe, rescale_to_logits=True)
    masker = shap.maskers.Text(pipe.tokenizer)
    # All 2**8 masks and every order: the interactions reproduce the pipeline exactly.
    logits = psx.ProxySPEXExplainer(wrapped, masker, max_order=8)(text, max_evals=256)
    inter = logits[0, :, "POSITIVE"].interactions
    assert inter.full_value == pytest.approx(wrapped(text)[0, 1], abs=1e-4)
    shap.plots.text(logits[0, :, "POSITIVE"], display=False)


def test_a_non_identity_link_is_linearised_as_shap_does(wine):
    model, x, _ = wine

    def positive(d):
        return model.predict_proba(d)[:, 1]

    masker = shap.maskers.Independent(x[:20])
    ours = psx.ProxySPEXExplainer(positive, masker, link=shap.links.logit, random_state=0)(
        x[:2], max_evals=500
    )
    theirs = shap.explainers.Permutation(positive, masker, link=shap.links.logit)(
        x[:2], max_evals=500
    )
    # Ours are the surrogate's v(∅) and Shapley values: close to SHAP's, not equal.
    np.testing.assert_allclose(ours.base_values, theirs.base_values, atol=0.01)
    np.testing.assert_allclose(ours.values, theirs.values, atol=0.1)


def test_array_masks_cohorts_and_reductions_follow_the_axes(wine):
    model, x, _ = wine
    expl = psx.ProxySPEXExplainer(model.predict_proba, x[:20], random_state=0)(
        x[:4], max_evals=150
    )
    cells = expl.interactions
    keep = np.array([True, False, True, False])
    assert expl[keep].interactions.tolist() == cells[keep].tolist()
    assert expl[np.array([3, 0])].interactions.tolist() == cells[[3, 0]].tolist()
    assert expl[expl.values[:, 0, 0] > -np.inf].interactions.shape == (4, 3)
    cohorts = expl[..., 0].cohorts(2).cohorts  # SHAP splits rows with a boolean mask
    assert sum(len(c.interactions) for c in cohorts.values()) == 4
    summed = expl.sum(1)  # over features: outputs move to axis 1
    assert summed.interaction_axes == (0, 1)
    assert summed[:, 2].interactions.tolist() == cells[:, 2].tolist()
    assert expl.mean(2).interactions is None  # outputs combined
    row = expl[1]  # (features, outputs)
    assert row.interaction_axes == (1,)
    assert row.mean(0).interaction_axes == (0,)
    assert row.mean(0)[2].interactions is cells[1, 2]
    assert expl[:, "Feature 1"].interactions.shape == (4, 3)  # a feature named, not an output


def test_integer_column_names_and_rows_equal_to_features():
    import pandas as pd

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(4, 4)))
    expl = psx.ProxySPEXExplainer(lambda d: d[:, 0] * d[:, 1], frame.iloc[:1])(frame)
    assert expl.interactions[0].feature_names == ["0", "1", "2", "3"]


def test_interaction_matrix_diagonal_uses_the_explainers_index():
    background = np.zeros((1, 4))
    expl = psx.ProxySPEXExplainer(interacting_4, background, index="banzhaf")(np.ones((2, 4)))
    diagonal = np.diagonal(expl.interaction_matrix(), axis1=1, axis2=2)
    np.testing.assert_allclose(diagonal, expl.values)


def interacting_4(x):
    return 3 * x[:, 0] * x[:, 1] + x[:, 2] - x[:, 3]


def test_ragged_text_rows_need_one_row_for_a_matrix(text_pipeline):
    classify, tokenizer = text_pipeline
    expl = psx.ProxySPEXExplainer(classify, shap.maskers.Text(tokenizer), random_state=0)(
        ["good film", "a rather good film indeed"], max_evals=100
    )
    with pytest.raises(ValueError, match="one row first"):
        expl.interaction_matrix()
    assert expl[1, :, 1].interaction_matrix().shape[0] == expl[1].values.shape[0]


def _linear3(x):
    """Three outputs, each linear in the three inputs."""
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [2.0, 0.0, 1.5]])
    return x @ weights


def test_one_chosen_output_keeps_its_axis_as_shaps_explainers_do():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    masker = shap.maskers.Partition(x[:2])
    ref = shap.explainers.Partition(_linear3, masker, output_names=list("abc"))(x[2:], outputs=[2])
    ours = psx.ProxySPEXExplainer(_linear3, x[:2], output_names=list("abc"))(x[2:], outputs=[2])
    assert ours.values.shape == ref.values.shape == (3, 3, 1)  # was (3, 3)
    np.testing.assert_allclose(ours.values, ref.values, atol=1e-10)
    assert ours[0, :, 0].interactions is not None
    shap.plots.waterfall(ours[0, :, 0], show=False)
    plt.close("all")


def test_outputs_are_checked_and_a_link_works_with_an_opchain():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    model = Counter(lambda v: 1 / (1 + np.exp(-_linear3(v))))
    explainer = psx.ProxySPEXExplainer(model, x[:2])
    with pytest.raises(ValueError, match="it has 3 \\(indices 0 to 2\\)"):
        explainer(x[2:], outputs=[5])
    assert model.calls == 1  # f(x) alone: the budget was not spent
    linked = psx.ProxySPEXExplainer(model, x[:2], link=shap.links.logit)
    top = linked(x[2:], outputs=shap.Explanation.argsort.flip[:1])  # it raised a TypeError
    assert top.values.shape == (2, 3, 1)


def test_a_budget_too_small_for_any_row_is_refused_before_the_first(wine):
    model, x, _ = wine
    counted = Counter(model.predict_proba)
    explainer = psx.ProxySPEXExplainer(counted, x[:1])
    rows = x[1:3].copy()
    rows[0, 4:] = x[0, 4:]  # row 1 varies in 4 features (16 masks), row 2 in all 13
    with pytest.raises(ValueError, match="needs a budget"):
        explainer(rows, max_evals=20)
    assert counted.calls == 0  # row 1 was paid for before row 2 was refused


def test_save_and_load_keep_the_index_and_the_estimator():
    import io

    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3))
    explainer = psx.ProxySPEXExplainer(
        interacting3, shap.maskers.Independent(x[:2]), max_order=2, index="banzhaf", random_state=7
    )
    buffer = io.BytesIO()
    explainer.save(buffer)
    buffer.seek(0)
    loaded = psx.ProxySPEXExplainer.load(buffer)
    assert loaded.index == "banzhaf" and repr(loaded.estimator) == repr(explainer.estimator)
    np.testing.assert_allclose(loaded(x[2:4]).values, explainer(x[2:4]).values)


def interacting3(x):
    """A module-level model (SHAP's save pickles it)."""
    return x[:, 0] * x[:, 1] + x[:, 2]


def test_operations_that_change_values_drop_the_interactions(wine):
    model, x, _ = wine
    model = model.predict_proba
    expl = psx.ProxySPEXExplainer(model, x[:3], random_state=0)(x[3:6], max_evals=200)
    for changed in (expl * 2, expl.percentile(50, axis=0)):
        assert changed.interactions is None  # they described other values
    flipped = expl.flip  # rows (and outputs and features) reversed: the interactions too
    assert flipped.interactions.tolist() == np.flip(expl.interactions).tolist()
    by_feature = expl.mean(1)  # a feature axis reduced: each row's result still holds
    assert by_feature.interactions is not None
    named = psx.ProxySPEXExplainer(model, x[:3], output_names=["a", "b", "c"], random_state=0)
    row = named(x[3:5], max_evals=200)[0]
    assert row[:, "b"].interactions is row[:, 1].interactions is not None  # was None
