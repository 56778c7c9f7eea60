"""Games, designs and method adapters of ``bench_faithfulness.py`` (issue 12).

A *game* is a value function ``boolean masks (k, n) -> values (k,)`` with an
``exact`` method (its noiseless values, the target of the R²). A *cell* is a
game, a budget (distinct model calls) and a ``max_order``; every method runs on
every cell and is scored on the same 1,000 held-out uniform masks.

Adding a game family: write a builder ``(n, params, seed) -> game`` and
register it (``@register_family("name")`` or ``FAMILIES["name"] = builder``),
then give it cells in a design (``_tuning``, ``_report``). The family ``llm`` is
the hook for ``benchmarks/llm_games.py``: its builder wraps
``llm_games.game_by_name(name)``, and ``--family llm`` adds one cell per game of
``llm_games.LLM_GAMES[set]`` and pair of :data:`LLM_PAIRS`; its methods run in
the main process, so the model loads once.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import multiprocessing
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from common import TimedGame
from threadpoolctl import threadpool_limits

import proxyspex_captum as psx
from proxyspex_captum import baselines
from proxyspex_captum.games import PlantedGame, fourier_game, hierarchical_game

# ---------------------------------------------------------------------------- games


class Game(Protocol):
    """What a family's builder returns."""

    def __call__(self, masks: np.ndarray) -> np.ndarray: ...

    def exact(self, masks: np.ndarray) -> np.ndarray: ...


Builder = Callable[[int, Mapping[str, Any], int], Game]
#: Family name -> builder ``(n, params, seed) -> game``. One more family is one more entry.
FAMILIES: dict[str, Builder] = {}


def register_family(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as the game family ``name``."""

    def add(builder: Builder) -> Builder:
        FAMILIES[name] = builder
        return builder

    return add


@register_family("hierarchical")
def _hierarchical(n: int, params: Mapping[str, Any], seed: int) -> Game:
    # params: terms, degree, decay (and noise, for the noisy family)
    rng = np.random.default_rng(seed)
    game = hierarchical_game(
        n,
        n_terms=params["terms"],
        max_order=params["degree"],
        decay=params["decay"],
        random_state=rng,
    )
    noise = params.get("noise", 0.0)
    if noise == 0:
        return game
    # Gaussian, its sd a fraction of the noiseless output's sd over uniform masks
    # (hierarchical_game's own definition), drawn from the same generator.
    probe = rng.random((2000, n)) < 0.5
    return StreamNoiseGame(game, noise * float(np.std(game.exact(probe))), rng)


class StreamNoiseGame:
    """A planted game whose noise is drawn in call order from one generator.

    What ``psx.games`` did before 2026-12-06 (it now draws each mask's noise
    from the mask): every committed table's noisy games were made this way, so
    they stay so here and rerun to the same values. A cell's methods each get a
    fresh game (forked, or rebuilt in process), so each sees the same noise.
    """

    def __init__(self, game: PlantedGame, noise_std: float, rng: np.random.Generator) -> None:
        self.game, self.noise_std, self.rng = game, noise_std, rng
        self.mobius = game.mobius

    def exact(self, masks: np.ndarray) -> np.ndarray:
        return self.game.exact(masks)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        values = self.game.exact(masks)
        return values + self.rng.normal(0.0, self.noise_std, size=values.shape)


@register_family("hierarchical-noisy")
def _hierarchical_noisy(n: int, params: Mapping[str, Any], seed: int) -> Game:
    # 5 % noise; the R² is against the noiseless game.
    return _hierarchical(n, {"noise": 0.05, **params}, seed)


class SOUMGame:
    """shapiq's sum of unanimity games as a boolean-mask value function (noiseless)."""

    def __init__(self, soum: Any) -> None:
        self.soum = soum
        self.n_terms = soum.n_basis_games

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        # SOUM.value_function, not SOUM.__call__: the latter counts calls, may
        # normalise and print; the function itself is the game.
        return np.asarray(self.soum.value_function(np.asarray(masks, dtype=bool)), dtype=float)

    exact = __call__


@register_family("soum")
def _soum(n: int, params: Mapping[str, Any], seed: int) -> Game:
    # shapiq 1.4 moved the benchmark games to the shapiq_games package it ships
    # with (shapiq.games.benchmark no longer exists); the class is the same.
    from shapiq_games.synthetic.soum import SOUM

    soum = SOUM(
        n,
        params["basis"],
        min_interaction_size=1,  # no constant term: shapiq's default would allow size 0
        max_interaction_size=params["max_size"],
        random_state=seed,
    )
    return SOUMGame(soum)


@register_family("fourier")
def _fourier(n: int, params: Mapping[str, Any], seed: int) -> Game:
    return fourier_game(n, n_terms=params["terms"], max_order=params["degree"], random_state=seed)


class LLMValueGame:
    """An ``llm_games.LLMGame`` as a game: its (disk-cached) model is the exact target."""

    def __init__(self, llm_game: Any) -> None:
        self.llm_game = llm_game
        self._f = llm_game.value_function()  # the model loads lazily, at the first call
        self.n_terms = None

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return np.asarray(self._f(np.asarray(masks, dtype=bool)), dtype=float)

    exact = __call__  # scored answers, no sampling: the model is deterministic

    #: The numbers of removed units r of the removal metric Rem(r).
    REMOVALS = (1, 2, 3)

    def removal_scores(self, surrogate: Any) -> list[float]:
        """The SPEX paper's ``Rem(r)`` for r in :attr:`REMOVALS` (a model call per r, + f(1))."""
        import llm_games

        return [float(v) for v in llm_games.removal_score(surrogate, self.exact, self.REMOVALS)]

    def held_out_masks(self) -> np.ndarray:
        # An exhaustive game is scored on every mask (its table is the ground truth);
        # a sampled one on the module's own held-out seed, so the values come from
        # its disk cache.
        if self.llm_game.exhaustive:
            return self.llm_game.all_masks()
        return self.llm_game.held_out_masks()


@register_family("llm")
def _llm(n: int, params: Mapping[str, Any], seed: int) -> Game:
    import llm_games  # benchmarks/llm_games.py: SmolLM2 games, imported only when asked for

    game = llm_games.game_by_name(params["name"])
    if game.n_features != n:
        raise ValueError(f"{params['name']} has {game.n_features} units, the cell says {n}.")
    return LLMValueGame(game)


#: Families whose methods run in this process (no fork): a model loaded once is kept.
IN_PROCESS_FAMILIES = frozenset({"llm"})
#: (budget, max_order) of each LLM game's cells, by kind: a QA passage of 10-11
#: sentences has only 1,024-2,048 masks, so its budgets are smaller.
LLM_PAIRS = {"sentiment": ((500, 3), (1000, 4)), "qa": ((250, 3), (500, 4))}


def llm_cells(split: str) -> list[Cell]:
    """One cell per LLM game of ``split`` and pair of :data:`LLM_PAIRS` (llm_games.py)."""
    if importlib.util.find_spec("llm_games") is None:
        raise ValueError("--family llm needs benchmarks/llm_games.py.")
    import llm_games

    return [
        Cell(GameSpec.make("llm", game.n_features, 0, name=game.name), budget, k)
        for game in llm_games.LLM_GAMES[split]
        for budget, k in LLM_PAIRS[game.kind]
    ]


@dataclass(frozen=True)
class GameSpec:
    """One game: a family, a size, the family's structure parameters and a seed."""

    family: str
    n: int
    params: tuple[tuple[str, Any], ...]
    seed: int

    @classmethod
    def make(cls, family: str, n: int, seed: int, **params: Any) -> GameSpec:
        return cls(family, n, tuple(sorted(params.items())), seed)

    @property
    def key(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.family}(n={self.n},{inner})#{self.seed}"

    def build(self) -> Game:
        return FAMILIES[self.family](self.n, dict(self.params), self.seed)

    @property
    def method_seed(self) -> int:
        # The methods' seed differs from the game's: as_generator(seed) would
        # otherwise replay the stream that chose the game's terms as the masks.
        return 10_000 + self.seed

    def held_out(self, n_masks: int = 1000) -> np.ndarray:
        # Its own seed stream (a SeedSequence of three words), independent of
        # the game's and of every method's seed: the same masks for all methods.
        rng = np.random.default_rng([7_777, self.seed, self.n])
        return rng.random((n_masks, self.n)) < 0.5


@dataclass(frozen=True)
class Cell:
    """A game, a budget and a max_order: one row of the table."""

    game: GameSpec
    budget: int
    max_order: int

    @property
    def key(self) -> str:
        return f"{self.game.key}|budget={self.budget}|k={self.max_order}"

    @property
    def label(self) -> str:
        """The key without the ``|`` that would split a markdown table's column."""
        return self.key.replace("|", ", ")


# --------------------------------------------------------------------------- designs
#
# Two disjoint designs (and report2: the report's structures on seeds 5xx, see
# _report2). They differ in the seeds (tuning 1xx, 3xx, 4xx, 6xx; report 2xx) and in
# the structure parameters, so a setting tuned on one cannot have been fitted to
# the other's games (terms: requested Möbius terms; hierarchical supports are
# closed under subsets, so they come out at or a few above it):
#
#   family              TUNING                         REPORT
#   hierarchical        terms 80/95/100, degree 3/4,   terms 90/110, degree 3/4,
#                       decay 0.6/0.8                  decay 0.7/0.9
#   hierarchical-noisy  terms 85, deg 4, decay 0.8     terms 100, deg 4, decay 0.7
#   soum (shapiq)       basis 30/45, max size 4/5      basis 40/60, max size 4/5
#   fourier             terms 55, degree 2/3           terms 60/65, degree 3/4
#
# Every design spans n = 32 .. 1000, budgets 250 .. 4000 and max_order 3, 4, 5,
# sparsely: each game carries 1-4 (budget, max_order) pairs, and n = 1000 stays
# at budgets <= 2000 (shapiq's grid-searched proxy grows with n x budget).


def _cells(game: GameSpec, *pairs: tuple[int, int]) -> list[Cell]:
    return [Cell(game, budget, k) for budget, k in pairs]


def _tuning() -> list[Cell]:
    g = GameSpec.make
    cells = []
    cells += _cells(g("hierarchical", 32, 101, terms=80, degree=3, decay=0.6), (250, 3), (500, 4))
    cells += _cells(
        g("hierarchical", 128, 102, terms=95, degree=4, decay=0.8), (500, 4), (1000, 5), (4000, 4)
    )
    cells += _cells(
        g("hierarchical", 512, 103, terms=80, degree=4, decay=0.6), (1000, 4), (2000, 3)
    )
    cells += _cells(
        g("hierarchical", 1000, 104, terms=95, degree=3, decay=0.8), (1000, 3), (2000, 5)
    )
    cells += _cells(
        g("hierarchical-noisy", 128, 105, terms=85, degree=4, decay=0.8), (1000, 4), (2000, 5)
    )
    cells += _cells(
        g("hierarchical-noisy", 1000, 106, terms=85, degree=4, decay=0.8), (1000, 4), (2000, 4)
    )
    cells += _cells(g("soum", 32, 107, basis=30, max_size=4), (500, 4), (1000, 5))
    cells += _cells(g("soum", 512, 108, basis=45, max_size=5), (1000, 5), (4000, 4))
    cells += _cells(g("soum", 1000, 109, basis=30, max_size=4), (2000, 4))
    cells += _cells(g("fourier", 128, 110, terms=55, degree=3), (1000, 3), (2000, 4))
    cells += _cells(g("fourier", 512, 111, terms=55, degree=2), (500, 3), (4000, 3))
    cells += _cells(g("fourier", 1000, 112, terms=55, degree=3), (2000, 3))
    # Few calls per feature (added with the depth-2 candidate, seeds 3xx).
    cells += _cells(g("hierarchical", 512, 301, terms=80, degree=4, decay=0.6), (500, 4))
    cells += _cells(g("hierarchical", 512, 302, terms=100, degree=4, decay=0.8), (500, 4))
    cells += _cells(g("hierarchical", 1000, 303, terms=95, degree=3, decay=0.8), (500, 3))
    cells += _cells(g("soum", 32, 304, basis=30, max_size=4), (250, 3))
    cells += _cells(g("soum", 32, 305, basis=45, max_size=5), (250, 4))
    cells += _cells(g("soum", 128, 306, basis=45, max_size=5), (1000, 5))
    cells += _cells(g("soum", 128, 307, basis=30, max_size=4), (1000, 4))
    cells += _cells(g("hierarchical", 1000, 308, terms=100, degree=3, decay=0.6), (1000, 3))
    # Few calls per feature, second batch (added to choose screen_folds, seeds 4xx).
    cells += _cells(g("hierarchical", 512, 401, terms=80, degree=4, decay=0.6), (500, 4))
    cells += _cells(g("hierarchical", 512, 402, terms=100, degree=4, decay=0.8), (500, 4))
    cells += _cells(g("hierarchical", 1000, 403, terms=95, degree=3, decay=0.8), (500, 3))
    cells += _cells(g("hierarchical", 1000, 404, terms=80, degree=4, decay=0.6), (1000, 4))
    cells += _cells(g("hierarchical", 128, 405, terms=95, degree=4, decay=0.8), (250, 4))
    cells += _cells(g("hierarchical", 32, 406, terms=80, degree=4, decay=0.6), (250, 4))
    cells += _cells(g("soum", 32, 407, basis=30, max_size=4), (250, 3))
    cells += _cells(g("soum", 32, 408, basis=45, max_size=5), (250, 4))
    cells += _cells(g("soum", 128, 409, basis=45, max_size=5), (1000, 5))
    cells += _cells(g("soum", 128, 410, basis=30, max_size=4), (500, 4))
    cells += _cells(g("soum", 1000, 411, basis=45, max_size=5), (1000, 5))
    cells += _cells(g("hierarchical-noisy", 512, 412, terms=85, degree=4, decay=0.8), (500, 4))
    # n = 512 at 500 calls, the shape of the last report cell behind shapiq (third
    # batch, seeds 6xx, added 2026-12-05 before any was run).
    for seed, terms, degree, decay in (
        (601, 95, 4, 0.6),
        (602, 95, 4, 0.8),
        (603, 100, 4, 0.6),
        (604, 80, 4, 0.8),
        (605, 100, 3, 0.8),
        (606, 95, 3, 0.6),
        (607, 80, 4, 0.6),
        (608, 100, 4, 0.8),
    ):
        game = g("hierarchical", 512, seed, terms=terms, degree=degree, decay=decay)
        cells += _cells(game, (500, 4))
    return cells


def _report() -> list[Cell]:
    g = GameSpec.make
    cells = []
    cells += _cells(g("hierarchical", 32, 201, terms=90, degree=4, decay=0.7), (250, 4), (1000, 5))
    cells += _cells(
        g("hierarchical", 128, 202, terms=110, degree=3, decay=0.9), (500, 3), (1000, 4)
    )
    cells += _cells(
        g("hierarchical", 128, 203, terms=90, degree=4, decay=0.9), (1000, 5), (4000, 4)
    )
    cells += _cells(
        g("hierarchical", 512, 204, terms=110, degree=4, decay=0.7),
        (500, 4),
        (1000, 4),
        (2000, 5),
        (4000, 3),
    )
    cells += _cells(
        g("hierarchical", 1000, 205, terms=90, degree=4, decay=0.9), (1000, 4), (2000, 4)
    )
    cells += _cells(
        g("hierarchical", 1000, 206, terms=110, degree=3, decay=0.7), (1000, 3), (2000, 5)
    )
    cells += _cells(
        g("hierarchical-noisy", 128, 207, terms=100, degree=4, decay=0.7), (1000, 4), (2000, 4)
    )
    cells += _cells(
        g("hierarchical-noisy", 512, 208, terms=100, degree=4, decay=0.7), (1000, 5), (4000, 4)
    )
    cells += _cells(g("hierarchical-noisy", 1000, 209, terms=100, degree=4, decay=0.7), (2000, 4))
    cells += _cells(g("soum", 32, 210, basis=40, max_size=4), (250, 3), (1000, 4))
    cells += _cells(g("soum", 128, 211, basis=60, max_size=5), (1000, 5), (4000, 5))
    cells += _cells(g("soum", 512, 212, basis=40, max_size=4), (2000, 4))
    cells += _cells(g("soum", 1000, 213, basis=60, max_size=5), (1000, 5), (2000, 4))
    cells += _cells(g("fourier", 32, 214, terms=60, degree=3), (500, 3))
    cells += _cells(g("fourier", 128, 215, terms=65, degree=4), (2000, 4), (4000, 5))
    cells += _cells(g("fourier", 512, 216, terms=60, degree=3), (1000, 3), (4000, 3))
    cells += _cells(g("fourier", 1000, 217, terms=65, degree=4), (2000, 4))
    return cells


def _report2() -> list[Cell]:
    # A second report set (2026-12-05): the report set's structure ranges on new
    # seeds (5xx), made after the two-fold screening and the Möbius lasso were
    # chosen on the tuning set and first run when both were committed, because
    # the first report set's failing cells had been read while working on them.
    g = GameSpec.make
    cells = []
    cells += _cells(
        g("hierarchical", 32, 501, terms=110, degree=4, decay=0.9), (250, 3), (1000, 4)
    )
    cells += _cells(
        g("hierarchical", 128, 502, terms=90, degree=4, decay=0.7), (500, 4), (2000, 5)
    )
    cells += _cells(
        g("hierarchical", 512, 503, terms=110, degree=3, decay=0.9), (500, 3), (1000, 4)
    )
    cells += _cells(
        g("hierarchical", 1000, 504, terms=90, degree=4, decay=0.7), (1000, 4), (2000, 3)
    )
    cells += _cells(
        g("hierarchical-noisy", 128, 505, terms=100, degree=4, decay=0.9), (500, 4), (1000, 4)
    )
    cells += _cells(g("hierarchical-noisy", 512, 506, terms=100, degree=4, decay=0.7), (2000, 4))
    cells += _cells(g("soum", 32, 507, basis=60, max_size=5), (250, 4), (500, 5))
    cells += _cells(g("soum", 128, 508, basis=40, max_size=4), (500, 4), (2000, 4))
    cells += _cells(g("soum", 512, 509, basis=60, max_size=5), (1000, 5))
    cells += _cells(g("soum", 1000, 510, basis=40, max_size=4), (1000, 4))
    cells += _cells(g("fourier", 128, 511, terms=60, degree=3), (1000, 3))
    cells += _cells(g("fourier", 512, 512, terms=65, degree=4), (2000, 4))
    return cells


DESIGNS: dict[str, Callable[[], list[Cell]]] = {
    "tuning": _tuning,
    "report": _report,
    "report2": _report2,
}


def quick_cells(
    cells: list[Cell], families: tuple[str, ...] = ("hierarchical", "soum", "fourier")
) -> list[Cell]:
    """The smoke test: each family's cheapest cell (smallest n x budget) of a design."""
    out = []
    for family in families:
        mine = [c for c in cells if c.game.family == family]
        if mine:
            out.append(min(mine, key=lambda c: (c.game.n * c.budget, c.budget)))
    return out


# --------------------------------------------------------------------------- methods


class CountingGame(TimedGame):
    """A TimedGame that also counts the masks it is sent and the distinct ones."""

    def __init__(self, game: Game) -> None:
        super().__init__(game)
        self.n_rows = 0
        self._seen: set[bytes] = set()

    def __call__(self, masks: Any) -> np.ndarray:
        tic, cpu = time.perf_counter(), time.process_time()
        masks = np.asarray(masks, dtype=bool)
        flat = masks.reshape(-1, masks.shape[-1])
        self.n_rows += len(flat)
        self._seen.update(row.tobytes() for row in np.packbits(flat, axis=1))
        self.seconds += time.perf_counter() - tic  # bookkeeping counts as game time
        self.cpu_seconds += time.process_time() - cpu
        return super().__call__(masks)

    @property
    def n_calls(self) -> int:
        return len(self._seen)


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for a reference that draws from it, then put it back.

    shapiq's SPEX and spectralexplain sample from ``np.random``; seeding makes
    their cells reproducible, restoring leaves the global state as it was.
    """
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


#: What an adapter returns: the surrogate (or None when the budget does not fit) and a note.
Outcome = tuple["psx.Interactions | None", str]
#: ``(game, n, budget, max_order, seed, **kwargs) -> outcome``.
Adapter = Callable[..., Outcome]


def _psx(estimator_class: type) -> Adapter:
    def run(game, n, budget, max_order, seed, **kwargs) -> Outcome:
        # The estimate alone, as the references return it: bootstrap intervals
        # (ProxySPEX's default) leave it bit-identical and cost extra own time,
        # measured in bench_uncertainty.py; a variant may still ask for them.
        kwargs = {"uncertainty": False, **kwargs}
        estimator = estimator_class(max_order=max_order, random_state=seed, **kwargs)
        need = estimator.min_budget(n)
        if budget < need:
            return None, f"needs >= {need} calls"
        return estimator.explain(game, n_features=n, budget=budget), ""

    return run


def _shapiq_capturing(base: type) -> type:
    """``base`` (a shapiq sparse approximator) that keeps its raw Möbius transform.

    shapiq returns an index (FBII here, computed as a user would, so its cost is
    timed); the raw transform is read too, so the surrogate is the reference's
    whole estimate whatever its degree (FBII at order 5 equals it up to degree 5).
    """

    class Capturing(base):
        raw_mobius: dict[tuple[int, ...], float] | None = None

        def _process_moebius(self, moebius_transform):
            self.raw_mobius = dict(moebius_transform)
            return super()._process_moebius(moebius_transform)

    return Capturing


def _shapiq_surrogate(approx: Any, n: int) -> psx.Interactions:
    mobius = {tuple(int(i) for i in s): float(v) for s, v in approx.raw_mobius.items()}
    return psx.Interactions.from_mobius(mobius, n_features=n)


def _shapiq_proxyspex(game, n, budget, max_order, seed) -> Outcome:
    import shapiq

    # Its proxy is a 5-fold grid over depths 3 and 5 and cannot be told max_order:
    # the surrogate is its whole transform (the fairest reading for it).
    approx = _shapiq_capturing(shapiq.approximator.ProxySPEX)(
        n=n, index="FBII", max_order=5, random_state=seed
    )
    with seeded_global_rng(seed):
        approx.approximate(budget, game)
    return _shapiq_surrogate(approx, n), ""


def _shapiq_spex(game, n, budget, max_order, seed) -> Outcome:
    import shapiq

    # degree_parameter is the BCH code's t, what our SPEX calls max_order.
    approx = _shapiq_capturing(shapiq.approximator.SPEX)(
        n=n,
        index="FBII",
        max_order=5,
        decoder_type="soft",
        degree_parameter=max_order,
        random_state=seed,
    )
    try:
        with seeded_global_rng(seed):
            approx.approximate(budget, game)
    except ValueError as err:
        if "Insufficient budget" in str(err):
            return None, "budget too small for its code"
        raise
    note = (
        "" if approx.degree_parameter == max_order else f"t lowered to {approx.degree_parameter}"
    )
    return _shapiq_surrogate(approx, n), note


def _spectralexplain_fourier(transform: Mapping[Any, Any], n: int) -> psx.Interactions:
    # Keys are 0/1 vectors over the features; values Fourier coefficients in our
    # (−1)^{|S ∩ m|} convention (its masks: 1 = feature kept, as ours).
    fourier = {
        tuple(int(i) for i in np.flatnonzero(key)): float(np.real(value))
        for key, value in transform.items()
    }
    return psx.Interactions(fourier, n_features=n)


def _spectralexplain_proxyspex(game, n, budget, max_order, seed) -> Outcome:
    import spectralexplain

    # Explainer(algorithm="proxyspex", sample_budget=...): `budget` uniform masks
    # from np.random, then a 5-fold grid (12 settings, up to 5,000 trees, LightGBM
    # on every core) and a ridge refit of the 95 % energy support.
    with seeded_global_rng(seed):
        explainer = spectralexplain.Explainer(
            game, n, sample_budget=budget, max_order=max_order, algorithm="proxyspex", name=None
        )
    return _spectralexplain_fourier(explainer.fourier_transform, n), ""


def _spectralexplain_spex(game, n, budget, max_order, seed) -> Outcome:
    import spectralexplain

    # What Explainer(algorithm="spex", sample_budget=...) runs, without its
    # budget probe: the Explainer builds the whole design up to b = 12 (405,504
    # masks at n = 128, 32 s on 2 cores) only to read the sample counts off it.
    # The count is C·(p+1)·2^b, so the b = 3 design (cheap) gives it exactly.
    def dummy(masks):
        return [0] * len(masks)

    with seeded_global_rng(seed):
        _, counts = spectralexplain.sampling_strategy(dummy, 3, 3, n, None, t=max_order)
    per_bin = counts[3] // 2**3
    b = int(np.floor(np.log2(budget / per_bin)))
    if b < 3:
        return None, f"needs >= {counts[3]} calls"
    with seeded_global_rng(seed):
        signal, _ = spectralexplain.sampling_strategy(game, 3, b, n, None, t=max_order)
        transform = spectralexplain.support_recovery("soft", signal, b, max_order)
    return _spectralexplain_fourier(transform, n), ""


def _captum(name: str) -> Adapter:
    def run(game, n, budget, max_order, seed) -> Outcome:
        return baselines.run_method(name, game, n, budget=budget, random_state=seed)

    return run


#: Method name -> adapter. ``psx-*`` accept constructor kwargs ("psx-proxyspex:energy=0.9").
METHODS: dict[str, Adapter] = {
    "psx-proxyspex": _psx(psx.ProxySPEX),
    "psx-spex": _psx(psx.SPEX),
    "psx-auto": _psx(psx.AutoSPEX),
    "shapiq-proxyspex": _shapiq_proxyspex,
    "shapiq-spex": _shapiq_spex,
    "spectralexplain-proxyspex": _spectralexplain_proxyspex,
    "spectralexplain-spex": _spectralexplain_spex,
    "lime": _captum("lime"),
    "kernelshap": _captum("kernelshap"),
    "banzhaf": _captum("banzhaf"),
}
TAKES_KWARGS = ("psx-proxyspex", "psx-spex", "psx-auto")
#: Run when no --methods is given: all but spectralexplain's ProxySPEX, whose
#: grid took 44 s at n = 32, budget 250 (about 60x shapiq's port of it) and grows
#: with n x budget: far beyond a run of this design. Ask for it by name.
DEFAULT_METHODS = tuple(m for m in METHODS if m != "spectralexplain-proxyspex")
#: The SPEX references run only where our SPEX can (budget >= its minimum at the
#: cell's max_order: elsewhere there is nothing to compare) and, unless
#: ``all_references``, at n <= SPEX_REFERENCE_MAX_N: after the warm-up below,
#: shapiq's took 9 s at n = 128, budget 1,000 but 48 s at n = 512, budget 1,000
#: and more than 60 s at n = 1,000, budget 2,000 (spectralexplain's 33 s already
#: at n = 128; 2 shared cores), which would double the report's run time.
GATED_BY_PSX_SPEX = ("shapiq-spex", "spectralexplain-spex")
SPEX_REFERENCE_MAX_N = 128


def gate(method: str, cell: Cell, *, all_references: bool = False) -> str | None:
    """Why ``method`` is not run on ``cell`` by design, or None."""
    base, _ = parse_method(method)
    if base in GATED_BY_PSX_SPEX:
        need = psx.SPEX(max_order=cell.max_order).min_budget(cell.game.n)
        if cell.budget < need:
            return f"not run: psx-spex needs >= {need} calls"
        if not all_references and cell.game.n > SPEX_REFERENCE_MAX_N:
            return f"not run: n > {SPEX_REFERENCE_MAX_N} (--all-references runs it)"
    return None


def warm_up(cells: list[Cell], methods: list[str], *, all_references: bool = False) -> float:
    """JIT-compile the SPEX references' codes here, once, before any child forks.

    Both build their BCH codes with ``galois``, whose numba kernels compile on
    first use in a process: 16 s for the first code, 3-10 s for each further
    (n, t) (measured: n = 32..1000). A forked child would pay that again in
    every cell; compiled here, every child inherits it, and the references are
    timed in their steady state, as a long-running user would see them. Each
    (n, max_order) is run once on a two-term game at the smallest design.
    Returns the seconds spent.
    """
    references = [m for m in methods if parse_method(m)[0] in GATED_BY_PSX_SPEX]
    pairs = sorted(
        {
            (c.game.n, c.max_order)
            for c in cells
            for m in references
            if gate(m, c, all_references=all_references) is None
        }
    )
    if not pairs:
        return 0.0
    import spectralexplain

    tic = time.perf_counter()
    for n, k in pairs:
        game = psx.games.PlantedGame({(0,): 1.0, (1, 2): 0.5}, n_features=n)
        _, counts = spectralexplain.sampling_strategy(
            lambda masks: [0] * len(masks), 3, 3, n, None, t=k
        )
        for method in references:
            with contextlib.suppress(Exception):  # a warm-up failure shows up in the cell
                METHODS[parse_method(method)[0]](game, n, counts[3], k, 0)
    return time.perf_counter() - tic


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``"psx-proxyspex:energy=0.9,max_depth=3"`` -> ``("psx-proxyspex", {...})``.

    Values are Python literals where they parse (numbers, None, True, strings
    in quotes), else plain strings.
    """
    base, _, rest = spec.partition(":")
    if base not in METHODS:
        raise ValueError(f"Unknown method {base!r}; choose from {', '.join(METHODS)}.")
    kwargs: dict[str, Any] = {}
    for item in filter(None, _split_top_level(rest)):
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"Expected key=value in {spec!r}, got {item!r}.")
        try:
            kwargs[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = text.strip()
    if kwargs and base not in TAKES_KWARGS:
        raise ValueError(f"{base} takes no options (only {', '.join(TAKES_KWARGS)} do).")
    return base, kwargs


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: ``"a=(2,3),b=1"`` -> ``["a=(2,3)", "b=1"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def split_methods(text: str) -> list[str]:
    """Split ``--methods`` on commas, keeping a variant's ``key=value,key=value`` together."""
    out: list[str] = []
    for token in filter(None, (t.strip() for t in _split_top_level(text))):
        if "=" in token and ":" not in token and out:
            out[-1] += "," + token  # another option of the previous variant
        else:
            out.append(token)
    return out


# --------------------------------------------------------------------------- running


def r2(predicted: np.ndarray, truth: np.ndarray) -> float:
    """1 − SSE/SST."""
    sst = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((truth - predicted) ** 2)) / sst


def truncated(inter: psx.Interactions, order: int) -> psx.Interactions:
    """The Fourier terms of order <= ``order``: the uniform-L2 best order-k reading (= FBII)."""
    kept = {s: v for s, v in inter.fourier.items() if len(s) <= order}
    return psx.Interactions(kept, n_features=inter.n_features)


@dataclass
class Prepared:
    """A cell's game and its held-out masks and noiseless values, shared by all methods."""

    cell: Cell
    game: Game
    masks: np.ndarray
    truth: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, cell: Cell) -> Prepared:
        game = cell.game.build()
        own = getattr(game, "held_out_masks", None)  # a family may fix its own (LLM: cached)
        masks = own() if own is not None else cell.game.held_out()
        info = {"game_terms": _game_terms(game)}
        return cls(cell, game, masks, np.asarray(game.exact(masks), dtype=float), info)


def _game_terms(game: Game) -> int | None:
    if hasattr(game, "mobius"):
        return len(game.mobius)
    return getattr(game, "n_terms", None)


def run_one(prepared: Prepared, method: str) -> dict[str, Any]:
    """Run ``method`` on the cell; a record with R², own seconds, calls, and any error."""
    cell = prepared.cell
    base, kwargs = parse_method(method)
    counted = CountingGame(prepared.game)
    record: dict[str, Any] = {"method": method, "error": None, "note": ""}
    # One BLAS thread for every method, as ours sets for its own fits: the references'
    # BLAS threads spun on a busy machine (shapiq's RidgeCV refit, 0.07 s with one
    # thread, 1.33 s with two under load).
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("always")
        # The clock starts here: finding the BLAS libraries (5-10 ms in a fresh
        # child) is the harness's work, not the method's.
        tic, cpu = time.perf_counter(), time.process_time()
        try:
            inter, note = METHODS[base](
                counted, cell.game.n, cell.budget, cell.max_order, cell.game.method_seed, **kwargs
            )
        except Exception as err:  # one method's failure is a result, not a crash
            record["error"] = f"{type(err).__name__}: {err}"[:500]
            record["traceback"] = traceback.format_exc(limit=6)[-2000:]
            inter, note = None, ""
        wall = time.perf_counter() - tic
        cpu_seconds = time.process_time() - cpu - counted.cpu_seconds
    # Kept, not shown: e.g. our PoorFitWarning, sklearn's convergence warnings.
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}"[:200] for w in caught)
    if messages:
        record["warnings"] = list(messages)[:3]
    record.update(
        seconds=wall - counted.seconds,
        # CPU time of every thread: ours fits its folds on a thread per core
        # (n_jobs="auto"), shapiq's ProxySPEX on one.
        cpu_seconds=cpu_seconds,
        game_seconds=counted.seconds,
        n_calls=counted.n_calls,
        n_rows=counted.n_rows,
        note=note,
    )
    if inter is not None:
        try:
            record["r2"] = r2(inter.predict(prepared.masks), prepared.truth)
            record["r2_at_order"] = r2(
                truncated(inter, cell.max_order).predict(prepared.masks), prepared.truth
            )
            record["n_terms"] = len(inter)
            record["degree"] = inter.max_order
            removal = getattr(prepared.game, "removal_scores", None)  # LLM games: Rem(r)
            if removal is not None:
                record["rem"] = removal(inter)
        except Exception as err:  # e.g. a surrogate too large to expand
            record["error"] = f"scoring: {type(err).__name__}: {err}"[:500]
    return record


def skipped(method: str, reason: str) -> dict[str, Any]:
    """The record of a method not run on a cell (by design or for its budget)."""
    return {"method": method, "error": None, "note": reason, "seconds": 0.0, "n_calls": 0}


def run_isolated(
    prepared: Prepared, method: str, timeout: float, *, warm_up: Prepared | None = None
) -> dict[str, Any]:
    """:func:`run_one` in a forked child, killed after ``timeout`` seconds.

    A fork inherits the built game and the held-out values (nothing is rebuilt
    or pickled but the small record), every method sees the game in the same
    state (a noisy game's generator too), and a method that hangs, runs out of
    memory or crashes the interpreter leaves an error record. The parent must
    not start GNU OpenMP's thread pool before forking (a child's LightGBM would
    hang on it): it trains no LightGBM itself, and bench_faithfulness.py keeps
    numba (the SPEX references' warm-up) off OpenMP.

    ``warm_up``: a cell the child runs ``method`` on first, untimed, so the
    timed run is a process's second explanation: the one-time costs of a
    fresh process (libraries' lazy set-up, first-touch memory) fall on the
    warm-up, for every method alike. The record then says ``warm_child``, and
    ``warm_up_error`` when the warm-up failed or fitted nothing (its error or
    note). The time limit covers both runs.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        warm = None if warm_up is None else run_one(warm_up, method)
        record = run_one(prepared, method)
        if warm is not None:
            record["warm_child"] = True
            if warm["error"] or "r2" not in warm:
                record["warm_up_error"] = warm["error"] or warm["note"] or "no result"
        send.send(record)
        send.close()

    process = context.Process(target=child, daemon=True)
    tic = time.perf_counter()
    process.start()
    send.close()
    try:
        if receive.poll(timeout):
            record = receive.recv()
            process.join(10)
            return record
        error = f"timeout: killed after {timeout:.0f} s"
    except EOFError:
        process.join(10)
        error = f"child died (exit code {process.exitcode})"
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        receive.close()
    return {
        "method": method,
        "error": error,
        "note": "",
        "seconds": time.perf_counter() - tic,
        **({"warm_child": True} if warm_up is not None else {}),
    }
