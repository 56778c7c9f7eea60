"""Exact Fourier transform of a LightGBM ensemble: ours against shapiq's, side by side.

A 1,000-tree, depth-5 (32 leaves) LightGBM regressor is fitted on 4,000 masks of
a planted game with n = 1,000 features; both transforms are timed (median of
repeats, in one run) and checked against ``booster.predict`` on 500 random masks.

Run: ``.venv/bin/python benchmarks/bench_tree_fourier.py``.
Writes ``benchmarks/results/tree_fourier.md``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

import proxyspex_captum as psx
from proxyspex_captum.core.tree_fourier import tree_ensemble_fourier

RESULTS = Path(__file__).parent / "results"


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - tic)
    return float(np.median(times)), out


def main() -> None:
    n, n_trees = 1000, 1000
    rng = np.random.default_rng(0)
    game = psx.games.hierarchical_game(n, n_terms=200, random_state=0)
    x = rng.random((4000, n)) < 0.5
    model = lgb.LGBMRegressor(
        n_estimators=n_trees,
        max_depth=5,
        num_leaves=32,
        learning_rate=0.05,
        min_child_samples=5,
        subsample=0.8,
        subsample_freq=1,
        verbose=-1,
        random_state=0,
    ).fit(x.astype(np.float32), game(x))
    booster = model.booster_
    test = rng.random((500, n)) < 0.5
    expected = booster.predict(test.astype(np.float32))

    def relative_error(fourier: dict) -> float:
        got = psx.Interactions(fourier, n_features=n).predict(test)
        return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))

    ours_s, (rows, coef) = median_seconds(lambda: tree_ensemble_fourier(booster), 5)
    ours = psx.Interactions._from_rows(rows, coef, n_features=n)
    table = [("proxyspex-captum", ours_s, len(ours), relative_error(ours.fourier))]
    try:
        import shapiq

        ref = shapiq.ProxySPEX(n=n, index="FBII", max_order=5)
        ref_s, ref_fourier = median_seconds(
            lambda: ref._lgboost_to_fourier(booster.dump_model()), 3
        )
        table.append(("shapiq", ref_s, len(ref_fourier), relative_error(ref_fourier)))
    except ImportError:
        print("shapiq not installed: comparing nothing")

    lines = [
        f"{n_trees} trees, depth 5, n = {n}; machine: {platform.machine()}, 2 cores.",
        "",
        "| implementation | seconds (median) | coefficients | max rel. error vs predict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {s:.3f} | {k} | {err:.1e} |" for name, s, k, err in table]
    if len(table) == 2:
        lines.append(f"\nSpeed-up: {table[1][1] / table[0][1]:.1f}×")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tree_fourier.md").write_text(
        "# Exact Fourier transform of a LightGBM ensemble\n\n"
        "Command: `.venv/bin/python benchmarks/bench_tree_fourier.py`\n\n" + text + "\n"
    )


if __name__ == "__main__":
    main()
