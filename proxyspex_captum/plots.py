"""Matplotlib plots of interactions.

Every function takes an :class:`~proxyspex_captum.Interactions` (or, for
:func:`comparison`, the table of :func:`proxyspex_captum.metrics.compare`),
draws on ``ax`` (a new figure when ``None``; :func:`training_examples` makes
its own grid of axes) and returns ``(figure, axes)``;
``show=True`` also calls ``plt.show()``. Colours follow SHAP's: red raises
the output, blue lowers it. Interactions are read in the Möbius basis (what a
set of features adds *together*) unless an index is asked for.

Examples:
    >>> import proxyspex_captum as psx
    >>> inter = psx.Interactions.from_mobius(
    ...     {(0,): -1.0, (1,): -0.5, (0, 1): 2.5, (2,): 0.3}, n_features=3,
    ...     feature_names=["not", "bad", "film"],
    ... )
    >>> fig, ax = psx.plots.bar(inter)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['not × bad', 'not', 'bad', 'film']
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm, to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch, Polygon
from matplotlib.path import Path
from matplotlib.transforms import ScaledTranslation

from .core.checks import check_int
from .core.interactions import INDICES, Interactions, require_interactions
from .core.uncertainty import coverage_text

__all__ = [
    "NEGATIVE",
    "POSITIVE",
    "bar",
    "comparison",
    "heads",
    "heatmap",
    "image",
    "network",
    "text",
    "training_examples",
]

#: SHAP's colours for a positive and a negative contribution.
POSITIVE = "#ff0051"
NEGATIVE = "#008bfb"
_CMAP = "coolwarm"  # blue (negative) .. red (positive), white at 0


def _sign_colour(value: float) -> str:
    return POSITIVE if value >= 0 else NEGATIVE


def _colour_limit(values: np.ndarray) -> float:
    """The half-range of a colour scale centred on 0 (1 when every value is (nearly) 0).

    Subnormal values (below float's smallest normal number) count as 0: a colour
    bar over a range that small divides into infinities.
    """
    limit = float(np.nanmax(np.abs(values), initial=0.0))
    return limit if limit >= np.finfo(float).tiny else 1.0


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _finish(fig: Any, ax: Any, show: bool) -> tuple[Any, Any]:
    if show:
        plt.show()
    return fig, ax


def _terms(inter: Interactions, index: str | None, order: int | None) -> dict:
    """Non-empty terms in the Möbius basis, or in ``index`` at ``order``."""
    terms = inter.mobius if index is None else inter.to_index(index, order)
    return {s: v for s, v in terms.items() if s}


def _top(terms: dict, k: int) -> list[tuple[tuple[int, ...], float]]:
    return sorted(terms.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:k]


def _plain(text: str) -> str:
    """Matplotlib reads text between two ``$`` as maths; show feature names literally."""
    return str(text).replace("$", r"\$")


def _label(inter: Interactions, subset: Sequence[int]) -> str:
    return _plain(" × ".join(inter.names_of(subset)))


def _not_established(inter: Interactions, level: float = 0.95) -> set[tuple[int, ...]]:
    """Möbius terms whose ``level`` interval contains 0 (none when the result has no intervals)."""
    if not inter.has_uncertainty:
        return set()
    bounds = inter.intervals(level)
    return {s for s, (low, high) in bounds.items() if low <= 0.0 <= high}


# Drawing of an interaction whose interval contains 0: dashed and faded.
_UNSURE_STYLE = {"linestyle": (0, (3, 2)), "alpha": 0.35}


# ------------------------------------------------------------------------ bar
def bar(
    interactions: Interactions,
    k: int = 10,
    *,
    index: str | None = None,
    order: int | None = None,
    intervals: bool | None = None,
    level: float = 0.95,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Horizontal bars of the ``k`` strongest interactions, labelled with feature names.

    Args:
        interactions: The result to plot.
        k: How many interactions.
        index: Plot an index (e.g. ``"fsii"``) instead of the Möbius coefficients.
        order: The index's order (e.g. 2).
        intervals: Draw each value's ``level`` confidence interval as an
            error bar (``gid="interval"``) and hatch the bars whose interval
            contains 0; ``None`` (default): when the result carries them
            (see :meth:`~proxyspex_captum.Interactions.intervals`).
        level: Coverage of the intervals.
    """
    interactions = require_interactions(interactions, "plots.bar")
    k = check_int("k", k, 1)
    if index == "mobius":  # the default basis, by its name
        index = None
    terms = _terms(interactions, index, order)
    top = _top(terms, k)
    own_figure = ax is None
    fig, ax = _axes(ax, (7, 0.45 * max(len(top), 2) + 1))
    labels = [_label(interactions, s) for s, _ in top]
    values = [v for _, v in top]
    positions = np.arange(len(top))[::-1]
    bars = ax.barh(positions, values, color=[_sign_colour(v) for v in values])
    if intervals is None:
        intervals = interactions.has_uncertainty
    # Where each value label starts: past the bar's end, or past its error bar's.
    anchors = list(values)
    if intervals and top:
        if index is None:
            bounds = interactions.intervals(level)
        else:
            bounds = interactions.intervals(level, index=index, order=order)
        low = np.array([bounds[s][0] for s, _ in top])
        high = np.array([bounds[s][1] for s, _ in top])
        ax.errorbar(
            values,
            positions,
            xerr=np.vstack([np.array(values) - low, high - np.array(values)]),
            fmt="none",
            ecolor="#333333",
            capsize=3,
            linewidth=1,
            gid="interval",
        )
        for patch, lo, hi in zip(bars, low, high, strict=True):
            if lo <= 0.0 <= hi:  # not established by the calls made
                patch.set_hatch("///")
                patch.set_alpha(0.45)
        # Beyond the whisker on the bar's side: written over it, "-1.2" read as "1.2".
        anchors = [hi if v >= 0 else lo for v, lo, hi in zip(values, low, high, strict=True)]
    ax.set_yticks(positions, labels)
    ax.axvline(0, color="#888888", linewidth=0.8)
    # Room beyond the longest bars for their value labels, which would otherwise run
    # over the tick labels (negative side) or out of the axes (positive side).
    ax.margins(x=0.15)
    for y, v, anchor in zip(positions, values, anchors, strict=True):
        ax.annotate(
            f"{v:+.3g}",
            (anchor, y),
            xytext=(4 if v >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if v >= 0 else "right",
            va="center",
            fontsize=8,
        )
    if index is None:
        ax.set_xlabel("Möbius coefficients (what the features add together)")
    else:
        ax.set_xlabel(f"{index.upper()} values" + ("" if order is None else f" (order {order})"))
    ax.set_title(f"Top {len(top)} interactions")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if own_figure:  # room for the tick labels and the x label inside the figure
        fig.tight_layout()
    return _finish(fig, ax, show)


# -------------------------------------------------------------------- heatmap
def heatmap(
    interactions: Interactions,
    *,
    index: str = "sii",
    features: Sequence[int] | None = None,
    max_features: int = 20,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Order-2 heatmap: pairs of ``index`` off the diagonal, first-order Shapley values on it.

    Args:
        index: An order-2 index (``"sii"``, ``"stii"``, ``"fsii"``, ``"k-sii"``, ...).
        features: Which features to show (distinct ids); default: those in
            the strongest pairs, then those with the largest |Shapley value|,
            ``max_features`` in all (every feature when ``n`` is that small).
    """
    interactions = require_interactions(interactions, "plots.heatmap")
    max_features = check_int("max_features", max_features, 1)
    n = interactions.n_features
    if index in ("shapley", "banzhaf"):
        pair_indices = ", ".join(name for name in INDICES if name not in ("shapley", "banzhaf"))
        raise ValueError(
            f"heatmap shows pairs, and {index!r} is a first-order index (the diagonal "
            f"shows the Shapley values): pass one of {pair_indices}."
        )
    pairs = {s: v for s, v in interactions.to_index(index, 2).items() if len(s) == 2}
    shapley = interactions.first_order()
    if features is None:
        if n <= max_features:
            features = list(range(n))
        else:
            chosen: list[int] = []
            for s, _ in _top(pairs, len(pairs)):
                chosen += [i for i in s if i not in chosen]
                if len(chosen) >= max_features:
                    break
            # The remaining places: the strongest main effects.
            by_main = np.argsort(-np.abs(shapley), kind="stable").tolist()
            chosen += [i for i in by_main if i not in chosen]
            features = sorted(chosen[:max_features])
    features = _feature_ids(features, n)
    position = {f: i for i, f in enumerate(features)}
    matrix = np.zeros((len(features), len(features)))
    for (i, j), v in pairs.items():
        if i in position and j in position:
            matrix[position[i], position[j]] = matrix[position[j], position[i]] = v
    matrix[np.diag_indices(len(features))] = shapley[features]
    fig, ax = _axes(ax, (1.0 + 0.45 * len(features), 0.6 + 0.45 * len(features)))
    limit = _colour_limit(matrix)
    image_ = ax.imshow(matrix, cmap=_CMAP, norm=TwoSlopeNorm(0.0, -limit, limit))
    names = [_plain(name) for name in interactions.names_of(features)]
    ax.set_xticks(range(len(features)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(features)), names)
    fig.colorbar(image_, ax=ax, label=f"{index.upper()} (diagonal: Shapley value)")
    ax.set_title(f"Pairwise {index.upper()}")
    return _finish(fig, ax, show)


def _feature_ids(features: Any, n: int) -> list[int]:
    """``features`` as a list of distinct feature ids in ``[0, n)``, or a ValueError."""
    ids = [check_int(f"features[{i}]", f, 0, n - 1) for i, f in enumerate(features)]
    if not ids:
        raise ValueError("features is empty: name at least one feature id.")
    if len(set(ids)) != len(ids):
        raise ValueError(f"features holds an id twice: {ids}.")
    return ids


# -------------------------------------------------------------------- network
def network(
    interactions: Interactions,
    k: int = 15,
    *,
    level: float = 0.95,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Features as nodes on a circle, the ``k`` strongest interactions as edges.

    A node's size is its |Shapley value| and its colour the sign. A pair is
    a line (width: |Möbius coefficient|, colour: sign; ``gid="pair"``); a
    set of three or more is a hyperedge: a translucent polygon over its
    members with a dot at its centre (``gid="hyperedge"``). Main effects are
    in the nodes, not drawn as edges: the nodes are the features of the
    drawn interactions (the ``k`` strongest main effects when there is no
    interaction), so see :func:`bar` for a feature that acts alone. An interaction whose ``level``
    confidence interval contains 0 (when the result carries intervals) is
    drawn dashed and faded: the calls made do not establish it.
    """
    interactions = require_interactions(interactions, "plots.network")
    k = check_int("k", k, 1)
    terms = {s: v for s, v in interactions.mobius.items() if len(s) >= 2}
    top = _top(terms, k)
    unsure = _not_established(interactions, level=level)
    shapley = interactions.first_order()
    nodes = sorted({i for s, _ in top for i in s})
    if not nodes:  # no interaction: show the strongest main effects
        nodes = sorted(np.argsort(-np.abs(shapley))[: min(k, interactions.n_features)].tolist())
    angles = np.linspace(0, 2 * np.pi, len(nodes), endpoint=False) + np.pi / 2
    xy = {node: (np.cos(a), np.sin(a)) for node, a in zip(nodes, angles, strict=True)}
    fig, ax = _axes(ax, (6.5, 6.5))
    strongest = max((abs(v) for _, v in top), default=1.0) or 1.0
    for subset, value in top:
        colour = _sign_colour(value)
        width = 1.0 + 5.0 * abs(value) / strongest
        points = np.array([xy[i] for i in subset])
        style = _UNSURE_STYLE if subset in unsure else {"linestyle": "-", "alpha": 0.8}
        if len(subset) == 2:
            ax.add_line(
                Line2D(*points.T, color=colour, linewidth=width, gid="pair", zorder=1, **style)
            )
        else:
            centre = points.mean(axis=0)
            ordered = points[np.argsort(np.arctan2(*(points - centre).T[::-1]))]
            ax.add_patch(
                Polygon(
                    ordered,
                    closed=True,
                    facecolor=to_rgba(colour, 0.15),
                    edgecolor=to_rgba(colour, style["alpha"]),
                    linestyle=style["linestyle"],
                    linewidth=width / 2,
                    gid="hyperedge",
                    zorder=0,
                )
            )
            ax.scatter(*centre, s=20 + 40 * abs(value) / strongest, color=colour, zorder=2)
    peak = _colour_limit(shapley[nodes])
    for node in nodes:
        value = shapley[node]
        ax.scatter(
            *xy[node],
            s=150 + 900 * abs(value) / peak,
            color=_sign_colour(value),
            edgecolor="white",
            zorder=3,
            gid="node",
        )
        x, y = xy[node]
        ax.annotate(
            _plain(interactions.names_of([node])[0]),
            (x, y),
            xytext=(1.18 * x, 1.18 * y),
            ha="center",
            va="center",
            fontsize=9,
        )
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Interaction network (top {len(top)})")
    return _finish(fig, ax, show)


# ----------------------------------------------------------------------- text
def text(
    interactions: Interactions,
    words: Sequence[str] | None = None,
    *,
    k: int = 5,
    words_per_line: int = 15,
    legend: bool = True,
    level: float = 0.95,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """The text with each word coloured by its Shapley value and arcs for the strongest pairs.

    Args:
        words: The words (features) in order; default the feature names.
        k: How many pairs to draw as arcs (strongest |Möbius| first; an arc
            is red when the pair raises the output together, blue when it
            lowers it; ``gid="arc"``).
        words_per_line: Wrap after this many words.
        legend: Explain the colours and the arcs in a legend under the text
            (``ax.get_legend()``).
        level: An arc whose pair's ``level`` confidence interval contains 0
            (when the result carries intervals) is dashed and faded.

    Examples:
        >>> import proxyspex_captum as psx
        >>> inter = psx.Interactions.from_mobius(
        ...     {(0,): -1.0, (1,): -0.5, (0, 1): 2.5}, n_features=2, feature_names=["not", "bad"]
        ... )
        >>> fig, ax = psx.plots.text(inter)
        >>> for label in ax.get_legend().get_texts():
        ...     print(label.get_text())
        word raises the output (Shapley value > 0)
        word lowers the output (Shapley value < 0)
        pair raises it together (Möbius > 0)
        pair lowers it together (Möbius < 0)
    """
    interactions = require_interactions(interactions, "plots.text")
    k = check_int("k", k, 0)
    words_per_line = check_int("words_per_line", words_per_line, 1)
    n = interactions.n_features
    if isinstance(words, str):
        raise TypeError("words must be a sequence of words, not one string: split it first.")
    words = list(words) if words is not None else list(interactions.names_of(range(n)))
    if len(words) != n:
        raise ValueError(f"Got {len(words)} words for {n} features.")
    shapley = interactions.first_order()
    peak = _colour_limit(shapley)
    lines = max(1, -(-n // words_per_line))
    band = 1.0 if legend else 0.0  # room under the text for the legend (data units ~ inches)
    height = 1.6 * lines + 0.8 + band
    fig, ax = _axes(ax, (min(1.0 * min(n, words_per_line) + 1, 16), height))
    positions = {}
    for i, word in enumerate(words):
        row, col = divmod(i, words_per_line)
        x, y = col + 0.5, -1.6 * row
        positions[i] = (x, y)
        strength = abs(shapley[i]) / peak
        ax.text(
            x,
            y,
            _plain(word),
            ha="center",
            va="center",
            fontsize=11,
            gid="word",
            bbox={
                "boxstyle": "round,pad=0.25",
                "edgecolor": "none",
                "facecolor": to_rgba(_sign_colour(shapley[i]), 0.1 + 0.8 * strength),
            },
        )
    pairs = _top({s: v for s, v in interactions.mobius.items() if len(s) == 2}, k)
    strongest = max((abs(v) for _, v in pairs), default=1.0) or 1.0
    unsure = _not_established(interactions, level=level)
    for (i, j), value in pairs:
        (x1, y1), (x2, y2) = positions[i], positions[j]
        start, end = (x1, y1 + 0.3), (x2, y2 + 0.3)
        # A quadratic curve whose height grows with the distance, capped to stay in the axes.
        lift = min(0.35 + 0.12 * abs(x2 - x1), 1.1)
        control = ((x1 + x2) / 2, max(start[1], end[1]) + lift)
        curve = Path([start, control, end], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
        ax.add_patch(
            PathPatch(
                curve,
                facecolor="none",
                edgecolor=_sign_colour(value),
                linewidth=1 + 3 * abs(value) / strongest,
                gid="arc",
                **(_UNSURE_STYLE if (i, j) in unsure else {"alpha": 0.8}),
            )
        )
    ax.set_xlim(0, min(n, words_per_line))
    ax.set_ylim(-1.6 * (lines - 1) - 0.8 - band, 1.6)
    ax.axis("off")
    if legend:
        _text_legend(ax, arcs=bool(pairs), unsure=any(p in unsure for p, _ in pairs), level=level)
    return _finish(fig, ax, show)


def _text_legend(ax: Any, arcs: bool, unsure: bool = False, level: float = 0.95) -> None:
    """Say what the shading and the arcs of :func:`text` mean, in the band under the text."""
    handles = [
        Patch(
            facecolor=to_rgba(POSITIVE, 0.6), label="word raises the output (Shapley value > 0)"
        ),
        Patch(
            facecolor=to_rgba(NEGATIVE, 0.6), label="word lowers the output (Shapley value < 0)"
        ),
    ]
    if arcs:
        handles += [
            Line2D(
                [], [], color=POSITIVE, linewidth=2, label="pair raises it together (Möbius > 0)"
            ),
            Line2D(
                [], [], color=NEGATIVE, linewidth=2, label="pair lowers it together (Möbius < 0)"
            ),
        ]
    if unsure:
        handles.append(
            Line2D(
                [],
                [],
                color="#555555",
                linewidth=2,
                **_UNSURE_STYLE,
                label=f"dashed: its {coverage_text(level)} interval contains 0",
            )
        )
    ax.legend(
        handles=handles,
        loc="lower center",
        ncol=2,
        frameon=False,
        fontsize=8,
        title="deeper shade, wider arc: larger effect",
        title_fontsize=8,
    )


# ---------------------------------------------------------------------- heads
_HEAD_NAME = re.compile(r"^L(\d+)\.H(\d+)$")


def heads(
    interactions: Interactions,
    *,
    index: str = "shapley",
    k: int = 10,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Attention heads as a layer × head map, with their strongest pairs drawn between them.

    Each cell is a head's first-order value in ``index``; the ``k`` largest
    |Möbius| pairs are drawn as arcs between their heads, red for synergy
    (the heads matter more together: a circuit), blue for redundancy (either
    does the other's job), thicker for larger. Heads are read from feature
    names ``L{layer}.H{head}`` (``psx.components``' names).

    Examples:
        >>> import proxyspex_captum as psx
        >>> inter = psx.Interactions.from_mobius(
        ...     {(0,): 1.0, (1, 3): 2.0}, n_features=4,
        ...     feature_names=["L0.H0", "L0.H1", "L1.H0", "L1.H1"])
        >>> fig, ax = psx.plots.heads(inter)
        >>> ax.get_xlabel(), len(ax.patches)
        ('head', 1)
    """
    interactions = require_interactions(interactions, "plots.heads")
    k = check_int("k", k, 0)
    cells = []
    for name in interactions.feature_names or [
        f"feature {i}" for i in range(interactions.n_features)
    ]:
        match = _HEAD_NAME.match(str(name))
        if match is None:
            raise ValueError(
                f"Feature {name!r} is not a head name L<layer>.H<head>: plots.heads draws the "
                "interactions of a head game (psx.components.head_game)."
            )
        cells.append((int(match[1]), int(match[2])))
    layers = max(c[0] for c in cells) + 1
    width = max(c[1] for c in cells) + 1
    grid = np.full((layers, width), np.nan)
    for (layer, head), value in zip(cells, interactions.first_order(index), strict=True):
        grid[layer, head] = value
    own_figure = ax is None
    fig, ax = _axes(ax, (2.6 + 0.45 * width, 1.8 + 0.3 * layers))
    limit = _colour_limit(grid)
    image_ = ax.imshow(grid, cmap=_CMAP, norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto")
    pairs = _top({s: v for s, v in interactions.mobius.items() if len(s) == 2}, k)
    strongest = max((abs(v) for _, v in pairs), default=1.0) or 1.0
    for (i, j), value in pairs:
        (y0, x0), (y1, x1) = cells[i], cells[j]
        # Bent off the chord, to its side: an arc along a row or a column would
        # otherwise run straight through the heads between its two ends.
        chord = np.array([x1 - x0, y1 - y0], dtype=float)
        length = float(np.hypot(*chord)) or 1.0
        normal = np.array([-chord[1], chord[0]]) / length
        control = np.array([x0 + x1, y0 + y1]) / 2 + normal * min(0.3 + 0.15 * length, 1.2)
        ax.add_patch(
            PathPatch(
                Path(
                    [(x0, y0), tuple(control), (x1, y1)],
                    [Path.MOVETO, Path.CURVE3, Path.CURVE3],
                ),
                facecolor="none",
                edgecolor=_sign_colour(value),
                linewidth=0.8 + 3.0 * abs(value) / strongest,
                alpha=0.8,
            )
        )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(width))
    ax.set_yticks(range(layers))
    fig.colorbar(image_, ax=ax, label=f"{index} value")
    ax.legend(
        handles=[
            Line2D([], [], color=POSITIVE, label="synergy (pair)"),
            Line2D([], [], color=NEGATIVE, label="redundant (pair)"),
        ],
        loc="upper center",
        # Under the x label: half an inch below the axes, whatever the figure's height.
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=ax.transAxes + ScaledTranslation(0.0, -0.5, fig.dpi_scale_trans),
        ncol=2,
        fontsize="small",
        frameon=False,
    )
    ax.set_title(f"Attention heads\n{index} values, {len(pairs)} strongest pairs")
    if own_figure:  # the legend under the axes stays inside the figure
        fig.tight_layout()
    return _finish(fig, ax, show)


# ---------------------------------------------------------------------- image
def image(
    interactions: Interactions,
    picture: np.ndarray,
    segments: np.ndarray,
    *,
    k: int = 5,
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Which image patches interact: Shapley heat per patch, lines between interacting patches.

    Args:
        picture: The image, ``(H, W)`` or ``(H, W, C)``.
        segments: ``(H, W)`` integer patch ids, patch ``i`` being feature ``i``.
        k: How many interactions of order >= 2 to draw (a pair is a line
            between the patches' centres, ``gid="pair"``; a larger set a
            polygon through them, ``gid="hyperedge"``).
    """
    interactions = require_interactions(interactions, "plots.image")
    k = check_int("k", k, 0)
    segments = np.asarray(segments)
    picture = np.asarray(picture, dtype=float)
    if segments.ndim != 2 or not np.issubdtype(segments.dtype, np.integer):
        raise ValueError(
            f"segments must be a 2-D (H, W) array of integer patch ids, got shape "
            f"{segments.shape} of {segments.dtype}."
        )
    if picture.ndim not in (2, 3) or picture.shape[:2] != segments.shape:
        raise ValueError(
            f"picture must be (H, W) or (H, W, C) with (H, W) = segments' {segments.shape}, "
            f"got {picture.shape} (a CHW tensor: move its channels last)."
        )
    ids = np.unique(segments)
    if ids.min() < 0 or ids.max() >= interactions.n_features:
        raise ValueError("segments must hold feature ids 0 .. n-1.")
    fig, ax = _axes(ax, (6, 6))
    # In grey, so that the red/blue heat on top reads as the attribution, not the image.
    shown = picture if picture.ndim == 2 else picture[..., :3].mean(axis=-1)
    span = float(shown.max() - shown.min()) or 1.0
    ax.imshow((shown - shown.min()) / span, cmap="gray")
    shapley = interactions.first_order()
    heat = shapley[segments]
    limit = _colour_limit(shapley)
    ax.imshow(heat, cmap=_CMAP, norm=TwoSlopeNorm(0.0, -limit, limit), alpha=0.45)
    centres = {}
    for i in ids:
        rows, cols = np.nonzero(segments == i)
        centres[int(i)] = (cols.mean(), rows.mean())
    top = _top({s: v for s, v in interactions.mobius.items() if len(s) >= 2}, k)
    strongest = max((abs(v) for _, v in top), default=1.0) or 1.0
    missing = [s for s, _ in top if any(i not in centres for i in s)]
    if missing:
        warnings.warn(
            f"{len(missing)} of the top interactions involve features with no patch in "
            f"segments (e.g. {missing[0]}); they are not drawn.",
            stacklevel=2,
        )
    for subset, value in top:
        if subset in missing:
            continue
        points = np.array([centres[i] for i in subset])
        colour = _sign_colour(value)
        width = 1.5 + 4 * abs(value) / strongest
        if len(subset) == 2:
            ax.add_line(Line2D(*points.T, color=colour, linewidth=width, gid="pair"))
        else:
            ax.add_patch(
                Polygon(
                    points,
                    closed=True,
                    fill=False,
                    edgecolor=colour,
                    linewidth=width,
                    gid="hyperedge",
                )
            )
        ax.scatter(*points.T, color=colour, s=25, zorder=3)
    ax.axis("off")
    ax.set_title(f"Patch interactions (top {len(top)})")
    return _finish(fig, ax, show)


# ----------------------------------------------------------------- training data
def training_examples(
    interactions: Interactions,
    images: Sequence[np.ndarray],
    *,
    query: np.ndarray | None = None,
    k: int = 6,
    show: bool = False,
) -> tuple[Any, Any]:
    """The strongest pairs of training examples, shown as the examples themselves.

    One row per pair (the ``k`` largest |Möbius coefficients| of order 2):
    the two examples side by side, joined by a bar in the pair's colour,
    with the coefficient and a word for it: *synergy* (positive: they help
    together more than apart) or *redundant* (negative: either one does the
    other's work, as near-duplicates do). Each example's title is its name
    and Shapley value. With ``query`` the test point is shown on the left.

    Args:
        interactions: Interactions over training examples (e.g. from
            :func:`proxyspex_captum.data.retraining_game`).
        images: One image per feature (per training example, or per group
            with groups), e.g. 8×8 digits; a 1-D row (a tabular example) is
            drawn as a strip of cells.
        query: The explained test point's image (or row).
        k: Pairs shown.

    Returns:
        ``(figure, axes)``, axes a ``(rows, columns)`` array.
    """
    interactions = require_interactions(interactions, "plots.training_examples")
    k = check_int("k", k, 1)
    if len(images) != interactions.n_features:
        raise ValueError(
            f"images must hold one image per feature ({interactions.n_features}), got "
            f"{len(images)}."
        )
    pairs = _top({s: v for s, v in interactions.mobius.items() if len(s) == 2}, k)
    if not pairs:
        raise ValueError("These interactions hold no pair of training examples to show.")
    shapley = interactions.first_order()
    offset = 0 if query is None else 1
    fig, axes = plt.subplots(
        len(pairs), 3 + offset, figsize=(2.0 * (3 + offset), 2.0 * len(pairs)), squeeze=False
    )
    for row, ((i, j), value) in zip(axes, pairs, strict=True):
        for ax in row:
            ax.axis("off")
        if query is not None:
            row[0].imshow(np.atleast_2d(np.asarray(query, dtype=float)), cmap="gray_r")
            row[0].set_title("test point", fontsize=9)
        for ax, feature in ((row[offset], i), (row[offset + 2], j)):
            ax.imshow(np.atleast_2d(np.asarray(images[feature], dtype=float)), cmap="gray_r")
            name = _plain(interactions.names_of((feature,))[0])
            ax.set_title(f"{name}\nShapley {shapley[feature]:+.3g}", fontsize=9)
        link = row[offset + 1]
        link.set_xlim(0, 1)
        link.set_ylim(0, 1)
        link.add_line(
            Line2D([0, 1], [0.5, 0.5], color=_sign_colour(value), linewidth=6, gid="pair")
        )
        kind = "synergy" if value > 0 else "redundant"
        link.text(0.5, 0.68, f"{kind}\n{value:+.3g}", ha="center", va="bottom", fontsize=10)
    fig.suptitle("Strongest pairs of training examples (Möbius coefficients)")
    fig.tight_layout()
    return _finish(fig, axes, show)


# ----------------------------------------------------------------- comparison
def comparison(
    table: Any,
    *,
    metrics: Sequence[str] = ("r2", "exact_r2"),
    ax: Any = None,
    show: bool = False,
) -> tuple[Any, Any]:
    """Grouped bars of :func:`proxyspex_captum.metrics.compare`'s table (R² per method)."""
    present = [m for m in metrics if m in table.columns]
    if not present:
        raise ValueError(f"The table has none of the columns {list(metrics)}.")
    fig, ax = _axes(ax, (1.2 * len(table) + 2, 4))
    width = 0.8 / len(present)
    x = np.arange(len(table))
    for j, metric in enumerate(present):
        values = table[metric].to_numpy(dtype=float)  # a method that did not run is NaN: no bar
        positions = x + (j - (len(present) - 1) / 2) * width
        ax.bar(positions, values, width, label=metric.replace("_", " "))
        for position in positions[np.isnan(values)]:
            ax.text(position, 0, "n/a", ha="center", va="bottom", fontsize=8, rotation=90)
    ax.set_xticks(x, list(table["method"]), rotation=20)
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_ylabel("R²")
    budget = table["budget"].iloc[0] if "budget" in table.columns else "?"
    ax.set_title(f"Faithfulness at {budget} model calls")
    ax.legend()
    return _finish(fig, ax, show)
