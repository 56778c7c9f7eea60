"""Value functions that pickle, for tests on process pools, Dask and Ray.

Each one logs every call it receives to a folder (one file per call, written
atomically), so a test can count the model calls made in other processes,
and some of them fail on purpose, once, to test the retries.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np

from proxyspex_captum.core.executors import replica
from proxyspex_captum.games import PlantedGame, hierarchical_game


def planted(n_features: int = 40, seed: int = 3) -> PlantedGame:
    """A hierarchical game with coefficients on a 1/64 grid.

    Every sum of them is exact in floating point, so a mask's value does not
    depend on how the masks were batched (a BLAS kernel may sum a batch of 7
    and one of 300 in different orders): runs that batch differently, such as
    a resumed one, must give bit-identical results.
    """
    game = hierarchical_game(n_features, n_terms=30, max_order=3, random_state=seed)
    dyadic = {s: round(v * 64) / 64 for s, v in game.mobius.items()}
    return PlantedGame(dyadic, n_features=n_features)


def _log(folder: str, masks: np.ndarray, tag: str = "call") -> None:
    name = f"{tag}-{os.getpid()}-{uuid.uuid4().hex}.npy"
    tmp = Path(folder) / f".{name}"
    np.save(tmp, np.packbits(masks, axis=1))
    os.replace(tmp, Path(folder) / name)  # a reader never sees half a file


def logged_masks(folder: str | os.PathLike, tag: str = "call") -> list[np.ndarray]:
    """The packed masks of every logged call (one array per call)."""
    return [np.load(p) for p in sorted(Path(folder).glob(f"{tag}-*.npy"))]


class Logged:
    """``game(masks)``, logging each call; sleeps ``delay`` seconds per call first."""

    def __init__(self, game, folder: str, delay: float = 0.0) -> None:
        self.game, self.folder, self.delay = game, str(folder), delay

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        _log(self.folder, masks)
        return self.game(masks)


class DiesOnce(Logged):
    """Kills its worker process (``os._exit``) on the first call that holds ``row``'s mask."""

    def __init__(self, game, folder: str, mask: np.ndarray, how: str = "exit") -> None:
        super().__init__(game, folder)
        self.mask, self.how = np.asarray(mask, dtype=bool), how

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        marker = Path(self.folder) / "died"
        if (masks == self.mask).all(axis=1).any() and not marker.exists():
            marker.touch()
            if self.how == "raise":
                raise ConnectionError("the worker lost its connection (planted)")
            os._exit(1)  # the worker dies mid-batch, as on a crash or an OOM kill
        return super().__call__(masks)


def _load_model() -> dict:
    """A stand-in for loading a model: records which process built it."""
    folder = os.environ["PSX_TEST_REPLICA_DIR"]
    Path(folder, f"built-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return {"game": planted(), "pid": os.getpid()}


def load_model() -> dict:
    return _load_model()


def replica_game(masks: np.ndarray) -> np.ndarray:
    """The planted game, taken from the worker's model replica."""
    return replica(load_model)["game"](masks)


class Refused(Exception):
    """A request the server refuses for good: not retried."""

    retryable = False


def refuses_the_empty_mask(masks: np.ndarray) -> np.ndarray:
    """A 1-second model call, but a batch holding the empty mask is refused at once."""
    if not masks.any(axis=1).all():
        raise Refused("the empty mask is refused (planted)")
    time.sleep(1.0)
    return masks.sum(axis=1).astype(float)
