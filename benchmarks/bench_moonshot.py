"""Issue 18's moonshot, measured: how many ProxySPEX calls match AutoSPEX at B calls?

For every hierarchical (noiseless and noisy) and SmolLM2 cell of a set, this
runs AutoSPEX at the cell's budget B and ProxySPEX at B × 1, 1.25, 1.5 and 2
(same game, held-out masks, seeds and harness as ``bench_faithfulness.py``),
and prints the **ratio of calls at equal R²**: the budget at which ProxySPEX's
R² (interpolated linearly in log budget between those four runs) reaches
AutoSPEX's R² at B, divided by B. The moonshot asks for 2 or more.

- ``≤ 1``: AutoSPEX at B is not above ProxySPEX at B.
- ``> 2``: AutoSPEX at B is above ProxySPEX at 2B.
- ``saturated``: ProxySPEX at B is already at 0.999 or more (at three
  decimals, as the table prints R²; they are compared at three decimals too);
  left out of the count.
- Where ProxySPEX's R² does not rise monotonically between two runs (a noisy
  fit), the first budget whose R² reaches AutoSPEX's is used.

One seed per cell on a grid of four budgets: a ratio is a coarse reading
(ProxySPEX's R² moves by a few hundredths between seeds at small budgets).
On the uniform route AutoSPEX *is* ProxySPEX, so the ratio is 1 there by
construction; the summary line counts the coded-route cells on their own.
The issue asks for the hierarchical and LLM games; SOUM and parity games are
left out (on parity games SPEX's design wins by far more than 2x, see
``bench_faithfulness.py``). The route column is :meth:`AutoSPEX.plan`'s at
the current code (the records do not store it).

Run: ``python benchmarks/bench_moonshot.py --set report`` (about 25 minutes on
2 cores, most of it the SmolLM2 calls; ``--family hierarchical`` for the
planted games only). Records go to ``results/moonshot/moonshot_<set>.jsonl``
(resumable with ``--resume``), the table to ``moonshot_<set>.md``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

import bench_faithfulness as bf
import faith_suite as fs

import proxyspex_captum as psx

RESULTS = Path(__file__).parent / "results" / "moonshot"
MULTIPLES = (1.0, 1.25, 1.5, 2.0)
FAMILIES = ("hierarchical", "hierarchical-noisy", "llm")
#: ProxySPEX's R² at B from which a cell cannot show a ratio (no room left above it).
SATURATED = 0.999


def scaled(cell: fs.Cell, multiple: float) -> fs.Cell:
    """``cell`` at ``multiple`` times its budget (the same game, seed and max_order)."""
    return fs.Cell(cell.game, round(cell.budget * multiple), cell.max_order)


def calls_ratio(auto_r2: float, curve: list[tuple[int, float]], budget: int) -> float | None:
    """ProxySPEX's budget at AutoSPEX's R², over ``budget``.

    ``None``: saturated; 1.0: AutoSPEX is not above ProxySPEX at B; ``inf``:
    above ProxySPEX's largest budget. R² are compared at three decimals, the
    table's: differences below are noise.
    """
    auto_r2 = round(auto_r2, 3)
    curve = [(b, round(r2, 3)) for b, r2 in curve]
    if curve[0][1] >= SATURATED:
        return None
    if auto_r2 <= curve[0][1]:
        return 1.0
    for (b0, r0), (b1, r1) in itertools.pairwise(curve):
        if r1 >= auto_r2:
            # r0 < auto_r2 <= r1 here. Log budget: R² gains per doubling of calls.
            share = (auto_r2 - r0) / (r1 - r0)
            return math.exp(math.log(b0) + share * (math.log(b1) - math.log(b0))) / budget
    return math.inf


def ratio_text(ratio: float | None) -> str:
    """A table entry for :func:`calls_ratio`'s value."""
    if ratio is None:
        return "saturated"
    if ratio == 1.0:
        return "≤ 1"
    if math.isinf(ratio):
        return f"> {MULTIPLES[-1]:g}"
    return f"{ratio:.2f}"


def table(cells: list[fs.Cell], records: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The markdown table of every cell with all its runs recorded, and the summary line."""
    header = [
        "family",
        "n",
        "game",
        "B",
        "k",
        "AutoSPEX route",
        "AutoSPEX at B",
        *(f"ProxySPEX at {m:g}B" for m in MULTIPLES),
        "calls ratio",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ratios: dict[str, list[float]] = {"uniform": [], "coded": []}
    for cell in cells:
        auto = records.get((cell.key, "psx-auto"))
        curve = [scaled(cell, m) for m in MULTIPLES]
        runs = [records.get((c.key, "psx-proxyspex")) for c in curve]
        if any(r is None or r.get("r2") is None for r in (auto, *runs)):
            continue  # not run yet, or failed: the jsonl says why
        points = [(c.budget, r["r2"]) for c, r in zip(curve, runs, strict=True)]
        ratio = calls_ratio(auto["r2"], points, cell.budget)
        route, _ = psx.AutoSPEX(max_order=cell.max_order).plan(cell.game.n, cell.budget)
        if ratio is not None:
            ratios.setdefault(route, []).append(ratio)
        game = dict(cell.game.params).get("name", f"#{cell.game.seed}")
        lines.append(
            f"| {cell.game.family} | {cell.game.n} | {game} | {cell.budget} | {cell.max_order} "
            f"| {route} | {auto['r2']:.3f} | "
            + " | ".join(f"{r2:.3f}" for _, r2 in points)
            + f" | {ratio_text(ratio)} |"
        )
    coded = ratios["coded"]
    reached = sum(r >= 2 for r in coded)
    above_one = sum(r > 1 for r in coded)
    lines.append("")
    lines.append(
        f"Coded route, where ProxySPEX at B is below {SATURATED}: ratio ≥ 2 (the moonshot) "
        f"in {reached} of {len(coded)} cells, above 1 in {above_one}. Uniform route: "
        f"{len(ratios['uniform'])} cells, AutoSPEX is ProxySPEX there (ratio 1). Saturated "
        "cells are left out of both."
    )
    return "\n".join(lines)


def main() -> None:
    """Run what is missing (or everything), then write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=sorted(fs.DESIGNS), default="report", dest="design")
    parser.add_argument("--family", help=f"comma-separated subset of {','.join(FAMILIES)}")
    parser.add_argument("--resume", action="store_true", help="skip runs already recorded")
    parser.add_argument("--table-only", action="store_true", help="rebuild the md from jsonl")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the outputs")
    args = parser.parse_args()

    families = tuple(args.family.split(",")) if args.family else FAMILIES
    cells = bf.select_cells(args.design, list(families), quick=False)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"moonshot_{args.design}"
    path, md_path = args.results / f"{stem}.jsonl", args.results / f"{stem}.md"
    if not args.table_only:
        warnings.filterwarnings("ignore")
        common = {"design": args.design, "path": path, "timeout": args.timeout}
        bf.run(cells, ["psx-auto"], resume=args.resume, **common)
        curve_cells = list(dict.fromkeys(scaled(c, m) for c in cells for m in MULTIPLES))
        bf.run(curve_cells, ["psx-proxyspex"], resume=args.resume, **common)
    records = bf.load_records(path)
    command = "python benchmarks/bench_moonshot.py " + " ".join(sys.argv[1:])
    md_path.write_text(
        f"# Issue 18's moonshot: ProxySPEX calls at AutoSPEX's R², {args.design} set\n\n"
        f"Command: `{command}`. Records: `{path.name}`. Machine: {platform.machine()}; "
        f"{bf.versions()}.\n\n"
        "R² on each cell's 1,000 held-out masks (as `bench_faithfulness.py`). calls ratio: "
        "the budget at which ProxySPEX reaches AutoSPEX's R² at B (linear in log budget "
        "between its runs; R² compared at three decimals), over B; ≤ 1: AutoSPEX is not "
        "above ProxySPEX at B; > 2: above ProxySPEX at 2B; saturated: ProxySPEX at B is "
        f"already at {SATURATED} or more.\n\n"
        f"{table(cells, records)}\n"
    )
    print(md_path.read_text())


if __name__ == "__main__":
    main()
