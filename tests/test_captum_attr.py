"""ProxySPEXAttribution and SPEXAttribution inside Captum, checked against Captum's own pieces."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from brute_force import all_masks, mobius, shapley
from captum.attr import (
    KernelShap,
    PerturbationAttribution,
    ShapleyValues,
    visualization,
)
from captum.metrics import infidelity, sensitivity_max
from captum.testing.helpers.basic_models import (
    BasicLinearModel,
    BasicModel_ConvNet_One_Conv,
    BasicModel_MultiLayer,
    BasicModel_MultiLayer_MultiInput,
)

import proxyspex_captum as psx

METHODS = [psx.ProxySPEXAttribution, psx.SPEXAttribution, psx.AutoSPEXAttribution]
# KernelShap, our shape reference, warns about every batch of several examples.
pytestmark = pytest.mark.filterwarnings("ignore:You are providing multiple inputs:UserWarning")


class CountingModel(torch.nn.Module):
    """Wraps a model and counts forward calls and rows."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = 0
        self.rows = 0

    def forward(self, *args):
        self.calls += 1
        self.rows += args[0].shape[0]
        return self.model(*args)


def interacting(x):
    """Features 0 and 1 only matter together; 2 alone; an order-3 term on 3, 4, 5."""
    return 2 * x[:, 0] * x[:, 1] + x[:, 2] - 1.5 * x[:, 3] * x[:, 4] * x[:, 5]


def _shapes(out):
    return [tuple(t.shape) for t in out] if isinstance(out, tuple) else tuple(out.shape)


# ------------------------------------------------------------------ the class itself
@pytest.mark.parametrize("method", METHODS)
def test_is_a_captum_perturbation_attribution(method):
    attr = method(interacting)
    assert isinstance(attr, PerturbationAttribution)
    assert attr.multiplies_by_inputs is False
    assert attr.has_convergence_delta() is False
    with pytest.raises(NotImplementedError):
        attr.attribute_future()


# ------------------------------------------------------------- shapes = KernelShap's
def _shape_cases():
    torch.manual_seed(0)
    multi = BasicModel_MultiLayer_MultiInput()
    x1, x2, x3 = (torch.randn(2, 3) for _ in range(3))
    shared_mask = (torch.tensor([[0, 1, 2]]), torch.tensor([[2, 3, 3]]), torch.tensor([[4, 4, 0]]))
    conv = BasicModel_ConvNet_One_Conv()
    image = 10 * torch.rand(2, 1, 4, 4)
    patches = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])[None, None]
    return {
        "one example": (
            BasicModel_MultiLayer(),
            dict(inputs=torch.tensor([[20.0, 50, 30]]), target=1),
        ),
        "batch, list target": (
            BasicModel_MultiLayer(),
            dict(inputs=torch.tensor([[20.0, 50, 30], [1, 2, 3]]), target=[0, 1]),
        ),
        "batch, tensor target and baselines": (
            BasicModel_MultiLayer(),
            dict(
                inputs=torch.tensor([[20.0, 50, 30], [1, 2, 3]]),
                target=torch.tensor([1, 0]),
                baselines=torch.tensor([[1.0, 2, 3]]),
            ),
        ),
        "tuple of inputs, args, shared mask ids": (
            multi,
            dict(
                inputs=(x1, x2, x3),
                additional_forward_args=(2,),
                target=0,
                feature_mask=shared_mask,
                baselines=(0.5, torch.zeros(1, 3), 1),
            ),
        ),
        "per-example masks": (
            BasicModel_MultiLayer(),
            dict(
                inputs=torch.tensor([[20.0, 50, 30], [1, 2, 3]]),
                target=0,
                feature_mask=torch.tensor([[0, 0, 1], [0, 1, 1]]),
            ),
        ),
        "image patches": (conv, dict(inputs=image, target=1, feature_mask=patches)),
        "(H, W) mask and baseline without batch dimension": (
            conv,
            dict(inputs=image, target=1, feature_mask=patches[0, 0], baselines=torch.zeros(4)),
        ),
        "one number per batch": (
            lambda x: BasicModel_MultiLayer()(x)[:, 0].sum(),
            dict(inputs=torch.tensor([[20.0, 50, 30], [1, 2, 3]])),
        ),
    }


SHAPE_CASES = _shape_cases()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(SHAPE_CASES))
@pytest.mark.parametrize("return_input_shape", [True, False])
def test_output_shapes_equal_kernel_shap(method, case, return_input_shape):
    model, kwargs = SHAPE_CASES[case]
    kwargs = dict(kwargs, return_input_shape=return_input_shape)
    ours = method(model, random_state=0).attribute(**kwargs)
    theirs = KernelShap(model).attribute(n_samples=20, **kwargs)
    assert _shapes(ours) == _shapes(theirs)
    assert type(ours) is type(theirs)
    for ours_t in ours if isinstance(ours, tuple) else (ours,):
        assert ours_t.dtype == torch.float32


@pytest.mark.parametrize("method", METHODS)
def test_attribute_interactions_returns_one_result_per_example(method):
    model, kwargs = SHAPE_CASES["tuple of inputs, args, shared mask ids"]
    results = method(model, random_state=0).attribute_interactions(
        **kwargs, feature_names=list("abcde")
    )
    assert len(results) == 2
    for inter in results:
        assert isinstance(inter, psx.Interactions)
        assert inter.n_features == 5  # the feature-mask ids, shared across the three tensors
        assert inter.feature_names == list("abcde")


def test_inputs_with_shared_ids_are_one_feature():
    """Id 2 appears in two tensors: dropping it replaces both elements at once."""
    model, kwargs = SHAPE_CASES["tuple of inputs, args, shared mask ids"]
    x1, x2, x3 = kwargs["inputs"]
    attr = psx.ProxySPEXAttribution(model, max_order=5).attribute_interactions(**kwargs)
    for i, inter in enumerate(attr):
        # all 2**5 masks are queried (default budget): check two against the model.
        masks = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 0, 1]], dtype=bool)
        base = (0.5, torch.zeros(1, 3), 1)
        for mask in masks:
            perturbed = []
            for t, m, b in zip((x1, x2, x3), kwargs["feature_mask"], base, strict=True):
                keep = torch.as_tensor(mask)[m[0]]
                perturbed.append(torch.where(keep, t[i], b[0] if torch.is_tensor(b) else b * 1.0))
            expected = model(*(p[None] for p in perturbed), 2)[0, 0].item()
            assert inter.predict(mask) == pytest.approx(expected, rel=1e-5, abs=1e-5)


# ------------------------------------------------------------------ exact values
@pytest.mark.parametrize("method", METHODS)
def test_shapley_values_equal_captums_exact_shapley_values(method):
    torch.manual_seed(0)
    model = BasicLinearModel().double()  # no interactions: Shapley = w * (x - baseline)
    x1, x2 = torch.randn(2, 3).double(), torch.randn(2, 4).double()
    base = torch.randn(1, 4).double()
    # Four features over two tensors. (With all seven elements as features, Captum's
    # ShapleyValues sums 7! permutation differences in float32 and is itself off by 1.6e-5.)
    groups = (torch.tensor([[0, 0, 1]]), torch.tensor([[2, 2, 3, 3]]))
    kwargs = dict(inputs=(x1, x2), baselines=(0.25, base), feature_mask=groups)
    ours = method(model, random_state=0).attribute(**kwargs)
    theirs = ShapleyValues(model).attribute(**kwargs)
    for a, b in zip(ours, theirs, strict=True):  # ShapleyValues keeps the model's output dim
        torch.testing.assert_close(a, b.reshape(a.shape).float(), atol=1e-6, rtol=1e-6)

    # Per element, against the closed form (float64 all the way).
    inters = method(model, random_state=0).attribute_interactions((x1, x2), baselines=(0.25, base))
    w = model.linear.weight[0].detach()
    truth = w * (torch.cat([x1, x2], dim=1) - torch.cat([torch.full((1, 3), 0.25), base], dim=1))
    for inter, row in zip(inters, truth, strict=True):
        assert inter.first_order() == pytest.approx(row.numpy(), abs=1e-9)


def test_every_mask_gives_exact_shapley_values_with_every_order_kept():
    # A product of 6 features is one interaction of order 6: with all 2**6 masks and
    # max_order=6 each Shapley value is 1/6; with the default max_order=4 the result
    # leaves 11 % of the variance out, and a warning says so.
    def product(x):
        return x.prod(1)

    x = torch.ones(1, 6)
    exact = psx.ProxySPEXAttribution(product, max_order=6).attribute(x)
    torch.testing.assert_close(exact, torch.full((1, 6), 1 / 6))
    with pytest.warns(psx.PoorFitWarning, match=r"11\.1% of the model's variance.*max_order=6"):
        psx.ProxySPEXAttribution(product).attribute(x)


def test_a_single_number_target_or_argument_serves_every_example():
    # Captum takes a 0-d tensor as one target for the batch; its example selection
    # called len() on it, and a batch of two failed after a model call.
    torch.manual_seed(0)
    model, x = torch.nn.Linear(5, 3), torch.randn(2, 5)
    attr = psx.ProxySPEXAttribution(model, random_state=0)
    by_tensor = attr.attribute(x, target=torch.tensor(1))
    torch.testing.assert_close(by_tensor, attr.attribute(x, target=1))

    def scaled(inputs, factor):
        return model(inputs)[:, 0] * factor

    twice = psx.ProxySPEXAttribution(scaled, random_state=0)
    ones = twice.attribute(x, additional_forward_args=(torch.tensor(1.0),))
    doubled = twice.attribute(x, additional_forward_args=(torch.tensor(2.0),))
    torch.testing.assert_close(doubled, 2 * ones)


def test_the_cache_tells_two_models_behind_one_wrapper_apart(tmp_path):
    # A function wrapping a model was fingerprinted by its name alone: a second model
    # behind the same wrapper got the first one's values from the cache file.
    def first_column(model):
        def forward(inputs):
            return model(inputs)[:, 0]

        return forward

    torch.manual_seed(0)
    a, b, x = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2), torch.ones(1, 6)
    path = tmp_path / "values.sqlite"
    first = psx.ProxySPEXAttribution(first_column(a), random_state=0).attribute(x, cache=path)
    again = psx.ProxySPEXAttribution(first_column(a), random_state=0).attribute(x, cache=path)
    torch.testing.assert_close(first, again)
    with pytest.raises(ValueError, match="another value function"):
        psx.ProxySPEXAttribution(first_column(b), random_state=0).attribute(x, cache=path)


def test_a_wrappers_fingerprint_survives_edits_elsewhere_and_new_processes():
    # The cache of a wrapped model is found again after lines are added above the
    # wrapper (its code's line numbers are left out) and in a new process (whose
    # string hashing, which orders set constants, is seeded anew).
    def script(blank_lines: int) -> str:
        return "\n" * blank_lines + (
            "import torch, proxyspex_captum as psx\n"
            "from proxyspex_captum.attr.masking import fingerprint, prepare\n"
            "torch.manual_seed(0)\n"
            "model = torch.nn.Linear(6, 2)\n"
            "def forward(x):\n"
            "    return model(x)[:, 0] * (1.0 if 'a' in {'a', 'b', 'c', 'd'} else 2.0)\n"
            "problem = prepare(forward, torch.ones(1, 6), None, None, None, None)\n"
            "print(fingerprint(forward, problem))\n"
        )

    seen = {
        subprocess.run(
            [sys.executable, "-c", script(blank_lines)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for blank_lines, seed in ((0, "1"), (5, "2"))
    }
    assert len(seen) == 1


@pytest.mark.parametrize("method", METHODS)
def test_sampled_shapley_values_of_a_model_without_interactions_are_exact(method):
    """30 features, far fewer calls than 2**30: the estimate is still exact."""
    torch.manual_seed(0)
    weights, x, base = torch.randn(30), torch.randn(1, 30), torch.randn(1, 30)

    def model(inputs):
        return inputs @ weights

    attr = method(model, max_order=2, random_state=0)
    ours = attr.attribute(x, baselines=base, n_samples=2000)
    torch.testing.assert_close(ours, (weights * (x - base)).float(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_interactions_equal_brute_force_mobius_at_full_budget(method):
    x = torch.ones(1, 6)
    inter = method(interacting, max_order=3).attribute_interactions(x)[0]
    table = np.array([interacting(torch.as_tensor(m[None]).float()).item() for m in all_masks(6)])
    truth = {k: v for k, v in mobius(table, 6).items() if abs(v) > 1e-12 and k}
    assert inter.mobius.keys() == truth.keys()
    assert [inter.mobius[k] for k in truth] == pytest.approx(list(truth.values()), abs=1e-12)
    assert inter.first_order() == pytest.approx(shapley(table, 6), abs=1e-12)


def test_banzhaf_index_is_reported_when_asked_for():
    x = torch.ones(1, 6)
    table = np.array([interacting(torch.as_tensor(m[None]).float()).item() for m in all_masks(6)])
    ours = psx.ProxySPEXAttribution(interacting, index="banzhaf").attribute(x)
    shap = psx.ProxySPEXAttribution(interacting).attribute(x)
    assert ours[0].numpy() == pytest.approx([1, 1, 1, -0.375, -0.375, -0.375], abs=1e-6)
    assert shap[0].numpy() == pytest.approx(shapley(table, 6), abs=1e-6)


def test_seeded_runs_are_reproducible_and_leave_global_rngs_alone():
    torch.manual_seed(0)
    weights = torch.randn(40)

    def model(x):
        return x @ weights + 3 * x[:, 0] * x[:, 1]

    x = torch.randn(1, 40)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()  # noqa: NPY002
    a = psx.ProxySPEXAttribution(model, random_state=3).attribute(x, n_samples=300)
    b = psx.ProxySPEXAttribution(model, random_state=3).attribute(x, n_samples=300)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_perturbations_are_batched_per_eval():
    model = CountingModel(BasicModel_MultiLayer())
    x = torch.tensor([[20.0, 50, 30]])
    psx.ProxySPEXAttribution(model).attribute(x, target=0, perturbations_per_eval=3)
    assert model.rows == 8  # all 2**3 masks, each once
    assert model.calls == 3  # ceil(8 / 3)


def test_progress_goes_through_captums_progress_bar(capsys):
    psx.ProxySPEXAttribution(interacting).attribute(torch.ones(1, 6), show_progress=True)
    assert "ProxySPEXAttribution attribution" in capsys.readouterr().err


# ------------------------------------------------------------- Captum's own tools
def test_captum_metrics_run_on_our_attributions():
    torch.manual_seed(0)
    model = BasicModel_MultiLayer()
    x = torch.tensor([[20.0, 50, 30], [1, 2, 3]])
    attr = psx.ProxySPEXAttribution(model, random_state=0)
    attributions = attr.attribute(x, target=0)

    def perturb(inputs):
        noise = torch.tensor(np.random.default_rng(0).normal(size=inputs.shape)).float()
        return noise, inputs - noise

    infid = infidelity(model, perturb, x, attributions, target=0, n_perturb_samples=4)
    assert infid.shape == (2,) and torch.isfinite(infid).all()
    sens = sensitivity_max(attr.attribute, x, target=0, n_perturb_samples=2)
    assert sens.shape == (2,) and torch.isfinite(sens).all()


def test_captum_visualization_accepts_our_attributions():
    words = ["not", "bad", "at", "all"]

    def model(x):  # "not" flips "bad"
        return x[:, 1] * (1 - 2 * x[:, 0]) * -1.0 + 0.1 * x[:, 3]

    attributions = psx.ProxySPEXAttribution(model).attribute(torch.ones(1, 4))[0]
    record = visualization.VisualizationDataRecord(
        attributions, 0.9, 1, 1, 1, attributions.sum(), words, None
    )
    html = visualization.visualize_text([record])
    assert all(w in html.data for w in words)

    conv = BasicModel_ConvNet_One_Conv()
    image = 10 + 10 * torch.rand(1, 1, 4, 4)  # bright enough to pass the conv's -50 bias
    patches = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])[None, None]
    attr = psx.ProxySPEXAttribution(conv).attribute(image, target=1, feature_mask=patches)
    fig, ax = visualization.visualize_image_attr(
        attr[0].permute(1, 2, 0).numpy(),
        image[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map",
        sign="all",
        use_pyplot=False,
    )
    assert fig is not None and ax is not None


# --------------------------------------------------------------- bad input
def _no_call_model():
    def model(x):
        raise AssertionError("the model must not be called")

    return model


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(feature_mask=torch.tensor([[0, 0, 2, 2]])), ValueError, "no gaps"),
        (dict(feature_mask=torch.tensor([[1, 1, 2, 2]])), ValueError, "without \\[0\\]"),
        (dict(feature_mask=torch.tensor([[0.0, 1, 1, 0]])), TypeError, "integer"),
        (dict(feature_mask=torch.tensor([[0, 1, 1]])), ValueError, "does not fit"),
        (dict(baselines=torch.zeros(1, 5)), ValueError, "does not fit"),
        (dict(baselines=(0, 0)), ValueError, "2 baselines for 1 inputs"),
        (dict(n_samples=50), ValueError, "at least 100"),
        (dict(n_samples=2.5), TypeError, "integer"),
        (dict(perturbations_per_eval=0), ValueError, "at least 1"),
    ],
)
def test_bad_input_fails_before_any_model_call(kwargs, error, message):
    x = torch.ones(1, 4) if "n_samples" not in kwargs else torch.ones(1, 12)
    with pytest.raises(error, match=message):
        psx.ProxySPEXAttribution(_no_call_model()).attribute(x, **kwargs)


def test_spex_budget_error_says_what_to_do():
    with pytest.raises(ValueError, match="ProxySPEX"):
        psx.SPEXAttribution(_no_call_model()).attribute(torch.ones(1, 100), n_samples=300)


def test_bad_inputs_and_options_are_refused():
    with pytest.raises(TypeError, match="tensor or a tuple"):
        psx.ProxySPEXAttribution(interacting).attribute([1.0, 2.0])
    with pytest.raises(ValueError, match="batch size"):
        psx.ProxySPEXAttribution(interacting).attribute((torch.ones(1, 2), torch.ones(2, 2)))
    with pytest.raises(ValueError, match="Unknown index"):
        psx.ProxySPEXAttribution(interacting, index="lime")
    with pytest.raises(TypeError, match="decoder"):
        psx.ProxySPEXAttribution(interacting, decoder="soft")
    with pytest.raises(ValueError, match="energy"):
        psx.ProxySPEXAttribution(interacting, energy=2.0)


def test_a_model_with_several_outputs_needs_a_target():
    model = BasicModel_MultiLayer()  # three outputs per example
    with pytest.raises(ValueError, match="pass target="):
        psx.ProxySPEXAttribution(model).attribute(torch.ones(1, 3))


def test_non_finite_model_outputs_are_reported():
    def model(x):
        return torch.log(x[:, 0] - 0.5)  # NaN when feature 0 is dropped

    with pytest.raises(ValueError, match="NaN or infinite"):
        psx.ProxySPEXAttribution(model).attribute(torch.ones(1, 3))


def test_whole_batch_models_need_one_perturbation_per_eval():
    x = torch.tensor([[20.0, 50, 30], [1, 2, 3]])
    with pytest.raises(ValueError, match="perturbations_per_eval=1"):
        psx.ProxySPEXAttribution(lambda t: t.sum()).attribute(x, perturbations_per_eval=4)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_small_integer_feature_masks_mean_the_same_ids(dtype):
    mask = torch.tensor([[0, 0, 1, 2, 2, 3]])
    expected = psx.ProxySPEXAttribution(interacting).attribute(torch.ones(1, 6), feature_mask=mask)
    got = psx.ProxySPEXAttribution(interacting).attribute(
        torch.ones(1, 6), feature_mask=mask.to(dtype)
    )
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("target", [3, [0, 5], torch.tensor([7])])
def test_target_out_of_range_is_reported_after_one_forward_at_most(target):
    # Used to be a raw IndexError from inside Captum's target selection.
    model = CountingModel(BasicModel_MultiLayer())  # three outputs per example
    x = torch.ones(2 if isinstance(target, list) else 1, 3)
    with pytest.raises(ValueError, match=r"target=.* does not fit the model's output of shape"):
        psx.ProxySPEXAttribution(model).attribute(x, target=target, perturbations_per_eval=4)
    assert model.calls <= 1


def test_examples_finished_before_a_model_error_are_kept():
    def model(x):  # fails on the perturbations of the third example (not on the whole batch)
        if len(x) != 3 and (x == 7).any():
            raise RuntimeError("model crashed")
        return interacting(x)

    x = torch.tensor([[1.0, 1, 1, 1, 1, 1], [2, 1, 1, 1, 1, 1], [7, 7, 7, 7, 7, 7]])
    attr = psx.ProxySPEXAttribution(model, random_state=0)
    with pytest.raises(RuntimeError, match="model crashed") as info:
        attr.attribute_interactions(x, perturbations_per_eval=16)
    done = info.value.partial_results
    assert len(done) == 2 and all(isinstance(r, psx.Interactions) for r in done)
    expected = attr.attribute_interactions(x[:2], perturbations_per_eval=16)
    for got, want in zip(done, expected, strict=True):
        assert got.fourier == pytest.approx(want.fourier, abs=1e-9)
