"""ProxySPEX's own time: folds on threads vs one after the other, and LightGBM's histograms.

ProxySPEX fits one LightGBM proxy per fold (plus one more configuration on the
first) and scores its candidates there. Two measurements, side by side in one run:

1. ``n_jobs=None`` (the folds one after the other) vs ``n_jobs="auto"`` (one
   thread per core; each LightGBM fit and BLAS single-threaded), on an idle
   machine and with one busy-looping process per core. The result is the same
   either way (bit-identical, tested), so only the seconds differ.
2. LightGBM's column-wise vs row-wise histograms on one proxy fit (300 rounds,
   depth 4, one thread): on 0/1 features both build the same trees.

Run: ``.venv/bin/python benchmarks/bench_threads.py [--repeats 3]``.
Writes ``benchmarks/results/proxyspex_threads.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time

import lightgbm as lgb
import numpy as np
from common import write_results

import proxyspex_captum as psx
from proxyspex_captum.games import hierarchical_game

CASES = [(30, 500), (128, 1000), (128, 4000), (512, 2000)]
SETTINGS = {"serial": None, "threads": "auto"}
HISTOGRAM_CASES = [(32, 1000), (128, 4000), (512, 1000), (1000, 2000)]


def _spin(stop) -> None:  # one busy core
    while not stop.is_set():
        sum(range(10_000))


def own_seconds(n: int, budget: int, n_jobs: int | str | None, seed: int) -> float:
    game = hierarchical_game(n, n_terms=80, random_state=100 + seed)
    est = psx.ProxySPEX(max_order=4, n_jobs=n_jobs, random_state=seed)
    inter = est.explain(game, n_features=n, budget=budget)
    return inter.metadata["algorithm_seconds"]


def measure(repeats: int) -> dict[tuple[int, int, str], float]:
    out = {}
    for n, budget in CASES:
        for label, n_jobs in SETTINGS.items():
            times = [own_seconds(n, budget, n_jobs, seed) for seed in range(repeats)]
            out[n, budget, label] = float(np.median(times))
            print(f"n={n} budget={budget} {label}: {out[n, budget, label]:.3f} s", flush=True)
    return out


def histogram_seconds(n: int, budget: int, repeats: int) -> dict[str, float]:
    game = hierarchical_game(n, n_terms=90, max_order=4, random_state=1)
    masks = np.random.default_rng(0).random((budget, n)) < 0.5
    x, y = masks.astype(np.float32), game(masks)
    out, dumps = {}, []
    for layout in ("force_col_wise", "force_row_wise"):
        params = {
            "objective": "regression",
            "max_depth": 4,
            "num_leaves": 16,
            "min_data_in_leaf": 5,
            "deterministic": True,
            "num_threads": 1,
            "verbosity": -1,
            layout: True,
        }
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            booster = lgb.train(params, lgb.Dataset(x, y, params=params), num_boost_round=300)
            times.append(time.perf_counter() - tic)
        out[layout] = float(np.median(times))
        dumps.append(booster.model_to_string().split("end of trees")[0])
    out["same trees"] = dumps[0] == dumps[1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    histograms = {case: histogram_seconds(*case, args.repeats) for case in HISTOGRAM_CASES}
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
        "# ProxySPEX's own time: folds on threads, and LightGBM's histograms",
        "",
        f"`benchmarks/bench_threads.py --repeats {args.repeats}` on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), median of {args.repeats}.",
        "",
        '## Folds one after the other (`n_jobs=None`) vs on threads (`n_jobs="auto"`)',
        "",
        "ProxySPEX's own seconds, hierarchical games (80 terms), max_order 4. Busy: one "
        "spinning process per core. The results are bit-identical.",
        "",
        "| n | budget | idle, serial | idle, threads | idle speed-up | busy, serial "
        "| busy, threads | busy speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, budget in CASES:
        i1, i2 = idle[n, budget, "serial"], idle[n, budget, "threads"]
        b1, b2 = busy[n, budget, "serial"], busy[n, budget, "threads"]
        lines.append(
            f"| {n} | {budget} | {i1:.2f} | {i2:.2f} | {i1 / i2:.2f}x | {b1:.2f} | {b2:.2f} "
            f"| {b1 / b2:.2f}x |"
        )
    lines += [
        "",
        "## LightGBM histograms: column-wise vs row-wise",
        "",
        "One fit, 300 rounds, depth 4, one thread, on `budget` uniform masks.",
        "",
        "| n | rows | column-wise s | row-wise s | speed-up | same trees |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for (n, budget), h in histograms.items():
        col, row = h["force_col_wise"], h["force_row_wise"]
        lines.append(
            f"| {n} | {budget} | {col:.2f} | {row:.2f} | {col / row:.1f}x | "
            f"{'yes' if h['same trees'] else 'no'} |"
        )
    text = "\n".join(lines) + "\n"
    write_results("proxyspex_threads.md", text)


if __name__ == "__main__":
    main()
