"""The faithfulness report as a figure: our R² against each reference's, cell by cell.

Each point is one cell of ``benchmarks/results/faithfulness_{set}.jsonl`` (a game,
a budget, a ``max_order``); above the diagonal, ours is the more faithful at the
same number of model calls. Panels: ProxySPEX against shapiq's ProxySPEX and
against the better linear surrogate (Captum's LIME, Banzhaf regression); SPEX
against shapiq's SPEX and the better linear surrogate.

Run: ``.venv/bin/python benchmarks/plot_faithfulness.py [--set report]``.
Writes ``docs/images/faithfulness_{set}.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
FAMILY_COLOURS = {
    "hierarchical": "tab:blue",
    "hierarchical-noisy": "tab:cyan",
    "soum": "tab:orange",
    "fourier": "tab:green",
    "llm": "tab:red",
}


def latest_records(path: Path) -> dict[tuple[str, str], dict]:
    """``(cell, method) -> record``; a later record of the same pair wins (reruns)."""
    records: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["cell"], record["method"]] = record
    return records


def pairs(records: dict, ours: str, theirs: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """``(family, R² theirs, R² ours)`` of every cell where both have a result.

    With several reference methods, the best of them counts (the better linear one).
    """
    out = []
    for cell in sorted({cell for cell, _ in records}):
        mine = records.get((cell, ours), {}).get("r2")
        refs = [records.get((cell, m), {}).get("r2") for m in theirs]
        refs = [r for r in refs if r is not None]
        if mine is not None and refs:
            out.append((records[cell, ours]["family"], max(refs), mine))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="report", choices=("report", "tuning"))
    args = parser.parse_args()
    records = latest_records(ROOT / "benchmarks" / "results" / f"faithfulness_{args.set}.jsonl")
    panels = [
        ("psx-proxyspex", ("shapiq-proxyspex",), "ProxySPEX vs shapiq ProxySPEX"),
        ("psx-proxyspex", ("lime", "banzhaf"), "ProxySPEX vs best of LIME, Banzhaf"),
        ("psx-spex", ("shapiq-spex",), "SPEX vs shapiq SPEX"),
        ("psx-spex", ("lime", "banzhaf"), "SPEX vs best of LIME, Banzhaf"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for ax, (ours, theirs, title) in zip(axes, panels, strict=True):
        points = pairs(records, ours, theirs)
        low = min([0.0] + [min(t, o) for _, t, o in points])
        for family, colour in FAMILY_COLOURS.items():
            xs = [t for f, t, _ in points if f == family]
            ys = [o for f, _, o in points if f == family]
            if xs:
                ax.scatter(xs, ys, s=22, color=colour, label=family)
        ax.plot([low, 1], [low, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlim=(low, 1.02), ylim=(low, 1.02), title=f"{title} ({len(points)} cells)")
        ax.set_xlabel("R² of the reference")
        ax.set_ylabel("R² of ours")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"Faithfulness at equal model calls, {args.set} set (R² on 1,000 held-out masks;"
        " above the diagonal: ours better)"
    )
    fig.tight_layout()
    out = ROOT / "docs" / "images" / f"faithfulness_{args.set}.png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
