import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyspex_captum.core import bch
from proxyspex_captum.core.bch import BCHCode


@pytest.mark.parametrize(
    "n, t, m, delays",
    [(128, 5, 8, 41), (1000, 5, 11, 56), (64, 5, 7, 36), (4000, 5, 12, 61), (10, 2, 5, 11)],
)
def test_code_sizes_match_the_reference(n, t, m, delays):
    code = BCHCode(n, t)
    assert code.m == m
    assert code.n_parity + 1 == delays
    assert code.parity_matrix.shape == (n, code.n_parity)


def test_parity_matrix_rows_are_codewords():
    """Every row [e_i | P_i] is a multiple of the generator polynomial."""
    code = BCHCode(50, 3)
    g = code.generator
    for i in range(code.n):
        word = sum(int(b) << j for j, b in enumerate(code.parity_matrix[i])) | 1 << (
            code.n_parity + i
        )
        while word.bit_length() >= g.bit_length():
            word ^= g << (word.bit_length() - g.bit_length())
        assert word == 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(64, 5), (300, 3), (1000, 5)]), st.data())
def test_hard_decoding_recovers_every_support_up_to_t(nt, data):
    n, t = nt
    code = BCHCode(n, t)
    support = data.draw(st.lists(st.integers(0, n - 1), max_size=t, unique=True))
    k = np.zeros(n, bool)
    k[support] = True
    (decoded,) = code.decode(code.parities(k[None]))
    assert decoded is not None and sorted(decoded.tolist()) == sorted(support)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_hard_decoding_corrects_parity_errors_within_the_radius(data):
    code = BCHCode(200, 4)
    support = data.draw(st.lists(st.integers(0, 199), max_size=2, unique=True))
    flips = data.draw(st.lists(st.integers(0, code.n_parity - 1), max_size=2, unique=True))
    k = np.zeros(200, bool)
    k[support] = True
    bits = code.parities(k[None])
    bits[0, flips] ^= True
    (decoded,) = code.decode(bits)
    assert decoded is not None and sorted(decoded.tolist()) == sorted(support)


def test_beyond_the_radius_is_reported_not_invented():
    code = BCHCode(100, 2)
    k = np.zeros(100, bool)
    k[[1, 2, 3, 4, 5, 6]] = True
    decoded = code.decode(code.parities(k[None]))[0]
    assert decoded is None or sorted(decoded.tolist()) != [1, 2, 3, 4, 5, 6]


def test_soft_decoding_beats_hard_decoding_on_noisy_observations():
    code = BCHCode(300, 4)
    rng = np.random.default_rng(0)
    supports = [rng.choice(300, size=int(rng.integers(0, 5)), replace=False) for _ in range(150)]
    k = np.zeros((150, 300), bool)
    for row, s in enumerate(supports):
        k[row, s] = True
    soft = 1.0 - 2.0 * code.parities(k) + rng.normal(0, 0.6, (150, code.n_parity))

    def hits(decoded):
        return sum(
            d is not None and set(d) == set(s) for d, s in zip(decoded, supports, strict=True)
        )

    assert hits(code.decode_soft(soft)) > hits(code.decode(soft < 0)) + 20


def test_bad_parameters():
    with pytest.raises(ValueError, match="n >= 1"):
        BCHCode(0, 3)


def test_a_deep_chase_decodes_in_batches_and_finds_the_support():
    """13 flips: 8,192 test patterns, decoded a few thousand at a time (all at once they
    held gigabytes at 16 flips), with the same answer as a shallow search."""
    code = BCHCode(40, 6)
    support = np.zeros(40, dtype=bool)
    support[[3, 17]] = True
    soft = 1.0 - 2.0 * code.parities(support[None])[0]
    soft[:3] *= -0.1  # three unreliable parities read wrong
    (deep,) = code.decode_soft(soft[None], n_flips=13)
    (shallow,) = code.decode_soft(soft[None], n_flips=3)
    assert deep.tolist() == shallow.tolist() == [3, 17]


@pytest.mark.parametrize("n, t", [(6, 1), (10, 2), (20, 2)])
def test_hard_decoding_is_bounded_distance_decoding_on_every_word(n, t):
    """All 2**p parity words: the support whose codeword lies within t flips of
    ``[parities | 0 … 0]`` (at most one, the code's distance being 2t + 1), else None."""
    code = BCHCode(n, t)
    p = code.n_parity
    words = ((np.arange(2**p)[:, None] >> np.arange(p)) & 1).astype(bool)
    supports = [s for r in range(t + 1) for s in itertools.combinations(range(n), r)]
    k = np.zeros((len(supports), n), bool)
    for row, support in enumerate(supports):
        k[row, list(support)] = True
    distance = (words[:, None, :] ^ code.parities(k)[None]).sum(axis=2) + k.sum(axis=1)
    decoded = code.decode(words)
    for word, found in enumerate(decoded):
        (close,) = np.nonzero(distance[word] <= t)
        assert len(close) <= 1
        expected = list(supports[close[0]]) if len(close) else None
        assert (None if found is None else found.tolist()) == expected


@pytest.mark.parametrize("batch", [None, 5])
def test_soft_decoding_of_many_words_is_each_words_own_chase(batch, monkeypatch):
    """Words decoded in batches give what each word's own Chase search gives, pattern by
    pattern in the order of flips: many words a batch (32 patterns each), and with
    batches of 5 test words, each word's patterns split across batches."""
    if batch is not None:
        monkeypatch.setattr(bch, "_PATTERNS_PER_DECODE", batch)
    code = BCHCode(64, 5)
    rng = np.random.default_rng(3)
    k = np.zeros((150, 64), bool)
    for row in range(150):
        k[row, rng.choice(64, size=int(rng.integers(0, 7)), replace=False)] = True
    # Reliabilities vary, so each word flips its own positions; powers of two keep
    # every sum exact, so equal correlations are ties, broken by order alone.
    soft = (1.0 - 2.0 * code.parities(k)) * rng.choice(
        [0.25, 0.5, 1.0, 2.0], size=(150, code.n_parity)
    )
    soft[rng.random(soft.shape) < 0.08] *= -1
    patterns = [()] + [c for r in range(1, 6) for c in itertools.combinations(range(5), r)]

    def own_chase(word):
        weakest = np.argsort(np.abs(word), kind="stable")[:5]
        best, best_score = None, -np.inf
        for pattern in patterns:
            bits = word < 0
            bits[weakest[list(pattern)]] ^= True
            (support,) = code.decode(bits[None])
            if support is None:
                continue
            mask = np.zeros(64, bool)
            mask[support] = True
            score = float((1.0 - 2.0 * code.parities(mask[None])[0]) @ word)
            if score > best_score:
                best, best_score = support, score
        return best

    batched = code.decode_soft(soft)
    for word, got in zip(soft, batched, strict=True):
        expected = own_chase(word)
        assert (None if got is None else got.tolist()) == (
            None if expected is None else expected.tolist()
        )
    decoded = sum(got is not None for got in batched)
    assert 30 < decoded < 150  # both kinds of word are compared


@pytest.mark.parametrize("batch", [None, 1])
def test_soft_decoding_breaks_ties_by_the_order_of_flips(batch, monkeypatch):
    """Two supports correlate equally (exactly: the values are powers of two): the one
    from the earlier test pattern wins, in one batch or one pattern a batch."""
    if batch is not None:
        monkeypatch.setattr(bch, "_PATTERNS_PER_DECODE", batch)
    code = BCHCode(20, 2)
    word = np.array([-0.5, 0.5, -1.0, -2.0, -0.5, 0.5, -0.5, 1.0, -0.5, 0.5])
    # Patterns: no flip -> {5}, score 6.5; the second weakest flipped -> {7, 17}, 6.5.
    (got,) = code.decode_soft(word[None], n_flips=2)
    assert got.tolist() == [5]


def test_soft_decoding_skips_patterns_scored_nan():
    """Infinite observations of both signs make some correlations NaN: those patterns
    are passed over, as if nothing decoded, and the word's other patterns still count."""
    code = BCHCode(20, 2)
    k = np.zeros(20, bool)
    k[[3, 11]] = True
    soft = 1.0 - 2.0 * code.parities(k[None])[0]
    soft[0], soft[1] = np.inf * soft[0], -np.inf * soft[1]  # one read right, one wrong
    (got,) = code.decode_soft(soft[None])
    assert got is not None


def test_decoding_no_words():
    code = BCHCode(30, 3)
    assert code.decode(np.zeros((0, code.n_parity), bool)) == []
    assert code.decode_soft(np.zeros((0, code.n_parity))) == []
