"""What names an LLM explanation's values in a cache file, and Captum's inspection hook.

On the tiny test model (random weights, a real tokenizer): a cache file must
never hand one prompt's values to another (other feature groups, another
template function, edited weights), and must find its own again.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import TextTemplateInput
from tiny_lm import tiny_lm

import proxyspex_captum as psx

WORDS = ["not", "bad", "film"]


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


def _run(model, tokenizer, inp, cache, **kwargs):
    """``(prompts paid, attributions)`` of a ProxySPEX explanation of ``inp`` (8 masks: exact)."""
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    result = llm.attribute(inp, target=" good", n_samples=8, cache=cache, **kwargs)
    return result.usage.prompts, result.seq_attr


def test_other_feature_groups_do_not_share_a_cache_file(lm, tmp_path):
    model, tokenizer = lm
    cache = tmp_path / "values.sqlite"
    _run(model, tokenizer, TextTemplateInput("Review: {} {} {}", WORDS, mask=[0, 0, 1]), cache)
    # It read the first grouping's values with 0 model calls (other features, other values).
    with pytest.raises(ValueError, match="another value function"):
        _run(model, tokenizer, TextTemplateInput("Review: {} {} {}", WORDS, mask=[0, 1, 1]), cache)


def test_template_functions_are_told_apart_by_their_code(lm, tmp_path):
    model, tokenizer = lm
    cache = tmp_path / "values.sqlite"
    plain = lambda *v: "Review: " + " ".join(v)  # noqa: E731
    paid, first = _run(model, tokenizer, TextTemplateInput(plain, WORDS), cache)
    assert paid > 0
    same = lambda *v: "Review: " + " ".join(v)  # noqa: E731  (another object, the same code)
    paid, again = _run(model, tokenizer, TextTemplateInput(same, WORDS), cache)
    assert paid == 0  # found its values (a repr with an address never would)
    torch.testing.assert_close(again, first)
    other = lambda *v: "Review: " + " ".join(v) + " (sarcastic)"  # noqa: E731
    with pytest.raises(ValueError, match="another value function"):  # same qualified name
        _run(model, tokenizer, TextTemplateInput(other, WORDS), cache)


def test_an_edited_middle_layer_is_another_model(lm, tmp_path):
    model, tokenizer = lm
    cache = tmp_path / "values.sqlite"
    _run(model, tokenizer, TextTemplateInput("Review: {} {} {}", WORDS), cache)
    edited = copy.deepcopy(model)
    with torch.no_grad():  # neither the first nor the last tensor: they named the model
        edited.model.layers[0].self_attn.q_proj.weight.mul_(3.0)
    with pytest.raises(ValueError, match="another value function"):
        _run(edited, tokenizer, TextTemplateInput("Review: {} {} {}", WORDS), cache)


def test_inspect_forward_sees_each_prompt_and_its_probability(lm):
    model, tokenizer = lm
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    seen = []
    inp = TextTemplateInput("Review: {} {} {}", WORDS)
    llm.attribute(  # it failed on the first prompt: Captum indexed a 0-d tensor
        inp,
        target=" good",
        n_samples=8,
        forward_in_tokens=True,
        _inspect_forward=lambda prompt, response, probs: seen.append((prompt, response, probs)),
    )
    assert len(seen) == 8
    masks = np.array([[prompt.count(w) > 0 for w in WORDS] for prompt, _, _ in seen])
    assert len({tuple(m) for m in masks}) == 8  # every mask, each once
    full = next(probs for prompt, _, probs in seen if all(w in prompt for w in WORDS))
    log_p = llm.log_probs(np.ones((1, 3), dtype=bool), inp, llm.target_tokens(inp, " good"))
    assert len(full) == 1 and full[0] == pytest.approx(float(np.exp(log_p[0])), rel=1e-4)
    assert all(response.strip() == "good" for _, response, _ in seen)
