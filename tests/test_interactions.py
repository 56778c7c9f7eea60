import json
import tracemalloc

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum import Interactions


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
    with pytest.raises(ValueError, match="non-negative"):
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
