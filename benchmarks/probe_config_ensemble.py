"""Probe (not taken): averaging ProxySPEX fits of several tree depths instead of choosing one.

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

``--wide``: the same on all the other planted tuning cells with at most two
calls per feature (hierarchical, noisy, SOUM and parity games of n = 128 to 1,000),
the grid's depths capped by the cell's ``max_order`` (at ``max_order = 3`` the
two depths 2 and 3: ``ens3`` and ``ens-top2`` are then the same mean). That is
where the averages would have to help to become a default; they did not
(``docs/design.md``, ProxySPEX step 3).

Run: ``.venv/bin/python benchmarks/probe_config_ensemble.py`` (about 6 minutes
on 2 cores; ``--wide`` about 8). Writes ``benchmarks/results/config_ensemble_tuning.md``
(``config_ensemble_wide_tuning.md``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import warnings

import faith_suite as fs
import numpy as np
from bench_faithfulness import select_cells, versions
from common import write_results

import proxyspex_captum as psx

EXTRA_SEEDS = (1, 2)
VARIANTS = ("default", "ens3", "ens-top2")


def fit(prepared: fs.Prepared, seed: int, **options) -> psx.Interactions:
    """ProxySPEX on the cell as the harness runs it (``psx-proxyspex``, no intervals).

    On a freshly built game, as the harness's in-process runs: a noisy game's
    noise restarts, so every fit of a seed sees the same noisy values.
    """
    cell = prepared.cell
    run = fs.METHODS["psx-proxyspex"]
    game = cell.game.build()
    inter, _ = run(game, cell.game.n, cell.budget, cell.max_order, seed, **options)
    return inter


def narrow(cell: fs.Cell) -> bool:
    """A cell of the first probe: hierarchical, n = 512, 500 calls."""
    return cell.game.family == "hierarchical" and cell.game.n == 512 and cell.budget == 500


def variants(prepared: fs.Prepared, seed: int) -> dict[str, float]:
    """Held-out R² of the default fit and of the two averages, on one seed."""
    masks, truth = prepared.masks, prepared.truth
    predictions = {"default": fit(prepared, seed).predict(masks)}
    forced = []
    # The grid's depths (2, 3, 5) capped by max_order, as ProxySPEX caps them.
    depths = sorted(
        {depth for depth, _ in psx.ProxySPEX(max_order=prepared.cell.max_order).proxy_configs()}
    )
    for depth in depths:
        inter = fit(prepared, seed, max_depth=depth)
        forced.append((inter.metadata["cv_r2"], inter.predict(masks)))
    predictions["ens3"] = np.mean([p for _, p in forced], axis=0)
    best_two = sorted(forced, key=lambda pair: -pair[0])[:2]
    predictions["ens-top2"] = np.mean([p for _, p in best_two], axis=0)
    return {name: fs.r2(p, truth) for name, p in predictions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wide",
        action="store_true",
        help="all the other tuning cells with <= 2 calls per feature",
    )
    wide = parser.parse_args().wide
    if wide:
        families = ["hierarchical", "hierarchical-noisy", "soum", "fourier"]
        cells = [
            c
            for c in select_cells("tuning", families, False)
            if c.budget <= 2 * c.game.n and not narrow(c)
        ]
        title = "tuning games with at most two calls per feature (the first probe's left out)"
        command, results_name = (
            "python benchmarks/probe_config_ensemble.py --wide",
            "config_ensemble_wide_tuning.md",
        )
    else:
        cells = [c for c in select_cells("tuning", ["hierarchical"], False) if narrow(c)]
        title = "tuning games, n = 512, 500 calls"
        command, results_name = (
            "python benchmarks/probe_config_ensemble.py",
            "config_ensemble_tuning.md",
        )
    lines = [
        f"# Averaging ProxySPEX's depths: {title}",
        "",
        f"Command: `{command}`. Machine: {platform.machine()}. Versions: {versions()}.",
        "",
        "Held-out R² (1,000 uniform masks, noiseless game). default: ProxySPEX as it "
        "is; ens3: the mean of ProxySPEX with each depth of its grid forced (2, 3 and "
        "5, capped by max_order: 2, 3, 4 at k = 4; at k = 3 only 2 and 3, so ens3 and "
        "ens-top2 are the same mean); ens-top2: the mean of the two of those with the "
        "highest cv_r2. Every fit on a freshly built game (a noisy game's noise "
        "restarts).",
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
    write_results(results_name, text)


if __name__ == "__main__":
    main()
