"""Measure the dashboard as a user sees it, in a real headless Chromium, and print one table.

    .venv/bin/python scripts/measure_dashboard.py [--rounds 5]

Rows (seconds; nothing is asserted, timings depend on the machine and its load, which is
printed with the table):

- cold start, new dataset: a fresh server and an empty cache; browser opens the URL ->
  first thumbnail on screen, and -> every score filled in;
- cold start, scored before: the server restarted on the same cache -> gallery with every
  score (no TensorFlow needed);
- first map per page: first visit of each Explain page (whatever prefetch has not computed);
  first visit of the other pages (Model, Summary, Concepts), so that the cached switches
  below are all cached;
- cached page switch per page: sidebar link -> the page's result on screen, median and max
  over the rounds, timed twice: inside the page (from the click's ``pointerdown`` to the first
  animation frame showing the finished page: the wait a user sees) and by the harness
  (Playwright's pre-click checks and one round trip per wait included);
- parameter change -> new map, and back to the earlier (cached) setting;
- annotation save: a click on a reading -> the new reading in the database;
- reference, measured in the same run: a two-page Streamlit app (a title and a line of text
  per page) on the same machine, first paint and page switch; each dashboard row's ratio to
  it says how far the page is from what Streamlit itself costs here.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser_support import (  # noqa: E402
    arm_switch_timer,
    bare_reference,
    browser_page,
    on_page,
    settled,
    sidebar_link,
    streamlit_server,
    switch_time,
    wait_until_idle,
)
from ui import page_list  # noqa: E402

EXPLAIN = [p for p in page_list.PAGES if p.section == "Explain"]
SWITCH = [p for p in page_list.PAGES if p.section in ("Cells", "Explain", "Evidence") and p.url_path != "annotate"]
LONG = 600_000


def visit(page, info) -> tuple[float, float]:
    """Click a sidebar link (an in-app page switch, same session) until the page's result
    shows: ``(seconds as the harness sees them, seconds inside the page)``."""
    link = sidebar_link(page, info.title)
    arm_switch_timer(page, info.proof, [info.url_path] + ([""] if info.default else []))
    start = time.perf_counter()
    link.click()
    page.wait_for_url(lambda url: on_page(url, info), timeout=LONG)
    page.locator("[data-testid='stMain']").get_by_text(info.proof, exact=False).first.wait_for(state="visible", timeout=LONG)
    settled(page)
    if page.locator("[data-testid='stMain'] .js-plotly-plot").count():
        page.locator("[data-testid='stMain'] .js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=LONG)
    harness = time.perf_counter() - start
    return harness, switch_time(page)


def heatmaps(page) -> list:
    """The map pictures of the page (``ui.map_image`` elements), as data URLs."""
    return page.eval_on_selector_all("[data-testid='stMain'] .dn-map img", "els => els.map(e => e.getAttribute('src'))")


def stable_heatmaps(page, timeout: float = 120.0) -> list:
    """The map images once every map is drawn and two reads 0.3 s apart agree."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = heatmaps(page)
        if now and now == last:
            return now
        last = now
        time.sleep(0.3)
    return last or []


def pick_option(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def until(probe, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    return None


def cold_start(env: dict) -> tuple[float, float]:
    """(first thumbnail, all scores) after opening the URL of a freshly started server."""
    with streamlit_server(env) as url, browser_page(1440, 900) as page:
        start = time.perf_counter()
        page.goto(url)
        page.locator("[data-testid='stMain'] [data-testid='cellTile'] img").first.wait_for(state="visible", timeout=LONG)
        thumbs = time.perf_counter() - start
        page.get_by_text("cells scored.", exact=False).first.wait_for(state="visible", timeout=LONG)
        return thumbs, time.perf_counter() - start


def fmt(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} (max {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = _Rows()
    load_before = os.getloadavg()
    bare = bare_reference(args.rounds)
    bare_first, bare_switches, bare_in_page = bare["warm"], bare["switches"], bare["in_page"]
    bare_switch, bare_page = statistics.median(bare_switches), statistics.median(bare_in_page)
    rows += [("reference: two-page Streamlit app, first paint (warm browser)", f"{bare_first:.2f}"),
             ("reference: two-page Streamlit app, page switch (harness)", fmt(bare_switches)),
             ("reference: two-page Streamlit app, page switch (in page)", fmt(bare_in_page))]
    with tempfile.TemporaryDirectory() as folder:
        env = {"DISPLASIA_CACHE_DIR": f"{folder}/cache", "DISPLASIA_DB": f"sqlite:///{folder}/a.sqlite"}
        thumbs, scored = cold_start(env)
        rows += [("cold start, new dataset: first thumbnails", f"{thumbs:.2f}"),
                 ("cold start, new dataset: all 56 scores", f"{scored:.2f}")]
        _, again = cold_start(env)
        rows.append(("cold start, dataset scored before: gallery with all scores", f"{again:.2f}"))
        with streamlit_server(env) as url, browser_page(1440, 900) as page:
            page.goto(url)
            page.get_by_text("cells scored.", exact=False).first.wait_for(state="visible", timeout=LONG)
            wait_until_idle(page)
            for info in EXPLAIN:
                rows.append((f"first map: {info.title}", f"{visit(page, info)[0]:.2f}"))
            for info in SWITCH:   # the other pages' first visit (e.g. Concepts computes its sweep) is not cached
                if info not in EXPLAIN and not info.default:
                    rows.append((f"first visit: {info.title}", f"{visit(page, info)[0]:.2f}"))
            times = {info.title: [] for info in SWITCH}
            for _ in range(args.rounds):
                for info in SWITCH:
                    times[info.title].append(visit(page, info))
            for title, values in times.items():
                rows.append((f"cached page switch: {title} (in page; harness)",
                             f"{fmt([v[1] for v in values])}; {fmt([v[0] for v in values])}"))
            harness = [v[0] for values in times.values() for v in values]
            in_page = [v[1] for values in times.values() for v in values]
            rows.append(("cached page switch, all pages (in page)", fmt(in_page)))
            rows.append(("cached page switch, all pages (harness)", fmt(harness)))
            rows.append(("  ratio of those medians to the reference app's (in page; harness)",
                         f"{statistics.median(in_page) / bare_page:.1f}x; "
                         f"{statistics.median(harness) / bare_switch:.1f}x"))
            # parameter change -> new map; back to the cached setting
            page.goto(f"{url}/occlusion")
            wait_until_idle(page)
            page.get_by_text("largest reduction").first.wait_for(state="visible", timeout=LONG)
            settled(page)
            before = stable_heatmaps(page)
            start = time.perf_counter()
            pick_option(page, "Fill", "grey")
            until(lambda: (now := heatmaps(page)) and now != before and now)
            rows.append(("parameter change -> new map (occlusion fill)", f"{time.perf_counter() - start:.2f}"))
            settled(page)
            changed = stable_heatmaps(page)
            start = time.perf_counter()
            page.get_by_role("combobox", name="Fill", exact=True).click()
            option = page.get_by_role("option", name="mean", exact=True)
            option.wait_for(state="visible")
            arm_switch_timer(page, "largest reduction", ["occlusion"], maps=before)
            option.click()
            back = until(lambda: heatmaps(page) == before, timeout=60)
            fill = parse_qs(urlparse(page.url).query).get("occlusion.fill")
            rows.append(("back to a cached setting -> the same maps as before (in page; harness)",
                         f"{switch_time(page, 60_000):.2f}; {time.perf_counter() - start:.2f}" if back else
                         f"not within 60 s (URL fill={fill}, maps changed from grey: {heatmaps(page) != changed})"))
            rows.append(("annotation save (click -> stored)", f"{annotation_save(page, url, env):.2f}"))
    load_after = os.getloadavg()
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  seconds")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"machine: {os.cpu_count()} CPUs; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"(1 min); median (max) over {args.rounds} rounds")
    return 0


class _Rows(list):
    """The table's rows, each also printed as soon as it is measured (long runs show progress)."""

    def append(self, row) -> None:
        print(f"  {row[0]}: {row[1]}", flush=True)
        super().append(row)

    def __iadd__(self, rows):
        for row in rows:
            self.append(row)
        return self


def annotation_save(page, url: str, env: dict) -> float:
    """Click a reading on the Annotate page; seconds until the database holds it."""
    from core.annotations.store import AnnotationStore

    page.goto(f"{url}/annotate")
    wait_until_idle(page)
    box = page.get_by_label("Annotator", exact=True)
    box.fill("dr-measure")
    box.press("Enter")
    wait_until_idle(page)
    page.locator("canvas.upper-canvas").first.wait_for(state="visible", timeout=LONG)
    main = page.locator("[data-testid='stMain']")
    store = AnnotationStore(env["DISPLASIA_DB"])
    start = time.perf_counter()
    main.get_by_role("radiogroup", name="Cell condition").get_by_text("dysplastic", exact=True).click()
    until(lambda: [a for a in store.all_latest() if a.annotator == "dr-measure" and a.condition.value == "dysplastic"])
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
