"""The `proxyspex-captum explain` command: refusals before the model loads, and a real run."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from argparse import Namespace

import pytest
from tiny_lm import tiny_lm

import proxyspex_captum as psx
from proxyspex_captum import baselines
from proxyspex_captum.cli import budget_warning, fit_warning, main

WORDS_30 = " ".join(f"w{i}" for i in range(30))


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def no_model(monkeypatch):
    """Fails the test if the command loads the model."""

    def load(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr("proxyspex_captum.models.load_model", load)


def _use_model(monkeypatch, model_and_tokenizer):
    monkeypatch.setattr("proxyspex_captum.models.load_model", lambda *a, **k: model_and_tokenizer)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "   "], "empty"),
        (["explain", " ".join(["word"] * 12), "--budget", "20"], "at least 100"),
        (["explain", "one two three", "--method", "lime", "--budget", "3"], "above 3"),
        (["explain", "one two", "--task", "answer"], "--question"),
        (["explain", "--file", "/nonexistent/review.txt"], "Cannot read"),
        (["explain", "one two", "--top", "0"], "argument --top: must be at least 1"),
    ],
)
def test_bad_requests_are_refused_before_loading_the_model(argv, message, capsys, no_model):
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seed", "-1", "must be at least 0, got -1"),
        ("--seed", str(2**32), "must be at most 4294967295"),
        ("--budget", "0", "must be at least 1"),
        ("--budget", "-5", "must be at least 1"),
        ("--budget", "2.5", "expected a whole number, got '2.5'"),
        ("--max-order", "0", "must be at least 1"),
        ("--top", "-3", "must be at least 1"),
        ("--n-test", "1", "must be at least 2"),
        ("--batch-size", "0", "must be at least 1"),
        ("--batch-size", "many", "expected a whole number"),
    ],
)
def test_numeric_options_are_checked_by_the_parser(option, value, message, capsys, no_model):
    code, _, err = _run(["explain", "not bad at all", f"{option}={value}"], capsys)
    assert code == 2
    assert f"argument {option}: {message}" in err and "Traceback" not in err


def test_closed_or_empty_stdin_is_a_one_line_error(capsys, monkeypatch, no_model):
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when descriptor 0 is closed
    code, _, err = _run(["explain"], capsys)
    assert code == 2 and "Standard input is closed" in err
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        code, _, err = _run(["explain", "-"], capsys)
    assert code == 2 and "Standard input was empty" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 not bad")))
    code, _, err = _run(["explain"], capsys)
    assert code == 2 and "not UTF-8" in err


def test_closed_stdin_in_a_real_process():
    # `0<&-`: the shell starts the command with descriptor 0 closed.
    command = f'exec "{sys.executable}" -m proxyspex_captum explain 0<&-'
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "proxyspex-captum: error: No text: pass it as an argument, with --file, on stdin, "
        "or --example. (Standard input is closed.)"
    ]


def test_an_unwritable_out_folder_is_refused_before_the_model_loads(tmp_path, capsys, no_model):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = _run(["explain", "not bad", "--out", str(blocker / "results")], capsys)
    assert code == 2 and "Cannot write to --out" in err and "Traceback" not in err
    code, _, err = _run(["explain", "not bad", "--out", str(blocker)], capsys)
    assert code == 2 and "exists and is not a folder" in err


def test_an_unwritable_html_path_is_refused_before_the_model_loads(tmp_path, capsys, no_model):
    code, _, err = _run(["explain", "not bad", "--html", str(tmp_path)], capsys)
    assert code == 2 and "is a folder" in err
    missing = tmp_path / "missing" / "report.html"
    code, _, err = _run(["explain", "not bad", "--html", str(missing)], capsys)
    assert code == 2 and "not a writable folder" in err and "Traceback" not in err


def test_intervals_are_printed_and_the_html_report_is_written(tmp_path, capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    page = tmp_path / "report.html"
    argv = ["explain", WORDS_30, "--budget", "200", "--n-test", "20", "--quiet"]
    code, out, _ = _run([*argv, "--html", str(page)], capsys)
    assert code == 0 and f"wrote {page}" in out
    assert "± half a 95 % interval, * where it excludes 0" in out
    ranked = [line for line in out.splitlines() if re.match(r"\s+\d+\. ", line)]
    assert ranked and all(re.search(r" ± [0-9.e+-]+ *[* ] ", line) for line in ranked)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'id="faithfulness"' in html
    assert html.count('class="unit"') == 30


def test_a_writable_out_folder_is_created_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("proxyspex_captum.models.load_model", lambda *a, **k: 1 / 0)
    out = tmp_path / "new" / "results"
    with pytest.raises(ZeroDivisionError):  # the model "loads" after the folder was checked
        main(["explain", "not bad", "--out", str(out)])
    assert out.is_dir() and list(out.iterdir()) == []  # the probe file is gone


def test_a_budget_below_the_number_of_units_is_announced_first(capsys, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OSError("Could not load the model (test)")

    monkeypatch.setattr("proxyspex_captum.models.load_model", unavailable)
    text = ". ".join(" ".join(f"w{i}" for i in range(j, j + 10)) for j in range(0, 150, 10))
    code, _, err = _run(["explain", text, "--budget", "100"], capsys)
    assert code == 2  # the model failed to load: the warning came before it
    warning, error = err.strip().splitlines()
    assert warning.startswith("proxyspex-captum: warning: --budget 100 is below the number of ")
    assert "words (150)" in warning and "--budget 600" in warning
    assert "--unit sentence (15 sentences)" in warning
    assert error.startswith("proxyspex-captum: error: Could not load the model")


def test_budget_warning_only_below_the_number_of_units():
    args = Namespace(budget=40, unit="sentence")
    assert budget_warning(args, ["a."] * 40, "a. " * 40) is None
    message = budget_warning(args, ["a."] * 41, "a. " * 41)
    assert "sentences (41)" in message and "--budget 164" in message
    assert "--unit sentence" not in message  # no coarser unit to offer


def test_fit_warning_reads_the_held_out_and_the_cross_validated_r2():
    args = Namespace(n_test=100, unit="token", budget=300)
    assert fit_warning(0.9, {"cv_r2": 0.8}, args) is None
    held_out = fit_warning(0.31, {}, args)
    assert "R² = 0.31 on 100 held-out masks" in held_out
    assert "--budget (e.g. 1200)" in held_out and "--unit word or sentence" in held_out
    cross_validated = fit_warning(0.7, {"cv_r2": 0.42}, args)
    assert "cross-validated R² = 0.42" in cross_validated


def test_options_the_task_does_not_use_are_named(capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    argv = ["explain", WORDS_30, "--budget", "100", "--n-test", "20", "--quiet"]
    code, _, err = _run([*argv, "--question", "Why?", "--answer", "Ada"], capsys)
    assert code == 0
    assert "--question is not used by --task sentiment" in err
    assert "--answer is not used by --task sentiment (use --task answer)" in err


def test_a_noisy_model_gets_a_warning(tmp_path, capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm(chaotic=True))
    argv = ["explain", WORDS_30, "--budget", "100", "--n-test", "40", "--quiet"]
    with warnings.catch_warnings():
        # The estimator's own PoorFitWarning is folded into the command's one line.
        warnings.simplefilter("error", psx.PoorFitWarning)
        code, _, err = _run([*argv, "--out", str(tmp_path)], capsys)
    assert code == 0
    assert err.count("reproduce the model poorly") == 1
    assert "warning: the interactions reproduce the model poorly" in err
    assert "Try a larger --budget (e.g. 400) or coarser units (--unit sentence)." in err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["faithfulness_r2"] < 0.5
    assert any("reproduce the model poorly" in w for w in result["warnings"])


def test_a_smooth_model_gets_no_warning(capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    argv = ["explain", "one two three four five", "--n-test", "20", "--quiet"]
    code, out, err = _run(argv, capsys)
    assert code == 0 and "warning" not in err
    assert "R² = 1.000" in out  # 2**5 masks within the budget: exact
    assert "all of them the fit's" in out  # nothing was left to hold out, and it says so


def test_held_out_masks_are_none_of_the_fits(capsys, monkeypatch, tmp_path):
    """7 words, 100 calls: 78 of 100 "held-out" masks had been the fit's own."""
    _use_model(monkeypatch, tiny_lm())
    argv = ["explain", "one two three four five six seven", "--budget", "100", "--quiet"]
    code, _, _ = _run([*argv, "--n-test", "50", "--out", str(tmp_path)], capsys)
    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["held_out"] and result["n_test"] == 28  # the 2**7 - 100 masks left
    assert result["new_model_calls"] == 100  # the fit's; the 28 and the full text came after
    code, _, _ = _run([*argv, "--n-test", "20", "--out", str(tmp_path)], capsys)
    assert json.loads((tmp_path / "result.json").read_text())["n_test"] == 20


@pytest.mark.parametrize("method", baselines.LINEAR_METHODS)
def test_every_baseline_runs_from_the_command_line(method, capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    argv = ["explain", "one two three four", "--method", method, "--budget", "30"]
    code, out, _ = _run([*argv, "--n-test", "10", "--quiet"], capsys)
    assert code == 0, method
    assert f"4 words, {method}" in out


def test_a_missing_model_is_reported_clearly(capsys):
    code, _, err = _run(["explain", "not bad", "--model", "/nonexistent/model-folder"], capsys)
    assert code == 2
    assert "Could not load the model" in err and "offline" in err


def test_module_entry_point_shows_help():
    out = subprocess.run(
        [sys.executable, "-m", "proxyspex_captum", "explain", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--task", "--unit", "--method", "--budget", "--max-order", "--seed", "--out"):
        assert option in out
    for method in baselines.METHODS:  # one list of methods for compare and the command
        assert method in out


@pytest.mark.llm
def test_explain_a_review_end_to_end(tmp_path, capsys):
    argv = ["explain", "The food was not good.", "--budget", "100", "--n-test", "30"]
    code, out, _ = _run([*argv, "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0
    assert "Strongest interactions" in out and "Faithfulness: R² =" in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["units"] == ["The", "food", "was", "not", "good."]
    assert result["model_calls"] == 32  # 2**5 <= budget: every mask, exact
    assert result["faithfulness_r2"] > 0.99
    for name in ("interactions.png", "network.png", "heatmap.png", "text.png"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.llm
@pytest.mark.parametrize("method", ["spex", "lime", "kernelshap"])
def test_other_methods_and_tasks(method, capsys):
    text = "Ada wrote the first program. Charles built the engine. It was 1843."
    argv = ["explain", text, "--unit", "sentence", "--task", "answer", "--method", method]
    argv += ["--question", "Who wrote the first program?", "--answer", " Ada"]
    code, out, _ = _run([*argv, "--budget", "40", "--n-test", "10", "--quiet"], capsys)
    assert code == 0
    assert "log p(answer ' Ada')" in out


@pytest.mark.llm
def test_generated_answers_and_token_units(capsys, tmp_path):
    code, out, _ = _run(
        ["explain", "Name a red fruit.", "--task", "generate", "--n-test", "5", "--quiet"], capsys
    )
    assert code == 0
    assert "log p(answer" in out and "4 words" in out
    stdin_file = tmp_path / "text.txt"
    stdin_file.write_text("Not bad at all.")
    code, out, _ = _run(
        ["explain", "--file", str(stdin_file), "--unit", "token", "--n-test", "5", "--quiet"],
        capsys,
    )
    assert code == 0
    assert "tokens, proxyspex" in out and "' bad'" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-order", "0"], "argument --max-order: must be at least 1"),
        (["--method", "lime", "--max-order", "2"], "applies to proxyspex, spex and auto"),
    ],
)
def test_option_errors_are_reported_without_traceback(extra, message, capsys, monkeypatch):
    monkeypatch.setattr("proxyspex_captum.models.load_model", lambda *a, **k: 1 / 0)
    code, _, err = _run(["explain", "not bad at all", *extra], capsys)
    assert code == 2 and message in err


def test_a_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 not bad".encode("latin-1"))
    code, _, err = _run(["explain", "--file", str(path)], capsys)
    assert code == 2 and "not UTF-8" in err


def test_model_calls_fill_the_batch_size(capsys, monkeypatch):
    model, tokenizer = tiny_lm()
    sizes: list[int] = []
    model.register_forward_hook(
        lambda module, args, kwargs, out: sizes.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    _use_model(monkeypatch, (model, tokenizer))
    argv = ["explain", "one two three four five six seven", "--budget", "100"]
    code, _, _ = _run([*argv, "--batch-size", "10", "--n-test", "20", "--quiet"], capsys)
    assert code == 0
    # One pass over the prefix all prompts share (its key/value cache is reused), then
    # 100 masks (2**7 > 100: sampled) in passes of 10, then the full text + 20 held out,
    # less those already paid for (of 128 masks, many held-out ones were sampled too).
    assert sizes[:11] == [1] + [10] * 10
    assert 1 <= sum(sizes[11:]) <= 20 and all(size <= 10 for size in sizes[11:])


# -- executors and the cache -----------------------------------------------------


def test_threads_and_a_cache_resume_without_a_call(tmp_path, capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    cache = tmp_path / "calls.sqlite"
    argv = ["explain", WORDS_30, "--budget", "150", "--n-test", "10", "--quiet"]
    code, out, _ = _run([*argv, "--out", str(tmp_path / "serial")], capsys)
    assert code == 0
    threaded = [*argv, "--executor", "threads", "--workers", "2", "--cache", str(cache)]
    code, out, _ = _run([*threaded, "--out", str(tmp_path / "first")], capsys)
    assert code == 0 and "from the cache" not in out
    code, out, _ = _run([*threaded, "--out", str(tmp_path / "again")], capsys)
    assert code == 0 and "150 model calls (150 from the cache)" in out
    results = {
        name: json.loads((tmp_path / name / "result.json").read_text())
        for name in ("serial", "first", "again")
    }
    assert results["first"]["new_model_calls"] == 150
    assert results["again"]["new_model_calls"] == 0
    inters = {k: psx.Interactions.from_dict(v["interactions"]) for k, v in results.items()}
    assert inters["serial"] == inters["first"] == inters["again"]
    # Another text is another value function: the file refuses it, in one line.
    code, _, err = _run(["explain", "other words here", "--cache", str(cache)], capsys)
    assert code == 2 and "another value function" in err and len(err.splitlines()) == 1


def test_cluster_options_need_a_cluster(capsys, no_model):
    code, _, err = _run(["explain", "not bad", "--workers", "2"], capsys)
    assert code == 2 and "--executor" in err
    code, _, err = _run(["explain", "not bad", "--executor", "cloud"], capsys)
    assert code == 2 and "invalid choice" in err


@pytest.mark.llm
def test_smollm2_on_a_process_pool_equals_serial(tmp_path, capsys):
    argv = ["explain", "The food was not good at all, sadly.", "--budget", "120"]
    argv += ["--n-test", "5", "--quiet", "--max-order", "2"]
    code, _, _ = _run([*argv, "--out", str(tmp_path / "serial")], capsys)
    assert code == 0
    pool = ["--executor", "processes", "--workers", "2", "--out", str(tmp_path / "pool")]
    code, _, _ = _run([*argv, *pool], capsys)
    assert code == 0
    serial, pooled = (
        json.loads((tmp_path / name / "result.json").read_text()) for name in ("serial", "pool")
    )
    assert psx.Interactions.from_dict(pooled["interactions"]) == psx.Interactions.from_dict(
        serial["interactions"]
    )
    assert pooled["full_value"] == serial["full_value"]


# -- a model behind an API: refusals before anything is asked of it ---------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--api-model", "gpt-9"], "--api-model need --api-base"),
        (["--api-base", "http://127.0.0.1:1/v1", "--executor", "processes"], "--concurrency"),
        (["--api-base", "http://127.0.0.1:1/v1", "--unit", "token"], "tokenizer"),
        (["--api-base", "http://127.0.0.1:1/v1", "--batch-size", "4"], "set --concurrency"),
        (["--api-base", "http://127.0.0.1:1/v1", "--model", "gpt2"], "--api-model"),
        (
            [
                "--api-base",
                "http://127.0.0.1:1/v1",
                "--task",
                "answer",
                "--question",
                "Q?",
                "--api-endpoint",
                "chat",
            ],
            "chat API",
        ),
        (["--api-base", "http://127.0.0.1:1/v1", "--task", "generate"], "needs --answer"),
        (["--api-base", "http://127.0.0.1:1/v1"], "Could not reach the API"),
        (["--task", "truefalse"], "needs --question"),
    ],
)
def test_remote_options_are_refused_before_any_request(capsys, extra, message):
    code, _, err = _run(["explain", "not bad at all", "--quiet", *extra], capsys)
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    "extra",
    [
        ["--task", "answer"],  # no --question
        ["--method", "lime", "--max-order", "2"],
    ],
)
def test_token_units_refuse_bad_options_before_loading_the_model(extra, capsys, no_model):
    code, _, err = _run(["explain", "not bad at all", "--unit", "token", *extra], capsys)
    assert code == 2 and "must not be loaded" not in err
    code, _, err = _run(["explain", "   \n ", "--unit", "token"], capsys)
    assert code == 2 and "empty" in err


def test_a_refused_request_creates_no_output_folder(tmp_path, capsys, no_model):
    out = tmp_path / "new" / "folder"
    code, _, err = _run(["explain", "one two three", "--budget", "5", "--out", str(out)], capsys)
    assert "needs a budget of at least 8" in err
    assert code == 2 and not out.exists() and not out.parent.exists()


def test_outputs_never_overwrite_the_cache_or_the_text(tmp_path, capsys, no_model):
    text = tmp_path / "text.txt"
    text.write_text("not bad at all")
    cache = tmp_path / "calls.sqlite"
    for argv, clash in [
        (["--cache", str(cache), "--html", str(cache)], "over --cache"),
        (["--cache", str(tmp_path / "result.json"), "--out", str(tmp_path)], "over --cache"),
        (["--html", str(text)], "over --file"),
    ]:
        code, _, err = _run(["explain", "--file", str(text), *argv], capsys)
        assert code == 2 and clash in err, argv
    assert text.read_text() == "not bad at all" and not cache.exists()


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path, capsys, monkeypatch):
    _use_model(monkeypatch, tiny_lm())
    text = tmp_path / "text.txt"
    text.write_bytes("\ufeffnot bad at all".encode())
    argv = ["explain", "--file", str(text), "--n-test", "5", "--quiet", "--out", str(tmp_path)]
    assert _run(argv, capsys)[0] == 0
    assert json.loads((tmp_path / "result.json").read_text())["units"][0] == "not"
