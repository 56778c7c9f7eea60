"""The HTML report: content and escaping here, behaviour in a real headless Chromium.

The browser tests drive Debian's Chromium (``$PSX_CHROMIUM``, default
``/usr/bin/chromium``) through Playwright; ``make test`` installs it and sets
the variable, so there they run. Elsewhere, without Chromium, they skip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import proxyspex_captum as psx
from proxyspex_captum.games import PlantedGame

WORDS = ["the", "film", "was", "not", "bad", "<script>window.pwned = 1</script>", "at", "all"]
EVIL = WORDS[5]


@pytest.fixture(scope="module")
def explained():
    """A noisy planted game over 8 words: (not, bad) a strong synergy, (the, film) a weak one."""
    mobius = {(): 0.2, (3,): -1.0, (4,): -1.5, (3, 4): 3.0, (1,): 0.4, (0, 1): 0.05, (6, 7): -0.8}
    game = PlantedGame(mobius, n_features=8, noise_std=0.3, random_state=0)
    inter = psx.ProxySPEX(max_order=2, random_state=0).explain(
        game, n_features=8, budget=200, feature_names=WORDS
    )
    rng = np.random.default_rng(1)
    masks = rng.random((60, 8)) < 0.5
    return inter, (masks, game.exact(masks))


def test_the_page_is_one_self_contained_file(explained, tmp_path):
    inter, held_out = explained
    path = tmp_path / "report.html"
    page = psx.report(inter, title="a <b>title</b>", held_out=held_out, path=path)
    assert path.read_text(encoding="utf-8") == page
    # Nothing is fetched: no external source, and the page's policy forbids any.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "default-src 'none'" in page
    assert 'src="data:image/png;base64,' in page
    assert "<h1>a &lt;b&gt;title&lt;/b&gt;</h1>" in page


def test_explained_text_is_escaped_everywhere(explained):
    inter, _ = explained
    page = psx.report(inter, WORDS)
    assert EVIL not in page  # neither in the units, the table nor the embedded JSON
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    # the only script elements are the page's own two
    assert len(re.findall(r"<script\b", page)) == 2


def test_table_lists_the_strongest_terms_with_intervals(explained):
    inter, _ = explained
    page = psx.report(inter, k=5)
    rows = re.findall(r"<tr(?: class=\"unsure\")? data-ids=", page)
    assert len(rows) == min(5, len(inter.top(5)))
    assert "95% low" in page and "found in resamples" in page
    (top, value), *_ = inter.top(1)
    assert top == (3, 4) and value == pytest.approx(3.0, abs=0.3)


def test_without_resamples_the_table_has_no_interval_columns():
    inter = psx.Interactions.from_mobius({(0, 1): 1.0}, n_features=2)
    page = psx.report(inter)
    assert "95% low" not in page and "SII" in page


def test_bad_input_is_refused(explained):
    inter, (masks, values) = explained
    with pytest.raises(ValueError, match="units"):
        psx.report(inter, ["a", "b"])
    with pytest.raises(ValueError, match="held_out"):
        psx.report(inter, held_out=(masks[:, :3], values))
    with pytest.raises(TypeError, match="Interactions"):
        psx.report({(0,): 1.0})
    with pytest.raises(ValueError, match="level"):
        psx.report(inter, level=1.5)
    with pytest.raises(ValueError, match="only 0 and 1"):  # 0.5 is not a mask (was read as 1)
        psx.report(inter, held_out=(np.full(masks.shape, 0.5), values))
    with pytest.raises(TypeError, match="title must be a string"):
        psx.report(inter, title=None)
    with pytest.raises(TypeError, match="not one string"):
        psx.report(inter, "the film was not bad <b> at all")
    several = np.empty(2, dtype=object)
    several[:] = [inter, inter]
    with pytest.raises(TypeError, match="several results"):
        psx.report(several)


def test_the_figure_leaves_the_callers_backend_alone(explained):
    import matplotlib

    inter, held_out = explained
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend that is not the report's Agg
    try:
        page = psx.report(inter, held_out=held_out)
        assert matplotlib.get_backend() == "svg"
        assert 'src="data:image/png;base64,' in page
    finally:
        matplotlib.use(before)


def test_interval_levels_are_not_rounded_away(explained):
    inter, _ = explained
    page = psx.report(inter, level=0.999)
    assert "99.9% low" in page and "100% low" not in page


# --------------------------------------------------------------------- browser
def chromium() -> str:
    path = os.environ.get("PSX_CHROMIUM")
    if path is None:
        path = "/usr/bin/chromium"
        if not Path(path).is_file():
            pytest.skip("Chromium is not installed (apt install chromium); make test runs these")
    return path


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, explained, tmp_path_factory):
    inter, held_out = explained
    path = tmp_path_factory.mktemp("report") / "report.html"
    psx.report(inter, WORDS, held_out=held_out, path=path)
    tab = browser.new_page()
    events = {"errors": [], "dialogs": [], "requests": []}
    tab.on("pageerror", lambda err: events["errors"].append(str(err)))
    tab.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    tab.on("request", lambda r: events["requests"].append(r.url))
    tab.goto(path.as_uri())
    tab.wait_for_load_state("load")
    yield tab, events, inter
    tab.close()


@pytest.mark.browser
def test_page_loads_without_errors_or_network(page):
    tab, events, _ = page
    assert tab.title() == "Interactions"
    assert tab.locator(".unit").count() == len(WORDS)
    assert events["errors"] == []
    assert all(url.startswith(("file:", "data:")) for url in events["requests"])
    assert tab.locator("#faithfulness").evaluate("img => img.naturalWidth") > 0


@pytest.mark.browser
def test_hovering_a_word_highlights_its_partners(page):
    tab, _, inter = page
    tab.locator('.unit[data-i="3"]').hover()  # "not": its synergy with "bad" is positive
    assert "active" in tab.locator('.unit[data-i="3"]').get_attribute("class")
    assert "partner-pos" in tab.locator('.unit[data-i="4"]').get_attribute("class")
    # "the" has no interaction with "not" in the game: no partner, or, where the noise
    # left a weak term in the surrogate, one whose interval holds 0.
    the = tab.locator('.unit[data-i="0"]').get_attribute("class") or ""
    if (0, 3) in inter.mobius:
        low, high = inter.intervals(0.95)[(0, 3)]
        assert low <= 0 <= high and "partner-unsure" in the
    else:
        assert "partner" not in the
    highlighted = tab.locator("#terms tbody tr.highlight")
    assert highlighted.count() >= 1
    tab.locator('.unit[data-i="6"]').hover()  # "at" × "all" lowers the output together
    assert "partner-neg" in tab.locator('.unit[data-i="7"]').get_attribute("class")
    assert "partner" not in tab.locator('.unit[data-i="4"]').get_attribute("class")


@pytest.mark.browser
def test_clicking_a_header_sorts_the_table(page):
    tab, _, _ = page
    column = "#terms tbody tr td:nth-child(4)"  # Möbius

    def values() -> list[float]:
        return [float(cell.get_attribute("data-sort")) for cell in tab.locator(column).all()]

    header = tab.locator("#terms th", has_text="Möbius")
    header.click()
    assert values() == sorted(values())
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert values() == sorted(values(), reverse=True)
    tab.locator("#terms th", has_text="#").click()
    ranks = [int(c.get_attribute("data-sort")) for c in tab.locator("#terms td:first-child").all()]
    assert ranks == sorted(ranks)


@pytest.mark.browser
def test_script_in_the_text_is_shown_not_run(page):
    tab, events, _ = page
    assert tab.evaluate("window.pwned === undefined")
    assert events["dialogs"] == []
    assert tab.locator('.unit[data-i="5"]').inner_text() == EVIL


@pytest.fixture(scope="module")
def mixed_page(browser, tmp_path_factory):
    """ "bad" is a partner of "not" in a strong positive and a weak negative term."""
    inter = psx.Interactions.from_mobius(
        {(0, 1): 5.0, (0, 1, 2): -0.1, (2, 3, 4, 5, 6): 0.05},
        n_features=7,
        feature_names=["not", "bad", "at", "all", "a", "b", "c"],
    )
    path = tmp_path_factory.mktemp("mixed") / "report.html"
    psx.report(inter, path=path)
    tab = browser.new_page()
    tab.goto(path.as_uri())
    tab.wait_for_load_state("load")
    yield tab
    tab.close()


@pytest.mark.browser
def test_a_partner_takes_its_strongest_terms_colour(mixed_page):
    mixed_page.locator('.unit[data-i="0"]').hover()
    classes = mixed_page.locator('.unit[data-i="1"]').get_attribute("class")
    assert "partner-pos" in classes and "partner-neg" not in classes  # was both: blue won
    assert "partner-neg" in mixed_page.locator('.unit[data-i="2"]').get_attribute("class")


@pytest.mark.browser
def test_terms_without_an_sii_sort_last(mixed_page):
    header = mixed_page.locator("#terms th", has_text="SII")
    for _ in range(2):  # ascending, then descending: the order-5 term's n/a stays last
        header.click()
        cells = [c.inner_text() for c in mixed_page.locator("#terms td:last-child").all()]
        assert cells[-1] == "n/a" and "n/a" not in cells[:-1]
