"""The local scorer: batched log-probabilities, with and without the prefix key/value cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from tiny_lm import tiny_lm

from proxyspex_captum.scoring import HFScorer


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(chaotic=True)  # large weights: any misplaced token shows


def _prompts(rng, n_prompts=23):
    """Prompts sharing a 9-token header, then varied lengths (padding in the middle)."""
    header = [101, 7, 8, 9, 10, 11, 12, 13, 14]
    return [
        header + rng.integers(1000, 2000, size=rng.integers(1, 12)).tolist()
        for _ in range(n_prompts)
    ]


def _one_by_one(model, prompt, target):
    """The reference: each prompt alone, unpadded, uncached."""
    ids = torch.tensor([prompt + target])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    start = len(prompt) - 1
    per_token = [log_probs[start + t, token].item() for t, token in enumerate(target)]
    return np.array([sum(per_token), *per_token]), log_probs[-1]


@pytest.mark.parametrize("prefix_cache", [False, True])
def test_target_log_probs_equal_each_prompt_alone(lm, prefix_cache):
    model, tokenizer = lm
    prompts = _prompts(np.random.default_rng(0))
    target = [2000, 2001, 2002]
    scorer = HFScorer(model, tokenizer, batch_size=5, prefix_cache=prefix_cache)
    scores = scorer.target_log_probs(prompts, target)
    expected = np.array([_one_by_one(model, p, target)[0] for p in prompts])
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    usage = scorer.usage
    assert usage.prompts == len(prompts)
    assert usage.prompt_tokens == sum(len(p) for p in prompts)
    assert (usage.cached_prompt_tokens > 0) == prefix_cache


def test_next_token_log_probs_with_a_prefix_that_shrinks(lm):
    model, tokenizer = lm
    rng = np.random.default_rng(1)
    first = [[101, 7, 8, 9, 10, 11, *rng.integers(1000, 2000, 4).tolist()] for _ in range(4)]
    later = [[101, 7, 8, *rng.integers(1000, 2000, 5).tolist()] for _ in range(6)]
    scorer = HFScorer(model, tokenizer, batch_size=4)
    scores = np.concatenate(
        [scorer.next_token_log_probs(first, [5, 6]), scorer.next_token_log_probs(later, [5, 6])]
    )
    expected = np.array([_one_by_one(model, p, [])[1][[5, 6]].numpy() for p in first + later])
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)


def test_prompts_that_share_nothing_and_one_token_prompts(lm):
    model, tokenizer = lm
    prompts = [[5], [6, 7], [8, 9, 10]]
    scores = HFScorer(model, tokenizer).target_log_probs(prompts, [11])
    expected = np.array([_one_by_one(model, p, [11])[0] for p in prompts])
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)


def test_threads_share_one_scorer(lm):
    model, tokenizer = lm
    prompts = _prompts(np.random.default_rng(2), 40)
    serial = HFScorer(model, tokenizer, batch_size=4).target_log_probs(prompts, [3, 4])
    scorer = HFScorer(model, tokenizer, batch_size=4)
    with ThreadPoolExecutor(4) as pool:
        chunks = [prompts[i : i + 5] for i in range(0, 40, 5)]
        parts = list(pool.map(lambda chunk: scorer.target_log_probs(chunk, [3, 4]), chunks))
    np.testing.assert_allclose(np.concatenate(parts), serial, atol=1e-4, rtol=0)
    assert scorer.usage.prompts == 40


def test_text_prompts_targets_and_candidates(lm):
    model, tokenizer = lm
    scorer = HFScorer(model, tokenizer)
    texts = ["the film was good", "the film was bad and long"]
    by_text = scorer.target_log_probs(texts, " indeed")
    ids = [tokenizer(t)["input_ids"] for t in texts]
    target = tokenizer.encode(" indeed", add_special_tokens=False)
    np.testing.assert_allclose(by_text, scorer.target_log_probs(ids, target), atol=1e-5)
    first = tokenizer.encode(" yes", add_special_tokens=False)[0]
    np.testing.assert_allclose(
        scorer.next_token_log_probs(texts, [" yes"]), scorer.next_token_log_probs(ids, [first])
    )


def test_refusals(lm):
    model, tokenizer = lm
    with pytest.raises(ValueError, match="batch_size"):
        HFScorer(model, tokenizer, batch_size=0)
    scorer = HFScorer(model, tokenizer)
    with pytest.raises(ValueError, match="target is empty"):
        scorer.target_log_probs([[5, 6]], [])
    with pytest.raises(ValueError, match="empty"):
        scorer.next_token_log_probs([[]], [5])
    with pytest.raises(ValueError, match="tokenizer"):
        HFScorer(model).target_log_probs(["text"], [5])
    assert scorer.target_log_probs([], [5]).shape == (0, 2)


def test_prompts_of_another_template_get_their_own_prefix(lm):
    model, tokenizer = lm
    rng = np.random.default_rng(4)
    first = [[101, 7, 8, 9, *rng.integers(1000, 2000, 3).tolist()] for _ in range(4)]
    other = [[300, 301, 302, 303, *rng.integers(1000, 2000, 3).tolist()] for _ in range(4)]
    scorer = HFScorer(model, tokenizer, batch_size=4)
    scores = np.concatenate(
        [scorer.target_log_probs(first, [5]), scorer.target_log_probs(other, [5])]
    )
    expected = np.array([_one_by_one(model, p, [5])[0] for p in first + other])
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert scorer.usage.cached_prompt_tokens == 4 * 4 + 4 * 4  # both templates cached


def _tiny(config_class, model_class, **options):
    import transformers

    config = getattr(transformers, config_class)(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        initializer_range=1.0,
        **options,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return getattr(transformers, model_class)(config).eval()


@pytest.mark.parametrize(
    ("config_class", "model_class", "options"),
    [
        (
            "Gemma3TextConfig",
            "Gemma3ForCausalLM",
            {"head_dim": 8, "sliding_window": 4, "layer_types": ["sliding_attention"] * 2},
        ),
        (
            "Qwen2Config",
            "Qwen2ForCausalLM",
            {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 0},
        ),
    ],
)
def test_sliding_window_models_score_whole_prompts(config_class, model_class, options):
    """A window counts the padding between a cached prefix and the rest: values were off by 2."""
    model = _tiny(config_class, model_class, **options)
    header = [1, 7, 8, 9, 10, 11, 12, 13]  # longer than the window
    prompts = [[*header, 20, 21], [*header, 22], [*header, 23, 24, 25], [1, 7, 26]]
    scorer = HFScorer(model, batch_size=4)
    expected = np.array([_one_by_one(model, p, [3, 4])[0] for p in prompts])
    np.testing.assert_allclose(scorer.target_log_probs(prompts, [3, 4]), expected, atol=1e-4)
    assert not scorer.prefix_cache and scorer.usage.cached_prompt_tokens == 0


def test_the_prefix_cache_follows_the_weights(lm):
    model, tokenizer = lm
    model = type(model)(model.config).eval()  # a copy of its own, changed below
    model.load_state_dict(lm[0].state_dict())
    prompts = _prompts(np.random.default_rng(5), 6)
    scorer = HFScorer(model, tokenizer, batch_size=3)
    scorer.target_log_probs(prompts, [3])
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.mul_(1.5)  # in place: same storage
    expected = np.array([_one_by_one(model, p, [3])[0] for p in prompts])
    np.testing.assert_allclose(scorer.target_log_probs(prompts, [3]), expected, atol=1e-4)
    model.to(torch.float64)  # new storage
    expected = np.array([_one_by_one(model, p, [3])[0] for p in prompts])
    np.testing.assert_allclose(scorer.target_log_probs(prompts, [3]), expected, atol=1e-4)
    scorer.reset_prefix_cache()
    np.testing.assert_allclose(scorer.target_log_probs(prompts, [3]), expected, atol=1e-4)
    with torch.no_grad():  # through .data the version does not move: reset_prefix_cache
        model.model.layers[0].self_attn.v_proj.weight.data.mul_(3.0)
    scorer.reset_prefix_cache()
    expected = np.array([_one_by_one(model, p, [3])[0] for p in prompts])
    np.testing.assert_allclose(scorer.target_log_probs(prompts, [3]), expected, atol=1e-4)


def test_a_longer_prefix_of_another_template_is_cached_again(lm):
    model, tokenizer = lm
    rng = np.random.default_rng(6)
    shared = [101, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    first = [shared + rng.integers(1000, 2000, 3).tolist() for _ in range(3)]
    other = [
        shared[:2] + [300 + i for i in range(8)] + rng.integers(1000, 2000, 3).tolist()
        for _ in range(3)
    ]
    scorer = HFScorer(model, tokenizer, batch_size=3)
    for prompts in (first, other, first):
        before = scorer.usage.cached_prompt_tokens
        scores = scorer.target_log_probs(prompts, [5])
        expected = np.array([_one_by_one(model, p, [5])[0] for p in prompts])
        np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
        assert scorer.usage.cached_prompt_tokens - before == 3 * 10  # not cropped to 2


def test_ids_and_candidates_are_checked_before_any_forward_pass(lm):
    model, tokenizer = lm
    scorer = HFScorer(model, tokenizer, batch_size=1)
    vocabulary = model.get_input_embeddings().num_embeddings
    bad_calls = [
        (lambda: scorer.next_token_log_probs([[5, 6]], [-1]), "outside the model's vocabulary"),
        (lambda: scorer.next_token_log_probs([[5, 6]], [vocabulary]), "outside"),
        (lambda: scorer.next_token_log_probs([[5, 6]], [3.9]), "integer token ids"),
        (lambda: scorer.next_token_log_probs([[5, 6]], [5, 5]), "the same token"),
        (lambda: scorer.target_log_probs([[5, 6]], [[3, 4], [5, 6]]), "The target must be"),
        (lambda: scorer.target_log_probs([[5, 6]], [-1]), "The target holds token id -1"),
        (lambda: scorer.target_log_probs([[1.7, 7.9]], [3]), "A prompt must be"),
        (lambda: scorer.target_log_probs([[5, 6], [7], [vocabulary + 3]], [3]), "outside"),
        (lambda: scorer.target_log_probs([[5, 6], [7], []], [3]), "empty"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            call()
    assert scorer.usage.prompts == 0 and scorer.usage.cached_prompt_tokens == 0
    # Text candidates read one token each: a longer one is refused, not cut to its first.
    long_word = next(
        w
        for w in (" unenjoyable", " unlikeable", " disappointing")
        if len(tokenizer.encode(w, add_special_tokens=False)) > 1
    )
    with pytest.raises(ValueError, match="next-token score reads one"):
        scorer.next_token_log_probs([[5, 6]], [" yes", long_word])


def test_one_prompt_batches_run_once_each_and_a_tokenizers_row_is_taken(lm):
    """A lone prompt had re-cached itself: two forward passes each, nothing saved."""
    model, tokenizer = lm
    rng = np.random.default_rng(7)
    header = [101, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    prompts = [header + rng.integers(1000, 2000, 30).tolist() for _ in range(6)]
    passes = []
    handle = model.register_forward_hook(lambda module, args, out: passes.append(1))
    try:
        scorer = HFScorer(model, tokenizer, batch_size=1)
        scores = scorer.target_log_probs(prompts, [3])
    finally:
        handle.remove()
    assert len(passes) == len(prompts) + 1  # the first prompt's prefix, then one each
    expected = np.array([_one_by_one(model, p, [3])[0] for p in prompts])
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert scorer.usage.cached_prompt_tokens == 39 + 5 * 10
    as_row = scorer.target_log_probs([torch.tensor([prompts[0]])], torch.tensor([[3]]))
    np.testing.assert_allclose(as_row, expected[:1], atol=1e-4, rtol=0)
