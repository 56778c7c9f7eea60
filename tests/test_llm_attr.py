"""psx.LLMAttribution on the real SmolLM2-135M-Instruct (marked llm; CI runs them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import FeatureAblation, LLMAttributionResult, TextTemplateInput, TextTokenInput

import proxyspex_captum as psx
from proxyspex_captum.examples import NEGATION_REVIEW, chat_prompt, sentiment_template

pytestmark = pytest.mark.llm

WORDS = NEGATION_REVIEW.split()


@pytest.fixture(scope="module")
def smollm2():
    return psx.models.load_model()


@pytest.fixture()
def review():
    return TextTemplateInput(sentiment_template(len(WORDS)), values=WORDS)


class ForwardCounter:
    """Counts the model's forward passes (a forward hook)."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


def test_batched_prompts_give_captums_one_prompt_values(smollm2, review):
    model, tokenizer = smollm2
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)
    target = torch.tensor(tokenizer.encode(" positive", add_special_tokens=False))
    masks = np.random.default_rng(0).random((6, len(WORDS))) < 0.5  # prompts of unequal length
    token_input = TextTokenInput("The plot was not dull.", tokenizer)
    token_masks = np.random.default_rng(1).random((4, token_input.n_itp_features)) < 0.5
    for inp, mask_rows in ((review, masks), (token_input, token_masks)):
        batched = torch.as_tensor(llm.log_probs(mask_rows, inp, target, batch_size=4))
        one_by_one = torch.stack(
            [
                llm._forward_func_by_seq(torch.as_tensor(m[None]).long(), inp, target)
                for m in mask_rows
            ]
        )
        torch.testing.assert_close(batched, one_by_one.float(), atol=1e-4, rtol=1e-5)


def test_proxyspex_explains_a_negated_review(smollm2, review):
    model, tokenizer = smollm2
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    result = llm.attribute(review, target=" positive", n_samples=300)

    assert isinstance(result, psx.LLMInteractionAttributionResult)
    assert isinstance(result, LLMAttributionResult)
    assert result.seq_attr.shape == (len(WORDS),)
    assert result.token_attr is None
    assert result.input_tokens == WORDS
    assert result.interactions.feature_names == WORDS
    assert result.interactions.n_queries == 300
    assert result.seq_attr.numpy() == pytest.approx(result.interactions.first_order(), abs=1e-5)
    _, ax = result.plot_seq_attr()
    assert [t.get_text() for t in ax.get_xticklabels()] == WORDS
    assert all(isinstance(name, tuple) for name, _ in result.top_interactions(5))

    # The interactions reproduce masked outputs they were not fitted on.
    held_out = np.random.default_rng(12345).random((200, len(WORDS))) < 0.5
    target = llm.target_tokens(review, " positive")
    truth = llm.log_probs(held_out, review, target, batch_size=32)
    assert psx.metrics.r2_score(truth, result.interactions.predict(held_out)) >= 0.5


def test_generated_target_token_input_and_per_token_results(smollm2):
    model, tokenizer = smollm2
    inp = TextTokenInput(chat_prompt("Say one word about cats."), tokenizer)
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    result = llm.attribute(
        inp, gen_args={"max_new_tokens": 3, "do_sample": False}, n_samples=100, per_token=True
    )
    n = inp.n_itp_features
    assert len(result.output_tokens) == 3
    assert result.seq_attr.shape == (n,)
    assert result.token_attr.shape == (3, n)
    assert len(result.token_interactions) == 3
    assert result.interactions.n_features == n
    _, ax = result.plot_token_attr()
    assert len(ax.get_yticklabels()) == 3


def test_spex_on_grouped_template_segments(smollm2):
    model, tokenizer = smollm2
    values = ["The food", "was", "not", "good", ", sadly", "."]
    inp = TextTemplateInput(
        chat_prompt("Review: {} {} {} {} {} {}\nIs it positive?"),
        values=values,
        mask=[0, 1, 2, 2, 3, 4],  # "not good" is one feature
    )
    llm = psx.LLMAttribution(psx.SPEXAttribution(model, random_state=0), tokenizer)
    counter = ForwardCounter(model)
    result = llm.attribute(inp, target="No", perturbations_per_eval=8)
    counter.handle.remove()
    assert result.interactions.n_features == 5  # all 2**5 masks: exact
    assert result.interactions.feature_names == ["The food", "was", "not good", ", sadly", "."]
    assert result.seq_attr.shape == (6,)  # Captum's format_attr spreads groups over values
    assert result.seq_attr[2] == result.seq_attr[3]
    assert counter.calls == 5  # 32 prompts, 8 per forward pass; one pass for their shared prefix


def test_captum_token_by_token_path_agrees(smollm2):
    model, tokenizer = smollm2
    inp = TextTemplateInput(chat_prompt("{} {} {}"), values=["Not", "a", "bad day"])
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)
    batched = llm.attribute(inp, target="Yes")
    token_by_token = llm.attribute(inp, target="Yes", forward_in_tokens=True)
    torch.testing.assert_close(batched.seq_attr, token_by_token.seq_attr, atol=1e-4, rtol=1e-4)


def test_captums_own_methods_still_work(smollm2):
    model, tokenizer = smollm2
    inp = TextTemplateInput(chat_prompt("{} {}"), values=["Hello", "there"])
    result = psx.LLMAttribution(FeatureAblation(model), tokenizer).attribute(inp, target="Hi")
    assert type(result) is LLMAttributionResult
    assert result.seq_attr.shape == (2,)


def test_bad_requests_fail_before_any_forward_pass(smollm2, review):
    model, tokenizer = smollm2
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)
    counter = ForwardCounter(model)
    try:
        with pytest.raises(ValueError, match="at least 100"):
            llm.attribute(review, target=" positive", n_samples=20)
        with pytest.raises(ValueError, match="num_trials"):
            llm.attribute(review, target=" positive", num_trials=3)
        with pytest.raises(TypeError, match="n_sample"):
            llm.attribute(review, target=" positive", n_sample=200)
        with pytest.raises(ValueError, match="at least 1"):
            llm.attribute(review, target=" positive", perturbations_per_eval=0)
        with pytest.raises(ValueError, match="empty prompt"):
            llm.attribute(TextTemplateInput("{}{}", values=["Hi", " there"]), target=" yes")
    finally:
        counter.handle.remove()
    assert counter.calls == 0


def test_two_processes_converting_the_model_at_once_both_load(tmp_path):
    """The one-time GGUF conversion raced: the second rename failed (a worker pool's first run)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROXYSPEX_CACHE": str(tmp_path), "TRANSFORMERS_VERBOSITY": "error"}
    code = "from proxyspex_captum.models import smollm2_folder; print(smollm2_folder().name)"
    runs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert [p.name for p in tmp_path.iterdir()] == [outputs[0].split()[-1]]  # no staging left
