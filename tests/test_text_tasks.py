"""Text units and the value functions the command line explains (a tiny model; SmolLM2: llm)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_lm import tiny_lm

import proxyspex_captum as psx
from proxyspex_captum.text_tasks import TextTask, split_units


@pytest.fixture(scope="module")
def tiny_llm():
    model, tokenizer = tiny_lm()
    return psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)


@pytest.mark.parametrize(
    ("task", "extra"),
    [("sentiment", {}), ("answer", {"question": "Is it good?", "answer": " yes it is"})],
)
def test_progress_moves_after_every_forward_pass(tiny_llm, task, extra):
    words = "the plot was not bad at all".split()
    text_task = TextTask(words, task=task, **extra)
    seen: list[int] = []
    values = text_task.value_function(tiny_llm, batch_size=2, on_batch=seen.append)
    masks = np.random.default_rng(0).random((5, len(words))) < 0.5
    out = values(masks)
    assert out.shape == (5,) and np.isfinite(out).all()
    assert seen == [2, 2, 1]  # one update per forward pass, not one per request
    # Batching does not change the values.
    one_pass = text_task.value_function(tiny_llm, batch_size=5)(masks)
    np.testing.assert_allclose(out, one_pass, rtol=1e-4, atol=1e-5)


def test_public_log_probs_checks_its_input(tiny_llm):
    inp = TextTask(["not", "bad"], task="answer", question="Good?").interpretable_input()
    masks = np.ones((1, 2), dtype=bool)
    target = tiny_llm.target_tokens(inp, " yes")
    per_token = tiny_llm.log_probs(masks, inp, target, per_token=True)
    assert per_token.shape == (1, 1 + len(target))
    np.testing.assert_allclose(per_token[:, 0], per_token[:, 1:].sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(tiny_llm.log_probs(masks, inp, target), per_token[:, 0])
    with pytest.raises(ValueError, match="target is empty"):
        tiny_llm.log_probs(masks, inp, [])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        tiny_llm.log_probs(masks, inp, target, batch_size=0)
    with pytest.raises(ValueError, match="gen_args applies to generation only"):
        tiny_llm.target_tokens(inp, " yes", gen_args={"max_new_tokens": 3})


def test_word_and_sentence_units():
    assert split_units("  Not bad.  Not bad at all!  ", "sentence") == [
        "Not bad.",
        "Not bad at all!",
    ]
    assert split_units("a\tb\nc", "word") == ["a", "b", "c"]
    # Ends after a closing quote or bracket, at 。 and at a blank line (each was one unit).
    for text, sentences in [
        ('He said "Stop." She left.', ['He said "Stop."', "She left."]),
        ("(It was late.) We went home.", ["(It was late.)", "We went home."]),
        ("今日は晴れ。明日は雨。", ["今日は晴れ。", "明日は雨。"]),
        ("Title\n\nFirst point. Second one.", ["Title", "First point.", "Second one."]),
    ]:
        assert split_units(text, "sentence") == sentences
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        split_units("a b", "token")
    with pytest.raises(ValueError, match="Unknown unit"):
        split_units("a b", "letter")


@pytest.mark.llm
@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ("My family 👨\u200d👩\u200d👧 came", " 👨\u200d👩\u200d👧"),  # people joined by ZWJs
        ("Go 🇫🇷 team", " 🇫🇷"),  # a flag: two regional indicators
        ("I ❤\ufe0f it", " ❤\ufe0f"),  # a heart with its emoji variation selector
        ("Thumbs 👍🏽 up", " 👍🏽"),  # a skin-tone modifier
        ("cafe\u0301 open", "\u0301"),  # a combining accent stays with its letter
    ],
)
def test_token_units_keep_grapheme_clusters_whole(smollm2_tokenizer, text, whole):
    units = split_units(text, "token", smollm2_tokenizer)
    assert "".join(units) == text
    assert any(whole in unit for unit in units)
    for unit in units:  # no unit is a lone joiner, selector, modifier or accent
        assert unit.strip() and unit[0] not in "\u200d\ufe0f\u0301\U0001f3fd"


def test_token_units_keep_their_spaces_with_a_sentencepiece_decoder():
    """Llama 2's and Mistral's decoders strip a decoding's leading space.

    Decoded one token at a time, every word lost its space, and the model read
    the kept units run together ("Notbadatall").
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "▁Not": 1, "▁bad": 2, "▁at": 3, "▁all": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    backend.decoder = decoders.Sequence(  # as in Llama 2's tokenizer.json
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    units = split_units("Not bad at all", "token", tokenizer)
    assert units == ["Not", " bad", " at", " all"]
    task = TextTask(units, unit="token")
    assert "Not bad at all" in task.interpretable_input().to_model_input()


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    return psx.models.load_model()[1]


def test_attribute_shows_progress_per_forward_pass(tiny_llm, capsys):
    from captum.attr import TextTemplateInput

    inp = TextTemplateInput("Review: {} {} {}. Sentiment:", values=["not", "bad", "film"])
    result = tiny_llm.attribute(
        inp, target=" good", n_samples=8, perturbations_per_eval=3, show_progress=True
    )
    assert result.interactions.n_queries == 8  # 2**3 masks: exact
    assert "8/8" in capsys.readouterr().err


def test_attribute_fills_every_forward_pass():
    from captum.attr import TextTemplateInput

    model, tokenizer = tiny_lm()
    sizes: list[int] = []
    hook = model.register_forward_hook(
        lambda module, args, kwargs, out: sizes.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    inp = TextTemplateInput("Review: {} {} {} {} {} {} {}.", values="a b c d e f g".split())
    try:
        llm.attribute(inp, target=" good", n_samples=100, perturbations_per_eval=10)
    finally:
        hook.remove()
    # 2**7 > 100: sampled, ten full passes, after one pass over the prefix all prompts share
    assert sizes == [1] + [10] * 10


def test_true_false_task_is_the_gap_of_the_first_answer_token(tiny_llm):
    words = "the host opens an empty door".split()
    task = TextTask(words, task="truefalse", question="Should you switch?")
    masks = np.random.default_rng(3).random((6, len(words))) < 0.5
    values = task.value_function(tiny_llm)(masks)
    # By hand: the raw prompt in chat format, then log p(True) - log p(False).
    from proxyspex_captum.examples import chat_prompt

    prompts = [
        chat_prompt(
            " ".join(w for w, keep in zip(words, row, strict=True) if keep)
            + "\n\nShould you switch?\nAnswer True or False."
        )
        for row in masks
    ]
    scores = tiny_llm.scorer.next_token_log_probs(prompts, ["True", "False"])
    np.testing.assert_allclose(values, scores[:, 0] - scores[:, 1], atol=1e-5)
    with pytest.raises(ValueError, match="needs a question"):
        TextTask(words, task="truefalse")


def test_a_task_without_an_answer_needs_a_local_model_to_generate_one(tiny_llm):
    task = TextTask(["not", "bad"], task="answer", question="Good?")
    with pytest.raises(ValueError, match="needs a local model"):
        task.value_function(tiny_llm.scorer)  # a scorer alone cannot generate
    assert task.value_function(tiny_llm)(np.ones((1, 2), dtype=bool)).shape == (1,)
    assert task.target_tokens is not None  # generated once, kept for the fingerprint
