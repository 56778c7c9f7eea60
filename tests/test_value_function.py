import subprocess
import sys

import numpy as np
import pytest
import torch

from proxyspex_captum import ValueFunction


class Counting:
    """A model that records every batch it is called with."""

    def __init__(self, fn):
        self.fn = fn
        self.batches = []

    def __call__(self, masks):
        self.batches.append(masks.copy())
        return self.fn(masks)


def test_batches_dedupes_and_counts():
    model = Counting(lambda m: m.sum(axis=1) * 1.0)
    vf = ValueFunction(model, n_features=4, batch_size=3)
    masks = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    np.testing.assert_array_equal(vf(masks), [1, 4, 1, 0, 1])
    assert vf.n_queries == 4  # the repeated mask is sent once
    assert [len(b) for b in model.batches] == [3, 1]
    assert vf.n_calls == 2
    # A later call for known masks costs nothing.
    np.testing.assert_array_equal(vf(masks[:2]), [1, 4])
    assert vf.n_queries == 4 and len(model.batches) == 2


def test_no_cache_still_dedupes_within_a_call():
    model = Counting(lambda m: m[:, 0] * 2.0)
    vf = ValueFunction(model, n_features=2, cache=False)
    vf(np.array([[1, 0], [1, 0]], bool))
    vf(np.array([[1, 0]], bool))
    assert vf.n_queries == 2


def test_multi_output_and_column_output():
    vf = ValueFunction(lambda m: np.stack([m.sum(1), -m.sum(1)], axis=1), n_features=3)
    out = vf(np.eye(3, dtype=bool))
    assert out.shape == (3, 2) and vf.n_outputs == 2
    column = ValueFunction(lambda m: m.sum(1, keepdims=True), n_features=3)
    assert column(np.eye(3, dtype=bool)).shape == (3,)


def test_accepts_torch_tensors_with_grad():
    weight = torch.ones(3, requires_grad=True)
    vf = ValueFunction(lambda m: torch.as_tensor(m, dtype=torch.float32) @ weight, n_features=3)
    np.testing.assert_allclose(vf(np.eye(3, dtype=bool)), [1, 1, 1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_outputs_are_named(bad):
    def model(masks):
        out = masks.sum(axis=1).astype(float)
        out[masks[:, 2]] = bad
        return out

    vf = ValueFunction(model, n_features=3)
    masks = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 1]], bool)
    with pytest.raises(
        ValueError, match=r"NaN or infinite values for 2 of 3 masks \(rows \[1, 2\]"
    ):
        vf(masks)


@pytest.mark.parametrize(
    "output, message",
    [
        (lambda m: np.zeros(len(m) + 1), r"shape \(4,\) for 3 masks"),
        (lambda m: np.zeros((len(m), 2, 2)), r"shape \(3, 2, 2\)"),
        (lambda m: "text", "must return numbers"),
        (lambda m: ["1.5"] * len(m), "must return numbers.*strings"),  # not read as 1.5
        (lambda m: [10**400] * len(m), "must return numbers.*too large"),
    ],
)
def test_wrong_output_shape(output, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ValueFunction(output, n_features=2)(np.array([[0, 0], [1, 0], [1, 1]], bool))


def test_output_width_must_not_change():
    calls = iter([np.zeros(2), np.zeros((1, 2))])
    vf = ValueFunction(lambda m: next(calls), n_features=2, batch_size=2)
    with pytest.raises(ValueError, match="changed its output shape"):
        vf(np.array([[0, 0], [1, 0], [1, 1]], bool))


def test_bad_masks_and_arguments():
    vf = ValueFunction(lambda m: m.sum(1), n_features=3)
    with pytest.raises(ValueError, match=r"shape \(k, 3\)"):
        vf(np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        vf(np.full((1, 3), 2))
    with pytest.raises(TypeError, match="callable"):
        ValueFunction(3, n_features=2)
    with pytest.raises(ValueError, match="batch_size"):
        ValueFunction(lambda m: m, n_features=2, batch_size=0)


def test_progress_bar_writes_to_stderr(capsys):
    vf = ValueFunction(lambda m: m.sum(1), n_features=3, show_progress=True, batch_size=1)
    vf(np.eye(3, dtype=bool))
    assert "model calls" in capsys.readouterr().err


def test_no_progress_bar_starts_no_thread():
    # A fresh interpreter: tqdm's monitor thread, once started by any bar, stays.
    script = (
        "import threading, numpy as np\n"
        "from proxyspex_captum import ValueFunction\n"
        "vf = ValueFunction(lambda m: m.sum(1), n_features=3, batch_size=1)\n"
        "vf(np.eye(3, dtype=bool))\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    command = [sys.executable, "-c", script]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "['MainThread']", run.stdout + run.stderr


def test_bfloat16_and_squeezed_outputs():
    vf = ValueFunction(
        lambda m: torch.as_tensor(m.sum(1), dtype=torch.bfloat16), n_features=3, batch_size=2
    )
    np.testing.assert_allclose(vf(np.eye(3, dtype=bool)), [1, 1, 1])
    squeezed = ValueFunction(lambda m: np.float64(m.sum()), n_features=3, batch_size=1)
    np.testing.assert_allclose(squeezed(np.eye(3, dtype=bool)), [1, 1, 1])


def test_an_interrupted_run_keeps_the_batches_it_paid_for():
    calls = []

    def flaky(masks):
        calls.append(len(masks))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return masks.sum(axis=1)

    vf = ValueFunction(flaky, n_features=4, batch_size=2)
    masks = np.eye(4, dtype=bool)[[0, 1, 2, 3]] | np.array([1, 0, 0, 0], bool)
    masks = np.vstack([masks, ~masks])
    with pytest.raises(KeyboardInterrupt):
        vf(masks)
    assert vf.n_queries == 4
    np.testing.assert_array_equal(vf(masks), masks.sum(axis=1))
    assert vf.n_queries == len(np.unique(masks, axis=0))
