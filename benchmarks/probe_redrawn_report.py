"""The issues' "in every cell" criteria on redrawn seeds: how many cells fail on the draw alone.

The faithfulness tables run each method once per cell with one seed, and the
issues' criteria ask for "R² ≥ the reference's − 0.005 in every cell". With
few calls per feature a method's R² moves by several hundredths between seeds
(``probe_seed_spread.py``), so part of a table's verdict is the draw of masks.
This probe redraws the report table: every planted cell (and with
``--llm`` the SmolLM2 ones), every method, with the cell's own seed (the
tables' run) and ``--seeds`` more (1, 2, ...), every method on the same game
and held-out masks. For each seed it counts
the cells where

- ProxySPEX ≥ shapiq's ProxySPEX − 0.005 (issue 12), and
- AutoSPEX ≥ max(ProxySPEX, SPEX) − 0.005 (issue 18),

as the tables do, and it sets beside them the same criterion with a method
against *itself*: each method at seed ``s`` against its own run at the cell's
seed ("would the reference pass against its own table run?"). That is the
floor a criterion on single runs can be held to. It decides nothing.

Run: ``.venv/bin/python benchmarks/probe_redrawn_report.py [--seeds 2] [--llm]``
(about 20 minutes a seed on 2 cores, most of it shapiq's; ``--llm`` adds the
10 SmolLM2 cells, whose new masks cost about 20 minutes of model calls a
seed on 2 cores). Each run's R² is
kept in ``results/redrawn_report.jsonl`` and reused on a rerun; writes
``results/redrawn_report.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import faith_suite as fs
from bench_faithfulness import select_cells, versions
from common import RESULTS, write_results
from probe_seed_spread import r2_of

METHODS = ("psx-proxyspex", "psx-spex", "psx-auto", "shapiq-proxyspex")
MARGIN = 0.005
RECORDS = RESULTS / "redrawn_report.jsonl"


def load_records() -> dict[tuple[str, str, int], float | None]:
    if not RECORDS.exists():
        return {}
    out = {}
    for line in RECORDS.read_text().splitlines():
        rec = json.loads(line)
        out[rec["cell"], rec["method"], rec["seed"]] = rec["r2"]
    return out


def passes(got: float | None, bar: float | None) -> bool | None:
    """``got ≥ bar − MARGIN``; None where either was not run."""
    if got is None or bar is None:
        return None
    return got >= bar - MARGIN


def count(verdicts: list[bool | None]) -> str:
    known = [v for v in verdicts if v is not None]
    return f"{sum(known)} of {len(known)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds besides the cells' own")
    parser.add_argument(
        "--llm", action="store_true", help="the 10 SmolLM2 cells too (model calls: slow)"
    )
    args = parser.parse_args()
    cells = select_cells("report", None, False)
    if args.llm:
        cells += fs.llm_cells("report")
    records = load_records()
    r2: dict[tuple[str, str, int], float | None] = {}
    with RECORDS.open("a") as sink:
        for cell in cells:
            seeds = [cell.game.method_seed, *range(1, args.seeds + 1)]
            print(cell.label, flush=True)
            for method in METHODS:
                for seed in seeds:
                    key = (cell.key, method, seed)
                    if key not in records:
                        records[key] = r2_of(cell, method, seed)
                        rec = {"cell": cell.key, "method": method, "seed": seed}
                        sink.write(json.dumps({**rec, "r2": records[key]}) + "\n")
                        sink.flush()
                    r2[key] = records[key]
                shown = " ".join(
                    "–" if r2[cell.key, method, s] is None else f"{r2[cell.key, method, s]:.3f}"
                    for s in seeds
                )
                print(f"   {method:20s} {shown}", flush=True)

    def got(cell, method: str, seed: str | int) -> float | None:
        """One run's R² (``"own"``: the cell's seed), or ``"median"`` over the draws."""
        if seed == "median":
            runs = [got(cell, method, s) for s in seed_names[:-1]]
            known = [v for v in runs if v is not None]
            return float(statistics.median(known)) if known else None
        return r2[cell.key, method, cell.game.method_seed if seed == "own" else seed]

    def best_of_two(cell, seed) -> float | None:
        values = [got(cell, m, seed) for m in ("psx-proxyspex", "psx-spex")]
        values = [v for v in values if v is not None]
        return max(values) if values else None

    # The last column: each method's median over the draws, compared as one run.
    seed_names: list[str | int] = ["own", *range(1, args.seeds + 1), "median"]
    criteria = {
        "ProxySPEX ≥ shapiq − 0.005": lambda c, s: passes(
            got(c, "psx-proxyspex", s), got(c, "shapiq-proxyspex", s)
        ),
        "AutoSPEX ≥ max(ProxySPEX, SPEX) − 0.005": lambda c, s: passes(
            got(c, "psx-auto", s), best_of_two(c, s)
        ),
    }
    against_own = {
        f"{method} ≥ its own run at the cell's seed − 0.005": (
            lambda c, s, m=method: passes(got(c, m, s), got(c, m, "own"))
        )
        for method in METHODS
    }
    head = ["criterion", *[f"seed {s}" for s in seed_names[:-1]], "medians"]
    lines = [
        "# The report table's criteria on redrawn seeds (issues 12 and 18)",
        "",
        f"Command: `python benchmarks/probe_redrawn_report.py --seeds {args.seeds}"
        f"{' --llm' if args.llm else ''}`. Machine: "
        f"{platform.machine()}. Versions: {versions()}.",
        "",
        f"The {len(cells)} cells of the report set"
        + (" (SmolLM2 included)" if args.llm else " (planted only: `--llm` adds SmolLM2's)")
        + ", every method with the cell's own seed (`own`, the tables' run) and seeds 1 .. "
        f"{args.seeds}, on the same game and 1,000 held-out masks; R² against the noiseless "
        "game. Counts are over the cells where both sides ran; `medians`: each method's "
        "median over the draws, compared as if it were one run.",
        "",
        "## The issues' criteria, seed by seed",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, rule in criteria.items():
        lines.append(
            "| "
            + " | ".join([name, *[count([rule(c, s) for c in cells]) for s in seed_names]])
            + " |"
        )
    lines += [
        "",
        "## Each method against its own run at the cell's seed",
        "",
        "| " + " | ".join(head[:1] + head[2:-1]) + " |",
        "|" + "---|" * (len(head) - 2),
    ]
    for name, rule in against_own.items():
        lines.append(
            "| "
            + " | ".join([name, *[count([rule(c, s) for c in cells]) for s in seed_names[1:-1]]])
            + " |"
        )
    lines += ["", "## Failing cells", ""]
    for name, rule in criteria.items():
        for s in seed_names:
            failing = [c for c in cells if rule(c, s) is False]
            for c in failing:
                label = "the medians" if s == "median" else f"seed {s}"
                lines.append(f"- {name}, {label}: {c.label}")
    lines += ["", "## Every run", ""]
    head = ["cell", "method", *[f"seed {s}" for s in seed_names[:-1]], "spread"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        for m in METHODS:
            values = [got(c, m, s) for s in seed_names[:-1]]
            known = [v for v in values if v is not None]
            spread = f"{max(known) - min(known):.3f}" if known else "–"
            shown = ["–" if v is None else f"{v:.3f}" for v in values]
            lines.append("| " + " | ".join([c.label, m, *shown, spread]) + " |")
    write_results("redrawn_report.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
