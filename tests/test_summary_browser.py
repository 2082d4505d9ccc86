"""The HTML report in a real headless Chromium with the network blocked: every section shows,
every plotly figure draws, every embedded image decodes, and the page logs no error."""
from __future__ import annotations

import pytest

from core.summary.report import CELL_SECTIONS, DATASET_SECTIONS
from tests.test_summary_report import CHEAP, dataset, model_file, study, summary  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open_offline(page, path):
    """Load a local file with every non-local request refused; returns the requests refused and the errors."""
    refused, errors = [], []
    # An injected onerror=alert(1) from a file name would show up here.
    page.add_init_script("window.__alerts = []; window.alert = m => window.__alerts.push(String(m));")
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else (refused.append(route.request.url), route.abort()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return refused, errors


def test_reports_render_offline_in_chromium(study, summary, tmp_path):  # noqa: F811
    from core.summary.report import cell_report_html, dataset_report_html
    from tests.browser_support import browser_page

    full = tmp_path / "dataset.html"
    full.write_text(dataset_report_html(study, summary), encoding="utf-8")
    one = tmp_path / "cell.html"
    one.write_text(cell_report_html(study, 0, maps=summary.maps, steps=3), encoding="utf-8")
    with browser_page() as page:
        refused, errors = _open_offline(page, full)
        for sid, title in DATASET_SECTIONS:
            assert page.locator(f"section#{sid} h2").inner_text() == title
        figures = page.locator("div.plotly-graph-div").count()
        assert figures >= 8
        page.wait_for_function(f"() => document.querySelectorAll('div.plotly-graph-div .main-svg').length >= {figures}")
        assert page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("() => window.__alerts") == []
        assert page.get_by_text("<img src=x onerror=alert(1)>", exact=False).count() >= 1  # shown as text
        assert refused == [] and errors == []

        refused, errors = _open_offline(page, one)
        for sid, title in CELL_SECTIONS:
            assert page.locator(f"section#{sid} h2").inner_text() == title
        assert page.locator("section#cell-maps img").count() == len(summary.maps)
        assert page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert refused == [] and errors == []
