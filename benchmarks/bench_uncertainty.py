"""How well calibrated are the bootstrap intervals? Planted noisy games, known truth.

For each planted game (its Möbius coefficients known) the estimator explains
a noisy version at a budget, with ``uncertainty=True``; the 95 % intervals of
every non-empty Möbius term are then checked against the truth:

- coverage: the share of true coefficients inside their interval, over the
  planted terms *and* the terms the surrogate reports with a true value of 0;
  a planted term the surrogate misses has no interval and counts as not
  covered (``found`` says how many were found);
- coverage of the found planted terms alone;
- zeros flagged: of the reported terms whose true coefficient is 0, the share
  whose interval contains 0 (not significant);
- median width relative to the noise's standard deviation, and the seconds
  the resamples add (``uncertainty=False`` run side by side).

Two disjoint sets: a *tuning* set (hierarchical games, seeds 0-1) on which
the interval's form was chosen among normal (estimate ± z·sd), percentile and
basic bootstrap intervals of the same resamples, and a *report* set (other
seeds, SOUM games too, every n and budget) that decides nothing.

Run: ``.venv/bin/python benchmarks/bench_uncertainty.py [--set tuning|report|both] [--quick]
[--methods ProxySPEX,SPEX,AutoSPEX] [--suffix S]``. Writes
``benchmarks/results/uncertainty_<set><S>.md``. For AutoSPEX the tables are
also split by its route and the method it kept: on the uniform route it is
ProxySPEX itself.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import norm

import proxyspex_captum as psx
from proxyspex_captum.games import hierarchical_game, random_game

RESULTS = Path(__file__).parent / "results"
LEVEL = 0.95
FORMS = ("normal", "rms", "percentile", "basic")
GAMES = {"hierarchical": hierarchical_game, "soum": random_game}
ESTIMATORS = {"ProxySPEX": psx.ProxySPEX, "SPEX": psx.SPEX, "AutoSPEX": psx.AutoSPEX}


def cells(which: str, quick: bool) -> list[dict]:
    """The (family, n, budget, noise, seed) runs of one set."""
    if which == "tuning":
        grid = [
            {"family": "hierarchical", "n": n, "budget": b, "noise": s, "seed": seed}
            for n in (32, 128)
            for b in (500, 2000)
            for s in (0.05, 0.2)
            for seed in (0, 1)
        ]
    else:
        grid = [
            {"family": f, "n": n, "budget": b, "noise": s, "seed": 100 + i}
            for f in GAMES
            for n in (32, 128, 512)
            for b in (500, 1000, 2000, 4000)
            for i, s in enumerate((0.05, 0.1, 0.2))
        ]
    if quick:
        grid = [c for c in grid if c["n"] <= 128 and c["budget"] <= 1000][:4]
    return grid


def make_game(cell: dict):
    return GAMES[cell["family"]](
        cell["n"], n_terms=60, max_order=4, noise=cell["noise"], random_state=cell["seed"]
    )


def mobius_terms(inter: psx.Interactions) -> dict[tuple[int, ...], float]:
    return {s: v for s, v in inter.mobius.items() if s}


def intervals_by_form(inter: psx.Interactions) -> dict[str, dict]:
    """Normal, percentile and basic 95 % intervals of every reported Möbius term."""
    point = mobius_terms(inter)
    sets = list(point)
    estimate = np.array([point[s] for s in sets])
    reps = [mobius_terms(r) for r in inter.resamples()]
    values = np.array([[r.get(s, 0.0) for s in sets] for r in reps]).reshape(len(reps), -1)
    z = norm.ppf(0.5 + LEVEL / 2)
    half = z * values.std(axis=0)
    # the spread around the estimate: the resamples' shift from it counts too
    rms = z * np.sqrt(np.mean((values - estimate) ** 2, axis=0))
    lo_q, hi_q = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    bounds = {
        "normal": (estimate - half, estimate + half),
        "rms": (estimate - rms, estimate + rms),
        "percentile": (lo_q, hi_q),
        "basic": (2 * estimate - hi_q, 2 * estimate - lo_q),
    }
    return {form: dict(zip(sets, zip(*b, strict=True), strict=True)) for form, b in bounds.items()}


def score(truth: dict, intervals: dict) -> dict[str, float]:
    """Counts behind the table's shares (summed over runs before dividing)."""
    planted = {s for s in truth if s}
    counts = defaultdict(float)
    for s in planted | set(intervals):
        true = truth.get(s, 0.0)
        low, high = intervals.get(s, (0.0, 0.0))
        inside = s in intervals and low <= true <= high
        counts["terms"] += 1
        counts["covered"] += inside
        if s in planted:
            counts["planted"] += 1
            counts["found"] += s in intervals
            counts["found_covered"] += inside
        else:
            counts["zeros"] += 1
            counts["zeros_flagged"] += inside
    return counts


def run(cell: dict, method: str) -> dict:
    game = make_game(cell)
    kwargs = {"max_order": 4, "random_state": cell["seed"]}
    cls = ESTIMATORS[method]
    start = time.perf_counter()
    plain = cls(**kwargs, uncertainty=False).explain(
        make_game(cell), n_features=cell["n"], budget=cell["budget"]
    )
    plain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    # SPEX's default is uncertainty=False (these tables are why): asked for explicitly.
    inter = cls(**kwargs, uncertainty=True).explain(
        game, n_features=cell["n"], budget=cell["budget"]
    )
    seconds = time.perf_counter() - start
    truth = game.mobius
    out = {"extra_seconds": seconds - plain_seconds, "same": plain == inter}
    # AutoSPEX: its route and the method it kept (None for the others).
    out["route"], out["chosen"] = inter.metadata.get("route"), inter.metadata.get("chosen")
    out["width"] = {}
    for form, intervals in intervals_by_form(inter).items():
        out[form] = score(truth, intervals)
        widths = [(h - lo) / max(game.noise_std, 1e-12) for lo, h in intervals.values()]
        out["width"][form] = float(np.median(widths)) if widths else float("nan")
    return out


def share(a: float, b: float) -> str:
    return f"{a / b:.1%}" if b else "–"


def table(rows: list[tuple[dict, dict]], forms: tuple[str, ...], group) -> list[str]:
    lines = [
        "| group | runs | interval | coverage | found | coverage of found | zeros flagged "
        "| median width / noise sd | extra s (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups = defaultdict(list)
    for cell, result in rows:
        groups[group(cell, result)].append(result)
    for key, results in groups.items():
        for form in forms:
            total = defaultdict(float)
            for r in results:
                for k, v in r[form].items():
                    total[k] += v
            extra = np.median([r["extra_seconds"] for r in results])
            width = np.median([r["width"][form] for r in results])
            lines.append(
                f"| {key} | {len(results)} | {form} | {share(total['covered'], total['terms'])} "
                f"| {int(total['found'])}/{int(total['planted'])} "
                f"| {share(total['found_covered'], total['found'])} "
                f"| {share(total['zeros_flagged'], total['zeros'])} | {width:.2f} | {extra:.2f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=("tuning", "report", "both"), default="both")
    parser.add_argument("--methods", default="ProxySPEX,SPEX", help=f"of {','.join(ESTIMATORS)}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--suffix", default="", help="written to uncertainty_<set><suffix>.md (default: none)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.methods.split(",")) - set(ESTIMATORS))
    if unknown:
        known = ", ".join(ESTIMATORS)
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {known}.")
    sets = ("tuning", "report") if args.set == "both" else (args.set,)
    for which in sets:
        lines = [
            f"# Calibration of the 95 % bootstrap intervals: {which} set",
            "",
            f"`python benchmarks/bench_uncertainty.py --set {which} --methods {args.methods}"
            f"{' --suffix ' + args.suffix if args.suffix else ''}` on {platform.machine()}. "
            "Planted games of about 60 Möbius terms up to order 4 (`psx.games`), noise as a "
            "share of the noiseless output's standard deviation, `max_order=4`, 30 resamples "
            "(the default). Shares are pooled over the runs of a group.",
            "",
        ]
        for method in args.methods.split(","):
            rows = []
            for cell in cells(which, args.quick):
                if method == "SPEX":
                    need = psx.SPEX(max_order=4).min_budget(cell["n"])
                    if cell["budget"] < need:
                        continue
                result = run(cell, method)
                rows.append((cell, result))
                chosen = result["rms"]
                print(method, cell, f"{chosen['covered'] / chosen['terms']:.2f}", flush=True)
            forms = FORMS if which == "tuning" else ("rms",)
            lines += [f"## {method}", ""]
            if not all(r["same"] for _, r in rows):
                lines += ["**The point estimate changed with uncertainty on.**", ""]
            lines += ["By noise:", ""]
            lines += table(rows, forms, lambda c, _: f"noise {c['noise']:.0%}")
            lines += ["", "By number of features and budget:", ""]
            lines += table(rows, forms, lambda c, _: f"{c['family']} n={c['n']} B={c['budget']}")
            if method == "AutoSPEX":
                lines += ["", "By AutoSPEX's route and the method it kept:", ""]
                lines += table(
                    rows, forms, lambda c, r: f"{c['family']}, {r['route']}, kept {r['chosen']}"
                )
            lines.append("")
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"uncertainty_{which}{args.suffix}.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
