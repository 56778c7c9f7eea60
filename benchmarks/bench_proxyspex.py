"""ProxySPEX here against shapiq's ProxySPEX, on planted games, side by side.

For every game, budget and method the *same* game is explained; R² is measured
on the same 1,000 held-out uniform masks (noiseless), recovery as the share of
the 10 largest true Möbius terms found among the method's 10 largest, and time
as the method's own time (wall time minus the time spent inside the game).

Methods:
- ``ours``: ``psx.ProxySPEX`` (early-stopped LightGBM, support size chosen by
  the ridge's leave-one-out error, intercept kept).
- ``ours-grid``: the same pipeline with the proxy chosen by the reference's
  5-fold grid search (8 configurations, 40 fits + refit), to isolate what early
  stopping costs or gains in faithfulness.
- ``shapiq``: ``shapiq.ProxySPEX`` (the reference implementation).

Run: ``.venv/bin/python benchmarks/bench_proxyspex.py [--quick]``.
Writes ``benchmarks/results/proxyspex_vs_shapiq.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial
from pathlib import Path

import lightgbm as lgb
import numpy as np
from common import TimedGame
from sklearn.model_selection import GridSearchCV

import proxyspex_captum as psx
from proxyspex_captum.games import hierarchical_game, random_game

RESULTS = Path(__file__).parent / "results"


class GridProxySPEX(psx.ProxySPEX):
    """Our pipeline with the reference's 5-fold grid search as the proxy fit."""

    def _fit_proxy(self, masks, y, rng):
        search = GridSearchCV(
            lgb.LGBMRegressor(verbose=-1, n_jobs=1, random_state=0),
            {"max_depth": [3, 5], "n_estimators": [500, 1000], "learning_rate": [0.01, 0.1]},
            scoring="r2",
            cv=5,
        ).fit(masks.astype(np.float32), y)
        return search.best_estimator_, {"grid": search.best_params_}


def run_ours(estimator, game, n, budget):
    timed = TimedGame(game)
    tic = time.perf_counter()
    inter = estimator.explain(timed, n_features=n, budget=budget)
    return inter, time.perf_counter() - tic - timed.seconds


def run_shapiq(game, n, budget, *, seed):
    import shapiq

    timed = TimedGame(game)
    tic = time.perf_counter()
    # FBII at an order >= the trees' depth (5) is exactly the Möbius transform.
    approx = shapiq.ProxySPEX(n=n, index="FBII", max_order=5, random_state=seed)
    values = approx.approximate(budget, timed)
    seconds = time.perf_counter() - tic - timed.seconds
    return psx.Interactions.from_mobius(values.dict_values, n_features=n), seconds


def recovery(inter, game, k=10):
    truth = sorted(game.mobius, key=lambda s: -abs(game.mobius[s]))[:k]
    found = {s for s, _ in inter.top(k)}
    return len(found & set(truth)) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n=128, budgets 500/1000 only")
    parser.add_argument("--no-grid", action="store_true", help="skip the grid-search ablation")
    args = parser.parse_args()

    sizes = [128] if args.quick else [128, 512]
    budgets = [500, 1000] if args.quick else [500, 1000, 2000, 4000]
    games = [("hierarchical", hierarchical_game, 0), ("hierarchical", hierarchical_game, 1)]
    games += [("SOUM", random_game, 0)]
    rows = []
    for n in sizes:
        for kind, make, seed in games:
            game = make(n, n_terms=75, max_order=4, random_state=seed)
            held_out = np.random.default_rng(10_000 + seed).random((1000, n)) < 0.5
            for budget in budgets:
                methods = {
                    "ours": partial(run_ours, psx.ProxySPEX(random_state=seed)),
                    "shapiq": partial(run_shapiq, seed=seed),
                }
                if not args.no_grid:
                    methods["ours-grid"] = partial(run_ours, GridProxySPEX(random_state=seed))
                for name, method in methods.items():
                    inter, seconds = method(game, n, budget)
                    row = {
                        "game": kind,
                        "seed": seed,
                        "n": n,
                        "budget": budget,
                        "method": name,
                        "r2": psx.faithfulness(inter, game, masks=held_out),
                        "recovery@10": recovery(inter, game),
                        "seconds": seconds,
                        "n_terms": len(inter),
                    }
                    rows.append(row)
                    print(
                        f"{kind:12s} seed={seed} n={n:4d} budget={budget:5d} {name:9s} "
                        f"R²={row['r2']:.4f} rec@10={row['recovery@10']:.1f} "
                        f"time={seconds:7.2f}s terms={row['n_terms']}",
                        flush=True,
                    )
    table = summarise(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stem = "proxyspex_vs_shapiq" + ("_quick" if args.quick else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / f"{stem}.md").write_text(
        f"# ProxySPEX: proxyspex-captum vs shapiq\n\nCommand: `.venv/bin/python "
        f"benchmarks/bench_proxyspex.py{' --quick' if args.quick else ''}`; machine: "
        f"{platform.machine()}, 2 cores; all methods on the same games, budgets and "
        f"held-out masks, one after another in one run.\n\n{table}\n"
    )


def summarise(rows) -> str:
    """Per (game, n, budget): R², recovery and own time of each method, and the time ratio."""
    lines = [
        "| game | n | budget | R² ours | R² ours-grid | R² shapiq | rec@10 ours | rec@10 shapiq "
        "| time ours (s) | time ours-grid (s) | time shapiq (s) | shapiq / ours time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["game"], r["n"], r["budget"]) for r in rows})
    for game, n, budget in keys:
        cell = {}
        for method in ("ours", "ours-grid", "shapiq"):
            sel = [
                r
                for r in rows
                if (r["game"], r["n"], r["budget"], r["method"]) == (game, n, budget, method)
            ]
            if sel:
                cell[method] = {
                    k: float(np.median([r[k] for r in sel]))
                    for k in ("r2", "recovery@10", "seconds")
                }

        def get(method, key, fmt, cell=cell):
            return format(cell[method][key], fmt) if method in cell else "–"

        ratio = cell["shapiq"]["seconds"] / cell["ours"]["seconds"]
        lines.append(
            f"| {game} | {n} | {budget} | {get('ours', 'r2', '.3f')} | "
            f"{get('ours-grid', 'r2', '.3f')} | {get('shapiq', 'r2', '.3f')} | "
            f"{get('ours', 'recovery@10', '.2f')} | {get('shapiq', 'recovery@10', '.2f')} | "
            f"{get('ours', 'seconds', '.2f')} | {get('ours-grid', 'seconds', '.1f')} | "
            f"{get('shapiq', 'seconds', '.1f')} | {ratio:.1f}× |"
        )
    lines.append(
        "\nMedians over seeds (hierarchical: 2 games, SOUM: 1). R² on 1,000 held-out uniform "
        "masks against the noiseless game; rec@10: share of the 10 largest true Möbius terms "
        "among the method's 10 largest; time: the method's own time, game calls excluded."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
