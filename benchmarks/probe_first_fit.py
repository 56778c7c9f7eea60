"""What a fresh process pays on its first explanation: each method's first and second run.

The faithfulness harness times every method in a freshly forked child, so
each timed run is the process's first explanation. That one costs more than
the next (about 0.1 s at n = 32 with 250 calls, for ours and for shapiq's
ProxySPEX alike), and on the smallest cells that is a quarter of our time.
This probe measures it and where it goes, in forked children of one parent
that has imported every method's packages (as ``bench_faithfulness.py``'s
parent does):

- each method's own seconds on the cell, first and second run in the same
  child (``--children`` children);
- ProxySPEX's first LightGBM boost in each of those two runs (its first
  screening fold's proxy), and a boost on its own in a fresh child and again
  (the cell's masks, depth 3): LightGBM's one-time set-up;
- entering :func:`~proxyspex_captum.core.sparse_fit.fitting` the first time
  and again: finding the process's BLAS libraries, once.

It decides nothing; ``--warm-child`` in ``bench_faithfulness.py`` times
second explanations (``results/host_avx512/README.md``).

Run: ``.venv/bin/python benchmarks/probe_first_fit.py [--cell KEY]
[--methods psx-proxyspex,shapiq-proxyspex] [--children 5]`` (about a minute).
Writes ``benchmarks/results/first_fit.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import faith_suite as fs
import numpy as np
from bench_faithfulness import preimport, select_cells, versions
from common import write_results

import proxyspex_captum.core.proxyspex as proxyspex_module
from proxyspex_captum import ProxySPEX
from proxyspex_captum.core.boosting import boost
from proxyspex_captum.core.sparse_fit import fitting, fold_indices

DEFAULT_CELL = "hierarchical(n=32,decay=0.7,degree=4,terms=90)#201|budget=250|"


def in_child(work: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """``work()`` in a forked child (a fresh process's first run), its result sent back."""
    receive, send = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, write the result, leave without cleanup
        try:
            os.write(send, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(send)
    with os.fdopen(receive) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    if not text:
        raise RuntimeError("the child died before sending its result")
    first, second = json.loads(text)
    return first, second


def twice(action: Callable[[], Any]) -> tuple[float, float]:
    """Seconds of ``action`` in a fresh child, first and second call."""

    def work() -> tuple[float, float]:
        times = []
        for _ in range(2):
            tic = time.perf_counter()
            action()
            times.append(time.perf_counter() - tic)
        return times[0], times[1]

    return in_child(work)


def own_seconds_twice(cell: fs.Cell, method: str) -> tuple[float, float]:
    """The method's own seconds (harness accounting), first and second run in one child."""

    def work() -> tuple[float, float]:
        first = fs.run_one(fs.Prepared.of(cell), method)["seconds"]
        return first, fs.run_one(fs.Prepared.of(cell), method)["seconds"]

    return in_child(work)


def first_boost_of_each_run(cell: fs.Cell) -> tuple[float, float]:
    """Seconds of ProxySPEX's first boost in its first and its second run, in one child."""

    def work() -> tuple[float, float]:
        times: list[float] = []

        def timed(*args: Any, **kwargs: Any) -> Any:
            tic = time.perf_counter()
            booster = boost(*args, **kwargs)
            times.append(time.perf_counter() - tic)
            return booster

        proxyspex_module.boost = timed  # this child's copy of the module only
        firsts = []
        for _ in range(2):
            times.clear()
            fs.run_one(fs.Prepared.of(cell), "psx-proxyspex")
            firsts.append(times[0])
        return firsts[0], firsts[1]

    return in_child(work)


def first_boost(cell: fs.Cell) -> Callable[[], Any]:
    """ProxySPEX's first proxy on the cell's masks (depth 3, its first fold)."""
    game = cell.game.build()
    rng = np.random.default_rng(cell.game.method_seed)
    masks = rng.random((cell.budget, cell.game.n)) < 0.5
    x, y = masks.astype(np.float32), np.asarray(game(masks), dtype=float)
    train, test = next(fold_indices(len(y), 5, rng))
    params = ProxySPEX(max_order=cell.max_order).lightgbm_params(3, 0.1, 0)
    return lambda: boost(
        params, (x[train], y[train]), (x[test], y[test]), max_rounds=2000, patience=20
    )


def enter_fitting() -> None:
    with fitting():
        pass


def row(label: str, runs: list[tuple[float, float]]) -> str:
    first = statistics.median(r[0] for r in runs) * 1e3
    second = statistics.median(r[1] for r in runs) * 1e3
    return f"| {label} | {first:.1f} | {second:.1f} | {first - second:+.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default=DEFAULT_CELL, help="a substring of a report cell's key")
    parser.add_argument("--methods", default="psx-proxyspex,shapiq-proxyspex")
    parser.add_argument("--children", type=int, default=5)
    args = parser.parse_args()
    cells = [c for c in select_cells("report", None, False) if args.cell in c.key]
    if not cells:
        raise SystemExit(f"No report cell's key contains {args.cell!r}.")
    cell, methods = cells[0], fs.split_methods(args.methods)
    preimport()
    boost_once = first_boost(cell)
    rows = []
    for method in methods:
        runs = [own_seconds_twice(cell, method) for _ in range(args.children)]
        rows.append(row(f"{method}: own time on the cell", runs))
        print(rows[-1], flush=True)
    runs = [first_boost_of_each_run(cell) for _ in range(args.children)]
    rows.append(row("psx-proxyspex: its first LightGBM boost in the run", runs))
    print(rows[-1], flush=True)
    for label, action in (
        ("a LightGBM boost on its own (depth 3, the cell's masks)", boost_once),
        ("entering `fitting()` (finds the BLAS libraries once)", enter_fitting),
    ):
        rows.append(row(label, [twice(action) for _ in range(args.children)]))
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"# A fresh process's first explanation: {cell.label}",
            "",
            f"Command: `python benchmarks/probe_first_fit.py --cell '{args.cell}' --methods "
            f"{args.methods} --children {args.children}`. Machine: {platform.machine()}, "
            f"{os.cpu_count()} cores, {_cpu_name()}. Versions: {versions()}.",
            "",
            "Milliseconds, medians over the forked children; first and second: the same "
            "work twice in one child.",
            "",
            "| what | first | second | first − second |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )
    write_results("first_fit.md", text)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
