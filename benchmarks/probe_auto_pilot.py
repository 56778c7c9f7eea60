"""AutoSPEX's coded route: buy the uniform share first, and stop there if ProxySPEX fits it?

On the coded route (SPEX's design has at least 16 bins a group) AutoSPEX buys
the coded masks and a uniform share, fits both methods on all of them and
keeps the better cross-validated. Where ProxySPEX wins, it has then been
trained on other masks than ProxySPEX on its own, and on SOUM games that
draw alone put AutoSPEX 0.006-0.017 R² below ProxySPEX in three report-set
runs of seven (``results/redrawn_report.md``). A staged rule: buy the design's
uniform share first (a pilot), fit ProxySPEX on it, and when its
cross-validated R² is at least a threshold spend the rest of the budget on
uniform masks too (AutoSPEX is then ProxySPEX itself, on the same masks);
below, buy the coded design as now.

On the tuning set's coded-route cells, and parity games at 16 bins or more on
tuning seeds of their own (72x, on no report set), three method seeds each,
this probe reads the pilot's cross-validated R² (ProxySPEX on the design's
uniform share, as many fresh uniform masks) next to ProxySPEX, SPEX and
AutoSPEX at the cell's budget, and scores each threshold's rule against the
better of ProxySPEX and SPEX (issue 18's bar, within 0.005).

Run: ``.venv/bin/python benchmarks/probe_auto_pilot.py`` (about 15 minutes on
2 cores). Writes ``benchmarks/results/auto_pilot_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings

import faith_suite as fs
from bench_faithfulness import versions
from common import write_results
from probe_auto_8bins import bins, parity_cells, run_cells, summary

MIN_BINS = 16  # AutoSPEX's default: its coded route as it is
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Parity games whose SPEX design has 16 bins a group or more, on seeds used nowhere else.
PARITY_CODED = parity_cells(
    [
        (128, 721, 55, 3, 1500, 3),
        (512, 722, 60, 3, 2000, 3),
        (1000, 723, 60, 2, 2000, 3),
        (256, 724, 50, 4, 3000, 4),
        (64, 725, 55, 3, 1000, 3),
    ]
)


def rule_results(runs: list[dict]) -> dict[str, list[float]]:
    """Each rule's result minus the better of ProxySPEX and SPEX, run by run."""
    out: dict[str, list[float]] = {"AutoSPEX now": []}
    out.update({f"pilot ≥ {t}: uniform": [] for t in THRESHOLDS})
    for r in runs:
        best = max(r["proxyspex"], r["spex"])
        out["AutoSPEX now"].append(r["coded"] - best)
        for t in THRESHOLDS:
            result = r["proxyspex"] if r["pilot_cv"] >= t else r["coded"]
            out[f"pilot ≥ {t}: uniform"].append(result - best)
    return out


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on parity games: the table says it
    planted = [c for c in fs.DESIGNS["tuning"]() if c.game.family != "llm"]
    cells = [c for c in planted + PARITY_CODED if (bins(c) or 0) >= 16]
    rows, runs = run_cells(cells, min_bins=MIN_BINS)
    lines = [
        "# AutoSPEX's coded route: a pilot of uniform masks first? (tuning seeds, issue 18)",
        "",
        f"`python benchmarks/probe_auto_pilot.py` on {platform.machine()}; {versions()}. "
        "The tuning set's planted cells whose SPEX design has 16 bins a group or more, and "
        "five parity games at 16 bins or more on tuning seeds 72x; three method seeds each. "
        "R² on each cell's 1,000 held-out masks against the noiseless game. uniform: the "
        "design's uniform share (the pilot's masks); AutoSPEX: as it is (which fit it chose); "
        "pilot cv: ProxySPEX's cross-validated R² on the pilot's masks alone. A rule "
        "`pilot ≥ t` returns ProxySPEX on uniform masks where the pilot's cv reaches t, "
        "AutoSPEX as it is elsewhere.",
        "",
        *summary("Parity games", runs["parity"], rule_results),
        *summary("Hierarchical, noisy and SOUM games", runs["other"], rule_results),
        "| cell | seed | uniform | ProxySPEX | SPEX | AutoSPEX | pilot cv |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    write_results("auto_pilot_tuning.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
