"""SPEX here against shapiq's SPEX, and SPEX against ProxySPEX, side by side.

Part 1 (``--part reference``): on noiseless sparse games (hierarchical, and flat
Fourier-sparse ones) at n = 128 and 1,000, the same budgets for every method:
R² on 1,000 held-out uniform masks, the share of true Fourier coefficients
recovered to 1e-6, and the method's own time (game calls excluded). Methods:
``ours`` (the default: peeled support and intercept refit by ridge),
``ours-norefit`` (the references' output: peeled coefficients only),
``shapiq`` (``shapiq.SPEX``, soft decoder) and ``spectralexplain`` (the
authors' package, soft decoder with Chase depth 2t).

Part 2 (``--part head-to-head``): the model calls SPEX and ProxySPEX need to
reach R² ≥ 0.9 on hierarchical and on flat games (n = 256), over a budget ladder.

Run: ``.venv/bin/python benchmarks/bench_spex.py [--part reference|head-to-head|all]``.
Writes ``benchmarks/results/spex_*.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from common import TimedGame

import proxyspex_captum as psx
from proxyspex_captum.games import fourier_game, hierarchical_game

RESULTS = Path(__file__).parent / "results"
GAMES = {"hierarchical": hierarchical_game, "flat": fourier_game}


def run_ours(game, n, budget, *, refit="support", seed=0):
    timed = TimedGame(game)
    tic = time.perf_counter()
    inter = psx.SPEX(max_order=5, refit=refit, random_state=seed).explain(
        timed, n_features=n, budget=budget
    )
    return inter, time.perf_counter() - tic - timed.seconds, inter.n_queries


def run_shapiq(game, n, budget, *, seed=0):
    import shapiq

    timed = TimedGame(game)
    np.random.seed(seed)  # noqa: NPY002 - shapiq's SPEX draws from the global RNG
    tic = time.perf_counter()
    approx = shapiq.SPEX(n=n, index="FBII", max_order=5, decoder_type="soft", random_state=seed)
    values = approx.approximate(budget, timed)
    seconds = time.perf_counter() - tic - timed.seconds
    # FBII at order 5 >= every recovered degree equals the Möbius transform.
    inter = psx.Interactions.from_mobius(values.dict_values, n_features=n)
    return inter, seconds, values.estimation_budget


def run_spectralexplain(game, n, budget, *, seed=0):
    import spectralexplain

    timed = TimedGame(game)
    np.random.seed(seed)  # noqa: NPY002 - spectralexplain draws from the global RNG
    tic = time.perf_counter()
    explainer = spectralexplain.Explainer(timed, n, sample_budget=budget, max_order=5, name=None)
    seconds = time.perf_counter() - tic - timed.seconds
    fourier = {
        tuple(int(i) for i in np.nonzero(key)[0]): float(value)
        for key, value in explainer.fourier_transform.items()
    }
    calls = budget  # its design: the largest b whose 3·(p+1)·2^b fits
    return psx.Interactions(fourier, n_features=n), seconds, calls


def run_proxyspex(game, n, budget, *, seed=0):
    timed = TimedGame(game)
    tic = time.perf_counter()
    inter = psx.ProxySPEX(max_order=4, random_state=seed).explain(
        timed, n_features=n, budget=budget
    )
    return inter, time.perf_counter() - tic - timed.seconds, inter.n_queries


def recovered(inter, game, tol=1e-6):
    truth = game.interactions.fourier
    got = inter.fourier
    return float(np.mean([abs(got.get(s, 0.0) - v) <= tol for s, v in truth.items()]))


def reference_part(seeds) -> list[dict]:
    rows = []
    spex = psx.SPEX(max_order=5)
    for n in (128, 1000):
        per_bin = spex._queries_per_bin(n)
        for kind, make in GAMES.items():
            for seed in seeds:
                game = make(n, n_terms=90, max_order=5, random_state=seed)
                held_out = np.random.default_rng(100 + seed).random((1000, n)) < 0.5
                for b in (6, 7, 8):
                    budget = per_bin * 2**b
                    for name, method in (
                        ("ours", run_ours),
                        ("ours-norefit", lambda *a, **k: run_ours(*a, refit=None, **k)),
                        ("shapiq", run_shapiq),
                        ("spectralexplain", run_spectralexplain),
                    ):
                        inter, seconds, calls = method(game, n, budget, seed=seed)
                        row = {
                            "n": n,
                            "game": kind,
                            "seed": seed,
                            "b": b,
                            "budget": budget,
                            "method": name,
                            "calls": int(calls),
                            "r2": psx.faithfulness(inter, game, masks=held_out),
                            "recovered": recovered(inter, game),
                            "seconds": seconds,
                        }
                        rows.append(row)
                        print(
                            f"n={n:4d} {kind:12s} seed={seed} b={b} {name:12s} "
                            f"R²={row['r2']:.4f} recovered={row['recovered']:.2f} "
                            f"time={seconds:7.2f}s",
                            flush=True,
                        )
    return rows


def head_to_head_part(seeds) -> list[dict]:
    rows = []
    n = 256
    spex = psx.SPEX(max_order=5)
    spex_budgets = [spex._queries_per_bin(n) * 2**b for b in (3, 4, 5, 6, 7)]
    proxy_budgets = [250, 500, 1000, 2000, 4000, 8000]
    for kind, make in GAMES.items():
        for seed in seeds:
            game = make(n, n_terms=90, max_order=5, random_state=seed)
            held_out = np.random.default_rng(100 + seed).random((1000, n)) < 0.5
            for name, method, budgets in (
                ("SPEX", run_ours, spex_budgets),
                ("ProxySPEX", run_proxyspex, proxy_budgets),
            ):
                for budget in budgets:
                    inter, seconds, calls = method(game, n, budget, seed=seed)
                    r2 = psx.faithfulness(inter, game, masks=held_out)
                    rows.append(
                        {
                            "game": kind,
                            "seed": seed,
                            "method": name,
                            "budget": budget,
                            "calls": int(calls),
                            "r2": r2,
                            "seconds": seconds,
                        }
                    )
                    print(
                        f"{kind:12s} seed={seed} {name:9s} calls={calls:6d} R²={r2:.4f}",
                        flush=True,
                    )
    return rows


def table_reference(rows) -> str:
    lines = [
        "| n | game | b | budget | R² ours | R² ours-norefit | R² shapiq | R² spectralexplain "
        "| recovered ours | recovered ours-norefit | recovered shapiq | recovered spectralexplain "
        "| time ours (s) | time shapiq (s) | time spectralexplain (s) | shapiq / ours time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, game, b in sorted({(r["n"], r["game"], r["b"]) for r in rows}):

        def med(method, key, n=n, game=game, b=b):
            sel = [
                r[key]
                for r in rows
                if (r["n"], r["game"], r["b"], r["method"]) == (n, game, b, method)
            ]
            return float(np.median(sel))

        budget = next(r["budget"] for r in rows if (r["n"], r["game"], r["b"]) == (n, game, b))
        lines.append(
            f"| {n} | {game} | {b} | {budget} | {med('ours', 'r2'):.4f} | "
            f"{med('ours-norefit', 'r2'):.4f} | {med('shapiq', 'r2'):.4f} | "
            f"{med('spectralexplain', 'r2'):.4f} | "
            f"{med('ours', 'recovered'):.2f} | {med('ours-norefit', 'recovered'):.2f} | "
            f"{med('shapiq', 'recovered'):.2f} | {med('spectralexplain', 'recovered'):.2f} | "
            f"{med('ours', 'seconds'):.2f} | {med('shapiq', 'seconds'):.2f} | "
            f"{med('spectralexplain', 'seconds'):.2f} | "
            f"{med('shapiq', 'seconds') / med('ours', 'seconds'):.1f}× |"
        )
    return "\n".join(lines)


def table_head_to_head(rows) -> str:
    lines = [
        "| game | method | calls → median R² | fewest calls with median R² ≥ 0.9 |",
        "|---|---|---|---|",
    ]
    for game in GAMES:
        for method in ("SPEX", "ProxySPEX"):
            sel = [r for r in rows if r["game"] == game and r["method"] == method]
            ladder = []
            for budget in sorted({r["budget"] for r in sel}):
                at = [r for r in sel if r["budget"] == budget]
                calls = int(np.median([r["calls"] for r in at]))
                ladder.append((calls, float(np.median([r["r2"] for r in at]))))
            reached = [c for c, r2 in ladder if r2 >= 0.9]
            text = ", ".join(f"{c}: {r2:.3f}" for c, r2 in ladder)
            lines.append(f"| {game} | {method} | {text} | {reached[0] if reached else '—'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["reference", "head-to-head", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    RESULTS.mkdir(exist_ok=True)
    header = (
        f"Machine: {platform.machine()}, 2 cores; every method on the same games, budgets and "
        f"held-out masks, one after another in one run; medians over {len(seeds)} seeds. "
        "Time is the method's own (game calls excluded)."
    )
    if args.part in ("reference", "all"):
        rows = reference_part(seeds)
        table = table_reference(rows)
        print(table)
        (RESULTS / "spex_vs_shapiq.json").write_text(json.dumps(rows, indent=1))
        (RESULTS / "spex_vs_shapiq.md").write_text(
            "# SPEX: proxyspex-captum vs shapiq\n\nCommand: `.venv/bin/python "
            f"benchmarks/bench_spex.py --part reference`\n\n{header}\n\n{table}\n\n"
            "recovered: share of the true Fourier coefficients estimated to within 1e-6.\n"
        )
    if args.part in ("head-to-head", "all"):
        rows = head_to_head_part(seeds)
        table = table_head_to_head(rows)
        print(table)
        (RESULTS / "spex_vs_proxyspex.json").write_text(json.dumps(rows, indent=1))
        (RESULTS / "spex_vs_proxyspex.md").write_text(
            "# SPEX vs ProxySPEX: model calls to reach R² 0.9 (n = 256)\n\nCommand: "
            f"`.venv/bin/python benchmarks/bench_spex.py --part head-to-head`\n\n{header}\n\n"
            f"{table}\n"
        )


if __name__ == "__main__":
    main()
