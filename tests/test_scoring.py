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
