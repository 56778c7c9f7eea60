"""A self-contained, interactive HTML report of one result.

One file, no network: the explained units (words, sentences, features) shaded
by their Shapley value, where hovering or clicking a unit highlights its
interaction partners; a table of the strongest interactions with their
confidence intervals, selection frequencies and indices, sorted by clicking a
column's header; and, when held-out calls are given, the faithfulness figure
(the surrogate against the model). Every text taken from the result or the
caller is escaped, so an explained text holding ``<script>`` is shown as
text, never run.

Examples:
    >>> import proxyspex_captum as psx
    >>> inter = psx.Interactions.from_mobius(
    ...     {(0,): -1.0, (1,): -0.5, (0, 1): 2.5}, n_features=2, feature_names=["not", "bad"]
    ... )
    >>> page = psx.report(inter, title="not bad")
    >>> page.startswith("<!DOCTYPE html>"), "not × bad" in page
    (True, True)
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .core.checks import check_int, check_real
from .core.interactions import Interactions, require_interactions
from .core.uncertainty import coverage_text
from .core.value_function import validate_masks
from .metrics import r2_score

__all__ = ["report"]

# Units shaded by Shapley value in SHAP's colours (red raises the output, blue lowers it).
_RED, _BLUE = (255, 0, 81), (0, 139, 251)


def report(
    interactions: Interactions,
    units: Sequence[str] | None = None,
    *,
    title: str = "Interactions",
    k: int = 30,
    level: float = 0.95,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> str:
    """The HTML report of ``interactions``, as text (and written to ``path`` if given).

    Args:
        interactions: The result to report.
        units: The explained units in order (words, sentences, ...); default
            the result's feature names.
        title: The page's heading.
        k: Rows of the table: the ``k`` strongest non-empty Möbius terms.
        level: Coverage of the intervals (when the result carries resamples).
        held_out: ``(masks, values)`` the model answered and the surrogate
            did not see, for the faithfulness figure (R² and a scatter of
            surrogate against model); none are queried here.
        path: Also write the page to this file (UTF-8).

    Returns:
        The page: one self-contained HTML document.
    """
    interactions = require_interactions(interactions, "report")
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}.")
    if isinstance(units, str):
        raise TypeError("units must be a sequence of units, not one string: split it first.")
    n = interactions.n_features
    units = list(units) if units is not None else list(interactions.names_of(range(n)))
    if len(units) != n:
        raise ValueError(f"Got {len(units)} units for {n} features.")
    k = check_int("k", k, 1)
    level = check_real("level", level, 0.0, 1.0, low_open=True, high_open=True)
    terms = _table_rows(interactions, units, k, level)
    sure = interactions.n_resamples > 0  # an exact result has nothing to resample
    partners: dict[int, list[list[Any]]] = {i: [] for i in range(n)}
    for row in terms:
        for i in row["ids"]:
            others = [j for j in row["ids"] if j != i]
            if others:
                partners[i].append([others, row["mobius"], row["established"]])
    shapley = interactions.first_order()
    page = _PAGE.format(
        title=html.escape(title),
        summary=_summary(interactions, level),
        units=_units(units, shapley),
        header=_header(sure, level),
        rows="\n".join(_row(r, sure) for r in terms),
        figure=_figure(interactions, held_out),
        partners=_script_json(partners),
        style=_STYLE,
        script=_SCRIPT,
    )
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
    return page


# The SII column reads interactions up to this order (the expansion grows as 2**order).
_SII_ORDER = 4


def _table_rows(
    inter: Interactions, units: list[str], k: int, level: float
) -> list[dict[str, Any]]:
    """The ``k`` strongest non-empty Möbius terms with their intervals and indices."""
    top = inter.top(k)
    sure = inter.n_resamples > 0
    bounds = inter.intervals(level) if sure else {}
    frequency = inter.selection_frequency() if sure else {}
    largest = max((len(s) for s, _ in top), default=1)
    sii = inter.to_index("sii", max(2, min(largest, _SII_ORDER)))
    rows = []
    for rank, (subset, value) in enumerate(top, start=1):
        low, high = bounds.get(subset, (value, value))
        rows.append(
            {
                "rank": rank,
                "ids": list(subset),
                "names": " × ".join(str(units[i]) for i in subset),
                "order": len(subset),
                "mobius": value,
                "low": low,
                "high": high,
                "established": not sure or not (low <= 0.0 <= high),
                "frequency": frequency.get(subset),
                "sii": sii.get(subset, 0.0) if len(subset) <= _SII_ORDER else None,
            }
        )
    return rows


def _number(value: float, digits: int = 4) -> str:
    return f"{value:+.{digits}g}"


def _row(row: dict[str, Any], sure: bool) -> str:
    cells = [
        (row["rank"], str(row["rank"])),
        (row["names"], html.escape(row["names"])),
        (row["order"], str(row["order"])),
        (row["mobius"], _number(row["mobius"])),
    ]
    if sure:
        cells += [
            (row["low"], _number(row["low"])),
            (row["high"], _number(row["high"])),
            (int(row["established"]), "yes" if row["established"] else "no"),
            (row["frequency"], f"{row['frequency']:.0%}"),
        ]
    sii = row["sii"]
    # No SII above its order: sorted as the table's script sorts a non-number, last.
    cells.append(("", "n/a") if sii is None else (sii, _number(sii)))
    tds = "".join(
        f'<td data-sort="{html.escape(str(key), quote=True)}">{shown}</td>' for key, shown in cells
    )
    unsure = "" if row["established"] else ' class="unsure"'
    ids = html.escape(json.dumps(row["ids"]), quote=True)
    return f'<tr{unsure} data-ids="{ids}">{tds}</tr>'


def _header(sure: bool, level: float) -> str:
    columns = [("#", "number"), ("features", "text"), ("order", "number"), ("Möbius", "number")]
    if sure:
        columns += [
            (f"{coverage_text(level)} low", "number"),
            (f"{coverage_text(level)} high", "number"),
            ("excludes 0", "number"),
            ("found in resamples", "number"),
        ]
    columns.append(("SII", "number"))
    return "".join(
        f'<th data-type="{kind}" tabindex="0" title="click to sort">{html.escape(name)}</th>'
        for name, kind in columns
    )


def _shade(value: float, peak: float) -> str:
    strength = 0.08 + 0.8 * abs(value) / peak if peak > 0 else 0.0
    r, g, b = _RED if value >= 0 else _BLUE
    return f"rgba({r}, {g}, {b}, {strength:.3f})"


def _units(units: list[str], shapley: np.ndarray) -> str:
    peak = float(np.abs(shapley).max(initial=0.0))
    return " ".join(
        f'<span class="unit" tabindex="0" data-i="{i}" style="background:{_shade(v, peak)}" '
        f'title="Shapley value {v:+.4g}">{html.escape(str(unit))}</span>'
        for i, (unit, v) in enumerate(zip(units, shapley, strict=True))
    )


def _summary(inter: Interactions, level: float) -> str:
    meta = inter.metadata
    parts = [
        f"{inter.n_features} features",
        f"{inter.n_queries} model calls",
        f"method {meta.get('method', 'unknown')}",
        f"{len(inter)} Fourier terms up to order {inter.max_order}",
    ]
    if isinstance(meta.get("cv_r2"), int | float):
        parts.append(f"cross-validated R² {meta['cv_r2']:.3f}")
    if inter.n_resamples:
        parts.append(f"{coverage_text(level)} intervals from {inter.n_resamples} bootstrap refits")
    elif meta.get("exact"):
        parts.append("exact (every mask queried)")
    return html.escape(", ".join(parts) + ".")


def _figure(inter: Interactions, held_out: tuple[np.ndarray, np.ndarray] | None) -> str:
    """The surrogate against the model on held-out calls, as an inline PNG (or a note)."""
    if held_out is None:
        return (
            "<p>No held-out calls were given: the faithfulness figure needs "
            "<code>held_out=(masks, values)</code>.</p>"
        )
    masks, values = held_out
    masks = np.asarray(masks)
    values = np.asarray(values, dtype=float).ravel()
    if masks.ndim != 2 or masks.shape != (len(values), inter.n_features) or not len(values):
        raise ValueError(
            f"held_out needs masks of shape (k, {inter.n_features}) and k values, k >= 1; got "
            f"{masks.shape} and {values.shape}."
        )
    masks = validate_masks(masks, inter.n_features)  # 0/1 only: 0.5 is no mask
    if not np.isfinite(values).all():
        raise ValueError("held_out values must be finite (got NaN or inf).")
    # A Figure of its own, without pyplot: the caller's backend and figures stay as they are.
    from matplotlib.figure import Figure

    predicted = inter.predict(masks)
    r2 = r2_score(values, predicted)
    fig = Figure(figsize=(4.2, 4.0))
    ax = fig.subplots()
    ax.scatter(values, predicted, s=10, alpha=0.6, color="#444444")
    low, high = (
        float(min(values.min(), predicted.min())),
        float(max(values.max(), predicted.max())),
    )
    ax.plot([low, high], [low, high], color="#ff0051", linewidth=1)
    ax.set_xlabel("model")
    ax.set_ylabel("surrogate (the interactions)")
    ax.set_title(f"Held-out masks: R² = {r2:.3f} (n = {len(values)})")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<img id="faithfulness" alt="surrogate against model, R² {r2:.3f}" '
        f'src="data:image/png;base64,{data}">'
    )


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can close or open anything."""
    return (
        json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
#units { line-height: 2.4; font-size: 1.1em; }
.unit { padding: 0.15em 0.3em; border-radius: 0.3em; cursor: pointer; outline: none; }
.unit.active { box-shadow: 0 0 0 2px #222; }
.unit.partner-pos { box-shadow: 0 0 0 3px #ff0051; }
.unit.partner-neg { box-shadow: 0 0 0 3px #008bfb; }
.unit.partner-unsure { outline: 2px dashed #888; outline-offset: 1px; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[aria-sort="ascending"]::after { content: " ▲"; }
th[aria-sort="descending"]::after { content: " ▼"; }
td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.unsure { color: #888; font-style: italic; }
tr.highlight { background: #fff3c4; }
#partners { min-height: 1.5em; color: #444; }
"""

_SCRIPT = """
const partners = JSON.parse(document.getElementById("partner-data").textContent);
const units = Array.from(document.querySelectorAll(".unit"));
const info = document.getElementById("partners");
let pinned = null;
function clear() {
  units.forEach(u => u.classList.remove("active", "partner-pos", "partner-neg", "partner-unsure"));
  document.querySelectorAll("tr.highlight").forEach(r => r.classList.remove("highlight"));
  info.textContent = "";
}
function show(i) {
  clear();
  units[i].classList.add("active");
  const list = partners[i] || [];
  const outlined = new Set();
  // In the table's order (strongest first): a partner in several terms takes its
  // strongest term's outline, not whichever class the style sheet lists last.
  list.forEach(([others, value, established]) => {
    const kind = !established ? "partner-unsure" : value >= 0 ? "partner-pos" : "partner-neg";
    others.forEach(j => {
      if (!outlined.has(j)) { outlined.add(j); units[j].classList.add(kind); }
    });
  });
  document.querySelectorAll("#terms tbody tr").forEach(r => {
    if (JSON.parse(r.dataset.ids).includes(i)) r.classList.add("highlight");
  });
  info.textContent = list.length
    ? `"${units[i].textContent}" interacts with ${list.length} term(s) of the table.`
    : `"${units[i].textContent}" has no interaction in the table.`;
}
units.forEach((u, i) => {
  u.addEventListener("mouseenter", () => { if (pinned === null) show(i); });
  u.addEventListener("mouseleave", () => { if (pinned === null) clear(); });
  u.addEventListener("click", () => {
    pinned = pinned === i ? null : i;
    if (pinned === null) clear(); else show(i);
  });
  u.addEventListener("keydown", e => { if (e.key === "Enter") u.click(); });
});
document.querySelectorAll("#terms th").forEach((th, column) => {
  const sort = () => {
    const body = document.querySelector("#terms tbody");
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    document.querySelectorAll("#terms th").forEach(h => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const key = r => r.children[column].dataset.sort;
    const numeric = th.dataset.type === "number";
    const rows = Array.from(body.rows);
    const number = v => (v === "" ? NaN : Number(v));  // "": no value (n/a)
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (numeric && (isNaN(number(x)) || isNaN(number(y)))) {
        return isNaN(number(x)) - isNaN(number(y));  // n/a last, either way
      }
      const order = numeric ? number(x) - number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(r => body.appendChild(r));
  };
  th.addEventListener("click", sort);
  th.addEventListener("keydown", e => { if (e.key === "Enter") sort(); });
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<p id="summary">{summary}</p>
<h2>The units</h2>
<p>Shaded by Shapley value (red raises the output, blue lowers it). Hover over a unit, or
click it to pin, to outline its interaction partners: red where they raise the output
together, blue where they lower it, grey where the interval contains 0.</p>
<div id="units">{units}</div>
<p id="partners" aria-live="polite"></p>
<h2>Strongest interactions</h2>
<p>Möbius coefficient: what the features add together. Click a header to sort.</p>
<table id="terms"><thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Faithfulness</h2>
{figure}
<script type="application/json" id="partner-data">{partners}</script>
<script>{script}</script>
</body>
</html>
"""
