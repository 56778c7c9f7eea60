"""``proxyspex-captum explain``: the interactions behind an LLM's answer about a text.

Examples (from a shell)::

    proxyspex-captum explain --example                      # the built-in review
    proxyspex-captum explain "The plot was not bad at all." --budget 300
    proxyspex-captum explain --file passage.txt --unit sentence \\
        --task answer --question "Who won?" --answer "Ada" --out results/
    echo "Tell me about cats." | proxyspex-captum explain --task generate
    proxyspex-captum explain --file riddle.txt --task truefalse \
        --question "Should the contestant switch?" \
        --api-base http://127.0.0.1:8765/v1 --concurrency 16 --cache riddle.sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import api
from .baselines import METHODS, min_budget, run_method
from .core import SPEX, AutoSPEX, Interactions, PoorFitWarning, ProxySPEX, ValueFunction
from .core.base import POOR_FIT_R2
from .core.cache import MaskStore
from .core.sampling import all_masks
from .examples import NEGATION_REVIEW
from .executors import KINDS, start
from .metrics import r2_score
from .models import DEFAULT_MODEL
from .text_tasks import TASKS, UNITS, TaskValueFunction, TextTask, split_units

__all__ = ["POOR_FIT_R2", "main"]

# Below POOR_FIT_R2 (the library's threshold) of held-out or cross-validated R², the
# command warns that the interactions reproduce the model poorly.
# Model calls per unit suggested when --budget is below the number of units: on
# planted sparse games (n = 60, 200) ProxySPEX reached R² 0.82 at one call per
# feature, 0.98 at two and 0.99 at four; an LLM is less sparse, so four.
CALLS_PER_UNIT = 4
# Masked prompts per forward pass of a local model (one model call each).
DEFAULT_BATCH_SIZE = 16
# torch's seeds are 64-bit and numpy's any size; 32 bits is the portable range.
MAX_SEED = 2**32 - 1


class CLIError(Exception):
    """A problem with the user's request: printed without a traceback."""


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number within the bounds, or a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


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
    explain.add_argument(
        "--budget", type=_integer(1), default=500, help="model calls (default 500)"
    )
    explain.add_argument(
        "--max-order", type=_integer(1), default=None, help="largest interaction order"
    )
    explain.add_argument(
        "--seed", type=_integer(0, MAX_SEED), default=0, help="seed of the sampling (default 0)"
    )
    explain.add_argument(
        "--model", default=DEFAULT_MODEL, help="'smollm2' (embedded) or a HF name or folder"
    )
    explain.add_argument("--top", type=_integer(1), default=10, help="interactions to print")
    explain.add_argument(
        "--n-test",
        type=_integer(2),
        default=100,
        help="held-out masks for R², none of them the fit's (default 100)",
    )
    explain.add_argument(
        "--batch-size",
        type=_integer(1),
        default=None,
        help=f"masked prompts per forward pass of a local model (default {DEFAULT_BATCH_SIZE})",
    )
    explain.add_argument(
        "--executor",
        choices=KINDS,
        default="serial",
        help="where the model calls run (default serial; threads, processes, dask, ray)",
    )
    explain.add_argument(
        "--workers", type=_integer(1), default=None, help="workers (default: usable cores)"
    )
    explain.add_argument("--address", help="a running Dask scheduler or Ray cluster")
    explain.add_argument(
        "--cache",
        type=Path,
        help="SQLite file keeping every model call paid for (a rerun resumes)",
    )
    remote = explain.add_argument_group(
        "a model behind an OpenAI-compatible API (instead of --model)",
        "Requests go out --concurrency at a time; a failed one (dropped connection, timeout, "
        "HTTP 429 or 5xx) is retried with exponential backoff and jitter; with --cache every "
        "answer is kept as it arrives, so a rerun pays only for what is missing.",
    )
    remote.add_argument("--api-base", help="the API's base URL, e.g. http://127.0.0.1:8765/v1")
    remote.add_argument("--api-model", help="the model to ask (default: the first listed)")
    remote.add_argument(
        "--api-key-env",
        help="environment variable holding the API key (default: OPENAI_API_KEY if set)",
    )
    remote.add_argument(
        "--api-endpoint",
        choices=("auto", "chat", "completions"),
        default="auto",
        help="chat (user messages; top-20 log-probs of the first answer token) or "
        "completions (raw prompts, as the local model reads them); auto: chat for "
        "sentiment and truefalse, completions for answer and generate",
    )
    remote.add_argument(
        "--concurrency", type=_integer(1), default=None, help="requests in flight (default 8)"
    )
    remote.add_argument(
        "--requests-per-second", type=float, default=None, help="pace the requests"
    )
    remote.add_argument(
        "--retries",
        type=_integer(0),
        default=None,
        help="retries of a failed request (default 6: about a minute of backoff)",
    )
    explain.add_argument("--out", type=Path, help="write result.json and PNG plots here")
    explain.add_argument(
        "--html",
        type=Path,
        help="write an interactive HTML report (one self-contained file) here",
    )
    explain.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _warn(message: str, warned: list[str]) -> None:
    """One line on stderr, kept for ``result.json`` too."""
    warned.append(message)
    print(f"proxyspex-captum: warning: {message}", file=sys.stderr, flush=True)


def _read_text(args: argparse.Namespace) -> str:
    if args.example:
        return NEGATION_REVIEW
    if args.file is not None:
        try:
            # utf-8-sig: a byte-order mark (Windows editors) is not part of the text.
            return args.file.read_text(encoding="utf-8-sig")
        except OSError as err:
            raise CLIError(f"Cannot read {args.file}: {err.strerror or err}.") from err
        except UnicodeDecodeError as err:
            raise CLIError(f"{args.file} is not UTF-8 text ({err.reason}).") from err
    if args.text not in (None, "-"):
        return args.text
    return _read_stdin()


def _read_stdin() -> str:
    no_text = "No text: pass it as an argument, with --file, on stdin, or --example."
    stdin = sys.stdin
    if stdin is None:  # the process was started with its standard input closed
        raise CLIError(f"{no_text} (Standard input is closed.)")
    try:
        if stdin.isatty():
            raise CLIError(no_text)
        # Bytes, decoded here: the locale's encoding may not be UTF-8.
        buffer = getattr(stdin, "buffer", None)
        raw = buffer.read() if buffer is not None else stdin.read()
    except (OSError, ValueError) as err:  # a closed or unreadable descriptor
        raise CLIError(f"{no_text} (Cannot read standard input: {err}.)") from err
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise CLIError(f"Standard input is not UTF-8 text ({err.reason}).") from err
    if not raw.strip():
        raise CLIError(f"{no_text} (Standard input was empty.)")
    return raw


def _check_html(path: Path) -> None:
    """Refuse a report path that cannot be written, before the model runs."""
    if path.is_dir():
        raise CLIError(
            f"--html {path} is a folder; give a file name, e.g. {path / 'report.html'}."
        )
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CLIError(f"Cannot write --html {path}: {folder} is not a writable folder.")


def _check_out(out: Path) -> None:
    """Create ``out`` and write a file in it now, so a bad folder fails before the model runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".proxyspex-write-test-"):
            pass
    except FileExistsError as err:
        raise CLIError(f"--out {out} exists and is not a folder; choose a folder.") from err
    except OSError as err:
        reason = err.strerror or err
        raise CLIError(
            f"Cannot write to --out {out}: {reason}. Choose a writable folder."
        ) from err


def _estimator(args: argparse.Namespace) -> Any:
    # One model call per --batch-size masks: each call is one forward pass, cached as
    # it returns, and the progress bar moves after each.
    options: dict[str, Any] = {"random_state": args.seed, "batch_size": _batch_size(args)}
    if args.max_order is not None:
        options["max_order"] = args.max_order
    if args.method == "spex":
        return SPEX(**options)
    if args.method == "proxyspex":
        return ProxySPEX(**options)
    if args.method == "auto":
        return AutoSPEX(**options)
    return None


def _batch_size(args: argparse.Namespace) -> int:
    """Masks per model call: ``--batch-size``, or its default."""
    return DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size


def _check_options(args: argparse.Namespace) -> None:
    """What the options alone refuse, before the text is read or split (or the model loaded)."""
    try:
        estimator = _estimator(args)
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from err
    if estimator is None and args.max_order is not None:
        raise CLIError(
            f"--max-order applies to proxyspex, spex and auto; {args.method} is linear."
        )
    if args.task in ("answer", "truefalse") and not args.question:
        raise CLIError(f"--task {args.task} needs --question (and optionally --answer).")


# The files --out receives.
OUT_FILES = ("result.json", "interactions.png", "network.png", "heatmap.png", "text.png")


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse an output that would overwrite the cache of paid calls or the text read."""
    outputs = [("--html", args.html)] if args.html is not None else []
    if args.out is not None:
        outputs += [("--out", args.out / name) for name in OUT_FILES]
    for flag, path in outputs:
        for source, given in (("--cache", args.cache), ("--file", args.file)):
            if given is not None and path.resolve() == given.resolve():
                raise CLIError(
                    f"{flag} would write {path} over {source} {given}: choose another path."
                )


def _check_request(args: argparse.Namespace, units: list[str]) -> None:
    """What the units refuse, before the model is loaded (for tokens: before it is called)."""
    n = len(units)
    if n == 0:
        raise CLIError("The text is empty: there is nothing to explain.")
    estimator = _estimator(args)  # its options: checked by _check_options
    if estimator is not None:
        try:
            estimator.check_budget(n, args.budget)
        except ValueError as err:
            raise CLIError(f"{err} (The text has {n} {args.unit}s.)") from err
    elif args.budget < min_budget(args.method, n):
        raise CLIError(
            f"{args.method} fits one weight per {args.unit} plus an intercept: it needs a budget "
            f"above {n} for {n} {args.unit}s; got {args.budget}."
        )


def budget_warning(args: argparse.Namespace, units: list[str], text: str) -> str | None:
    """What to expect when ``--budget`` is below the number of units, or ``None``.

    With fewer model calls than units, most units are never measured apart
    from their neighbours: their attributions come out near zero and the
    R² low, however long the run.
    """
    n = len(units)
    if args.budget >= n:
        return None
    advice = f"use --budget {CALLS_PER_UNIT * n} or more (about {CALLS_PER_UNIT} per {args.unit})"
    if args.unit != "sentence":
        sentences = len(split_units(text, "sentence"))
        if 1 < sentences < n:
            advice += f", or --unit sentence ({sentences} sentences)"
    return (
        f"--budget {args.budget} is below the number of {args.unit}s ({n}): most {args.unit}s "
        "will not be told apart, so expect attributions near zero and a low R². To explain "
        f"every {args.unit}, {advice}."
    )


def fit_warning(
    r2: float, metadata: dict[str, Any], args: argparse.Namespace, *, n_test: int | None = None
) -> str | None:
    """A warning when the interactions reproduce the model poorly, or ``None``.

    Args:
        r2: The held-out R² of the interactions against the model.
        metadata: The result's metadata; ``cv_r2``, the estimator's own
            cross-validated R² (ProxySPEX, SPEX), counts too.
        args: The command's options, for the advice.
        n_test: The masks ``r2`` was measured on (default ``--n-test``).
    """
    cv_r2 = metadata.get("cv_r2")
    cv_known = cv_r2 is not None and bool(np.isfinite(cv_r2))
    if not (r2 < POOR_FIT_R2 or (cv_known and cv_r2 < POOR_FIT_R2)):
        return None
    measured = f"R² = {r2:.2f} on {args.n_test if n_test is None else n_test} held-out masks"
    if cv_known:
        measured += f", cross-validated R² = {cv_r2:.2f}"
    coarser = {"token": "--unit word or sentence", "word": "--unit sentence"}.get(args.unit)
    advice = f"a larger --budget (e.g. {4 * args.budget})"
    advice += f" or coarser units ({coarser})" if coarser else ""
    return (
        f"the interactions reproduce the model poorly ({measured}; below {POOR_FIT_R2}): read "
        f"them as rough. Try {advice}."
    )


class _Progress:
    """One progress bar per stage, fed by the value function after each forward pass."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self.bar: Any = None

    @contextmanager
    def stage(self, description: str, total: int) -> Iterator[None]:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, desc=description, unit="prompt", disable=self.disable, file=sys.stderr
        )
        try:
            yield
        finally:
            self.bar.close()
            self.bar = None

    def update(self, n_prompts: int) -> None:
        if self.bar is not None:
            self.bar.update(n_prompts)


def _explain(args: argparse.Namespace, counted: ValueFunction, units: list[str]) -> Interactions:
    n = counted.n_features
    estimator = _estimator(args)
    if estimator is not None:
        with warnings.catch_warnings():
            # The command prints its own warning, with the held-out R² and what to try.
            warnings.simplefilter("ignore", PoorFitWarning)
            result = estimator.explain(counted, n, args.budget, feature_names=units)
        assert isinstance(result, Interactions)
        return result
    try:
        surrogate, note = run_method(args.method, counted, n, args.budget, args.seed)
    except Exception as err:  # e.g. Captum's KernelShap cannot sample a single feature
        raise CLIError(f"{args.method} failed on {n} {args.unit}(s): {err}") from err
    if surrogate is None:
        raise CLIError(note)
    return Interactions(
        surrogate.fourier,  # the stored basis: no conversion there and back
        n_features=n,
        feature_names=units,
        n_queries=counted.n_requested,
        metadata={"method": args.method, "budget": args.budget},
    )


@contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Any]:
    kind, workers = args.executor, args.workers
    if args.api_base is not None:  # requests wait on the network: threads
        kind, workers = "threads", args.concurrency or api.DEFAULT_CONCURRENCY
    try:
        with start(kind, workers=workers, address=args.address) as executor:
            yield executor
    except ImportError as err:
        raise CLIError(str(err)) from err


def _open_cache(args: argparse.Namespace, fingerprint: str, n: int) -> MaskStore | None:
    if args.cache is None:
        return None
    try:
        return MaskStore(args.cache, fingerprint=fingerprint, n_features=n)
    except (OSError, ValueError) as err:
        raise CLIError(str(err)) from err


def _expected_calls(args: argparse.Namespace, n: int) -> int:
    estimator = _estimator(args)
    return args.budget if estimator is None else estimator.max_queries(n, args.budget)


def _check_remote(args: argparse.Namespace) -> None:
    """The options a remote model refuses, before anything is asked of it."""
    if args.api_base is None:
        given = [
            flag
            for flag, value in (
                ("--api-model", args.api_model),
                ("--api-key-env", args.api_key_env),
                ("--requests-per-second", args.requests_per_second),
                ("--concurrency", args.concurrency),
                ("--retries", args.retries),
            )
            if value is not None
        ]
        if given:
            raise CLIError(f"{', '.join(given)} need --api-base (a model behind an API).")
        return
    if args.model != DEFAULT_MODEL:
        raise CLIError("--model names a local model; with --api-base, name it with --api-model.")
    if args.executor != "serial" or args.workers is not None or args.address is not None:
        raise CLIError(
            "A remote model's requests run on threads: set --concurrency, not --executor, "
            "--workers or --address."
        )
    if args.batch_size is not None:
        raise CLIError(
            "--batch-size sets a local model's forward passes; a remote model gets one "
            "prompt a request, --concurrency requests at a time: set --concurrency instead."
        )
    if args.unit == "token":
        raise CLIError("--unit token needs the model's tokenizer: use word or sentence units.")
    if args.task == "generate" and args.answer is None:
        raise CLIError(
            "--task generate with a remote model needs --answer (the answer to score): "
            "generating one needs the local model."
        )
    if args.api_endpoint == "chat" and args.task in ("answer", "generate"):
        raise CLIError(
            f"--task {args.task} scores the log-probability of an answer, which a chat API does "
            "not give: use --api-endpoint completions, or --task truefalse or sentiment."
        )
    if args.requests_per_second is not None and not args.requests_per_second > 0:
        raise CLIError(f"--requests-per-second must be > 0, got {args.requests_per_second}.")


def _connect(args: argparse.Namespace) -> Any:
    """The remote model's scorer (its server, model and key checked now)."""
    try:
        client = api.OpenAIClient(
            args.api_base,
            model=args.api_model,
            api_key_env=args.api_key_env,
            requests_per_second=args.requests_per_second,
        )
    except (ConnectionError, PermissionError, ValueError, ImportError) as err:
        raise CLIError(str(err)) from err
    endpoint = args.api_endpoint
    if endpoint == "auto":
        endpoint = "chat" if args.task in ("sentiment", "truefalse") else "completions"
    return api.ChatScorer(client) if endpoint == "chat" else api.CompletionsScorer(client)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Do the work of ``explain``; returns what ``result.json`` holds."""
    warned: list[str] = []
    if args.executor == "serial" and (args.workers is not None or args.address is not None):
        raise CLIError("--workers and --address need --executor threads, processes, dask or ray.")
    if args.address is not None and args.executor not in ("dask", "ray"):
        raise CLIError("--address is for --executor dask or ray.")
    _check_remote(args)
    _check_options(args)
    _check_paths(args)
    text = _read_text(args)
    if not text.strip():
        raise CLIError("The text is empty: there is nothing to explain.")
    if args.question and args.task == "sentiment":
        _warn("--question is not used by --task sentiment (use --task answer).", warned)
    if args.answer is not None and args.task in ("sentiment", "truefalse"):
        _warn(f"--answer is not used by --task {args.task} (use --task answer).", warned)

    def checked(units: list[str]) -> list[str]:
        _check_request(args, units)
        message = budget_warning(args, units, text)
        if message:
            _warn(message, warned)
        return units

    tokenizer_needed = args.unit == "token"
    units = None if tokenizer_needed else checked(split_units(text, args.unit))
    # After the request's checks (a refused one leaves no --out folder behind).
    if args.out is not None:
        _check_out(args.out)
    if args.html is not None:
        _check_html(args.html)
    tic = time.perf_counter()
    tokenizer = scorer = None
    if args.api_base is not None:
        scorer = _connect(args)
        model_name = f"{scorer.client.model} at {scorer.client.api_base}"
    else:
        try:
            from .models import load_model

            model, tokenizer = load_model(args.model)
        except (OSError, ImportError, ValueError) as err:
            raise CLIError(str(err)) from err
        model_name = str(args.model)
    load_seconds = time.perf_counter() - tic
    if units is None:
        units = checked(split_units(text, "token", tokenizer))
    n = len(units)
    task = TextTask(
        units, task=args.task, unit=args.unit, question=args.question, answer=args.answer
    )
    if scorer is not None:
        values: Any = task.value_function(scorer)
        fingerprint = task.fingerprint(scorer.identity, chat=scorer.chat)
        retries = api.DEFAULT_RETRIES if args.retries is None else args.retries
        calls = {"batch_size": 1, "retries": retries, "retry_backoff": api.DEFAULT_BACKOFF}
    else:
        from .attr import LLMAttribution, ProxySPEXAttribution

        llm = LLMAttribution(ProxySPEXAttribution(model), tokenizer)
        scorer = llm.scorer
        task.value_function(llm)  # fixes the answer's tokens (generating it if none was given)
        values = TaskValueFunction(task, model=model_name, batch_size=_batch_size(args))
        values.adopt(llm)  # this process has the model: serial and thread calls use it
        fingerprint = values.fingerprint
        calls = {"batch_size": _batch_size(args)}
    progress = _Progress(disable=args.quiet)
    store = _open_cache(args, fingerprint, n)
    try:
        with _executor(args) as executor:
            counted = ValueFunction(
                values,
                n,
                executor=executor,
                store=store,
                on_progress=progress.update,
                **calls,
            )
            tic = time.perf_counter()
            with progress.stage("model calls", _expected_calls(args, n)):
                inter = _explain(args, counted, units)
            explain_seconds = time.perf_counter() - tic
            paid = counted.n_queries
            # The full text first, then the held-out masks: one pass over the model.
            test, held_out = held_out_masks(counted, args.n_test, args.seed + 1)
            with progress.stage("held-out masks (R²)", len(test) + 1):
                scored = counted(np.vstack([np.ones((1, n), dtype=bool), test]))
    finally:
        if store is not None:
            store.close()
    r2 = r2_score(scored[1:], inter.predict(test))
    message = fit_warning(r2, inter.metadata, args, n_test=len(test))
    if message:
        _warn(message, warned)
    return {
        "text": text,
        "units": units,
        "unit": args.unit,
        "task": args.task,
        "value": task.describe_value(tokenizer),
        "model": model_name,
        # Counted in this process: with processes, Dask or Ray the calls happen elsewhere.
        "usage": scorer.usage.as_dict() if args.executor in ("serial", "threads") else None,
        "method": args.method,
        "budget": args.budget,
        "model_calls": inter.n_queries,
        "new_model_calls": paid,
        "executor": args.executor,
        "seconds": {"load": load_seconds, "explain": explain_seconds},
        "faithfulness_r2": r2,
        "n_test": len(test),
        "held_out": held_out,
        "full_value": float(scored[0]),
        "warnings": warned,
        "interactions": inter.to_dict(),
        "_result": inter,
        "_held_out": (test, scored[1:]),
    }


# Up to this many units, the held-out masks are drawn from every mask the fit did not query.
_ENUMERATED_UNITS = 16


def held_out_masks(values: ValueFunction, n_test: int, seed: int) -> tuple[np.ndarray, bool]:
    """Up to ``n_test`` distinct random masks that ``values`` has not evaluated yet.

    Drawn without the fit's own masks: with few units most random masks had been
    queried already (7 words, 100 calls: 78 of 100), and the "held-out" R² was
    largely measured on the fit's data. Fewer come back when fewer are left.
    Returns ``(masks, True)``, or ``(masks of the fit, False)`` when the fit
    queried every mask (an exact fit: nothing is left to hold out).
    """
    n, rng = values.n_features, np.random.default_rng(seed)
    if n <= _ENUMERATED_UNITS:
        every = all_masks(n)
        unseen = every[~values.known(every)]
        pool, held_out = (unseen, True) if len(unseen) else (every, False)
        return pool[rng.permutation(len(pool))[:n_test]], held_out
    chosen: dict[bytes, np.ndarray] = {}
    for _ in range(100):  # almost every random mask of more than 16 units is unseen
        draw = rng.random((n_test, n)) < 0.5
        for mask in draw[~values.known(draw)]:
            chosen.setdefault(mask.tobytes(), mask)
        if len(chosen) >= n_test:
            break
    return np.array(list(chosen.values())[:n_test]).reshape(-1, n), True


def report(summary: dict[str, Any], top: int) -> str:
    """The printed table."""
    inter: Interactions = summary["_result"]
    sure = inter.n_resamples > 0
    cached = summary["model_calls"] - summary.get("new_model_calls", summary["model_calls"])
    reused = f" ({cached} from the cache)" if cached > 0 else ""
    lines = [
        f"Model {summary['model']}, task {summary['task']}: value = {summary['value']}.",
        f"{len(summary['units'])} {summary['unit']}s, {summary['method']}, "
        f"{summary['model_calls']} model calls{reused}, {summary['seconds']['explain']:.1f} s.",
        f"Value of the full text: {summary['full_value']:+.3f}; "
        f"of the empty one (surrogate): {inter.baseline_value:+.3f}.",
        "",
        f"Strongest interactions (Möbius: what the {summary['unit']}s add together"
        + ("; ± half a 95 % interval, * where it excludes 0):" if sure else "):"),
    ]
    term_bounds = inter.intervals() if sure else {}
    for rank, (subset, value) in enumerate(inter.top(top), start=1):
        words = " + ".join(repr(w) for w in inter.names_of(subset))
        spread = _plus_minus(term_bounds.get(subset))
        lines.append(f"  {rank:>2}. {value:+8.3f}{spread}  {words}")
    lines += ["", "First-order attributions (Shapley values):"]
    shapley = inter.first_order()
    scale = float(np.abs(shapley).max()) or 1.0
    bounds = inter.intervals(index="shapley") if sure else {}
    for i, (unit, value) in enumerate(zip(summary["units"], shapley, strict=True)):
        bar = ("+" if value >= 0 else "-") * round(20 * abs(value) / scale)
        spread = _plus_minus(bounds.get((i,), (value, value))) if sure else ""
        lines.append(f"  {value:+8.3f}{spread}  {unit[:60]!r:<32} {bar}")
    lines += [
        "",
        f"Faithfulness: R² = {summary['faithfulness_r2']:.3f} on {summary['n_test']} "
        + (
            "held-out random masks"
            if summary.get("held_out", True)
            else "masks, all of them the fit's (it queried every mask)"
        )
        + " (1 = the interactions reproduce the model exactly).",
    ]
    usage = summary.get("usage") or {}
    if usage.get("requests"):
        lines.append(
            f"API usage: {usage['requests']} requests ({usage['failed_requests']} failed and "
            f"retried), {usage['prompt_tokens']} prompt tokens, "
            f"{usage['completion_tokens']} completion tokens."
        )
    return "\n".join(lines)


def _plus_minus(bounds: tuple[float, float] | None) -> str:
    """`` ± half-width`` of an interval, starred when it excludes 0 ('' without one)."""
    if bounds is None:
        return ""
    low, high = bounds
    star = "*" if low > 0.0 or high < 0.0 else " "
    return f" ± {(high - low) / 2:<8.2g}{star}"


def write_html(summary: dict[str, Any], path: Path) -> None:
    """The interactive report of the result (``--html``), held-out masks included."""
    from .html_report import report as html_report

    html_report(
        summary["_result"],
        summary["units"],
        title=f"{summary['method']} on {summary['model']}: {summary['value']}",
        held_out=summary["_held_out"],
        path=path,
    )


def write_outputs(summary: dict[str, Any], out: Path) -> list[Path]:
    """``result.json`` and PNG plots in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plots

    out.mkdir(parents=True, exist_ok=True)
    inter: Interactions = summary["_result"]
    data = {k: v for k, v in summary.items() if not k.startswith("_")}
    result, *pictures = OUT_FILES
    written = [out / result]
    written[0].write_text(json.dumps(data, indent=1, ensure_ascii=False))
    draws = (
        lambda: plots.bar(inter),
        lambda: plots.network(inter),
        lambda: plots.heatmap(inter),
        lambda: plots.text(inter, summary["units"]),
    )
    for name, draw in zip(pictures, draws, strict=True):
        fig, _ = draw()
        fig.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``proxyspex-captum`` command; returns the exit status.

    0: done; 1: the outputs could not be written; 2: a request that cannot
    work (one line on stderr, no traceback), or bad options (argparse's
    usage line); 130: interrupted (Ctrl-C).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help, or an option argparse refused (already printed)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        summary = run(args)
    except CLIError as err:
        print(f"proxyspex-captum: error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:
        # torch reports running out of (GPU) memory as a RuntimeError subclass.
        if isinstance(err, RuntimeError) and "out of memory" not in str(err).lower():
            raise
        print(
            "proxyspex-captum: error: out of memory: lower --batch-size (masked prompts per "
            "forward pass), --budget or --n-test.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("proxyspex-captum: interrupted.", file=sys.stderr)
        return 130
    print(report(summary, args.top))
    # Write every output asked for, even when one fails: the model calls are paid for.
    status = 0
    if args.out is not None:
        try:
            for path in write_outputs(summary, args.out):
                print(f"wrote {path}")
        except OSError as err:
            print(
                f"proxyspex-captum: error: cannot write the outputs to {args.out}: "
                f"{err.strerror or err}.",
                file=sys.stderr,
            )
            status = 1
    if args.html is not None:
        try:
            write_html(summary, args.html)
            print(f"wrote {args.html}")
        except OSError as err:
            print(
                f"proxyspex-captum: error: cannot write {args.html}: {err.strerror or err}.",
                file=sys.stderr,
            )
            status = 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
