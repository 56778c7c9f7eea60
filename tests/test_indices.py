"""Every index conversion against its definition, by brute force over all 2**n masks."""

import itertools
from unittest import mock

import brute_force as bf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyspex_captum import Interactions
from proxyspex_captum.core import subsets
from proxyspex_captum.core.subsets import (
    PAD,
    and_features,
    fourier_features,
    mobius_to_fourier,
    pad_sets,
    set_sizes,
    spread_to_subsets,
    superset_sums,
)


def random_mobius(n, density, seed, max_order=None):
    rng = np.random.default_rng(seed)
    max_order = n if max_order is None else max_order
    return {s: float(rng.normal()) for s in bf.sets_up_to(n, max_order) if rng.random() < density}


@pytest.fixture(params=[(4, 0.7, 0), (6, 0.4, 1), (8, 0.08, 2)], ids=["n4", "n6", "n8"])
def game(request):
    n, density, seed = request.param
    inter = Interactions.from_mobius(random_mobius(n, density, seed), n_features=n)
    table = inter.predict(bf.all_masks(n))
    return n, inter, table


def assert_same(reference, ours, tol=1e-9):
    keys = set(reference) | set(ours)
    worst = max((abs(reference.get(s, 0.0) - ours.get(s, 0.0)) for s in keys), default=0.0)
    assert worst < tol, worst


def test_mobius_and_fourier_match_brute_force(game):
    n, inter, table = game
    assert_same(bf.mobius(table, n), inter.mobius)
    assert_same(bf.fourier(table, n), inter.fourier)


def test_baseline_and_full_values(game):
    _, inter, table = game
    assert inter.baseline_value == pytest.approx(table[0], abs=1e-12)
    assert inter.full_value == pytest.approx(table[-1], abs=1e-12)


def test_shapley_and_banzhaf(game):
    n, inter, table = game
    np.testing.assert_allclose(inter.first_order("shapley"), bf.shapley(table, n), atol=1e-10)
    np.testing.assert_allclose(inter.first_order("banzhaf"), bf.banzhaf(table, n), atol=1e-10)
    # Banzhaf is −2·F({i}).
    fourier = inter.fourier
    np.testing.assert_allclose(
        inter.first_order("banzhaf"), [-2 * fourier.get((i,), 0.0) for i in range(n)], atol=1e-12
    )


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize(
    "index, reference",
    [
        ("sii", bf.sii),
        ("bii", bf.bii),
        ("stii", bf.stii),
        ("k-sii", bf.k_sii),
        ("fbii", bf.fbii),
        ("fsii", bf.fsii),
    ],
)
def test_interaction_indices(game, index, reference, order):
    n, inter, table = game
    expected = reference(table, n, order)
    if index in ("sii", "bii"):
        expected.pop((), None)
    assert_same(expected, inter.to_index(index, order), tol=1e-8)


def test_efficiency_of_decomposing_indices(game):
    _, inter, table = game
    for index in ("k-sii", "stii", "fsii"):
        total = sum(inter.to_index(index, 2).values())
        assert total == pytest.approx(table[-1], abs=1e-9), index


def test_first_order_is_shapley_for_every_shapley_family_index(game):
    _, inter, _ = game
    shapley = inter.first_order("shapley")
    for index in ("sii", "k-sii", "stii"):
        np.testing.assert_allclose(inter.first_order(index), shapley, atol=1e-12)


def test_unknown_index_and_bad_order():
    inter = Interactions.from_mobius({(0, 1): 1.0}, n_features=2)
    with pytest.raises(ValueError, match="Unknown index"):
        inter.to_index("owen")
    with pytest.raises(ValueError, match="first-order"):
        inter.to_index("shapley", 2)
    with pytest.raises(ValueError, match="at least 1"):
        inter.to_index("sii", 0)


sparse_functions = st.dictionaries(
    keys=st.lists(st.integers(0, 11), min_size=0, max_size=4, unique=True).map(
        lambda s: tuple(sorted(s))
    ),
    values=st.floats(-10, 10, allow_nan=False).filter(lambda v: abs(v) > 1e-6),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(sparse_functions)
def test_mobius_fourier_round_trip(mobius):
    inter = Interactions.from_mobius(mobius, n_features=12)
    assert_same(mobius, inter.mobius, tol=1e-9)
    again = Interactions(inter.fourier, n_features=12)
    assert_same(inter.fourier, again.fourier, tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(sparse_functions, st.integers(0, 2**12 - 1))
def test_predict_agrees_in_both_bases(mobius, code):
    inter = Interactions.from_mobius(mobius, n_features=12)
    mask = np.array([(code >> i) & 1 for i in range(12)], dtype=bool)
    direct = sum(v for s, v in mobius.items() if all(mask[i] for i in s))
    assert inter.predict(mask) == pytest.approx(direct, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(sparse_functions, st.lists(st.integers(0, 2**12 - 1), min_size=1, max_size=8))
def test_unanimity_features_and_their_fourier_coefficients(mobius, codes):
    # The Möbius lasso's two pieces: its columns 1[S ⊆ m] and the Fourier
    # coefficients its result is stored as, both against the definition.
    masks = np.array([[(code >> i) & 1 for i in range(12)] for code in codes], dtype=bool)
    sets = list(mobius)
    rows = pad_sets(sets, width=4)
    columns = and_features(masks, rows)
    direct = np.array([[all(mask[i] for i in s) for s in sets] for mask in masks], dtype=float)
    assert np.array_equal(columns.reshape(direct.shape), direct)
    values = np.array([mobius[s] for s in sets])
    f_rows, f_values = mobius_to_fourier(rows, values)
    via_fourier = fourier_features(masks, f_rows) @ f_values if len(f_rows) else 0.0
    assert np.allclose(via_fourier, direct @ values if sets else 0.0, atol=1e-8)


def test_dense_conversions_match_brute_force():
    """Every subset of 10 features carries a term: the sums overlap as much as they can."""
    n = 10
    rng = np.random.default_rng(5)
    fourier = {s: float(rng.normal()) for s in bf.sets_up_to(n, n)}
    inter = Interactions(fourier, n_features=n)
    table = bf.table_from_fourier(fourier, n)
    assert_same(bf.mobius(table, n), inter.mobius, tol=1e-9)
    assert_same(bf.sii(table, n, 2), inter.to_index("sii", 2), tol=1e-9)
    mobius = {s: float(rng.normal()) for s in bf.sets_up_to(n, n)}
    table = bf.table_from_mobius(mobius, n)
    assert_same(bf.fourier(table, n), Interactions.from_mobius(mobius, n_features=n).fourier)


def small_sets(n, max_size):
    return st.lists(st.integers(0, n - 1), max_size=max_size, unique=True).map(
        lambda s: tuple(sorted(s))
    )


coefficients = st.floats(-10, 10, allow_nan=False).filter(lambda v: abs(v) > 1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(small_sets(9, 5), max_size=12),
    st.lists(st.integers(0, 2**9 - 1), max_size=10),
    st.integers(0, 7),
    st.sampled_from([np.int8, np.int32, np.int64]),
)
def test_feature_maps_match_their_definitions(sets, codes, width, dtype):
    # Every mask against every padded set (full rows too: pad_sets widens to the
    # longest set), the empty set and no masks included, rows of narrow integer
    # types as well: (−1)^{|S ∩ m|} and 1[S ⊆ m], as C-ordered float arrays.
    masks = np.array([[(code >> i) & 1 for i in range(9)] for code in codes], bool).reshape(-1, 9)
    rows = pad_sets(sets, width=width).astype(dtype)
    parity = [[(-1.0) ** sum(mask[i] for i in s) for s in sets] for mask in masks]
    inside = [[float(all(mask[i] for i in s)) for s in sets] for mask in masks]
    for ours, direct in (
        (fourier_features(masks, rows), parity),
        (and_features(masks, rows), inside),
    ):
        assert ours.dtype == np.float64 and ours.flags.c_contiguous
        assert np.array_equal(ours, np.reshape(direct, (len(masks), len(sets))))


def test_feature_maps_with_narrow_rows_and_members_out_of_range():
    # int8 rows with 200 features: the padding's index must not wrap onto a feature.
    masks = np.zeros((1, 200), bool)
    masks[0, 145] = True
    rows = np.array([[0, PAD]], np.int8)
    assert fourier_features(masks, rows).tolist() == [[1.0]]
    masks[0, [0, 145]] = True, False
    assert and_features(masks, rows).tolist() == [[1.0]]
    with pytest.raises(IndexError, match="feature 200"):
        fourier_features(masks, np.array([[200]]))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(small_sets(7, 7), coefficients, max_size=20))
def test_fourier_to_mobius_matches_brute_force(fourier):
    inter = Interactions(fourier, n_features=7)
    expected = bf.mobius(bf.table_from_fourier(fourier, 7), 7)
    # Terms below 1e-9 of the largest are dropped as rounding noise.
    assert_same(expected, inter.mobius, tol=1e-8 * (1 + max(map(abs, expected.values()))))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(small_sets(7, 7), coefficients, max_size=20))
def test_mobius_to_fourier_matches_brute_force(mobius):
    inter = Interactions.from_mobius(mobius, n_features=7)
    expected = bf.fourier(bf.table_from_mobius(mobius, 7), 7)
    assert_same(expected, inter.fourier, tol=1e-10 * (1 + max(map(abs, expected.values()))))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(small_sets(12, 5), coefficients, max_size=25))
def test_fourier_mobius_round_trip(fourier):
    inter = Interactions(fourier, n_features=12)
    again = Interactions.from_mobius(inter.mobius, n_features=12)
    assert_same(inter.fourier, again.fourier, tol=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(small_sets(9, 5), coefficients), max_size=15),
    st.integers(0, 2**31 - 1),
    st.integers(0, 6),
)
def test_superset_sums_equal_spreading_each_set(terms, seed, max_size):
    """The level-by-level sums agree with spreading every set over its subsets one by one."""
    rows = pad_sets([s for s, _ in terms])
    values = np.array([v for _, v in terms])
    width = rows.shape[1]
    size_weights = np.random.default_rng(seed).normal(size=(width + 1, width + 1))
    ours = superset_sums(rows, values, size_weights, max_size=max_size)
    per_set = values[:, None] * size_weights[set_sizes(rows)]
    reference = spread_to_subsets(rows, per_set, max_size=max_size)
    np.testing.assert_array_equal(ours[0], reference[0])  # the same sets, in the same order
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-9, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(small_sets(9, 6), coefficients), max_size=15),
    st.integers(0, 2**31 - 1),
    st.one_of(st.none(), st.integers(0, 7)),
    st.booleans(),
)
def test_spread_to_subsets_matches_brute_force(terms, seed, max_size, with_signs):
    """Every subset gets ``weights[r, |S|] * prod(signs over S)`` from each source row.

    The subsets are built as packed keys; with packing switched off they are
    built as rows, and both must give the same sets and the same sums, bit for
    bit (what reading a tree's transform relies on).
    """
    sources = [s for s, _ in terms]
    rows = pad_sets(sources)
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(len(sources), rows.shape[1] + 1))
    signs = rng.choice([-1.0, 1.0], size=rows.shape) if with_signs else None
    out_rows, sums = spread_to_subsets(rows, weights, signs=signs, max_size=max_size)
    with mock.patch.object(subsets, "_packable", return_value=False):
        row_built = spread_to_subsets(rows, weights, signs=signs, max_size=max_size)
    np.testing.assert_array_equal(out_rows, row_built[0])
    assert out_rows.dtype == row_built[0].dtype and sums.tobytes() == row_built[1].tobytes()

    limit = rows.shape[1] if max_size is None else max_size
    expected: dict[tuple, float] = {}
    for r, source in enumerate(sources):
        for size in range(min(len(source), limit) + 1):
            for chosen in itertools.combinations(range(len(source)), size):
                subset = tuple(source[j] for j in chosen)
                sign = 1.0 if signs is None else np.prod([signs[r, j] for j in chosen])
                expected[subset] = expected.get(subset, 0.0) + weights[r, size] * sign
    ours = {
        tuple(int(f) for f in row if f != -1): float(v)
        for row, v in zip(out_rows, sums, strict=True)
    }
    assert set(ours) == set(expected)
    assert_same(expected, ours)
    # Sorted as padded rows (padding first).
    keys = [tuple(int(f) + 1 for f in row) for row in out_rows]
    assert keys == sorted(keys)


def test_spread_to_subsets_builds_rows_where_keys_would_overflow():
    """Feature ids near 2**40: a pair's key needs 80 bits, so the rows are built."""
    big = 2**40
    rows = pad_sets([(3, big), (big,)])
    out_rows, sums = spread_to_subsets(rows, np.ones((2, 3)))
    assert out_rows.tolist() == [[-1, -1], [3, -1], [3, big], [big, -1]]
    assert sums.tolist() == [2.0, 1.0, 1.0, 2.0]


@pytest.mark.parametrize("top", [40, 2**40], ids=["packed keys", "wide rows"])
@pytest.mark.parametrize("seed", range(4))
def test_aggregate_sums_in_the_given_order_and_sorts_the_sets(top, seed):
    """Each distinct set once, sorted (padding first), its values added in the given
    order: exactly the left-to-right float sum, on both paths (rows packed into
    int64 keys, and rows too wide to pack at feature ids near 2**40)."""
    rng = np.random.default_rng(seed)
    sets = [
        tuple(sorted(rng.choice(top, size=int(rng.integers(0, 6)), replace=False).tolist()))
        for _ in range(60)
    ]
    sets += [sets[i] for i in rng.integers(0, len(sets), size=90)]  # repeats, in any order
    values = rng.normal(size=len(sets)) * 10.0 ** rng.integers(-8, 9, size=len(sets))
    rows, sums = subsets.aggregate(pad_sets(sets, width=5), values)
    expected: dict[tuple, float] = {}
    for s, v in zip(sets, values, strict=True):
        expected[s] = expected.get(s, 0.0) + float(v)  # left to right, from 0.0
    # Sorted as padded rows compare: padding (-1) first, so () < (0,) < (0, 1) < (1,).
    order = sorted(expected, key=lambda s: [*s, *[PAD] * (5 - len(s))])
    assert rows.tolist() == pad_sets(order, width=5).tolist()
    assert rows.dtype == np.int64 and rows.flags.c_contiguous
    # Bit for bit: the float64 values' bytes, so a -0.0 for a 0.0 would fail too.
    assert sums.tobytes() == np.array([expected[s] for s in order]).tobytes()
