"""The `proxyspex-captum explain` command: refusals before the model loads, and a real run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from proxyspex_captum.cli import main


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "   "], "empty"),
        (["explain", " ".join(["word"] * 12), "--budget", "20"], "at least 100"),
        (["explain", "one two three", "--method", "lime", "--budget", "3"], "above 3"),
        (["explain", "one two", "--task", "answer"], "--question"),
        (["explain", "--file", "/nonexistent/review.txt"], "Cannot read"),
        (["explain", "one two", "--top", "0"], "--top must be at least 1"),
    ],
)
def test_bad_requests_are_refused_before_loading_the_model(argv, message, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr("proxyspex_captum.models.load_model", no_model)
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


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
        (["--max-order", "0"], "max_order must be at least 1"),
        (["--method", "lime", "--max-order", "2"], "applies to proxyspex and spex"),
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
