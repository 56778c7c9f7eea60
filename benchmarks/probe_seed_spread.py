"""How much of a cell's verdict is the draw of masks: each method on one cell, several seeds.

The faithfulness tables run each method once per cell, with one seed
(``GameSpec.method_seed``), and the issues' criteria compare those single runs
("in every cell"). With few calls per feature a method's R² moves by several
hundredths between seeds (ProxySPEX's on the tuning games of n = 512 at 500
calls: up to 0.068 between three seeds), so a cell can fail a criterion on the
draw alone. This probe reruns the given cells with the cell's own seed and
``--seeds`` more (1, 2, ...), every method on the same game and held-out masks,
and prints each run's R² and, per method, the mean, median and range. It
decides nothing: it says whether a failing cell is a draw or a gap.

Run: ``.venv/bin/python benchmarks/probe_seed_spread.py --set report --cell KEY
[--cell KEY ...] [--methods ...] [--seeds 5]``; a KEY is a substring of the cell
key as ``bench_faithfulness.py --cell`` takes it; planted cells only (the LLM
games' cells are not in the sets' planted lists). Writes
``benchmarks/results/seed_spread_<set>.md``.
"""

from __future__ import annotations

import argparse
import platform
import warnings

import faith_suite as fs
import numpy as np
from bench_faithfulness import select_cells, versions
from common import write_results

import proxyspex_captum as psx

DEFAULT_METHODS = "psx-proxyspex,psx-spex,psx-auto,shapiq-proxyspex"


def r2_of(cell: fs.Cell, method: str, seed: int) -> float | None:
    """R² of ``method`` on ``cell`` with the methods' seed ``seed`` (None: not run there)."""
    base, kwargs = fs.parse_method(method)
    n, budget, order = cell.game.n, cell.budget, cell.max_order
    if fs.gate(method, cell) is not None or (
        base == "psx-spex" and budget < psx.SPEX(max_order=order).min_budget(n)
    ):
        return None
    prepared = fs.Prepared.of(cell)  # a fresh game each run: a noisy one's noise too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inter, _ = fs.METHODS[base](prepared.game, n, budget, order, seed, **kwargs)
    if inter is None:  # the adapter declined (e.g. a reference's code does not fit)
        return None
    return fs.r2(inter.predict(prepared.masks), prepared.truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="report", choices=sorted(fs.DESIGNS))
    parser.add_argument("--cell", action="append", required=True, help="cell key substring")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--seeds", type=int, default=5, help="seeds besides the cell's own")
    args = parser.parse_args()
    methods = fs.split_methods(args.methods)
    cells = [c for c in select_cells(args.set, None, False) if any(k in c.key for k in args.cell)]
    if not cells:
        parser.error(f"no cell of --set {args.set} matches {args.cell}")

    lines = [
        f"# Seed spread, {args.set} set",
        "",
        f"Command: `python benchmarks/probe_seed_spread.py --set {args.set} "
        + " ".join(f"--cell '{c}'" for c in args.cell)
        + f" --methods {args.methods} --seeds {args.seeds}`. Machine: "
        f"{platform.machine()}. Versions: {versions()}.",
        "",
        "Each method on the same game and 1,000 held-out masks, with the cell's own "
        "seed (the tables' run) and seeds 1 .. "
        f"{args.seeds}; R² against the noiseless game. –: not run (budget below "
        "the method's minimum).",
        "",
    ]
    for cell in cells:
        seeds = [cell.game.method_seed, *range(1, args.seeds + 1)]
        print(cell.label, flush=True)
        table = {}
        for method in methods:
            table[method] = [r2_of(cell, method, seed) for seed in seeds]
            shown = " ".join("–" if r is None else f"{r:.3f}" for r in table[method])
            print(f"   {method:20s} {shown}", flush=True)
        head = ["method", *[f"seed {s}" for s in seeds], "mean", "median", "min", "max"]
        lines += [f"## {cell.label}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        for method, values in table.items():
            got = [v for v in values if v is not None]
            stats = [np.mean(got), np.median(got), min(got), max(got)] if got else [np.nan] * 4
            cells_text = ["–" if v is None else f"{v:.3f}" for v in values]
            stat_text = ["–" if np.isnan(v) else f"{v:.3f}" for v in stats]
            lines.append("| " + " | ".join([method, *cells_text, *stat_text]) + " |")
        lines.append("")
    text = "\n".join(lines)
    write_results(f"seed_spread_{args.set}.md", text)


if __name__ == "__main__":
    main()
