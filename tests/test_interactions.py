import json
import tracemalloc

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum import Interactions
from proxyspex_captum.core import interactions as interactions_module
from proxyspex_captum.core.subsets import ExpansionTooLarge


@pytest.fixture
def small():
    return Interactions.from_mobius(
        {(): 0.5, (0,): 1.0, (1,): -2.0, (0, 2): 3.0, (1, 2, 3): -0.25},
        n_features=4,
        feature_names=["not", "good", "movie", "at all"],
        n_queries=17,
        metadata={"method": "test"},
    )


def test_predict_matches_definition(small):
    masks = np.array([[0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=bool)
    np.testing.assert_allclose(small.predict(masks), [0.5, 4.5, -1.75, 2.25])
    assert small.predict(masks[1]) == pytest.approx(4.5)
    with pytest.raises(ValueError, match=r"shape \(k, 4\)"):
        small.predict(np.ones((2, 3), bool))


def test_top_orders_by_magnitude_and_skips_empty_set(small):
    top = small.top(3)
    assert [s for s, _ in top] == [(0, 2), (1,), (0,)]
    assert top[0][1] == pytest.approx(3.0)
    assert len(small.top(100)) == 4
    assert small.top(1, basis="fourier")[0][0] != ()


def test_repr_lists_top_interactions_with_names(small):
    text = repr(small)
    assert "n_queries=17" in text
    first = text.splitlines()[2]
    assert "not × movie" in first and "+3" in first
    assert "good × movie × at all" in text


def test_json_round_trip_is_exact(small, tmp_path):
    text = small.to_json()
    assert json.loads(text)["n_features"] == 4
    again = Interactions.from_json(text)
    assert again == small
    assert again.feature_names == small.feature_names
    assert again.n_queries == 17 and again.metadata == {"method": "test"}
    path = tmp_path / "inter.json"
    small.to_json(path)
    assert Interactions.from_json(path) == small
    with pytest.raises(ValueError, match="Not a proxyspex-captum"):
        Interactions.from_dict({"format": "other"})


def test_validation():
    with pytest.raises(ValueError, match="at least 1"):
        Interactions({}, n_features=0)
    with pytest.raises(ValueError, match="Feature ids"):
        Interactions({(5,): 1.0}, n_features=3)
    with pytest.raises(ValueError, match="2 feature names"):
        Interactions({(0,): 1.0}, n_features=3, feature_names=["a", "b"])


def test_large_sparse_result_allocates_nothing_dense():
    """n = 2,000 with 500 terms: no array of size 2**n or n**order."""
    rng = np.random.default_rng(0)
    mobius = {
        tuple(sorted(rng.choice(2000, size=int(rng.integers(1, 5)), replace=False).tolist())): 1.0
        for _ in range(500)
    }
    tracemalloc.start()
    inter = Interactions.from_mobius(mobius, n_features=2000)
    assert inter.mobius == pytest.approx(mobius)
    inter.to_index("fsii", 4)
    inter.to_index("k-sii", 3)
    inter.first_order("shapley")
    inter.predict(rng.random((100, 2000)) < 0.5)
    repr(inter)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 2000**2 float64 alone would be 32 MB; everything here stays far below.
    assert peak < 16e6, peak


def test_constant_function():
    inter = Interactions({(): 2.0}, n_features=3)
    assert inter.baseline_value == inter.full_value == 2.0
    assert inter.top(5) == []
    assert inter.to_index("shapley") == {}
    assert "top interactions" not in repr(inter)


def test_faithfulness_of_exact_interactions_is_one():
    game = psx.games.hierarchical_game(40, n_terms=30, random_state=3)
    assert psx.faithfulness(game.interactions, game, n_masks=300) == pytest.approx(1.0)
    wrong = Interactions({(): 0.0}, n_features=40)
    assert psx.faithfulness(wrong, game, n_masks=300) < 0.0


def test_keys_are_validated_and_duplicates_summed():
    inter = Interactions({(0, 1): 1.0, (1, 0): 2.0}, n_features=3)
    assert inter.fourier == {(0, 1): 3.0}
    assert inter.predict(np.ones(3, bool)) == pytest.approx(3.0)  # the views agree
    for bad in ({(1, 1): 1.0}, {(-1,): 5.0}, {(0.5,): 1.0}):
        with pytest.raises(ValueError, match="Feature ids"):
            Interactions(bad, n_features=3)
    with pytest.raises(ValueError, match="finite"):
        Interactions({(): 1.0, (0,): float("nan")}, n_features=3)


def test_predict_rejects_non_binary_masks_and_to_index_coerces_order():
    inter = Interactions.from_mobius({(0, 1): 1.0}, n_features=2)
    with pytest.raises(ValueError, match="only 0 and 1"):
        inter.predict([[2, 0]])
    assert inter.to_index("sii", np.int64(2)) == inter.to_index("sii", 2)
    with pytest.raises(TypeError):
        inter.to_index("sii", 2.5)
    with pytest.raises(ValueError, match="k must be at least 0"):
        inter.top(-1)


def test_faithfulness_of_several_outputs():
    game = psx.games.hierarchical_game(20, n_terms=10, random_state=0)
    two = psx.games.PlantedGame({s: 2 * v for s, v in game.mobius.items()}, n_features=20)
    scores = psx.faithfulness(
        [game.interactions, game.interactions],
        lambda m: np.stack([game(m), two(m)], axis=1),
        n_masks=200,
    )
    assert scores[0] == pytest.approx(1.0) and scores[1] < 0.9
    with pytest.raises(ValueError, match="2 outputs but 1"):
        psx.faithfulness(game.interactions, lambda m: np.stack([game(m)] * 2, axis=1))
    with pytest.raises(ValueError, match="n_masks"):
        psx.faithfulness(game.interactions, game, n_masks=0)


def test_games_refuse_impossible_requests():
    with pytest.raises(ValueError, match="Only 7 non-empty sets"):
        psx.games.random_game(3)
    assert len(psx.games.fourier_game(4, n_terms=10, max_order=2).interactions.fourier) == 11


def test_integer_arguments_must_be_integers():
    for bad in (6.9, 6.0, "6", True):
        with pytest.raises(TypeError, match="n_features must be an integer"):
            Interactions({(0,): 1.0}, n_features=bad)
        with pytest.raises(TypeError, match="n_features must be an integer"):
            Interactions.from_mobius({(0,): 1.0}, n_features=bad)
    assert Interactions({(0,): 1.0}, n_features=np.int64(6)).n_features == 6
    with pytest.raises(TypeError, match="n_queries must be an integer"):
        Interactions({}, n_features=2, n_queries=2.5)
    inter = Interactions.from_mobius({(0, 1): 1.0, (2,): 0.5}, n_features=3)
    with pytest.raises(TypeError, match="k must be an integer"):
        inter.top(2.5)
    assert inter.top(np.int64(1)) == inter.top(1) == [((0, 1), 1.0)]
    with pytest.raises(TypeError, match="order must be an integer"):
        inter.to_index("fsii", 2.0)
    with pytest.raises(TypeError, match=r"positions\[0\] must be an integer"):
        inter.embed([0.5, 1, 2], n_features=4)
    with pytest.raises(TypeError, match="n_features must be an integer"):
        inter.embed([0, 1, 2], n_features=4.5)
    with pytest.raises(TypeError, match="must be a real number"):
        Interactions({(0,): "3"}, n_features=2)
    with pytest.raises(TypeError, match="single string 'abc'"):
        Interactions({(0,): 1.0}, n_features=3, feature_names="abc")


def test_to_shapiq_order_must_be_an_integer():
    pytest.importorskip("shapiq")
    inter = Interactions.from_mobius({(0, 1): 1.0}, n_features=3)
    with pytest.raises(TypeError, match="order must be an integer"):
        inter.to_shapiq("sii", 2.5)
    with pytest.raises(TypeError, match="order must be an integer"):
        inter.to_shapiq("mobius", 1.5)


def test_high_order_terms_convert_in_memory_proportional_to_their_subsets():
    """Each order-16 set has 2**16 subsets; spreading 2**16 overlapping terms made 3**16 rows."""
    k = 16
    full = tuple(range(k))
    tracemalloc.start()
    # One Möbius term of order 16 is 2**16 Fourier terms, whose Möbius sums overlap.
    lattice = Interactions.from_mobius({full: 1.0}, n_features=k)
    assert len(lattice) == 2**k
    assert lattice.mobius == pytest.approx({full: 1.0})
    assert lattice.top(1) == [(full, pytest.approx(1.0))]
    # One Fourier term of order 16 is 2**16 Möbius terms a(S) = (−2)^{|S|} F(T).
    single = Interactions({full: 0.5}, n_features=k)
    mobius = single.mobius
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(mobius) == 2**k
    assert mobius[()] == 0.5 and mobius[(3, 5)] == 2.0 and mobius[full] == 0.5 * 2.0**k
    assert peak < 100e6, peak  # 3**16 rows of 16 ids alone would be 5.5 GB


def test_expansion_beyond_the_limit_is_refused_at_once():
    """An order-20 term has 2**20 Möbius terms: refused before any of them is made."""
    inter = Interactions({(): 1.0, tuple(range(20)): 0.5, (21,): 2.0}, n_features=25)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"at least 2\*\*20 sets.*`\.fourier`"):
        _ = inter.mobius
    with pytest.raises(ExpansionTooLarge, match="basis='fourier'"):
        inter.top(3)
    with pytest.raises(ExpansionTooLarge, match="lower max_order"):
        inter.to_index("shapley")
    text = repr(inter)  # repr never raises: it shows the Fourier terms and says so
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5e6, peak
    assert "top interactions (Fourier; the Möbius expansion is too large):" in text
    assert text.splitlines()[2].split() == ["x21", "+2"]
    assert inter.top(1, basis="fourier") == [((21,), 2.0)]
    assert inter.predict(np.ones(25, bool)) == pytest.approx(1.0 + 0.5 - 2.0)
    with pytest.raises(ExpansionTooLarge, match="Fourier expansion"):
        Interactions.from_mobius({tuple(range(20)): 1.0}, n_features=20)


def test_expansion_limit_counts_the_sets_of_the_expansion(monkeypatch):
    # Two disjoint order-9 Fourier terms: 1 + 2 * (2**9 - 1) = 1023 Möbius terms.
    inter = Interactions({tuple(range(9)): 1.0, tuple(range(9, 18)): 1.0}, n_features=18)
    monkeypatch.setattr(interactions_module, "MAX_EXPANSION_SETS", 1022)
    with pytest.raises(ExpansionTooLarge, match="more than 1,022 sets"):
        _ = inter.mobius
    assert "Möbius expansion is too large" in repr(inter)
    monkeypatch.setattr(interactions_module, "MAX_EXPANSION_SETS", 1023)  # raised: tried again
    assert len(inter.mobius) == 1023
    assert inter.mobius[()] == 2.0 and inter.mobius[(0, 1)] == 4.0


def test_overflowing_conversion_is_refused_not_dropped():
    inter = Interactions({(): 1.0, (0, 1, 2): 1e308}, n_features=3)
    with pytest.raises(ValueError, match="overflow float64"):
        _ = inter.mobius
    assert "top interactions (Fourier; the Möbius terms overflow):" in repr(inter)


def test_terms_below_a_billionth_of_the_largest_are_dropped_as_rounding_noise():
    """The scale is the largest non-constant |coefficient|; the constant is kept apart."""
    inter = Interactions({(): 1e6, (0,): 2.0, (1,): 3e-9, (2,): 1e-9}, n_features=3)
    assert inter.fourier == {(): 1e6, (0,): 2.0, (1,): 3e-9}
    assert Interactions({(): 1e-30}, n_features=2).fourier == {(): 1e-30}
    assert Interactions({(): 0.0}, n_features=2).fourier == {}


def test_from_json_takes_text_and_load_takes_paths(small, tmp_path):
    path = tmp_path / "inter.json"
    small.save(path)
    assert Interactions.load(path) == small
    assert Interactions.load(str(path)) == small
    assert Interactions.from_json(path) == small  # a Path is unambiguous
    assert Interactions.from_json(small.to_json().encode()) == small
    with pytest.raises(ValueError, match=r"Not valid JSON.*Interactions\.load\(path\)"):
        Interactions.from_json(str(path))  # a str is JSON text, never a file name
    with pytest.raises(ValueError, match="expected a JSON object, got an array"):
        Interactions.from_json("[1, 2]")
    with pytest.raises(TypeError, match="JSON text"):
        Interactions.from_json(42)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"inter\.json: Not a proxyspex-captum"):
        Interactions.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("version"), "no 'version'; this release reads version 1"),
        (lambda d: d.update(version=2), "Unsupported document version 2;.*version 1"),
        (lambda d: d.update(version="1"), "Unsupported document version '1'"),
        (lambda d: d.pop("n_features"), "no 'n_features' field"),
        (lambda d: d.pop("fourier"), "no 'fourier' field"),
        (lambda d: d.update(n_features=4.0), "'n_features' must be a positive integer"),
        (lambda d: d.update(fourier={"0": 1.0}), "'fourier' must be an array"),
        (lambda d: d["fourier"].append([[4], 1.0]), r"'fourier'\[\d+\]: .*\[0, 4\)"),
        (lambda d: d["fourier"].append([[2, 1], 1.0]), "strictly increasing"),
        (lambda d: d["fourier"].append([[1, 1], 1.0]), "strictly increasing"),
        (lambda d: d["fourier"].append(list(d["fourier"][1])), "listed twice"),
        (lambda d: d["fourier"].append([[0, 1], float("nan")]), "finite number, got nan"),
        (lambda d: d["fourier"].append([[0, 1], "1"]), "finite number, got '1'"),
        (lambda d: d["fourier"].append([[0, 1, 2, 3], 10**400]), "finite number, got 1000"),
        (lambda d: d["fourier"].append([3, 1.0]), "pair"),
        (lambda d: d.update(feature_names=[1, 2, 3, 4]), "'feature_names'"),
        (lambda d: d.update(n_queries=-1), "'n_queries'"),
        (lambda d: d.update(metadata=[1]), "'metadata'"),
    ],
)
def test_documents_are_checked_field_by_field(small, change, message):
    data = json.loads(small.to_json())
    change(data)
    with pytest.raises(ValueError, match=message):
        Interactions.from_dict(data)
    with pytest.raises(ValueError, match=message):
        Interactions.from_json(json.dumps(data))


def test_wide_sets_of_large_feature_ids_convert_as_small_ones_do():
    # Sets of 7 features among hundreds are keyed by their bytes, which sorted
    # unlike the sets from feature 256 on: Möbius values landed on the wrong sets
    # (or an IndexError). Relabelling the features, in order, must change nothing.
    large_id = dict(enumerate([0, 1, 2, 3, 4, 5, 511, 512, 767]))

    def relabel(s):
        return tuple(large_id[i] for i in s)

    small = {(0, 1, 2, 3, 4, 5, 6): 1.0, (0, 1, 2, 3, 4, 5, 7): 2.0, (0, 1, 2, 3, 4, 5, 8): 3.0}
    large = {relabel(s): v for s, v in small.items()}
    wide = Interactions(large, n_features=768).mobius
    expected = {relabel(s): v for s, v in Interactions(small, n_features=9).mobius.items()}
    assert wide.keys() == expected.keys()
    assert wide == pytest.approx(expected, abs=1e-12)
    assert wide[(0, 1, 2, 3, 4, 5, 512)] == pytest.approx((-2) ** 7 * 2.0)
    again = Interactions.from_mobius(wide, n_features=768)
    assert again.fourier == pytest.approx(large, abs=1e-12)
