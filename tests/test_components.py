"""Attention heads as features: ablation equals zeroed projection columns, hooks, pruning."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from brute_force import all_masks, shapley

import proxyspex_captum as psx
from proxyspex_captum import components
from proxyspex_captum.core.subset_search import best_subset, greedy_removal


def tiny_llama(seed: int = 0, layers: int = 2, heads: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=40,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=2,
        initializer_range=0.5,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=40, n_positions=32, n_embd=12, n_layer=2, n_head=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config).eval()


IDS = torch.tensor([[1, 5, 7, 3, 9, 2], [4, 4, 8, 1, 0, 6]])


def score(model, ids):
    """Per-example log-probability of token 2 after each sequence."""
    return model(ids).logits[:, -1].float().log_softmax(-1)[:, 2]


def zeroed_copy(model, heads, keep):
    """A copy of ``model`` whose output projections ignore the heads not kept."""
    clone = copy.deepcopy(model)
    for head, kept in zip(heads, keep, strict=True):
        if kept:
            continue
        attention = [m for m in clone.modules() if hasattr(m, "head_dim")][head.layer]
        cols = slice(head.head * attention.head_dim, (head.head + 1) * attention.head_dim)
        with torch.no_grad():
            if hasattr(attention, "o_proj"):
                attention.o_proj.weight[:, cols] = 0.0
            else:  # GPT-2's Conv1D: weight is (in, out)
                attention.c_proj.weight[cols, :] = 0.0
    return clone


def test_head_names_and_grid():
    model = tiny_llama()
    heads = components.attention_heads(model)
    assert [h.name for h in heads] == [f"L{layer}.H{h}" for layer in range(2) for h in range(4)]
    assert str(heads[5]) == "L1.H1"
    gpt = components.attention_heads(tiny_gpt2())
    assert len(gpt) == 6 and gpt[-1].name == "L1.H2"


def test_every_mask_equals_zeroed_columns_brute_force():
    """All 2**8 masks of a 2-layer x 4-head Llama: the game is the zeroed-column model."""
    model = tiny_llama()
    game = components.head_game(model, IDS, score)
    masks = np.array(list(itertools.product([False, True], repeat=8)))
    values = game(masks)
    with torch.no_grad():
        truth = np.array(
            [float(score(zeroed_copy(model, game.heads, mask), IDS).mean()) for mask in masks]
        )
    np.testing.assert_allclose(values, truth, rtol=1e-5, atol=1e-5)
    assert values[-1] == pytest.approx(game.full_value, abs=1e-9)
    assert np.ptp(values) > 0.1  # the heads matter: the check above can fail
    # Several masks in one forward pass: the same values, up to float rounding.
    batched = components.head_game(model, IDS, score, masks_per_pass=16)
    np.testing.assert_allclose(batched(masks), values, rtol=1e-5, atol=1e-5)


def test_gpt2_heads_ablate_like_zeroed_rows():
    model = tiny_gpt2()
    game = components.head_game(model, IDS, score)
    rng = np.random.default_rng(0)
    masks = rng.random((12, 6)) < 0.5
    with torch.no_grad():
        truth = [float(score(zeroed_copy(model, game.heads, m), IDS).mean()) for m in masks]
    np.testing.assert_allclose(game(masks), truth, rtol=1e-5, atol=1e-5)


def test_hooks_removed_and_model_restored_even_on_error():
    model = tiny_llama().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.eval()
        before = model(IDS).logits
        model.train()
    game = components.head_game(model, IDS, score, heads=[(0, 1), (1, 3)])
    game(np.array([[False, True], [False, False]]))
    with pytest.raises(RuntimeError, match="boom"):
        with components.ablated(model, None, np.zeros(8, dtype=bool)):
            raise RuntimeError("boom")
    projections = [m.o_proj for m in model.modules() if hasattr(m, "o_proj")]
    assert all(not p._forward_pre_hooks for p in projections)
    assert model.training  # the game ran in eval mode and put it back
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(IDS).logits, before)


def test_only_chosen_heads_are_features():
    model = tiny_llama()
    game = components.head_game(model, IDS, score, heads=[(1, 2), components.Head(0, 0)])
    assert game.feature_names == ["L1.H2", "L0.H0"]
    keep = np.array([[False, True]])
    full = np.ones(8, dtype=bool)
    full[6] = False  # L1.H2 is feature 6 of all heads
    with torch.no_grad():
        truth = float(
            score(zeroed_copy(model, components.attention_heads(model), full), IDS).mean()
        )
    assert game(keep)[0] == pytest.approx(truth, abs=1e-5)


def test_mean_ablation_replaces_slices_by_recorded_means():
    model = tiny_llama()
    reference = {"input_ids": IDS, "attention_mask": torch.tensor([[1] * 6, [1] * 4 + [0] * 2])}
    means = components.head_means(model, reference)
    # The means by hand: the input of layer 1's o_proj over the unpadded positions.
    seen = []
    projection = [m.o_proj for m in model.modules() if hasattr(m, "o_proj")][1]
    handle = projection.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    with torch.no_grad():
        model(**reference)
    handle.remove()
    x = seen[0].double()
    by_hand = torch.cat([x[0], x[1, :4]]).mean(0).reshape(4, 4)
    torch.testing.assert_close(means[1].double(), by_hand, rtol=1e-5, atol=1e-6)

    keep = np.array([True, True, True, True, True, False, True, False])
    inside = []
    with components.ablated(model, None, keep, ablation="mean", means=means), torch.no_grad():
        handle = projection.register_forward_pre_hook(lambda mod, args: inside.append(args[0]))
        model(IDS)
        handle.remove()
    heads_in = inside[0].unflatten(-1, (4, 4))
    torch.testing.assert_close(heads_in[:, :, 1], means[1][1].expand(2, 6, 4))
    torch.testing.assert_close(heads_in[:, :, 3], means[1][3].expand(2, 6, 4))
    # Kept heads pass through untouched.
    with torch.no_grad():
        plain = []
        handle = projection.register_forward_pre_hook(lambda mod, args: plain.append(args[0]))
        model(IDS)
        handle.remove()
    torch.testing.assert_close(heads_in[:, :, 0], plain[0].unflatten(-1, (4, 4))[:, :, 0])
    game = components.head_game(model, IDS, score, ablation="mean", mean_batch=reference)
    assert game(keep[None])[0] != pytest.approx(
        components.head_game(model, IDS, score)(keep[None])[0], abs=1e-6
    )


def test_gradient_importance_matches_finite_differences():
    model = tiny_llama(seed=1).double()  # float64: the finite differences are exact enough
    heads = components.attention_heads(model)
    importance = components.gradient_importance(model, IDS, score)
    assert importance.shape == (8,)
    assert all(p.grad is None for p in model.parameters())

    def scaled(layer, head, factor):
        projection = [m.o_proj for m in model.modules() if hasattr(m, "o_proj")][layer]

        def hook(module, args):
            x = args[0].unflatten(-1, (4, 4)).clone()
            x[..., head, :] *= factor
            return (x.flatten(-2),)

        handle = projection.register_forward_pre_hook(hook)
        with torch.no_grad():
            out = score(model, IDS).double()
        handle.remove()
        return out

    eps = 1e-3
    for i in (0, 5):
        h = heads[i]
        derivative = (scaled(h.layer, h.head, 1 + eps) - scaled(h.layer, h.head, 1 - eps)) / (
            2 * eps
        )
        assert importance[i] == pytest.approx(float(derivative.abs().mean()), rel=1e-2, abs=1e-5)


def test_refusals_before_any_forward_pass():
    model = tiny_llama()
    with pytest.raises(ValueError, match="no attention heads"):
        components.attention_heads(torch.nn.Sequential(torch.nn.Linear(3, 3)))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        components.attention_heads("gpt2")
    with pytest.raises(ValueError, match="at most 1"):
        components.head_game(model, IDS, score, heads=[(2, 0)])
    with pytest.raises(ValueError, match="twice"):
        components.head_game(model, IDS, score, heads=[(0, 0), (0, 0)])
    with pytest.raises(ValueError, match="ablation"):
        components.head_game(model, IDS, score, ablation="resample")
    with pytest.raises(ValueError, match="NaN"):
        components.head_game(model, IDS, lambda m, b: torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="one per example"):
        components.head_game(model, IDS, lambda m, b: torch.zeros(3))
    with pytest.raises(ValueError, match="masks_per_pass"):
        components.head_game(model, IDS, lambda m, b: score(m, b).mean(), masks_per_pass=4)
    with pytest.raises(TypeError, match="masks_per_pass"):
        components.head_game(model, IDS, score, masks_per_pass=2.5)
    with pytest.raises(TypeError, match="booleans"):
        with components.ablated(model, None, np.ones(8)):
            pass
    with pytest.raises(ValueError, match="8 booleans"):
        with components.ablated(model, None, np.ones(7, dtype=bool)):
            pass
    with pytest.raises(ValueError, match="means"):
        with components.ablated(model, None, np.ones(8, dtype=bool), ablation="mean"):
            pass
    game = components.head_game(model, IDS, score)
    with pytest.raises(ValueError, match=r"shape \(k, 8\)"):
        game(np.ones((2, 5), dtype=bool))


def test_next_token_task_scores_each_prompt_alone():
    from tiny_lm import tiny_lm

    model, tokenizer = tiny_lm()
    prompts = ["the cat sat on the", "a dog", "one two three four five six"]
    answers = [" mat", " barked", " seven"]
    task = components.NextTokenTask(tokenizer, prompts, answers)
    scores = task(model, task.batch)
    with torch.no_grad():
        for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
            ids = torch.tensor([tokenizer(p, add_special_tokens=False)["input_ids"]])
            target = tokenizer(a, add_special_tokens=False)["input_ids"][0]
            alone = model(ids).logits[0, -1].log_softmax(-1)[target]
            assert float(scores[i]) == pytest.approx(float(alone), abs=1e-4)
    assert 0.0 <= task.accuracy(model) <= 1.0
    # Several masks per pass on a padded batch (zero and mean ablation) = one at a time.
    masks = np.random.default_rng(0).random((5, 4)) < 0.5
    for ablation in ("zero", "mean"):
        one = components.head_game(model, task.batch, task, ablation=ablation)
        three = components.head_game(model, task.batch, task, ablation=ablation, masks_per_pass=3)
        np.testing.assert_allclose(three(masks), one(masks), atol=1e-5)
        assert np.ptp(one(masks)) > 0  # the masks change the score: the check can fail
    game = components.head_game(model, task.batch, task, masks_per_pass=3)
    assert game.per_example and game.full_value == pytest.approx(
        float(scores.detach().mean()), abs=1e-5
    )
    with pytest.raises(ValueError, match="one answer per prompt"):
        components.NextTokenTask(tokenizer, prompts, answers[:2])


def brute_best(inter, size, maximize=True):
    n = inter.n_features
    best = None
    for combo in itertools.combinations(range(n), size):
        mask = np.zeros(n, dtype=bool)
        mask[list(combo)] = True
        value = inter.predict(mask) * (1 if maximize else -1)
        if best is None or value > best[0] + 1e-12:
            best = (value, combo)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_best_subset_exact_and_search(seed):
    rng = np.random.default_rng(seed)
    n = 10
    terms = {}
    for _ in range(12):
        size = int(rng.integers(1, 4))
        terms[tuple(sorted(rng.choice(n, size, replace=False).tolist()))] = float(rng.normal())
    inter = psx.Interactions.from_mobius(terms, n_features=n)
    for size in (2, 5, 8):
        for maximize in (True, False):
            chosen = best_subset(inter, size, maximize=maximize)
            assert len(chosen) == size
            value, _ = brute_best(inter, size, maximize)
            mask = np.zeros(n, dtype=bool)
            mask[chosen] = True
            assert inter.predict(mask) * (1 if maximize else -1) == pytest.approx(value, abs=1e-9)
            # The search path (greedy removal and swaps) is never worse than its greedy start.
            searched = best_subset(inter, size, maximize=maximize, exact_limit=1)
            mask_s = np.zeros(n, dtype=bool)
            mask_s[searched] = True
            greedy = np.ones(n, dtype=bool)
            greedy[greedy_removal(inter, n - size, maximize=maximize)] = False
            sign = 1 if maximize else -1
            assert sign * inter.predict(mask_s) >= sign * inter.predict(greedy) - 1e-12


def test_prune_keeps_a_circuit_a_marginal_ranking_splits():
    # Heads 0+1 only work together (a circuit); 2..5 each help a little alone; 6 and 7
    # are redundant copies (either suffices). Keep 4: the circuit, one copy, one helper.
    terms = {(0, 1): 3.0, (6,): 1.5, (7,): 1.5, (6, 7): -1.5}
    terms.update({(i,): 0.8 - 0.1 * i for i in range(2, 6)})
    n = 60  # C(60, 4) > 100,000 subsets: the greedy-and-swap path, not enumeration
    inter = psx.Interactions.from_mobius(terms, n_features=n)
    kept = components.prune(inter, 4)
    assert set(kept) >= {0, 1} and len(set(kept) & {6, 7}) == 1 and 2 in kept
    exact = best_subset(inter, 4, exact_limit=10**6)
    assert inter.predict(np.isin(np.arange(n), kept)) == pytest.approx(
        inter.predict(np.isin(np.arange(n), exact)), abs=1e-12
    )
    marginal = np.argsort(-inter.first_order("shapley"), kind="stable")[:4]
    mask = np.zeros(n, dtype=bool)
    mask[marginal] = True
    pruned = np.zeros(n, dtype=bool)
    pruned[kept] = True
    assert inter.predict(pruned) > inter.predict(mask) + 0.5
    with pytest.raises(ValueError, match="at most 60"):
        components.prune(inter, 61)


def test_captum_face_exact_shapley_on_grid():
    model = tiny_llama()
    attr = psx.ProxySPEXHeadAttribution(model, score, max_order=8, random_state=0)
    grid = attr.attribute(IDS)  # 2**8 masks: the exact transform
    assert grid.shape == (2, 4)
    game = components.head_game(model, IDS, score)
    truth = shapley(game(all_masks(8)), 8)
    np.testing.assert_allclose(grid.reshape(-1).numpy(), truth, atol=1e-5)
    inter = attr.last_interactions
    assert inter.feature_names[3] == "L0.H3"
    some = psx.SPEXHeadAttribution(model, score, heads=[(1, 0), (1, 1), (0, 2)], random_state=0)
    part = some.attribute(IDS)
    assert torch.isnan(part).sum() == 5 and not torch.isnan(part[1, 0])
    with pytest.raises(ValueError, match="fingerprint"):
        attr.attribute_interactions(IDS, cache="/tmp/never-written.sqlite")


def test_plot_heads_draws_the_grid_and_refuses_other_names():
    model = tiny_llama()
    attr = psx.ProxySPEXHeadAttribution(model, score, random_state=0)
    attr.attribute(IDS)
    _fig, ax = psx.plots.heads(attr.last_interactions, k=3)
    assert ax.images[0].get_array().shape == (2, 4)
    assert len(ax.patches) == 3
    with pytest.raises(ValueError, match="head name"):
        psx.plots.heads(psx.Interactions.from_mobius({(0,): 1.0}, n_features=2))


@pytest.mark.llm
def test_smollm2_answers_the_recall_task_and_has_270_heads():
    from proxyspex_captum.examples import RECALL_TASK

    model, tokenizer = psx.models.load_model()
    prompts, answers = zip(*RECALL_TASK, strict=True)
    task = components.NextTokenTask(tokenizer, prompts, answers)
    with torch.no_grad():
        logits = task.logits(model, task.batch)
    rows = torch.arange(len(logits))
    right = logits[rows, task.answer_ids]
    logits[rows, task.answer_ids] = -torch.inf
    # Every prompt is answered right, by a margin no rounding can flip.
    assert float((right - logits.max(-1).values).min()) > 0.05
    with pytest.raises(ValueError, match="whitespace"):  # a byte-level BPE's bare space
        components.NextTokenTask(tokenizer, ["The capital of France is"], [" "])
    heads = components.attention_heads(model)
    assert len(heads) == 270 and heads[-1].name == "L29.H8"
    some = heads[:18]
    batched = components.head_game(model, task.batch, task, heads=some, masks_per_pass=3)
    single = components.head_game(model, task.batch, task, heads=some)
    masks = np.random.default_rng(0).random((3, 18)) < 0.5
    np.testing.assert_allclose(batched(masks), single(masks), atol=1e-4)


def test_review_fixes_modes_rows_gradients_means():
    model = tiny_llama()
    # A training model with a frozen (eval) part keeps both modes after a game.
    model.train()
    model.model.layers[0].eval()
    game = components.head_game(model, IDS, score)
    game(np.ones((1, 8), dtype=bool))
    assert model.training and not model.model.layers[0].training
    assert model.model.layers[1].training
    model.eval()

    # Rows come from input_ids: flags in the mapping do not change the gradient path.
    def score_kw(model, batch):
        return model(**batch).logits[:, -1].float().log_softmax(-1)[:, 2]

    plain = components.gradient_importance(model, {"input_ids": IDS}, score_kw)
    flagged = components.gradient_importance(
        model, {"input_ids": IDS, "use_cache": False}, score_kw
    )
    np.testing.assert_allclose(flagged, plain, rtol=1e-5)
    np.testing.assert_allclose(components.gradient_importance(model, IDS, score), plain, rtol=1e-5)
    game = components.head_game(model, {"input_ids": IDS, "use_cache": False}, score_kw)
    assert game.per_example
    # Called inside torch.no_grad(), gradients are still taken.
    with torch.no_grad():
        np.testing.assert_allclose(
            components.gradient_importance(model, IDS, score), plain, rtol=1e-5
        )
    with pytest.raises(ValueError, match="one per example"):
        components.gradient_importance(model, IDS, lambda m, b: score(m, b)[None])
    # Means of another model's shape are refused before the forward pass.
    bad = {0: torch.zeros(3, 4), 1: torch.zeros(4, 4)}
    with pytest.raises(ValueError, match=r"means\[0\]"):
        with components.ablated(model, None, np.zeros(8, dtype=bool), ablation="mean", means=bad):
            pass
    with pytest.raises(TypeError, match="pairs"):
        components.head_game(model, IDS, score, heads=[5])


def test_next_token_task_refuses_a_whitespace_first_token():
    from tiny_lm import tiny_lm

    _, tokenizer = tiny_lm()
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        components.NextTokenTask(tokenizer, ["the cat"], [" "])


class _Counting(torch.nn.Module):
    """A model that counts its forward passes (to prove a refusal came before any)."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.calls = model, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_a_score_for_the_whole_batch_is_the_masks_value():
    model = tiny_llama()
    total = components.head_game(model, IDS, lambda m, b: score(m, b).sum())  # one number
    each = components.head_game(model, IDS, score)  # one per example: their mean
    masks = np.array([[True] * 8, [False, True] * 4, [True] * 4 + [False] * 4])
    # It failed on its first mask (after the forward pass) with numpy's AxisError.
    np.testing.assert_allclose(total(masks), 2 * each(masks), rtol=1e-6)


def test_a_score_of_the_wrong_length_is_refused_not_reshaped():
    model = tiny_llama()
    first_only = torch.tensor([2, 2])  # not tiled with the batch: 2 scores for 4 rows

    def score_untiled(m, ids):
        return m(ids).logits[: len(first_only), -1].log_softmax(-1)[:, 2]

    game = components.head_game(model, IDS, score_untiled, masks_per_pass=2)
    with pytest.raises(ValueError, match="2 scores for a batch of 4 rows"):
        game(np.array([[True] * 8, [False] * 8]))


def test_a_wrapped_projection_keeps_its_layers_heads():
    """A LoRA-shaped wrapper around layer 0's o_proj: its heads used to vanish."""

    class LoraLike(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base_layer, self.in_features = base, base.in_features
            self.lora = torch.nn.Linear(base.in_features, base.out_features, bias=False)
            torch.nn.init.zeros_(self.lora.weight)

        def forward(self, x):
            return self.base_layer(x) + self.lora(x)

    model = tiny_llama(layers=3)
    plain = components.head_game(model, IDS, score)
    wrapped = copy.deepcopy(model)
    attention = wrapped.model.layers[0].self_attn
    attention.o_proj = LoraLike(attention.o_proj)
    heads = components.attention_heads(wrapped)
    assert [h.name for h in heads] == [f"L{i}.H{h}" for i in range(3) for h in range(4)]
    masks = np.ones((3, 12), dtype=bool)
    masks[1, 1] = masks[2, 6] = False  # L0.H1 (in the wrapped layer), L1.H2
    np.testing.assert_allclose(components.head_game(wrapped, IDS, score)(masks), plain(masks))


def test_value_heads_wider_than_head_dim_are_split_by_their_count():
    """MiMo's attention: o_proj reads n_heads x v_head_dim, not n_heads x head_dim."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "MiMoV2FlashConfig"):
        pytest.skip("this transformers has no MiMo-V2-Flash")
    config = transformers.MiMoV2FlashConfig(
        vocab_size=40,
        hidden_size=16,
        intermediate_size=32,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        v_head_dim=4,
        n_routed_experts=2,
        num_experts_per_tok=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.MiMoV2FlashForCausalLM(config).eval()
    heads = components.attention_heads(model)
    assert len(heads) == 8  # was 4: each "head" covered two
    game = components.head_game(model, IDS, score)
    clone = copy.deepcopy(model)
    projection = [m for m in clone.modules() if hasattr(m, "o_proj")][1].o_proj
    with torch.no_grad():
        projection.weight[:, 4:8] = 0.0  # L1.H1's 4 value columns
    keep = np.ones((1, 8), dtype=bool)
    keep[0, 5] = False
    np.testing.assert_allclose(game(keep), score(clone, IDS).mean().item(), rtol=1e-5)


def test_head_attribution_refuses_its_arguments_before_running_the_model(tmp_path):
    model = _Counting(tiny_llama())
    attr = psx.ProxySPEXHeadAttribution(model, score, ablation="mean")
    with pytest.raises(ValueError, match="fingerprint"):
        attr.attribute(IDS, cache=tmp_path / "never.sqlite")
    with pytest.raises(ValueError, match="at least 100"):
        attr.attribute(IDS, n_samples=5)
    assert model.calls == 0  # the intact score and the means took 2 passes first
    with pytest.raises(ValueError, match="mean_batch is the reference of mean ablation"):
        components.head_game(model, IDS, score, mean_batch=IDS)  # zero ablation ignored it


def test_heads_given_as_a_generator_serve_every_call():
    model = tiny_llama()
    attr = psx.SPEXHeadAttribution(model, score, heads=((1, h) for h in range(4)), max_order=4)
    first, second = attr.attribute(IDS), attr.attribute(IDS)  # 2**4 masks: exact, twice
    torch.testing.assert_close(first, second, equal_nan=True)


def test_subset_search_needs_no_mobius_expansion():
    """One order-19 Fourier term: its Möbius expansion (2**19 sets) is refused, predict is not."""
    from proxyspex_captum.core import Interactions

    inter = Interactions({(): 1.0, (0,): -2.0, tuple(range(1, 20)): 0.5}, n_features=60)
    kept = greedy_removal(inter, 3, maximize=False)  # raised ExpansionTooLarge
    exact = best_subset(inter, 3, maximize=False)  # C(60, 3) subsets: all scored

    def value(subset):
        return float(inter.predict(np.isin(np.arange(60), subset)[None])[0])

    assert len(kept) == 3 and value(kept) >= value(exact) - 1e-12
    assert len(best_subset(inter, 10)) == 10  # the search (C(60, 10) is too many to score)


def test_greedy_removal_breaks_ties_by_evidence_then_by_index():
    """Features in no term tie exactly: the first of them is taken, not a rounding's choice."""
    inter = psx.Interactions.from_mobius({(1, 2): 1.0}, n_features=6)
    assert greedy_removal(inter, 3, maximize=True).tolist() == [0, 3, 4]
    assert greedy_removal(inter, 3, maximize=False).tolist() == [1, 2, 0]
    assert greedy_removal(inter, 6, maximize=False).tolist() == [1, 2, 0, 3, 4, 5]
