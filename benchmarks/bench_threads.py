"""LightGBM threads for ProxySPEX's proxy: one thread vs LightGBM's default, idle and busy.

LightGBM's default uses every core (OpenMP). Its fits here are small (a few
hundred to a few thousand rows), where thread start-up and synchronisation
dominate, and under load (other processes on the same cores, as on shared CI
machines) OpenMP's spinning threads wait for each other. This measures the
proxy fit of ``psx.ProxySPEX`` (everything but the model calls) on planted
hierarchical games with ``n_jobs=1`` and ``n_jobs=None`` (LightGBM's default),
first on an idle machine, then with one busy-looping process per core.

Run: ``.venv/bin/python benchmarks/bench_threads.py [--repeats 5]``.
Writes ``benchmarks/results/lightgbm_threads.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

import proxyspex_captum as psx
from proxyspex_captum.games import hierarchical_game

RESULTS = Path(__file__).parent / "results"
CASES = [(30, 500), (128, 1000), (512, 2000)]
THREADS = {"1 thread": 1, "LightGBM default": None}


def _spin(stop) -> None:  # one busy core
    while not stop.is_set():
        sum(range(10_000))


def own_seconds(n: int, budget: int, n_jobs: int | None, seed: int) -> float:
    game = hierarchical_game(n, n_terms=80, random_state=100 + seed)
    est = psx.ProxySPEX(max_order=4, n_jobs=n_jobs, random_state=seed)
    inter = est.explain(game, n_features=n, budget=budget)
    return inter.metadata["algorithm_seconds"]


def measure(repeats: int) -> dict[tuple[int, int, str], float]:
    out = {}
    for n, budget in CASES:
        for label, n_jobs in THREADS.items():
            # Alternate nothing else between the two settings: same games, same seeds.
            times = [own_seconds(n, budget, n_jobs, seed) for seed in range(repeats)]
            out[n, budget, label] = float(np.median(times))
            print(f"n={n} budget={budget} {label}: {out[n, budget, label]:.3f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    idle = measure(args.repeats)
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(os.cpu_count() or 1)]
    for p in spinners:
        p.start()
    try:
        time.sleep(1.0)
        busy = measure(args.repeats)
    finally:
        stop.set()
        for p in spinners:
            p.join()

    lines = [
        "# LightGBM threads in ProxySPEX's proxy fit",
        "",
        f"`benchmarks/bench_threads.py --repeats {args.repeats}` on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}); ProxySPEX's own seconds (median of "
        f"{args.repeats} seeds), hierarchical games, max_order 4. Busy: one spinning process "
        "per core.",
        "",
        "| n | budget | idle, 1 thread | idle, default | busy, 1 thread | busy, default "
        "| busy ratio default / 1 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, budget in CASES:
        one, dflt = busy[n, budget, "1 thread"], busy[n, budget, "LightGBM default"]
        lines.append(
            f"| {n} | {budget} | {idle[n, budget, '1 thread']:.3f} | "
            f"{idle[n, budget, 'LightGBM default']:.3f} | {one:.3f} | {dflt:.3f} | "
            f"{dflt / one:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lightgbm_threads.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
