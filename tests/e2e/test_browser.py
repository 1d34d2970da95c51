"""The --html pages in a real browser: headless Chromium (Debian's package) driven by Playwright.

A failing locate page and a train-step page load from file:// with no console error and no network request,
their plots are drawn (the screenshot of each plot is not blank), the first divergent module is named, and
clicking a header sorts the table. scripts/test.sh installs Chromium; where it cannot be installed these
tests skip and say why. ``MSPARITY_WRITE_DOCS=1`` also saves the locate page's screenshot as
docs/locate-page.png, the picture the README shows.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest

from tests.conftest import REPO, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: scripts/test.sh installs Debian's "
                                "chromium package with apt-get, which needs root and Debian's registry")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by the dev extra")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


class Opened:
    """One page opened from disk, with what it logged and asked the network for."""

    def __init__(self, browser, path):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.url = path.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: r.url != self.url and self.requests.append(r.url))
        self.page.goto(self.url, wait_until="load")

    def column(self, header: str) -> list[float]:
        """The numbers in the sortable table's column under `header`, top to bottom."""
        return self.page.evaluate("""h => { const t = document.querySelector('table.sortable');
            const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === h);
            return Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[i].dataset.v)); }""", header)


def _drawn(png: bytes) -> float:
    """The share of a screenshot's pixels that are not the page's white background."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return float((pixels < 240).mean())


def _plots_drawn(opened: Opened) -> None:
    plots = opened.page.locator("svg")
    assert plots.count() >= 1
    for index in range(plots.count()):
        plot = plots.nth(index)
        box = plot.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, box
        assert _drawn(plot.screenshot()) > 0.01, f"plot {index} is blank"


def test_a_failing_locate_page_works_in_chromium(browser, tmp_path):
    html = tmp_path / "locate.html"
    result = run_cli("locate", "--pt-model", "examples.vit_pt:build", "--ms-model", "examples.vit_ms:build_gelu_bug",
                     "--html", str(html))
    assert result.code == 1, result.stderr
    opened = Opened(browser, html)
    assert opened.errors == [] and opened.requests == []
    assert "First divergent module: pt blocks.0.mlp.act (GELU) ~ ms blocks.0.mlp.act" in \
        opened.page.locator("h1").inner_text()
    assert "approximate='tanh'" in opened.page.locator("body").inner_text()  # the hint says what to change
    _plots_drawn(opened)
    ratios = lambda: [r for r in opened.column("ratio") if r == r]  # noqa: E731 (NaN rows: unjudged)
    assert ratios() != sorted(ratios())  # execution order first, as printed
    opened.page.locator("table.sortable th", has_text="ratio").click()
    assert ratios() == sorted(ratios())
    opened.page.locator("table.sortable th", has_text="ratio").click()
    assert ratios() == sorted(ratios(), reverse=True)
    if os.environ.get("MSPARITY_WRITE_DOCS") == "1":
        opened.page.locator("table.sortable th", has_text="#").click()
        opened.page.screenshot(path=str(REPO / "docs" / "locate-page.png"), full_page=False)
    assert opened.errors == []


def test_a_train_step_page_works_in_chromium(browser, tmp_path):
    html = tmp_path / "train.html"
    result = run_cli("train-step", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--steps", "3", "--html", str(html))
    assert result.code == 0, result.stderr
    opened = Opened(browser, html)
    assert opened.errors == [] and opened.requests == []
    assert "PASS: 3 training step(s) agree" in opened.page.locator("h1").inner_text()
    _plots_drawn(opened)
    noise = lambda: opened.column("x noise")  # noqa: E731
    opened.page.locator("table.sortable th", has_text="x noise").first.click()
    assert noise() == sorted(noise())
