"""``proxyspex-captum explain``: the interactions behind an LLM's answer about a text.

Examples (from a shell)::

    proxyspex-captum explain --example                      # the built-in review
    proxyspex-captum explain "The plot was not bad at all." --budget 300
    proxyspex-captum explain --file passage.txt --unit sentence \\
        --task answer --question "Who won?" --answer "Ada" --out results/
    echo "Tell me about cats." | proxyspex-captum explain --task generate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .core import SPEX, Interactions, ProxySPEX
from .examples import NEGATION_REVIEW
from .metrics import _r2
from .models import DEFAULT_MODEL
from .text_tasks import TASKS, UNITS, TextTask, split_units

__all__ = ["main"]

METHODS = ("proxyspex", "spex", "lime", "kernelshap")


class CLIError(Exception):
    """A problem with the user's request: printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxyspex-captum",
        description="Sparse feature interactions (ProxySPEX, SPEX) behind an LLM's output.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "explain",
        help="explain an LLM's output on a text",
        description="Cut a text into words, sentences or tokens, query the LLM on masked "
        "versions of it, and print the strongest interactions, the first-order attributions "
        "and the faithfulness R² on held-out masks.",
    )
    source = explain.add_mutually_exclusive_group()
    source.add_argument("text", nargs="?", help="the text ('-' or nothing: read stdin)")
    source.add_argument("--file", type=Path, help="read the text from this file")
    source.add_argument("--example", action="store_true", help="use the built-in review")
    explain.add_argument("--task", choices=TASKS, default="sentiment", help="what is measured")
    explain.add_argument("--question", help="question about the text (task answer/generate)")
    explain.add_argument("--answer", help="answer to score (default: the model's own)")
    explain.add_argument("--unit", choices=UNITS, default="word", help="what a feature is")
    explain.add_argument("--method", choices=METHODS, default="proxyspex")
    explain.add_argument("--budget", type=int, default=500, help="model calls (default 500)")
    explain.add_argument("--max-order", type=int, default=None, help="largest interaction order")
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument(
        "--model", default=DEFAULT_MODEL, help="'smollm2' (embedded) or a HF name or folder"
    )
    explain.add_argument("--top", type=int, default=10, help="interactions to print")
    explain.add_argument("--n-test", type=int, default=100, help="held-out masks for R²")
    explain.add_argument("--batch-size", type=int, default=16, help="masked prompts per pass")
    explain.add_argument("--out", type=Path, help="write result.json and PNG plots here")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _read_text(args: argparse.Namespace) -> str:
    if args.example:
        return NEGATION_REVIEW
    if args.file is not None:
        try:
            return args.file.read_text(encoding="utf-8")
        except OSError as err:
            raise CLIError(f"Cannot read {args.file}: {err.strerror}.") from err
        except UnicodeDecodeError as err:
            raise CLIError(f"{args.file} is not UTF-8 text ({err.reason}).") from err
    if args.text not in (None, "-"):
        return args.text
    if sys.stdin.isatty():
        raise CLIError("No text: pass it as an argument, with --file, on stdin, or --example.")
    return sys.stdin.read()


def _estimator(args: argparse.Namespace) -> Any:
    options: dict[str, Any] = {"random_state": args.seed}
    if args.max_order is not None:
        options["max_order"] = args.max_order
    if args.method == "spex":
        return SPEX(**options)
    if args.method == "proxyspex":
        return ProxySPEX(**options)
    return None


def _check_request(args: argparse.Namespace, units: list[str]) -> None:
    """Everything that can be refused before the model is loaded."""
    n = len(units)
    if n == 0:
        raise CLIError("The text is empty: there is nothing to explain.")
    for name in ("budget", "top", "n_test", "batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be at least 1.")
    try:
        estimator = _estimator(args)
    except ValueError as err:
        raise CLIError(str(err)) from err
    if estimator is not None:
        try:
            estimator.check_budget(n, args.budget)
        except ValueError as err:
            raise CLIError(f"{err} (The text has {n} {args.unit}s.)") from err
    elif args.max_order is not None:
        raise CLIError(f"--max-order applies to proxyspex and spex; {args.method} is linear.")
    elif args.budget < n + 1:
        raise CLIError(
            f"{args.method} fits one weight per {args.unit} plus an intercept: it needs a budget "
            f"above {n} for {n} {args.unit}s; got {args.budget}."
        )
    if args.task == "answer" and not args.question:
        raise CLIError("--task answer needs --question (and optionally --answer).")


def _explain(args: argparse.Namespace, values: Any, n: int, units: list[str]) -> Interactions:
    estimator = _estimator(args)
    if estimator is not None:
        result = estimator.explain(values, n, args.budget, feature_names=units)
        assert isinstance(result, Interactions)
        return result
    from .core.value_function import ValueFunction
    from .metrics import _RUNNERS

    runner = _RUNNERS[args.method]
    try:
        surrogate, note = runner(ValueFunction(values, n), n, args.budget, args.seed)
    except Exception as err:  # e.g. Captum's KernelShap cannot sample a single feature
        raise CLIError(f"{args.method} failed on {n} {args.unit}(s): {err}") from err
    if surrogate is None:
        raise CLIError(note)
    return Interactions.from_mobius(
        surrogate.mobius,
        n_features=n,
        feature_names=units,
        n_queries=args.budget,
        metadata={"method": args.method, "budget": args.budget},
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Do the work of ``explain``; returns what ``result.json`` holds."""
    from tqdm.auto import tqdm

    text = _read_text(args)
    tokenizer_needed = args.unit == "token"
    units = split_units(text, args.unit) if not tokenizer_needed else None
    if units is not None:
        _check_request(args, units)
    tic = time.perf_counter()
    try:
        from .models import load_model

        model, tokenizer = load_model(args.model)
    except (OSError, ModuleNotFoundError, ImportError, FileNotFoundError) as err:
        raise CLIError(str(err)) from err
    load_seconds = time.perf_counter() - tic
    if units is None:
        units = split_units(text, "token", tokenizer)
        _check_request(args, units)
    n = len(units)

    from .attr import LLMAttribution, ProxySPEXAttribution

    llm = LLMAttribution(ProxySPEXAttribution(model), tokenizer)
    task = TextTask(
        units, task=args.task, unit=args.unit, question=args.question, answer=args.answer
    )
    bar = tqdm(
        total=args.budget, desc="model calls", unit="prompt", disable=args.quiet, file=sys.stderr
    )
    values = task.value_function(llm, batch_size=args.batch_size, on_batch=bar.update)
    tic = time.perf_counter()
    try:
        inter = _explain(args, values, n, units)
    finally:
        bar.close()
    explain_seconds = time.perf_counter() - tic
    test = np.random.default_rng(args.seed + 1).random((args.n_test, n)) < 0.5
    r2 = _r2(values(test), inter.predict(test))
    return {
        "text": text,
        "units": units,
        "unit": args.unit,
        "task": args.task,
        "value": task.describe_value(tokenizer),
        "model": str(args.model),
        "method": args.method,
        "budget": args.budget,
        "model_calls": inter.n_queries,
        "seconds": {"load": load_seconds, "explain": explain_seconds},
        "faithfulness_r2": r2,
        "n_test": args.n_test,
        "full_value": float(values(np.ones((1, n), dtype=bool))[0]),
        "interactions": inter.to_dict(),
        "_result": inter,
    }


def report(summary: dict[str, Any], top: int) -> str:
    """The printed table."""
    inter: Interactions = summary["_result"]
    lines = [
        f"Model {summary['model']}, task {summary['task']}: value = {summary['value']}.",
        f"{len(summary['units'])} {summary['unit']}s, {summary['method']}, "
        f"{summary['model_calls']} model calls, {summary['seconds']['explain']:.1f} s.",
        f"Value of the full text: {summary['full_value']:+.3f}; "
        f"of the empty one (surrogate): {inter.baseline_value:+.3f}.",
        "",
        f"Strongest interactions (Möbius: what the {summary['unit']}s add together):",
    ]
    for rank, (subset, value) in enumerate(inter.top(top), start=1):
        words = " + ".join(repr(w) for w in inter.names_of(subset))
        lines.append(f"  {rank:>2}. {value:+8.3f}  {words}")
    lines += ["", "First-order attributions (Shapley values):"]
    shapley = inter.first_order()
    scale = float(np.abs(shapley).max()) or 1.0
    for unit, value in zip(summary["units"], shapley, strict=True):
        bar = ("+" if value >= 0 else "-") * round(20 * abs(value) / scale)
        lines.append(f"  {value:+8.3f}  {unit[:60]!r:<32} {bar}")
    lines += [
        "",
        f"Faithfulness: R² = {summary['faithfulness_r2']:.3f} on {summary['n_test']} held-out "
        "random masks (1 = the interactions reproduce the model exactly).",
    ]
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], out: Path) -> list[Path]:
    """``result.json`` and PNG plots in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plots

    out.mkdir(parents=True, exist_ok=True)
    inter: Interactions = summary["_result"]
    data = {k: v for k, v in summary.items() if not k.startswith("_")}
    written = [out / "result.json"]
    written[0].write_text(json.dumps(data, indent=1, ensure_ascii=False))
    for name, draw in (
        ("interactions.png", lambda: plots.bar(inter)),
        ("network.png", lambda: plots.network(inter)),
        ("heatmap.png", lambda: plots.heatmap(inter)),
        ("text.png", lambda: plots.text(inter, summary["units"])),
    ):
        fig, _ = draw()
        fig.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``proxyspex-captum`` command."""
    args = _parser().parse_args(argv)
    try:
        summary = run(args)
    except CLIError as err:
        print(f"proxyspex-captum: error: {err}", file=sys.stderr)
        return 2
    print(report(summary, args.top))
    if args.out is not None:
        for path in write_outputs(summary, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
