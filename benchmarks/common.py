"""Shared pieces of the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Where the benchmarks write their tables.
RESULTS = Path(__file__).parent / "results"


def write_results(name: str, text: str) -> Path:
    """Write a benchmark's table to ``results/<name>`` and print it; returns the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    print(text)
    return path


def median_seconds(func: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``func``."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        func()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


class TimedGame:
    """Wraps a game and counts the time spent inside it, to isolate a method's own time.

    ``seconds`` is wall time; ``cpu_seconds`` the process's CPU time (every thread).
    """

    def __init__(self, game) -> None:
        self.game = game
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def __call__(self, masks):
        tic, cpu = time.perf_counter(), time.process_time()
        out = self.game(np.asarray(masks, dtype=bool))
        self.seconds += time.perf_counter() - tic
        self.cpu_seconds += time.process_time() - cpu
        return out
