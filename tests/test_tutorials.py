"""What a reader of the docs sees: the tutorials' pictures, no noise, no machine paths.

The notebooks' outputs come from a full-budget run and are rendered as they
are by mkdocs-jupyter (``execute: false``), so these tests read the ``.ipynb``
JSON only; nothing is executed (``make test`` executes the tutorials
separately, on a small budget, with nbmake).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
#: Output formats that hold text a reader sees (images are base64: not searched).
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")
#: A path of the machine that executed the notebook (POSIX homes, temp and work
#: folders, macOS and Windows user folders).
MACHINE_PATH = re.compile(
    r"(?<![\w.])(/(work|root|home|tmp|Users|private|var/folders)/|[A-Za-z]:\\Users\\)"
)


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _outputs(notebook: dict) -> list[dict]:
    return [o for cell in notebook["cells"] for o in cell.get("outputs", [])]


def _text(output: dict) -> str:
    """Everything a reader can read in one output."""
    parts = []
    if output["output_type"] == "stream":
        parts.append(output["text"])
    if output["output_type"] == "error":
        parts.append(output.get("traceback", []))
    data = output.get("data", {})
    parts += [data[kind] for kind in TEXT_TYPES if kind in data]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def test_the_tutorials_are_there():
    assert [p.name for p in TUTORIALS] == [
        "01_captum_llm_sentiment.ipynb",
        "02_shap_text_workflow.ipynb",
        "03_long_context_qa.ipynb",
        "04_data_attribution.ipynb",
        "05_closed_model_api.ipynb",
        "06_attention_heads.ipynb",
    ]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_embeds_its_figures(path):
    outputs = _outputs(_notebook(path))
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} holds no image output: was it executed with %matplotlib inline?"
    assert all(len(o["data"]["image/png"]) > 1000 for o in images)  # a real picture
    # Every plotting call (psx.plots.*, Captum's plot_seq_attr) shows a figure.
    plotting_cells = [
        cell
        for cell in _notebook(path)["cells"]
        if cell["cell_type"] == "code"
        and re.search(r"psx\.plots\.\w+\(|plot_seq_attr\(", "".join(cell["source"]))
    ]
    for cell in plotting_cells:
        assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), cell["source"]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_outputs_carry_no_noise(path):
    notebook = _notebook(path)
    for output in _outputs(notebook):
        assert output["output_type"] != "error", _text(output)[:500]
        assert output.get("name") != "stderr", _text(output)[:500]
        text = _text(output)
        found = MACHINE_PATH.search(text)
        assert found is None, f"machine path in {path.name}: {text[found.start() - 80 :][:200]}"
        assert not re.search(r" object at 0x[0-9a-f]+>", text), f"a default repr: {text[:200]}"
        # Widgets (e.g. a tqdm.auto bar) have no saved state: the page would show nothing.
        assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {})


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_was_run_top_to_bottom_in_the_project_kernel(path):
    notebook = _notebook(path)
    counts = [c["execution_count"] for c in notebook["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), counts
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_shap_text_plot_is_html_with_valid_colours():
    """shap.plots.text is an HTML output whose colours a browser can read (shap issue #4146)."""
    path = next(p for p in TUTORIALS if p.name.startswith("02_"))
    html = [
        "".join(o["data"]["text/html"])
        for o in _outputs(_notebook(path))
        if o["output_type"] == "display_data" and "text/html" in o.get("data", {})
    ]
    assert len(html) >= 2  # SHAP's Partition explainer, then ProxySPEX
    for page in html:
        assert "np.float64(" not in page  # rgb(np.float64(255.0), ...) is drawn black
        assert re.search(r"rgba?\(255\.0, 13\.0, 87\.0", page), "SHAP's red is missing"


@pytest.mark.parametrize(
    ("page", "prefix"), [("README.md", "docs/images/"), ("docs/index.md", "images/")]
)
def test_readme_and_home_page_show_the_demo_pictures(page, prefix):
    """Both show the demo's text-with-arcs and network pictures, committed and small."""
    shown = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", (ROOT / page).read_text(encoding="utf-8"))
    assert [prefix + "demo_text.png", prefix + "demo_network.png"] == shown[:2]
    for link in shown:
        path = (ROOT / page).parent / link
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG"), link
        assert len(data) < 200_000, f"{link} is {len(data)} bytes"


@pytest.mark.llm
def test_loading_the_model_prints_no_progress_bar(capfd):
    """transformers' "Loading weights" bar was a stderr output in every tutorial."""
    from transformers.utils import logging as hf_logging

    import proxyspex_captum as psx

    before = hf_logging.is_progress_bar_enabled()
    try:
        hf_logging.enable_progress_bar()
        psx.models.load_model()
        assert hf_logging.is_progress_bar_enabled()  # the caller's setting is back
        assert "Loading weights" not in capfd.readouterr().err
        hf_logging.disable_progress_bar()
        psx.models.load_model(show_progress=True)  # asked for: shown, then off again
        assert not hf_logging.is_progress_bar_enabled()
        assert "Loading weights" in capfd.readouterr().err
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()
