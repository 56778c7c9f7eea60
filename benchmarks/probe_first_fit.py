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
- ProxySPEX's first-started LightGBM boost in each of those two runs (a
  screening fold's proxy at the grid's first depth; the pool starts a second
  one beside it, and in the first run both pay LightGBM's one-time set-up at
  once), and the same kind of boost on its own in a fresh child and again
  (the grid's first depth, uniform masks of the cell's size);
- entering :func:`~proxyspex_captum.core.sparse_fit.fitting` the first time
  and again, inside the harness's own ``threadpool_limits`` (which has found
  the BLAS libraries already, before its clock starts), and on its own.

It decides nothing; ``--warm-child`` in ``bench_faithfulness.py`` times
second explanations (``results/host_avx512/README.md``).

Run: ``.venv/bin/python benchmarks/probe_first_fit.py [--cell KEY]
[--methods psx-proxyspex,shapiq-proxyspex] [--children 5]`` (about a minute).
Writes ``benchmarks/results/first_fit.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import faith_suite as fs
import numpy as np
from bench_faithfulness import preimport, select_cells, versions
from common import write_results
from threadpoolctl import threadpool_limits

import proxyspex_captum.core.proxyspex as proxyspex_module
from proxyspex_captum import ProxySPEX
from proxyspex_captum.core.base import centre_and_scale
from proxyspex_captum.core.boosting import boost
from proxyspex_captum.core.sparse_fit import fitting, fold_indices

DEFAULT_CELL = "hierarchical(n=32,decay=0.7,degree=4,terms=90)#201|budget=250|"


def in_child(work: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """``work()`` in a forked child (a fresh process's first run), its result sent back."""
    receive, send = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, write the result, leave without cleanup
        status = 1
        try:
            os.write(send, json.dumps(work()).encode())
            status = 0
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(send)
    with os.fdopen(receive) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status or not text:
        raise RuntimeError(f"the child failed (wait status {status}); its traceback is above")
    first, second = json.loads(text)
    return first, second


def first_and_second(action: Callable[[], Any]) -> tuple[float, float]:
    """Seconds of ``action``'s first and second call, in this process."""
    times = []
    for _ in range(2):
        tic = time.perf_counter()
        action()
        times.append(time.perf_counter() - tic)
    return times[0], times[1]


def twice(action: Callable[[], Any]) -> tuple[float, float]:
    """Seconds of ``action`` in a fresh child, first and second call."""
    return in_child(lambda: first_and_second(action))


def own_seconds_twice(cell: fs.Cell, method: str) -> tuple[float, float]:
    """The method's own seconds (harness accounting), first and second run in one child."""

    def work() -> tuple[float, float]:
        first = fs.run_one(fs.Prepared.of(cell), method)["seconds"]
        return first, fs.run_one(fs.Prepared.of(cell), method)["seconds"]

    return in_child(work)


def first_boost_of_each_run(cell: fs.Cell) -> tuple[float, float]:
    """Seconds of ProxySPEX's first boost in its first and its second run, in one child."""

    def work() -> tuple[float, float]:
        times: dict[int, float] = {}
        started = itertools.count()  # reset for each run below

        def timed(*args: Any, **kwargs: Any) -> Any:
            index = next(started)  # the order of starting, on the pool's threads
            tic = time.perf_counter()
            booster = boost(*args, **kwargs)
            times[index] = time.perf_counter() - tic
            return booster

        proxyspex_module.boost = timed  # this child's copy of the module only
        firsts = []
        for _ in range(2):
            times.clear()
            started = itertools.count()
            fs.run_one(fs.Prepared.of(cell), "psx-proxyspex")
            firsts.append(times[0])
        return firsts[0], firsts[1]

    return in_child(work)


def first_boost(cell: fs.Cell) -> Callable[[], Any]:
    """A boost like ProxySPEX's first on the cell: the grid's first depth, one fold."""
    game = cell.game.build()
    rng = np.random.default_rng(cell.game.method_seed)
    masks = rng.random((cell.budget, cell.game.n)) < 0.5
    x, y = masks.astype(np.float32), np.asarray(game(masks), dtype=float)
    y, _, _ = centre_and_scale(y)  # what ProxySPEX fits
    train, test = next(fold_indices(len(y), 5, rng))
    estimator = ProxySPEX(max_order=cell.max_order)
    depth, rate = estimator.proxy_configs()[0]
    params = estimator.lightgbm_params(depth, rate, 0)
    return lambda: boost(
        params, (x[train], y[train]), (x[test], y[test]), max_rounds=2000, patience=20
    )


def enter_fitting() -> None:
    with fitting():
        pass


def enter_fitting_in_harness() -> tuple[float, float]:
    """``fitting()`` first and again, inside the harness's ``threadpool_limits``."""

    def work() -> tuple[float, float]:
        with threadpool_limits(1, user_api="blas"):  # as fs.run_one, before its clock
            return first_and_second(enter_fitting)

    return in_child(work)


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
    rows.append(row("psx-proxyspex: its first-started LightGBM boost (a second beside it)", runs))
    print(rows[-1], flush=True)
    for label, action in (
        ("a LightGBM boost on its own (the grid's first depth, one fold)", boost_once),
        ("entering `fitting()` on its own (finds the BLAS libraries)", enter_fitting),
    ):
        rows.append(row(label, [twice(action) for _ in range(args.children)]))
        print(rows[-1], flush=True)
    runs = [enter_fitting_in_harness() for _ in range(args.children)]
    rows.append(row("entering `fitting()` inside the harness's `threadpool_limits`", runs))
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
