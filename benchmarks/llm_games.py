"""LLM games for the faithfulness benchmark (issue 12): SmolLM2 on reviews and passages.

A *game* is a text, what SmolLM2-135M-Instruct is asked about it, and the value
function ``masks (k, n) bool -> values (k,) float`` that the estimators explain
(``True`` keeps a unit; a dropped unit is removed from the prompt):

- ``kind="sentiment"``: word units of a 20–40 word review with a twist
  (negation, contrast, sarcasm, mixed aspects); the value is the library's
  sentiment gap, log p(" positive") − log p(" negative") after
  "The sentiment is" (``TextTask(task="sentiment")``).
- ``kind="qa"``: sentence units of a 10–11 sentence passage and a question
  whose answer needs two or more sentences together; the value is the
  log-probability of the answer string (``TextTask(task="answer")``).

Every text was written for this module (a TUNING set to choose settings on, a
REPORT set to report on; neither is used anywhere else in the project).

The value functions are the command line's path (``TextTask.value_function``
over ``psx.LLMAttribution``'s batched scorer, the library's batch size, torch
on 2 threads) behind a disk cache: every value ever paid for is kept in
``models.cache_dir() / "bench-llm"`` (``~/.cache/proxyspex_captum/bench-llm``
unless ``$PROXYSPEX_CACHE`` says otherwise), one ``.npz`` per game keyed by a
hash of the model, the task, the prompt template and the units, so every
method of a run and every later run reuses it. A QA game with at most
``EXHAUSTIVE_MAX_N`` sentences is *exhaustive*: its value function is a lookup
in the table of all ``2**n`` masks (computed once, then no model is loaded at
all), so R² can be measured on every mask.

Use from a benchmark::

    from llm_games import LLM_GAMES, removal_score   # benchmarks/ on sys.path

    for game in LLM_GAMES["report"]:
        f = game.value_function()                     # loads SmolLM2 once per process
        inter = psx.ProxySPEX(random_state=0).explain(f, game.n_features, budget=500)
        test = game.held_out_masks()                  # 1,000 uniform masks, fixed seed
        r2 = psx.metrics.r2_score(f(test), inter.predict(test))
        if game.exhaustive:                           # ground truth on all 2**n masks
            r2_all = psx.metrics.r2_score(game.exact_values(), inter.predict(game.all_masks()))
        rem = removal_score(inter, f, r=[1, 2, 3])    # Rem(r), one model call per r (+1)

``f`` also has ``f.exact(masks)`` (the same values: the model is deterministic),
the ``Game`` protocol of ``faith_suite.py``. An exhaustive game whose table is
not complete yet (``game.table_ready`` is False) scores the missing masks on
its first ``value_function()`` call, shortest prompts first, saving every
``SAVE_EVERY`` masks, so an interrupted table resumes where it stopped.

From a shell (one model process at a time)::

    .venv/bin/python benchmarks/llm_games.py list
    .venv/bin/python benchmarks/llm_games.py probe --masks 64   # sanity values and s/prompt
    .venv/bin/python benchmarks/llm_games.py exhaustive         # the QA tables, timed

No global RNG is read or changed: masks come from seeded ``numpy.random.Generator``s
and the model is deterministic (scored answers, no sampling).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from proxyspex_captum.models import DEFAULT_MODEL, cache_dir
from proxyspex_captum.text_tasks import TextTask, split_units

__all__ = [
    "EXHAUSTIVE_MAX_N",
    "HELD_OUT_SEED",
    "LLM_GAMES",
    "CachedScorer",
    "LLMGame",
    "TableValueFunction",
    "game_by_name",
    "removal_masks",
    "removal_score",
]

#: The model every game queries (the embedded SmolLM2-135M-Instruct).
MODEL = DEFAULT_MODEL
#: torch threads: the benchmark machines have 2 cores, shared ($PSX_BENCH_TORCH_THREADS overrides;
#: under other processes' load 1 thread was measured faster, 0.19 against 0.28–0.77 s/prompt).
TORCH_THREADS = int(os.environ.get("PSX_BENCH_TORCH_THREADS", "2"))
#: QA games with at most this many sentences get the exhaustive table (2**11 = 2,048 prompts).
EXHAUSTIVE_MAX_N = 11
#: Seed of the held-out masks: far from the estimators' small seeds, as in bench_llm.py.
HELD_OUT_SEED = 10**6
#: Masks scored between two saves of the disk cache: an interrupted run loses at most this many.
SAVE_EVERY = 128
#: Bump when the stored values would change meaning (e.g. a different value definition).
CACHE_VERSION = 1

Kind = Literal["sentiment", "qa"]
Split = Literal["tuning", "report"]


# ---------------------------------------------------------------- the games
@dataclass(frozen=True)
class LLMGame:
    """One text, what is measured on it, and its (disk-cached) value function.

    Args:
        name: Unique name, e.g. ``"report/qa-ferry"``.
        split: ``"tuning"`` (choose settings on it) or ``"report"`` (report on it).
        kind: ``"sentiment"`` (word units) or ``"qa"`` (sentence units).
        text: The review or passage.
        twist: What makes interactions matter here, in words.
        question: The question about the passage (``"qa"`` only).
        answer: The answer string whose log-probability is the value (``"qa"`` only).
        key_units: The units the answer needs, by construction of the text
            (``"qa"``; empty for reviews): a sanity check, not ground truth.

    Attributes:
        units: The features (words or sentences), in order.
        n_features: ``len(units)``.
    """

    name: str
    split: Split
    kind: Kind
    text: str
    twist: str
    question: str | None = None
    answer: str | None = None
    key_units: tuple[int, ...] = ()
    units: tuple[str, ...] = field(init=False)
    n_features: int = field(init=False)

    def __post_init__(self) -> None:
        unit = "word" if self.kind == "sentiment" else "sentence"
        units = tuple(split_units(self.text, unit))
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "n_features", len(units))
        if self.kind == "qa" and not (self.question and self.answer):
            raise ValueError(f"{self.name}: a QA game needs a question and an answer.")

    @property
    def exhaustive(self) -> bool:
        """Whether every query is served from the table of all ``2**n`` masks."""
        return self.kind == "qa" and self.n_features <= EXHAUSTIVE_MAX_N

    @property
    def table_ready(self) -> bool:
        """Whether the exhaustive table is complete on disk (then no model call is ever made)."""
        return self.exhaustive and len(self.scorer()) >= 2**self.n_features

    def task(self) -> TextTask:
        """The library's ``TextTask`` for this game (what the command line would build)."""
        if self.kind == "sentiment":
            return TextTask(list(self.units), task="sentiment", unit="word")
        return TextTask(
            list(self.units),
            task="answer",
            unit="sentence",
            question=self.question,
            answer=self.answer,
        )

    @property
    def cache_key(self) -> str:
        """Hash of everything a value depends on: model, task, prompt template, units."""
        task = self.task()
        identity = {
            "version": CACHE_VERSION,
            "model": MODEL,
            "task": task.task,
            "template": task.template,  # the prompt wording, so a changed prompt is a new game
            "units": list(self.units),
            "question": self.question,
            "answer": self.answer,
            "labels": list(task.labels) if self.kind == "sentiment" else None,
        }
        blob = json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def scorer(self) -> CachedScorer:
        """The disk-cached model scorer (one per game and process; no exhaustive table)."""
        return _scorer(self)

    def value_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """Masks ``(k, n)`` bool -> values ``(k,)`` float64, for every method alike.

        Exhaustive games: a lookup in the ``2**n`` table (computed through the
        model the first time, once for all processes and runs). Others: the
        disk-cached scorer. The model is loaded lazily, once per process.
        """
        if self.exhaustive:
            return _table(self)
        return self.scorer()

    def held_out_masks(self, n_masks: int = 1000, seed: int = HELD_OUT_SEED) -> np.ndarray:
        """``n_masks`` uniform masks (each unit kept with probability ½), the R² protocol.

        The same seed gives the same masks for every method and every run, so
        their values are paid once (free for exhaustive games).
        """
        return np.random.default_rng(seed).random((n_masks, self.n_features)) < 0.5

    def all_masks(self) -> np.ndarray:
        """All ``2**n`` masks, row ``i`` keeping unit ``j`` iff bit ``j`` of ``i`` is set."""
        return _all_masks(self.n_features)

    def exact_values(self) -> np.ndarray:
        """The values of :meth:`all_masks`, in that order (exhaustive games only)."""
        if not self.exhaustive:
            raise ValueError(f"{self.name} has {self.n_features} units: no exhaustive table.")
        return _table(self).table.copy()

    def info(self) -> dict[str, Any]:
        """What the cache has recorded about this game (timings, prompts scored)."""
        return _read_info(self)


def _review(name: str, split: Split, text: str, twist: str) -> LLMGame:
    return LLMGame(name=name, split=split, kind="sentiment", text=text, twist=twist)


def _passage(
    name: str,
    split: Split,
    sentences: Sequence[str],
    question: str,
    answer: str,
    key_units: tuple[int, ...],
    twist: str,
) -> LLMGame:
    game = LLMGame(
        name=name,
        split=split,
        kind="qa",
        text=" ".join(sentences),
        twist=twist,
        question=question,
        answer=answer,
        key_units=key_units,
    )
    # The sentence splitter must give back exactly the sentences written here.
    assert game.units == tuple(sentences), name
    return game


# Written for this module. Each review's overall sentiment depends on words
# read together (a negation with what it negates, a "but" that overrules the
# first clause, praise that is sarcastic only next to what it praises).
_TUNING = [
    _review(
        "tuning/sent-thriller",
        "tuning",
        "I expected to hate this thriller, but the plot never felt predictable and the two "
        "leads were not boring for a single minute, even if the soundtrack was a little loud.",
        "positive; 'but' overrules 'hate', 'never' and 'not' negate negative words",
    ),
    _review(
        "tuning/sent-superhero",
        "tuning",
        "Oh great, another three-hour superhero film where nothing happens. I just loved "
        "checking my watch every ten minutes, and the jokes were so fresh that I heard them "
        "all last decade.",
        "negative; sarcasm: 'great', 'loved', 'fresh' are praise only out of context",
    ),
    _review(
        "tuning/sent-bistro",
        "tuning",
        "The food at this little bistro was delicious and cheap, yet the waiter ignored us "
        "for forty minutes and the room was freezing, so I would not go back.",
        "negative; mixed aspects, 'yet' and 'would not go back' outweigh the food",
    ),
    _passage(
        "tuning/qa-pottery",
        "tuning",
        [
            "The town of Orlen holds a pottery fair every spring.",
            "Three potters from the town entered this year.",
            "Tessa Varn makes tall vases with a blue glaze.",
            "Piet Hollis works only in plain white clay.",
            "The third potter, Anouk Brel, makes small cups and nothing taller than her hand.",
            "The judges gave first prize to a tall vase.",
            "The winning piece was glazed in deep blue.",
            "A visiting potter from the coast also showed tall vases, but only in green.",
            "The judges said the winner had learned glazing from her grandmother.",
            "The prize was a new kiln for the winner's workshop.",
            "The fair ended with a concert in the square.",
        ],
        "Who won first prize at the pottery fair?",
        "Tessa Varn",
        (2, 5, 6),
        "the winner is named nowhere: 'tall vase' and 'blue' single out Tessa's sentence",
    ),
    _passage(
        "tuning/qa-platform",
        "tuning",
        [
            "The morning train from Kessel to Dunmore usually leaves from platform two.",
            "It departs at a quarter past eight on weekdays.",
            "On weekends there is no morning train at all.",
            "This week, the station is repairing the tracks beside platform two.",
            "During the repairs, every train to Dunmore leaves from platform five instead.",
            "Passengers for the coast change trains at Dunmore.",
            "The ticket office opens at seven.",
            "A coffee stand sits next to platform three.",
            "Bicycles may travel in the last carriage.",
            "The repairs are expected to finish next month.",
        ],
        "Which platform does the morning train to Dunmore leave from this week?",
        "Platform five",
        (3, 4),
        "the usual platform (sentence 1) is overruled only by 'this week' + 'during the repairs'",
    ),
]

_REPORT = [
    _review(
        "report/sent-final-act",
        "report",
        "The first half dragged badly and I almost walked out, but the final act was so "
        "moving that I cried, and now I cannot stop recommending it to friends.",
        "positive; contrast: 'but' overrules the first half; 'cannot stop' is praise",
    ),
    _review(
        "report/sent-hotel",
        "report",
        "Nobody would call the hotel luxurious and the breakfast was not exactly memorable, "
        "but the staff were never anything less than kind and the beds were not "
        "uncomfortable at all.",
        "mildly positive; double negations ('never ... less than kind', 'not uncomfortable')",
    ),
    _review(
        "report/sent-phone",
        "report",
        "What a masterpiece of a phone: the battery lasts almost until lunch, the camera "
        "makes every sunset look grey, and support kindly suggested that I simply buy a new "
        "one.",
        "negative; sarcasm: 'masterpiece', 'kindly' are praise only out of context",
    ),
    _passage(
        "report/qa-library",
        "report",
        [
            "Hanne Dorsey keeps a small lending library in her garden shed.",
            "Books can be borrowed for two weeks.",
            "Children may keep picture books for a whole month.",
            "Hanne's nephew Jonas helps her on Saturdays.",
            "Jonas is nine years old and loves stories about the sea.",
            "Last Saturday he borrowed a picture book about whales.",
            "He also took a novel about pirates for his father.",
            "The shed stays closed when it rains.",
            "A cat named Biscuit sleeps on the returns shelf.",
            "Late books cost nothing, but Hanne asks for a drawing instead.",
            "The library holds about four hundred books.",
        ],
        "How long may Jonas keep the book about whales?",
        "A whole month",
        (2, 4, 5),
        "the rule for children (3) applies because Jonas is nine (5) and the book a picture "
        "book (6); sentence 2 gives the wrong, general answer",
    ),
    _passage(
        "report/qa-ferry",
        "report",
        [
            "Two ferries cross the lake to the island of Brask.",
            "The red ferry is faster and takes twenty minutes.",
            "The white ferry is slower and takes forty minutes.",
            "Both ferries leave from the pier next to the old mill.",
            "The red ferry does not carry cars.",
            "Visitors who bring a car must take the white ferry.",
            "Ines is driving to Brask to visit her aunt.",
            "She has packed a tent and a box of books.",
            "The island has one shop and one café.",
            "Ferry tickets are sold on board.",
        ],
        "How long will Ines's crossing to Brask take?",
        "Forty minutes",
        (2, 5, 6),
        "a chain: Ines drives (7) -> cars take the white ferry (5 or 6) -> forty minutes (3)",
    ),
]

#: The registry ``bench_faithfulness.py`` imports: ``{"tuning": [...], "report": [...]}``.
LLM_GAMES: dict[str, list[LLMGame]] = {"tuning": _TUNING, "report": _REPORT}


def game_by_name(name: str) -> LLMGame:
    """The game called ``name`` (e.g. ``"report/qa-ferry"``)."""
    for games in LLM_GAMES.values():
        for game in games:
            if game.name == name:
                return game
    raise KeyError(f"No LLM game {name!r}; known: {', '.join(_names())}.")


def _names() -> list[str]:
    return [g.name for games in LLM_GAMES.values() for g in games]


# ---------------------------------------------------------------- the model, once per process
@functools.lru_cache(maxsize=1)
def _llm() -> tuple[Any, int]:
    """``(psx.LLMAttribution, batch size)``, loaded on the first model call of the process."""
    # Nothing may be downloaded: the embedded model is read from its local fp32 cache.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    import proxyspex_captum as psx
    from proxyspex_captum.attr.llm import DEFAULT_PROMPTS_PER_EVAL

    torch.set_num_threads(TORCH_THREADS)
    model, tokenizer = psx.models.load_model(MODEL)
    # The same wrapper the command line builds: its scorer batches left-padded prompts.
    llm = psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)
    return llm, DEFAULT_PROMPTS_PER_EVAL


# ---------------------------------------------------------------- the disk cache
def cache_root() -> Path:
    """Folder of the stored values: ``models.cache_dir() / "bench-llm"``."""
    return cache_dir() / "bench-llm"


def _pack(masks: np.ndarray) -> np.ndarray:
    return np.packbits(masks, axis=1)


def _unpack(packed: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=n).astype(bool)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shared like a model's
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CachedScorer:
    """The game's model value function behind an in-memory and on-disk cache of values.

    Only masks never scored before (in any process or run) reach the model, in
    the library's batches; every ``SAVE_EVERY`` new masks are written to disk,
    merged with what another process may have written meanwhile.

    Attributes:
        new_prompts: Masked prompts sent to the model by this process.
        model_seconds: Wall seconds of those model calls (prompt building,
            padding and forward passes).
    """

    def __init__(self, game: LLMGame) -> None:
        self.game = game
        self.n = game.n_features
        self.path = cache_root() / f"{game.cache_key}.npz"
        self.values: dict[bytes, float] = {}
        self._unit_lengths = np.array([len(u) for u in game.units])  # a prompt-length proxy
        self.new_prompts = 0
        self.model_seconds = 0.0
        self._function: Callable[[np.ndarray], np.ndarray] | None = None
        self._merge_from_disk()

    def __len__(self) -> int:
        return len(self.values)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = _check_masks(masks, self.n)
        packed = _pack(masks)
        keys = [row.tobytes() for row in packed]
        todo = {k: i for i, k in enumerate(keys) if k not in self.values}  # distinct, in order
        rows = np.fromiter(todo.values(), dtype=int, count=len(todo))
        # Prompts of similar length share a batch: left padding to the longest prompt of a
        # batch is wasted compute (a random mask's passage ranges from 1 to 11 sentences).
        rows = rows[np.argsort(masks[rows] @ self._unit_lengths, kind="stable")]
        for start in range(0, len(rows), SAVE_EVERY):
            chunk = rows[start : start + SAVE_EVERY]
            self._score(masks[chunk], [keys[i] for i in chunk])
        return np.array([self.values[k] for k in keys], dtype=float)

    def exact(self, masks: np.ndarray) -> np.ndarray:
        """The noiseless values: the same as calling it (the model is deterministic)."""
        return self(masks)

    def _score(self, masks: np.ndarray, keys: list[bytes]) -> None:
        function = self._model_function()  # loads the model first: not part of the timing
        tic = time.perf_counter()
        values = function(masks)
        self.model_seconds += time.perf_counter() - tic
        self.new_prompts += len(masks)
        values = np.asarray(values, dtype=float).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"{self.game.name}: the model returned non-finite values.")
        self.values.update(zip(keys, values.tolist(), strict=True))
        self.save()

    def _model_function(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._function is None:
            llm, batch_size = _llm()
            self._function = self.game.task().value_function(llm, batch_size=batch_size)
        return self._function

    def _merge_from_disk(self) -> None:
        if not self.path.is_file():
            return
        with np.load(self.path) as data:
            if int(data["n"]) != self.n:  # a hash collision, or a hand-edited file
                raise ValueError(f"{self.path} holds {int(data['n'])} units, not {self.n}.")
            packed, values = data["packed"], data["values"]
        for row, value in zip(packed, values.tolist(), strict=True):
            self.values.setdefault(row.tobytes(), value)

    def save(self) -> None:
        """Merge with the file (another process may have added values) and write it back."""
        self._merge_from_disk()
        keys = list(self.values)
        packed = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1)
        values = np.array([self.values[k] for k in keys], dtype=float)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.savez(handle, packed=packed, values=values, n=np.int64(self.n))

        _atomic_write(self.path, write)
        _update_info(
            self.game,
            stored_masks=len(keys),
            last_prompts=self.new_prompts,
            last_model_seconds=round(self.model_seconds, 3),
            s_per_prompt=round(self.model_seconds / max(self.new_prompts, 1), 5),
        )


@functools.cache
def _scorer(game: LLMGame) -> CachedScorer:
    return CachedScorer(game)


def _check_masks(masks: np.ndarray, n: int) -> np.ndarray:
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"Expected masks of shape (k, {n}), got {masks.shape}.")
    return masks


def _info_path(game: LLMGame) -> Path:
    return cache_root() / f"{game.cache_key}.json"


def _read_info(game: LLMGame) -> dict[str, Any]:
    path = _info_path(game)
    return json.loads(path.read_text()) if path.is_file() else {}


def _update_info(game: LLMGame, **fields: Any) -> None:
    """A readable note next to the values: which game they are, and what they cost."""
    info = _read_info(game)
    info.update(
        name=game.name,
        kind=game.kind,
        model=MODEL,
        n_features=game.n_features,
        value=game.task().describe_value(),
        text=game.text,
        question=game.question,
        **fields,
    )
    _atomic_write(_info_path(game), lambda tmp: tmp.write_text(json.dumps(info, indent=1) + "\n"))


# ---------------------------------------------------------------- exhaustive tables
@functools.cache
def _all_masks(n: int) -> np.ndarray:
    masks = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    masks = masks.astype(bool)
    masks.setflags(write=False)  # shared between callers: nobody may change it
    return masks


class TableValueFunction:
    """Masks -> values from the game's table of all ``2**n`` masks; no model call.

    Attributes:
        table: ``(2**n,)`` values, entry ``i`` for the mask whose bit ``j`` is unit ``j``.
        seconds: Wall seconds the table took to compute in this process (0 when read).
    """

    def __init__(self, game: LLMGame) -> None:
        self.game = game
        self.n = game.n_features
        self._weights = 1 << np.arange(self.n)
        scorer = game.scorer()
        missing = 2**self.n - len(scorer)
        tic = time.perf_counter()
        if missing > 0:
            print(
                f"{game.name}: computing the exhaustive table ({missing} of {2**self.n} "
                "masks not cached yet)...",
                file=sys.stderr,
                flush=True,
            )
        self.table = scorer(_all_masks(self.n))  # reads the cache; scores only what is missing
        self.table.setflags(write=False)
        self.seconds = time.perf_counter() - tic if missing > 0 else 0.0
        if missing > 0:
            _update_info(
                game,
                exhaustive_masks=2**self.n,
                exhaustive_new_prompts=missing,
                exhaustive_seconds=round(self.seconds, 2),
                # The time all 2**n masks would take from an empty cache, at this run's rate.
                exhaustive_seconds_from_scratch=round(self.seconds * 2**self.n / missing, 1),
            )

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = _check_masks(masks, self.n)
        return self.table[masks.astype(np.int64) @ self._weights].astype(float)

    def exact(self, masks: np.ndarray) -> np.ndarray:
        """The noiseless values: the same as calling it."""
        return self(masks)


@functools.cache
def _table(game: LLMGame) -> TableValueFunction:
    return TableValueFunction(game)


# ---------------------------------------------------------------- removal metric
def removal_masks(surrogate: Any, n_features: int, r: int) -> np.ndarray:
    """The masks ``m*_1 .. m*_r`` the surrogate says change the output most, ``(r, n)``.

    ``m*_j`` keeps every feature but ``j`` of them, chosen to maximise the
    surrogate's change ``|f̂(1) − f̂(m)|``. The maximisation is greedy and the
    same for every method: it is run twice, once for the largest *drop*
    ``f̂(1) − f̂(m)`` and once for the largest *rise* ``f̂(m) − f̂(1)``, each
    time adding to the removed set, ``j`` times, the feature whose removal
    increases that signed change most (ties: the lowest index); for each
    ``j`` the direction with the larger ``|change|`` is kept (ties: the drop).
    For a marginal (linear) surrogate ``f̂(m) = b + Σ c_i m_i`` this is exact:
    each direction removes the ``j`` largest ``c_i`` (resp. most negative),
    which maximises the signed sum, and the larger of the two is the maximum
    of ``|Σ_{i∈R} c_i|``. For a surrogate with interactions it is the greedy
    estimate (a pair that matters only together is found once one of the two
    is removed, or when removing one alone already changes the surrogate).

    Args:
        surrogate: Anything with ``predict(masks (k, n) bool) -> (k,)``:
            ``psx.Interactions`` for every method (the linear methods' too).
        n_features: Number of features.
        r: Largest number of features removed.
    """
    if not 1 <= r <= n_features:
        raise ValueError(f"r must be between 1 and n_features={n_features}, got {r}.")
    full = np.ones((1, n_features), dtype=bool)
    f_full = float(np.asarray(surrogate.predict(full)).reshape(-1)[0])
    paths = [_greedy_path(surrogate, f_full, n_features, r, sign) for sign in (1.0, -1.0)]
    chosen = np.empty((r, n_features), dtype=bool)
    for j in range(r):
        (drop_mask, drop), (rise_mask, rise) = paths[0][j], paths[1][j]
        chosen[j] = drop_mask if drop >= rise else rise_mask
    return chosen


def _greedy_path(
    surrogate: Any, f_full: float, n: int, r: int, sign: float
) -> list[tuple[np.ndarray, float]]:
    """Greedy removals maximising ``sign · (f̂(1) − f̂(m))``: ``[(mask, |change|)]`` per step."""
    mask = np.ones(n, dtype=bool)
    path = []
    for _ in range(r):
        options = np.flatnonzero(mask)
        trial = np.repeat(mask[None], len(options), axis=0)
        trial[np.arange(len(options)), options] = False
        change = f_full - np.asarray(surrogate.predict(trial), dtype=float).reshape(-1)
        best = int(np.argmax(sign * change))  # first maximum: the lowest feature index
        mask = trial[best]
        path.append((mask.copy(), abs(float(change[best]))))
    return path


def removal_score(
    surrogate: Any,
    value_function: Callable[[np.ndarray], np.ndarray],
    r: int | Sequence[int],
) -> float | np.ndarray:
    """The SPEX paper's removal metric ``Rem(r) = |f(1) − f(m*)| / |f(1)|``.

    ``m*`` is the mask with ``r`` features removed that the surrogate says
    changes the output most (:func:`removal_masks`: the same greedy
    maximisation of ``|f̂(1) − f̂(m)|`` for every method, exact for linear
    surrogates). Higher is better: the method found what drives the output.
    ``psx.metrics.removal_curve`` is not reused: it removes what *lowers* the
    surrogate only, so a method whose top features raise the output (a
    negation in a negative review, a distractor sentence) would be scored on
    the wrong removals.

    Args:
        surrogate: The method's surrogate (``psx.Interactions``, or anything with ``predict``).
        value_function: The game's value function (masks -> values).
        r: Number of removed features, or several (one model query each, plus ``f(1)``).

    Returns:
        ``Rem(r)``, a float, or an array for a sequence of ``r``.
    """
    several = not isinstance(r, (int, np.integer))
    rs = [int(x) for x in (r if several else [r])]
    n = _n_features_of(surrogate)
    path = removal_masks(surrogate, n, max(rs))
    masks = np.vstack([np.ones((1, n), dtype=bool), path[[x - 1 for x in rs]]])
    values = np.asarray(value_function(masks), dtype=float).reshape(-1)
    if values[0] == 0:
        raise ValueError("f(1) is 0, so the relative change is undefined.")
    scores = np.abs(values[0] - values[1:]) / abs(values[0])
    return scores if several else float(scores[0])


def _n_features_of(surrogate: Any) -> int:
    n = getattr(surrogate, "n_features", None)
    if n is None:
        raise TypeError("The surrogate must say its n_features (as psx.Interactions does).")
    return int(n)


# ---------------------------------------------------------------- command line
def _selected(names: Sequence[str] | None) -> list[LLMGame]:
    if names:
        return [game_by_name(name) for name in names]
    return [g for games in LLM_GAMES.values() for g in games]


def _cmd_list(games: list[LLMGame]) -> None:
    print(f"cache: {cache_root()}")
    for game in games:
        mode = "sampled"
        if game.exhaustive:
            mode = "exhaustive (ready)" if game.table_ready else "exhaustive"
        print(
            f"{game.name:<24} {game.kind:<9} n={game.n_features:<3} {mode:<18} "
            f"stored={len(game.scorer()):<5} key={game.cache_key}"
        )


def _cmd_probe(games: list[LLMGame], n_masks: int, seed: int) -> list[dict[str, Any]]:
    """Full text, empty text, the key units alone and without them, and random masks."""
    rows = []
    for game in games:
        n = game.n_features
        scorer = game.scorer()  # the model, not the table: probes must not pay 2**n prompts
        special = {"full": np.ones(n, dtype=bool), "empty": np.zeros(n, dtype=bool)}
        if game.key_units:
            key = np.isin(np.arange(n), game.key_units)
            special |= {"key only": key, "all but key": ~key}
        random = np.random.default_rng(seed).random((n_masks, n)) < 0.5
        before, seconds = scorer.new_prompts, scorer.model_seconds
        values = scorer(np.vstack([*special.values(), random]))
        prompts = scorer.new_prompts - before
        row = {
            "name": game.name,
            "n": n,
            **{k: float(v) for k, v in zip(special, values, strict=False)},
            "random_min": float(values[len(special) :].min()),
            "random_max": float(values[len(special) :].max()),
            "random_std": float(values[len(special) :].std()),
            "finite": bool(np.all(np.isfinite(values))),
            "new_prompts": prompts,
            "s_per_prompt": (scorer.model_seconds - seconds) / prompts if prompts else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _cmd_exhaustive(games: list[LLMGame]) -> None:
    for game in games:
        if not game.exhaustive:
            continue
        table = _table(game)
        info = game.info()
        print(
            f"{game.name}: 2**{game.n_features} = {2**game.n_features} masks, "
            f"{table.seconds:.1f} s now (from scratch: "
            f"{info.get('exhaustive_seconds_from_scratch', '?')} s), "
            f"values in [{table.table.min():.3f}, {table.table.max():.3f}]",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("list", "probe", "exhaustive"))
    parser.add_argument("--games", nargs="*", help="game names (default: all)")
    parser.add_argument("--masks", type=int, default=64, help="random masks per probe")
    parser.add_argument("--seed", type=int, default=1, help="seed of the probe masks")
    parser.add_argument("--json", type=Path, help="write the probe rows here")
    args = parser.parse_args(argv)
    games = _selected(args.games)
    if args.command == "list":
        _cmd_list(games)
    elif args.command == "probe":
        rows = _cmd_probe(games, args.masks, args.seed)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")
    else:
        _cmd_exhaustive(games)


if __name__ == "__main__":
    main()
