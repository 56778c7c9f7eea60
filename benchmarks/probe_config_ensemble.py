"""Probe (not taken yet): averaging ProxySPEX fits of several tree depths instead of choosing one.

With 400 training rows for 512 features (hierarchical games at 500 calls) the
depth ProxySPEX's screening folds choose is often not the best one, and its
R² spreads wider between seeds than shapiq's (``seed_spread_report.md``: 0.835
to 0.895 against 0.867 to 0.907 on the report cell of that shape). An average
of several fitted models has less variance than any one of them, and the
average of sparse Fourier models is one (the union of their supports).

For every tuning game of that shape (never a report set), with the cell's
method seed and two more, this fits ProxySPEX as it is and with each depth of
its grid forced (2, 3, 4 at max_order 4; each with its own cross-validated
refit), and prints the held-out R² of: the default; the mean of the three
forced fits (``ens3``); the mean of the two forced fits with the highest
cross-validated R² (``ens-top2``). The averages cost about three fits; the
probe decides nothing and changes no default.

Run: ``.venv/bin/python benchmarks/probe_config_ensemble.py`` (about 6 minutes
on 2 cores). Writes ``benchmarks/results/config_ensemble_tuning.md``.
"""

from __future__ import annotations

import platform
import statistics
import warnings

import faith_suite as fs
import numpy as np
from bench_faithfulness import select_cells, versions
from common import write_results

import proxyspex_captum as psx

DEPTHS = (2, 3, 4)
EXTRA_SEEDS = (1, 2)
VARIANTS = ("default", "ens3", "ens-top2")


def fit(prepared: fs.Prepared, seed: int, **options) -> psx.Interactions:
    """ProxySPEX on the cell as the harness runs it (``psx-proxyspex``, no intervals)."""
    cell = prepared.cell
    run = fs.METHODS["psx-proxyspex"]
    inter, _ = run(prepared.game, cell.game.n, cell.budget, cell.max_order, seed, **options)
    return inter


def variants(prepared: fs.Prepared, seed: int) -> dict[str, float]:
    """Held-out R² of the default fit and of the two averages, on one seed."""
    masks, truth = prepared.masks, prepared.truth
    predictions = {"default": fit(prepared, seed).predict(masks)}
    forced = []
    for depth in DEPTHS:
        inter = fit(prepared, seed, max_depth=depth)
        forced.append((inter.metadata["cv_r2"], inter.predict(masks)))
    predictions["ens3"] = np.mean([p for _, p in forced], axis=0)
    best_two = sorted(forced, key=lambda pair: -pair[0])[:2]
    predictions["ens-top2"] = np.mean([p for _, p in best_two], axis=0)
    return {name: fs.r2(p, truth) for name, p in predictions.items()}


def main() -> None:
    cells = [
        c
        for c in select_cells("tuning", ["hierarchical"], False)
        if c.game.n == 512 and c.budget == 500
    ]
    lines = [
        "# Averaging ProxySPEX's depths: tuning games, n = 512, 500 calls",
        "",
        "Command: `python benchmarks/probe_config_ensemble.py`. Machine: "
        f"{platform.machine()}. Versions: {versions()}.",
        "",
        "Held-out R² (1,000 uniform masks, noiseless game). default: ProxySPEX as it "
        "is; ens3: the mean of ProxySPEX with max_depth 2, 3 and 4 forced; ens-top2: "
        "the mean of the two of those with the highest cv_r2.",
        "",
        "| game | seed | " + " | ".join(VARIANTS) + " |",
        "|---|---|" + "---|" * len(VARIANTS),
    ]
    runs = []
    for cell in cells:
        prepared = fs.Prepared.of(cell)
        for seed in (cell.game.method_seed, *EXTRA_SEEDS):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PoorFitWarning and the like
                r2 = variants(prepared, seed)
            runs.append(r2)
            row = f"| {cell.label} | {seed} | " + " | ".join(f"{r2[v]:.3f}" for v in VARIANTS)
            print(row + " |", flush=True)
            lines.append(row + " |")
    lines += [
        "",
        "| variant | mean R² | lowest | mean Δ vs default | better / worse by > 0.005 |",
        "|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        values = [r[name] for r in runs]
        deltas = [r[name] - r["default"] for r in runs]
        lines.append(
            f"| {name} | {statistics.mean(values):.4f} | {min(values):.3f} "
            f"| {statistics.mean(deltas):+.4f} | {sum(d > 0.005 for d in deltas)} / "
            f"{sum(d < -0.005 for d in deltas)} |"
        )
    text = "\n".join(lines) + "\n"
    write_results("config_ensemble_tuning.md", text)


if __name__ == "__main__":
    main()
