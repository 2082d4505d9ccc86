"""Measure the dashboard as a user sees it (real Chromium): cold start to the rendered Home
page, first computation of each method on the demo cell, and page switches once cached.

    .venv/bin/python scripts/measure_dashboard.py

Prints seconds; nothing is asserted (timings depend on the machine).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser_support import browser_page, streamlit_server, wait_until_idle  # noqa: E402
from ui import page_list  # noqa: E402

# (sidebar link, text that proves the page's result is on screen), from the one page list
PAGES = [(p.title, p.proof) for p in page_list.PAGES if p.section == "Explain"]


def visit(page, link: str, proof: str) -> float:
    """Click a sidebar link (an in-app page switch, same session) until the result shows."""
    start = time.perf_counter()
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=link, exact=True).click()
    page.get_by_text(proof, exact=False).first.wait_for(state="visible", timeout=600_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)
    return time.perf_counter() - start


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        env = {"DISPLASIA_CACHE_DIR": f"{folder}/cache", "DISPLASIA_DB": f"sqlite:///{folder}/a.sqlite"}
        start = time.perf_counter()
        with streamlit_server(env) as url, browser_page() as page:
            page.goto(url)
            page.get_by_text("Predicted dysplastic").first.wait_for(state="visible", timeout=600_000)
            wait_until_idle(page)
            print(f"cold start (server launch -> Home gallery rendered with scores): {time.perf_counter() - start:.1f} s")
            for link, proof in PAGES[1:]:
                print(f"first visit, computing  {link:<16} {visit(page, link, proof):6.2f} s")
            for link, proof in PAGES[1:]:
                print(f"page switch, cached     {link:<16} {visit(page, link, proof):6.2f} s")
            print(f"Compare grid, all cached                 {visit(page, *PAGES[0]):6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
