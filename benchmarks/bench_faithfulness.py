"""Faithfulness per model call against the reference implementations (issue 12).

What is measured: on planted games nobody tuned to (hierarchical Möbius games,
the same with 5 % noise, shapiq's sums of unanimity games, Fourier-sparse
parity games; ``faith_suite.py`` holds the two disjoint designs, TUNING with
23 cells and REPORT with 32), every method gets the same budget of distinct
model calls on the same game, and its surrogate is scored by R² = 1 − SSE/SST
against the noiseless game on the same 1,000 held-out uniform masks (seeded
apart from every method's seed). Also recorded: the method's own seconds (wall
time minus the time inside the game) and its own CPU seconds (every thread's:
ours fits its folds on a thread per core, ``n_jobs="auto"``, shapiq's ProxySPEX
on one thread; ours runs with ``uncertainty=False``, as the references return
no intervals), the distinct masks it actually queried, the R² of its order-k
truncation (``r2_at_order``), and any error. Every method runs with one BLAS
thread (since 2026-12-06; ours limited its own fits before, the references ran
theirs on every core, which spin under load).

Methods: ``psx-proxyspex``, ``psx-spex``, ``psx-auto`` (ours), ``shapiq-proxyspex``,
``shapiq-spex`` (shapiq 1.4.1), ``spectralexplain-spex`` and, by name only,
``spectralexplain-proxyspex`` (the authors' package 0.0.4), ``lime``,
``kernelshap``, ``banzhaf`` (Captum / least squares: linear surrogates). Each
runs in a forked child with a time limit (``--timeout``, 120 s), so a crash, a
hang or an exception is an error record of that cell, not the end of the run.
The SPEX references run where psx-spex can and, unless ``--all-references``, at
n <= 128 (``faith_suite.gate``); their numba-compiled codes are warmed up once
before the first fork, so no cell pays the compilation. A variant of ours is a
method string with constructor options, ``psx-proxyspex:energy=0.9,max_depth=4``
(``--methods`` or ``--variant``); the whole string is its name in the results.

Run (2 shared cores: one design at a time, nothing else heavy alongside)::

    .venv/bin/python benchmarks/bench_faithfulness.py --set tuning --quick   # smoke, ~2 min
    .venv/bin/python benchmarks/bench_faithfulness.py --set report --resume
    .venv/bin/python benchmarks/bench_faithfulness.py --set tuning \\
        --methods psx-proxyspex,shapiq-proxyspex --variant psx-proxyspex:energy=0.9
    .venv/bin/python benchmarks/bench_faithfulness.py --set report --table-only
    .venv/bin/python benchmarks/bench_faithfulness.py --set report --list   # the cells

Estimated from cells timed on 2 cores shared with other jobs (load 1-3), in
minutes: REPORT ~60-70 (shapiq-proxyspex ~25; spectralexplain-spex ~15-20,
66-76 s a cell already at n <= 128, budget 1,000, several cells at the 120 s
limit; shapiq-spex ~10; ours ~7; the linear ones ~2; the warm-up ~1), without
spectralexplain-spex ~45-50; TUNING ~40-45. ``--all-references`` adds ~30-40
to REPORT, mostly timeouts. ``--resume`` lets a run be split: e.g. first
``--methods`` without the SPEX references, later ``--resume`` with them.

Writes ``benchmarks/results/faithfulness_{set}.jsonl`` (one record per game x
budget x max_order x method; appended as it goes, the latest record of a pair
wins, ``--resume`` skips pairs already there) and ``faithfulness_{set}.md`` (the
table and the issue's criteria, rebuilt from the JSON lines; ``--table-only``
rebuilds it alone). ``--quick`` (each family's cheapest cell of the set) writes
``faithfulness_{set}_quick.*``. ``--repeats K`` runs each method-cell K times,
every method once a round, and records the median of its own seconds (the
result must be the same each time; a run that differs is named in the note)::

    .venv/bin/python benchmarks/bench_faithfulness.py --set report --repeats 3 \\
        --methods psx-proxyspex,psx-auto,shapiq-proxyspex --results benchmarks/results/repeats

``--warm-child`` makes each forked child run its method once on a game of no
design (``WARM_UP_CELL``) first, untimed: the seconds are then a process's
second explanation, without the one-time costs of a fresh process (about
0.1 s at n = 32 for ours and for shapiq's ProxySPEX alike, 2026-12-07). The
records say ``warm_child``; ``--timeout`` covers both runs; keep such runs in
their own ``--results`` folder (``--resume`` does not tell warm records from
cold ones).
"""

from __future__ import annotations

import os

# LightGBM's OpenMP threads spin while they wait; on 2 cores shared with other
# jobs that made a multi-threaded fit (psx-proxyspex, n = 1000, budget 2,000)
# take > 150 s instead of 12 s (idle machines: not measured). libgomp reads it
# when it loads, so it is set before anything imports LightGBM.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The SPEX references' codes are numba kernels (galois), compiled once in this
# process before the children fork (faith_suite.warm_up). Numba's default "omp"
# layer would start GNU OpenMP's pool here, and a forked child's LightGBM then
# hangs on it (measured: every psx-proxyspex child timed out); "workqueue" is
# numba's own pool and leaves OpenMP untouched.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import argparse
import json
import platform
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faith_suite as fs
import numpy as np

RESULTS = Path(__file__).parent / "results"
#: Ours -> the reference implementation of the same algorithm.
COUNTERPART = {"psx-proxyspex": "shapiq-proxyspex", "psx-spex": "shapiq-spex"}
LINEAR = ("lime", "banzhaf")  # the "max(lime, banzhaf)"
AUTO_CHOICES = ("psx-proxyspex", "psx-spex")  # AutoSPEX's bar: the better of the two
MARGIN = 0.005
HIERARCHICAL_R2 = 0.98
HIERARCHICAL_FROM = 1000  # calls
SPEED_RATIO = 5  # own time at most 1/5 of the counterpart's
STRETCH_R2 = 0.75  # ProxySPEX on the SmolLM2 sentiment games
STRETCH_BUDGET = 1000
SHORT = {  # table headers
    "psx-proxyspex": "psx-pspex",
    "psx-spex": "psx-spex",
    "psx-auto": "psx-auto",
    "shapiq-proxyspex": "shapiq-pspex",
    "shapiq-spex": "shapiq-spex",
    "spectralexplain-proxyspex": "se-pspex",
    "spectralexplain-spex": "se-spex",
}


# ------------------------------------------------------------------ the cells and methods
def select_cells(design: str, families: list[str] | None, quick: bool) -> list[fs.Cell]:
    cells = fs.DESIGNS[design]()
    if families and "llm" in families:
        cells += fs.llm_cells(design)  # only when asked for: each needs the model
    if families:
        unknown = set(families) - set(fs.FAMILIES)
        if unknown:
            raise SystemExit(f"Unknown families {sorted(unknown)}; known: {sorted(fs.FAMILIES)}.")
        cells = [c for c in cells if c.game.family in families]
    return fs.quick_cells(cells) if quick else cells


def select_methods(methods: str | None, variants: list[str]) -> list[str]:
    chosen = fs.split_methods(methods) if methods else list(fs.DEFAULT_METHODS)
    chosen += variants
    for method in chosen:
        try:
            fs.parse_method(method)
        except ValueError as err:
            raise SystemExit(str(err)) from None
    return list(dict.fromkeys(chosen))


# ------------------------------------------------------------------ the JSON lines
def load_records(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(cell, method): record}``, the latest record of each pair."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["cell"], record["method"]] = record
    return records


def append_record(path: Path, record: dict[str, Any]) -> None:
    # One line per record, flushed at once: an interrupted run loses one method-cell.
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")


def cell_fields(cell: fs.Cell, design: str, prepared: fs.Prepared | None) -> dict[str, Any]:
    return {
        "set": design,
        "cell": cell.key,
        "family": cell.game.family,
        "n": cell.game.n,
        "params": dict(cell.game.params),
        "seed": cell.game.seed,
        "budget": cell.budget,
        "max_order": cell.max_order,
        **(prepared.info if prepared is not None else {}),
    }


def run(
    cells: list[fs.Cell],
    methods: list[str],
    *,
    design: str,
    path: Path,
    resume: bool,
    timeout: float,
    all_references: bool = False,
    repeats: int = 1,
    warm_child: bool = False,
) -> None:
    done = load_records(path) if resume else {}
    warm_up = fs.Prepared.of(WARM_UP_CELL) if warm_child else None
    if warm_child and any(c.game.family in fs.IN_PROCESS_FAMILIES for c in cells):
        print("--warm-child: the LLM cells run in this process, not warmed", flush=True)
    for i, cell in enumerate(cells, 1):
        todo = [m for m in methods if (cell.key, m) not in done]
        if not todo:
            continue
        print(f"[{i}/{len(cells)}] {cell.key}", flush=True)
        prepared = fs.Prepared.of(cell)  # built once; a forked child inherits it
        in_process = cell.game.family in fs.IN_PROCESS_FAMILIES or timeout <= 0
        fields = cell_fields(cell, design, prepared)
        runs: dict[str, list[dict[str, Any]]] = {}
        for method in todo:
            reason = fs.gate(method, cell, all_references=all_references)
            if reason is None:
                runs[method] = []
            else:
                write_record(path, {**fields, **fs.skipped(method, reason)})
        # Round after round, every method once a round: the repeats of one method are
        # spread over the same stretch of load as the others', as in a side-by-side run.
        for round_ in range(repeats):
            for method, done_runs in runs.items():
                if in_process:
                    if cell.game.family not in fs.IN_PROCESS_FAMILIES:
                        # A fresh game: a noisy one's noise restarts.
                        prepared = fs.Prepared.of(cell)
                    record = fs.run_one(prepared, method)
                else:
                    record = fs.run_isolated(prepared, method, timeout, warm_up=warm_up)
                done_runs.append(record)
                if repeats > 1:
                    print(f"   ({round_ + 1}/{repeats}) " + describe(record), flush=True)
                if round_ == repeats - 1:  # written as soon as complete: a stop loses little
                    write_record(path, {**fields, **merged(done_runs)})


# --warm-child: what each forked child explains first, untimed. The game of the
# tuning set's #101 (no report set's; main refuses a run that selects this very
# cell); 500 calls at n = 32 and k = 4 fit every method's minimum.
WARM_UP_CELL = fs.Cell(
    fs.GameSpec.make("hierarchical", 32, 101, terms=80, degree=3, decay=0.6), 500, 4
)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Append ``record``, stamped with the time, and print it."""
    record = {**record, "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    append_record(path, record)
    print("   " + describe(record), flush=True)


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One method-cell's record from its repeated runs: the median of their own seconds.

    The result (R², terms, calls) is the first run's: a seeded method gives the
    same one every time, and a run that differs is named in the note rather than
    averaged away. An error in any run is the record's error.
    """
    record = dict(runs[0])
    if len(runs) == 1:
        return record
    warm_up_errors = [r["warm_up_error"] for r in runs if "warm_up_error" in r]
    if warm_up_errors:  # any round's, not only the first's
        record["warm_up_error"] = warm_up_errors[0]
    record["seconds_runs"] = [r["seconds"] for r in runs]
    record["seconds"] = float(np.median(record["seconds_runs"]))
    if all("cpu_seconds" in r for r in runs):
        record["cpu_seconds_runs"] = [r["cpu_seconds"] for r in runs]
        record["cpu_seconds"] = float(np.median(record["cpu_seconds_runs"]))
    differing = sorted({r.get("r2") for r in runs} - {record.get("r2")}, key=str)
    if differing:
        record["note"] = (record.get("note") or "") + f" R² of other runs: {differing}"
    if not record.get("error"):
        record["error"] = next((r["error"] for r in runs if r.get("error")), None)
    return record


def describe(record: dict[str, Any]) -> str:
    r2 = record.get("r2")
    text = f"{record['method']:28s} " + (f"R²={r2:.4f}" if r2 is not None else "R²=  –   ")
    text += f" own={record.get('seconds', 0.0):7.2f}s calls={record.get('n_calls', 0)}"
    if record.get("note"):
        text += f" ({record['note']})"
    if record.get("error"):
        text += f" ERROR {record['error'][:160]}"
    return text


# ------------------------------------------------------------------ the markdown
def status(record: dict[str, Any] | None) -> str:
    """A table entry: the R², or why there is none."""
    if record is None:
        return "·"
    if record.get("r2") is not None:
        return f"{record['r2']:.3f}"
    if record.get("error"):
        return "t/o" if record["error"].startswith("timeout") else "err"
    return "skip"


def seconds(record: dict[str, Any] | None, key: str = "seconds") -> float | None:
    if record is None or record.get("r2") is None or key not in record:
        return None
    return float(record[key])


def ordered_methods(records: Iterable[dict[str, Any]]) -> list[str]:
    present = {r["method"] for r in records}
    known = [m for m in fs.METHODS if m in present]
    return known + sorted(present - set(known))  # variants after the canonical ones


def cell_order(records: Iterable[dict[str, Any]]) -> list[str]:
    first: dict[str, tuple] = {}
    families = list(fs.FAMILIES)
    for r in records:
        family = families.index(r["family"]) if r["family"] in families else len(families)
        first.setdefault(r["cell"], (family, r["n"], r["seed"], r["budget"], r["max_order"]))
    return sorted(first, key=first.__getitem__)


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items())


def table(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    records = list(by_pair.values())
    methods = ordered_methods(records)
    cells = cell_order(records)
    info = {r["cell"]: r for r in records}
    head = ["family", "n", "structure", "seed", "budget", "k"]
    head += [f"R² {SHORT.get(m, m)}" for m in methods]
    pairs = [(ours, ref) for ours, ref in COUNTERPART.items() if ours in methods]
    for ours, ref in pairs:
        head += [f"s {SHORT[ours]}", f"s {SHORT[ref]}", f"{SHORT[ref]} / {SHORT[ours]}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        r = info[cell]
        row = [r["family"], str(r["n"]), params_text(r["params"]), str(r["seed"])]
        row += [str(r["budget"]), str(r["max_order"])]
        row += [status(by_pair.get((cell, m))) for m in methods]
        for ours, ref in pairs:
            a, b = seconds(by_pair.get((cell, ours))), seconds(by_pair.get((cell, ref)))
            row += [f"{a:.2f}" if a is not None else "–", f"{b:.1f}" if b is not None else "–"]
            row.append(f"{b / a:.1f}×" if a and b is not None else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def label(record: dict[str, Any]) -> str:
    r = record
    game = r["params"].get("name") or f"{r['family']} n={r['n']} seed {r['seed']}"
    return f"{game} budget {r['budget']} k={r['max_order']}"


def speed(
    by_pair: dict[tuple[str, str], dict[str, Any]], ours: str, ref: str, key: str = "seconds"
) -> str:
    """How often ``ours`` takes at most 1/SPEED_RATIO of ``ref``'s own seconds (or CPU seconds)."""
    ratios = []
    for (cell, method), mine in by_pair.items():
        theirs = by_pair.get((cell, ref))
        if method == ours and seconds(mine, key) and seconds(theirs, key) is not None:
            ratios.append((seconds(theirs, key) / seconds(mine, key), label(mine)))
    what = (
        "own time" if key == "seconds" else "(for information) own CPU time, every thread counted"
    )
    if not ratios:
        return f"- {what} ≤ 1/{SPEED_RATIO} of {ref}'s: no such cells"
    slow = [f"{text}: {ratio:.1f}×" for ratio, text in sorted(ratios) if ratio < SPEED_RATIO]
    line = (
        f"- {what} ≤ 1/{SPEED_RATIO} of {ref}'s: **{len(ratios) - len(slow)} of "
        f"{len(ratios)} cells** (median {np.median([r for r, _ in ratios]):.1f}×)"
    )
    return line + ("; slower: " + "; ".join(slow) if slow else "")


def criterion(
    by_pair: dict[tuple[str, str], dict[str, Any]],
    ours: str,
    what: str,
    target: Any,
    cells: list[str],
) -> str:
    """``k of N cells`` where ``ours`` meets ``target(cell) -> (threshold, text) | None``."""
    met, failed, missing = 0, [], 0
    for cell in cells:
        mine = by_pair.get((cell, ours))
        bar = target(cell)
        if bar is None:
            continue  # nothing to compare against in this cell
        if mine is None or mine.get("r2") is None:
            missing += 1
            continue
        threshold, against = bar
        if mine["r2"] >= threshold:
            met += 1
        else:
            failed.append(f"{label(mine)}: {mine['r2']:.3f} vs {against}")
    total = met + len(failed)
    if total == 0 and not missing:
        return f"- {what}: no such cells"
    line = f"- {what}: **{met} of {total} cells**"
    if missing:
        line += f" ({missing} more where {ours} has no result)"
    if failed:
        line += "; failing: " + "; ".join(failed)
    return line


def summary(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    records = list(by_pair.values())
    cells = cell_order(records)
    info = {r["cell"]: r for r in records}
    methods = ordered_methods(records)

    def r2_of(cell: str, method: str) -> float | None:
        record = by_pair.get((cell, method))
        return None if record is None else record.get("r2")

    def vs_best(cell: str, others: Sequence[str]) -> tuple[float, str] | None:
        """The bar of the best of ``others`` in ``cell`` (those with a result)."""
        values = [(r2_of(cell, m), m) for m in others]
        values = [(v, m) for v, m in values if v is not None]
        if not values:
            return None
        best, name = max(values)
        return best - MARGIN, f"{name} {best:.3f}"

    out = []
    for ours in methods:
        base, _ = fs.parse_method(ours)
        ref = COUNTERPART.get(base)
        if ref is None:
            continue
        out.append(f"\n**{ours}**\n")

        def vs_ref(cell: str, ref: str = ref) -> tuple[float, str] | None:
            value = r2_of(cell, ref)
            return None if value is None else (value - MARGIN, f"{ref} {value:.3f}")

        def vs_linear(cell: str) -> tuple[float, str] | None:
            return vs_best(cell, LINEAR)

        def hierarchical(cell: str, family: str = "hierarchical") -> tuple[float, str] | None:
            r = info[cell]
            if r["family"] != family or r["budget"] < HIERARCHICAL_FROM:
                return None
            return HIERARCHICAL_R2, f"{HIERARCHICAL_R2}"

        out.append(criterion(by_pair, ours, f"R² ≥ {ref} − {MARGIN}", vs_ref, cells))
        out.append(speed(by_pair, ours, ref))
        out.append(speed(by_pair, ours, ref, "cpu_seconds"))
        out.append(
            criterion(by_pair, ours, f"R² ≥ max({', '.join(LINEAR)}) − {MARGIN}", vs_linear, cells)
        )
        out.append(
            criterion(
                by_pair,
                ours,
                f"hierarchical games from {HIERARCHICAL_FROM} calls: R² ≥ {HIERARCHICAL_R2}",
                hierarchical,
                cells,
            )
        )
        out.append(
            criterion(
                by_pair,
                ours,
                "(for information) the same on hierarchical-noisy games",
                lambda cell: hierarchical(cell, "hierarchical-noisy"),
                cells,
            )
        )
    for ours in methods:  # issue 18: AutoSPEX against the better of our two methods
        if fs.parse_method(ours)[0] != "psx-auto":
            continue
        out.append(f"\n**{ours}**\n")

        def vs_both(cell: str) -> tuple[float, str] | None:
            return vs_best(cell, AUTO_CHOICES)

        what = f"R² ≥ max({', '.join(AUTO_CHOICES)}) − {MARGIN}"
        out.append(criterion(by_pair, ours, what, vs_both, cells))
        out.append(speed(by_pair, ours, "shapiq-proxyspex"))
        out.append(speed(by_pair, ours, "shapiq-proxyspex", "cpu_seconds"))
    return "\n".join(out)


def removal_table(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Rem(1) / Rem(2) / Rem(3) of every method on the cells that have it (the LLM games)."""
    records = [r for r in by_pair.values() if r.get("rem") is not None]
    if not records:
        return "No cell has it yet (only the LLM games do)."
    methods = ordered_methods(records)
    info = {r["cell"]: r for r in records}
    head = ["game", "n", "budget", "k"] + [SHORT.get(m, m) for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cell_order(records):
        r = info[cell]
        row = [str(r["params"].get("name", r["family"])), str(r["n"]), str(r["budget"])]
        row.append(str(r["max_order"]))
        for method in methods:
            rem = (by_pair.get((cell, method)) or {}).get("rem")
            row.append(" / ".join(f"{v:.2f}" for v in rem) if rem else "·")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def stretch(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The issue's stretch goal: ProxySPEX R² ≥ 0.75 at 1,000 calls on the sentiment games."""
    mine = [
        r
        for (cell, method), r in by_pair.items()
        if method == "psx-proxyspex"
        and "sent-" in str(r.get("params", {}).get("name", ""))
        and r["budget"] == STRETCH_BUDGET
        and r.get("r2") is not None
    ]
    if not mine:
        return "- stretch (sentiment games at 1,000 calls): no result yet"
    met = sum(r["r2"] >= STRETCH_R2 for r in mine)
    values = ", ".join(f"{r['params']['name']} {r['r2']:.3f}" for r in mine)
    what = f"R² ≥ {STRETCH_R2} at {STRETCH_BUDGET} calls on the sentiment games"
    return f"- stretch (psx-proxyspex), {what}: **{met} of {len(mine)}** ({values})"


def timing(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = [
        "| method | cells with a result | skipped | errors | own s total | own s median | max |",
        "|---|---|---|---|---|---|---|",
    ]
    records = list(by_pair.values())
    for method in ordered_methods(records):
        mine = [r for r in records if r["method"] == method]
        ok = [r["seconds"] for r in mine if r.get("r2") is not None]
        errors = sum(1 for r in mine if r.get("error"))
        skipped = len(mine) - len(ok) - errors
        lines.append(
            f"| {method} | {len(ok)} | {skipped} | {errors} | {sum(ok):.0f} | "
            f"{np.median(ok) if ok else float('nan'):.2f} | {max(ok, default=float('nan')):.1f} |"
        )
    return "\n".join(lines)


def problems(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = []
    for r in by_pair.values():
        if r.get("error"):
            lines.append(f"- {label(r)}, {r['method']}: error `{r['error'][:300]}`")
        elif r.get("r2") is None and r.get("note"):
            lines.append(f"- {label(r)}, {r['method']}: {r['note']}")
        if r.get("n_calls", 0) > r["budget"]:
            lines.append(f"- {label(r)}, {r['method']}: {r['n_calls']} calls > budget")
    return "\n".join(lines) if lines else "none"


def versions() -> str:
    names = ("proxyspex-captum", "shapiq", "spectralexplain", "captum", "lightgbm", "numpy")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except Exception:  # not installed: say so rather than fail the table
            found.append(f"{name} –")
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    return ", ".join(found) + f"; git {commit or '?'}"


def write_markdown(path: Path, md_path: Path, design: str, command: str) -> None:
    by_pair = load_records(path)
    if not by_pair:
        md_path.write_text(f"# Faithfulness, {design} set\n\nNo records in `{path.name}`.\n")
        return
    md_path.write_text(
        f"# Faithfulness per model call, {design} set (issue 12)\n\n"
        f"Command: `{command}`. Records: `{path.name}` ({len(by_pair)} method-cells). "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared; seconds depend on "
        f"the load). Versions: {versions()}.\n\n"
        "Every method on the same game, budget (distinct model calls) and 1,000 held-out "
        "uniform masks; R² against the noiseless game (1 − SSE/SST). k: max_order (ours: "
        "the estimators' max_order; shapiq's SPEX: its code's t; shapiq's ProxySPEX: its "
        "whole surrogate, its grid fixes depths 3 and 5). s: the method's own seconds, game "
        "calls excluded (run with --repeats: the median of the runs, every method once a "
        "round; wall time, ours with its default of a thread per core and "
        "uncertainty=False; records since 2026-12-06 also hold every thread's CPU "
        "seconds, and every method runs with one BLAS thread). skip: not run (budget "
        "below the method's minimum, or a SPEX "
        "reference where psx-spex cannot run); t/o: killed at the time limit; err: see "
        "below; ·: not run yet.\n\n"
        f"{_warm_child_note(by_pair)}"
        f"{table(by_pair)}\n\n"
        f"## The issue's criteria\n{summary(by_pair)}\n{stretch(by_pair)}\n\n"
        "## Top-r removal on the LLM games\n\n"
        "Rem(r) = |f(1) − f(m*)| / |f(1)|, m* the r-unit removal that the method's "
        "surrogate says changes the output most (higher: it found what drives the "
        "output), for r = 1 / 2 / 3.\n\n"
        f"{removal_table(by_pair)}\n\n"
        f"## Time per method\n\n{timing(by_pair)}\n\n"
        f"## Errors, skips and notes\n\n{problems(by_pair)}\n"
    )


def _warm_child_note(by_pair: dict[tuple[str, str], dict[str, Any]]) -> str:
    """A line saying which records' seconds are a warmed process's (``--warm-child``)."""
    # Skips made no call (nor did a method below its own minimum); a killed run has no
    # count, but ran.
    ran = [record for record in by_pair.values() if record.get("n_calls", 1) > 0]
    warm = [record for record in ran if record.get("warm_child")]
    if not warm:
        return ""
    failed = sum("warm_up_error" in record for record in warm)
    return (
        f"{len(warm)} of the {len(ran)} records that ran had --warm-child: their forked "
        f"child first ran the method once, untimed, on `{WARM_UP_CELL.key}`, so their "
        "seconds are a process's second explanation"
        + (f" ({failed} warm-ups failed: see `warm_up_error`).\n\n" if failed else ".\n\n")
    )


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=sorted(fs.DESIGNS), default="tuning", dest="design")
    parser.add_argument(
        "--methods",
        help=f"comma-separated (default: {','.join(fs.DEFAULT_METHODS)}); "
        "a variant: psx-proxyspex:key=value,key=value",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="METHOD:key=value,...",
        help="add a variant of ours (repeatable), e.g. psx-proxyspex:energy=0.9",
    )
    parser.add_argument("--family", help=f"comma-separated subset of {','.join(fs.FAMILIES)}")
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 small cells")
    parser.add_argument("--resume", action="store_true", help="skip method-cells already run")
    parser.add_argument("--table-only", action="store_true", help="rebuild the md from jsonl")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds per method and cell before it is killed (0: run in this process)",
    )
    parser.add_argument(
        "--cell",
        action="append",
        default=[],
        help="only cells whose key contains this (repeatable)",
    )
    parser.add_argument(
        "--all-references",
        action="store_true",
        help=f"run the SPEX references at n > {fs.SPEX_REFERENCE_MAX_N} too (report: +30-40 min)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run each method-cell this many times, interleaved; its seconds: their median",
    )
    parser.add_argument(
        "--warm-child",
        action="store_true",
        help="each forked child first runs its method once, untimed, on WARM_UP_CELL: the "
        "seconds of a process's second explanation (--timeout covers both; use a "
        "--results folder of its own)",
    )
    parser.add_argument("--list", action="store_true", help="print the cells and exit")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the outputs")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.warm_child and args.timeout <= 0:
        parser.error("--warm-child warms forked children: it needs --timeout > 0")

    stem = f"faithfulness_{args.design}" + ("_quick" if args.quick else "")
    args.results.mkdir(parents=True, exist_ok=True)
    path, md_path = args.results / f"{stem}.jsonl", args.results / f"{stem}.md"
    command = "python benchmarks/bench_faithfulness.py " + " ".join(sys.argv[1:])
    if not args.table_only:
        families = args.family.split(",") if args.family else None
        cells = select_cells(args.design, families, args.quick)
        if args.cell:
            cells = [c for c in cells if any(part in c.key for part in args.cell)]
        if args.list:
            print("\n".join(c.key for c in cells) + f"\n{len(cells)} cells")
            return
        if args.warm_child and any(c.key == WARM_UP_CELL.key for c in cells):
            parser.error(f"--warm-child: {WARM_UP_CELL.key} is the warm-up; leave it out")
        methods = select_methods(args.methods, args.variant)
        print(f"{len(cells)} cells x {len(methods)} methods -> {path}", flush=True)
        warnings.filterwarnings("ignore")  # the children record theirs
        # A kill (timeout(1), a scheduler) unwinds like Ctrl-C, so run_isolated's
        # finally clause kills the running child instead of leaving it behind.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        preimport()
        todo = _pending(cells, methods, path) if args.resume else cells
        # The SPEX references' codes for the warm-up's size too: a child must not compile.
        warmed = [*todo, WARM_UP_CELL] if args.warm_child else todo
        spent = fs.warm_up(warmed, methods, all_references=args.all_references)
        if spent:
            print(f"warmed up the SPEX references' codes in {spent:.0f} s", flush=True)
        tic = time.perf_counter()
        run(
            cells,
            methods,
            design=args.design,
            path=path,
            resume=args.resume,
            timeout=args.timeout,
            all_references=args.all_references,
            repeats=args.repeats,
            warm_child=args.warm_child,
        )
        print(f"done in {time.perf_counter() - tic:.0f} s", flush=True)
    write_markdown(path, md_path, args.design, command)
    print(f"wrote {md_path}")


def _pending(cells: list[fs.Cell], methods: list[str], path: Path) -> list[fs.Cell]:
    done = load_records(path)
    return [c for c in cells if any((c.key, m) not in done for m in methods)]


def preimport() -> None:
    """Import the methods' packages once, so no child's own time includes an import."""
    import captum.attr  # noqa: F401
    import lightgbm  # noqa: F401
    import shapiq  # noqa: F401
    import spectralexplain  # noqa: F401
    import torch  # noqa: F401


if __name__ == "__main__":
    main()
