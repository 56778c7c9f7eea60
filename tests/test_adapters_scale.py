"""executor= and cache= through the faces: Captum attributions, SHAP explainers, LLMAttribution."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from captum.attr import TextTemplateInput
from tiny_lm import tiny_lm

import proxyspex_captum as psx
from proxyspex_captum.core.cache import MaskStore


class Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.arange(6.0).reshape(1, 6) / 4)
        self.rows = 0

    def forward(self, x):
        self.rows += x.shape[0]
        return (self.linear(x) + 2 * x[:, :1] * x[:, 1:2]).squeeze(-1)


INPUTS = torch.tensor([[1.0, 1.0, 0.5, 2.0, 1.0, 1.0], [2.0, 0.5, 1.0, 1.0, 1.0, 0.0]])
MASK = torch.tensor([[0, 1, 2, 3, 4, 5]])


@pytest.mark.parametrize("method", [psx.ProxySPEXAttribution, psx.SPEXAttribution])
def test_captum_attribution_on_threads_equals_serial(method):
    model = Counting()
    attr = method(model, max_order=2, random_state=0)
    serial = attr.attribute(INPUTS, feature_mask=MASK, n_samples=64)
    with ThreadPoolExecutor(2) as pool:
        threaded = attr.attribute(INPUTS, feature_mask=MASK, n_samples=64, executor=pool)
    assert torch.equal(serial, threaded)


def test_captum_cache_resumes_per_example_and_knows_its_inputs(tmp_path):
    path = tmp_path / "captum.sqlite"
    inputs = INPUTS.repeat(1, 2)  # 12 features: sampled, not exhaustive
    mask = torch.arange(12).reshape(1, 12)
    model = Counting()
    model.linear = torch.nn.Linear(12, 1)
    with torch.no_grad():
        model.linear.weight.copy_(torch.arange(12.0).reshape(1, 12) / 8)
    attr = psx.ProxySPEXAttribution(model, max_order=2, random_state=0)
    first = attr.attribute_interactions(inputs, feature_mask=mask, n_samples=300, cache=path)
    rows = model.rows
    again = attr.attribute_interactions(inputs, feature_mask=mask, n_samples=300, cache=path)
    assert again == first
    # Only Captum's whole-batch probe (one forward of the batch) ran: every mask of
    # both examples came from the file.
    assert model.rows - rows == len(inputs)
    assert [r.metadata["cached_masks"] for r in again] == [300, 300]
    # Other inputs are another value function: refused, before any model call.
    rows = model.rows
    with pytest.raises(ValueError, match="another value function"):
        attr.attribute(inputs + 1, feature_mask=mask, n_samples=300, cache=path)
    assert model.rows == rows


def test_shap_explainer_on_threads_equals_serial():
    rng = np.random.default_rng(0)
    background = rng.normal(size=(20, 8))

    def model(x):
        return x[:, 0] * x[:, 1] + x[:, 2]

    explainer = psx.ProxySPEXExplainer(model, background, max_order=2, random_state=0)
    rows = rng.normal(size=(2, 8))
    serial = explainer(rows, max_evals=200, silent=True)
    with ThreadPoolExecutor(2) as pool:
        threaded = explainer(rows, max_evals=200, silent=True, executor=pool)
    np.testing.assert_array_equal(serial.values, threaded.values)
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        explainer(rows, max_evals=200, silent=True, executor="threads")


def test_llm_attribution_with_threads_and_a_cache(tmp_path):
    model, tokenizer = tiny_lm()
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    words = "a b c d e f g h i j k l".split()
    inp = TextTemplateInput(" ".join("{}" for _ in words), values=words)
    path = tmp_path / "llm.sqlite"
    serial = llm.attribute(inp, target=" yes", n_samples=120)
    with ThreadPoolExecutor(2) as pool:
        cached = llm.attribute(inp, target=" yes", n_samples=120, executor=pool, cache=path)
    assert torch.equal(serial.seq_attr, cached.seq_attr)
    with MaskStore(path, fingerprint=_only_fingerprint(path), n_features=12) as store:
        assert len(store) == 120
    again = llm.attribute(inp, target=" yes", n_samples=120, cache=path)
    assert again.interactions.metadata["new_model_calls"] == 0
    with pytest.raises(ValueError, match="another value function"):
        llm.attribute(inp, target=" no", n_samples=120, cache=path)


def _only_fingerprint(path) -> str:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()[0]
