"""Planted games: a noisy mask's noise depends on the seed and the mask alone."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.games import PlantedGame, fourier_game, hierarchical_game, random_game


def _noisy():
    return hierarchical_game(20, n_terms=15, max_order=3, noise=0.2, random_state=3)


def test_noise_is_a_function_of_the_mask():
    game = _noisy()
    masks = np.random.default_rng(0).random((200, 20)) < 0.5
    values = game(masks)
    assert len(np.unique(values - game.exact(masks))) == 200
    np.testing.assert_array_equal(game(masks[::-1])[::-1], values)  # order
    np.testing.assert_array_equal(np.concatenate([game(masks[:70]), game(masks[70:])]), values)
    np.testing.assert_array_equal(_noisy()(masks), values)  # a fresh game, the same seed
    assert game(masks[0]) == values[0]  # one mask, as Interactions.predict takes it
    other = hierarchical_game(20, n_terms=15, max_order=3, noise=0.2, random_state=4)
    assert not np.array_equal(other(masks) - other.exact(masks), values - game.exact(masks))
    noise = (values - game.exact(masks)) / game.noise_std
    assert abs(noise.mean()) < 0.25 and 0.8 < noise.std() < 1.2


def test_a_noisy_game_gives_the_same_result_on_a_process_pool():
    """Each batch's pickled copy of the game had repeated the same noise (50 values in 200)."""
    game = _noisy()
    estimator = psx.ProxySPEX(random_state=0, uncertainty=False)
    serial = estimator.explain(game, n_features=20, budget=300)
    with ProcessPoolExecutor(2) as pool:
        pooled = estimator.explain(game, n_features=20, budget=300, executor=pool)
    assert pooled.fourier == serial.fourier


def test_games_check_their_options_and_masks():
    for build in (hierarchical_game, random_game, fourier_game):
        with pytest.raises(ValueError, match=r"noise must lie in \[0.0, inf\]"):
            build(10, noise=-0.1)
        with pytest.raises(ValueError, match="noise"):
            build(10, noise=float("nan"))
        with pytest.raises(ValueError, match="n_terms must be at least 1"):
            build(10, n_terms=0)
        with pytest.raises(TypeError, match="n_features must be an integer"):
            build(10.0)
    with pytest.raises(ValueError, match=r"noise_std must lie in \[0.0, inf\]"):
        PlantedGame({(0,): 1.0}, n_features=3, noise_std=-1.0)
    game = PlantedGame({(0,): 1.0}, n_features=3)
    for width in (2, 5):
        with pytest.raises(ValueError, match=r"shape \(k, 3\)"):
            game(np.ones((2, width), dtype=bool))
