import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyspex_captum.core.sampling import all_masks, as_generator, uniform_masks
from proxyspex_captum.core.walsh import fwht


def distinct(masks):
    return len(np.unique(np.packbits(masks, axis=1), axis=0)) == len(masks)


@pytest.mark.parametrize("n, k", [(3, 5), (10, 300), (30, 500), (200, 1000)])
def test_uniform_masks_are_distinct_and_include_extremes(n, k):
    masks = uniform_masks(n, k, np.random.default_rng(0))
    assert masks.shape == (k, n) and masks.dtype == bool
    assert distinct(masks)
    assert not masks[0].any() and masks[1].all()


def test_budget_covering_every_mask_returns_all():
    masks = uniform_masks(4, 100, np.random.default_rng(0))
    assert masks.shape == (16, 4) and distinct(masks)


def test_uniform_masks_are_roughly_balanced():
    masks = uniform_masks(100, 4000, np.random.default_rng(1))
    assert abs(masks.mean() - 0.5) < 0.01


@pytest.mark.parametrize("n", [6, 40])
def test_antithetic_pairs(n):
    masks = uniform_masks(n, 40, np.random.default_rng(2), include_extremes=False, antithetic=True)
    assert distinct(masks)
    np.testing.assert_array_equal(masks[0::2], ~masks[1::2])


def test_seeded_and_global_rng_untouched():
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (must stay untouched)
    a = uniform_masks(50, 200, as_generator(7))
    b = uniform_masks(50, 200, as_generator(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    with pytest.raises(TypeError, match="RandomState"):
        as_generator(np.random.RandomState(0))


def test_all_masks_order():
    masks = all_masks(3)
    assert masks[5].tolist() == [True, False, True]
    with pytest.raises(ValueError, match="Refusing"):
        all_masks(40)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 7), st.integers(0, 2**32 - 1))
def test_fwht_is_the_walsh_hadamard_transform(b, seed):
    values = np.random.default_rng(seed).normal(size=2**b)
    out = fwht(values)
    for k in range(2**b):
        signs = np.array([(-1) ** bin(j & k).count("1") for j in range(2**b)])
        assert out[k] == pytest.approx(values @ signs, abs=1e-9)
    np.testing.assert_allclose(fwht(out), 2**b * values, atol=1e-9)


def test_fwht_batched_and_power_of_two():
    values = np.random.default_rng(0).normal(size=(8, 3))
    np.testing.assert_allclose(fwht(values)[:, 1], fwht(values[:, 1]))
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(np.ones(6))


@pytest.mark.parametrize("n", [10, 100])
def test_biased_masks_keep_features_at_the_asked_rate(n):
    masks = uniform_masks(n, 400, np.random.default_rng(0), keep_probability=0.8)
    assert masks.shape == (400, n)
    assert len({row.tobytes() for row in masks}) == 400
    assert not masks[0].any() and masks[1].all()
    if n == 100:
        assert masks[2:].mean() == pytest.approx(0.8, abs=0.03)
    else:  # 400 distinct masks of 1,024: discarding repeats pulls the rate toward 0.5
        assert 0.55 < masks[2:].mean() < 0.8
    same = uniform_masks(n, 400, np.random.default_rng(0), keep_probability=0.8)
    assert np.array_equal(masks, same)


def test_keep_probability_checks():
    rng = np.random.default_rng(0)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="keep_probability"):
            uniform_masks(30, 10, rng, keep_probability=bad)
    with pytest.raises(ValueError, match="antithetic"):
        uniform_masks(30, 10, rng, antithetic=True, keep_probability=0.7)
    # 15 of the 16 masks of 4 features: masks with three features dropped are too rare.
    with pytest.raises(ValueError, match="distinct masks"):
        uniform_masks(4, 15, rng, keep_probability=0.999)


@pytest.mark.parametrize(
    ("n", "k", "antithetic", "digest"),
    [
        (10, 300, False, "16ed736fd2218b2a"),
        (30, 500, False, "b4c680ca79862007"),
        (270, 1000, False, "484e9f1fce118ffb"),
        (64, 200, True, "7b5138cd86ce45af"),
    ],
)
def test_default_design_is_the_one_drawn_before_keep_probability(n, k, antithetic, digest):
    """Digests of the masks drawn before the option existed (commit 29ea4ff): unchanged."""
    masks = uniform_masks(n, k, np.random.default_rng(7), antithetic=antithetic)
    assert hashlib.sha256(np.packbits(masks, axis=1).tobytes()).hexdigest()[:16] == digest


def test_small_n_antithetic_pairs_come_in_either_order():
    """Below 23 features the first of a pair had always dropped the last feature."""
    firsts = np.concatenate(
        [
            uniform_masks(8, 41, np.random.default_rng(seed), antithetic=True)[2::2]
            for seed in range(20)
        ]
    )
    assert 0.4 < firsts[:, -1].mean() < 0.6  # 400 pairs' first masks keep it about half the time


def test_mask_helpers_refuse_impossible_sizes():
    with pytest.raises(TypeError, match="n_features must be an integer"):
        all_masks(2.5)
    with pytest.raises(ValueError, match="n_features must be at least 0"):
        all_masks(-1)
    with pytest.raises(ValueError, match="power-of-two length, got 0"):
        fwht(np.zeros(0))
