"""Measure the Cells gallery on a 20,000-cell folder in a real headless Chromium; print one table.

    .venv/bin/python scripts/measure_large_gallery.py [--cells 20000] [--folder /tmp/scale_cells] [--turns 5]

The folder is made once by ``core.bench_scale.ensure_cells`` (generated cells). Rows, in
seconds (nothing is asserted; the load average is printed with the table):

- first paint, cold: a fresh server and an empty cache folder; the browser opens the URL ->
  the first thumbnail is visible (every image is checked and hashed once first);
- first paint, store filled: the same cache folder after every score was stored, server
  restarted -> thumbnails visible and "All ... cells scored."; "page title" is when the
  script's first output (the title) showed, so the rest is the script and the thumbnails;
- first paint, new session: a new browser context on the running server (nothing cached in
  the browser; the dataset is already listed and checked in the server process), and the
  address reopened in the first tab (the browser's cache warm); each beside the same
  measurement of a one-title Streamlit app made in the same run (``bare_reference``), and
  the new context also beside the dashboard on the bundled 56-cell demo set;
- page turn: the page number's "+" -> the next page's thumbnails visible (median, max);
  measured once the server process is quiet (TensorFlow's background import done), with
  the Compare prefetch off unless ``--prefetch`` (it computes maps of the current cell in
  the same process); thumbnails already on disk from an earlier run are reused;
- sort change (name -> score ↓) and filter change (agreement -> disagree) -> new thumbnails.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser_support import (  # noqa: E402
    bare_reference,
    browser_page,
    first_paint,
    settled,
    streamlit_server,
    wait_until_idle,
    watch_first_paint,
)

LONG = 600_000
THUMBS = "[data-testid='stMain'] [data-testid='cellTile'] img"


def first_thumb(page) -> str | None:
    return page.evaluate(f"() => {{ const i = document.querySelector(\"{THUMBS}\"); return i ? i.getAttribute('src') : null; }}")


def until_new_thumbs(page, before: str | None, start: float) -> float:
    """Seconds from ``start`` until the first thumbnail differs from ``before`` and is loaded."""
    page.wait_for_function(
        f"""(before) => {{ const i = document.querySelector("{THUMBS}");
              return i && i.getAttribute('src') !== before && i.complete && i.naturalWidth > 0; }}""",
        arg=before, timeout=LONG, polling=20)
    return time.perf_counter() - start


def wait_quiet(timeout: float = 120.0) -> float:
    """Seconds until this script's child processes (the Streamlit server) use under 5 % CPU."""
    import psutil

    start = time.perf_counter()
    children = psutil.Process().children(recursive=True)

    def cpu() -> float:
        total = 0.0
        for child in children:
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    before = cpu()
    while time.perf_counter() - start < timeout:
        time.sleep(1.0)
        now = cpu()
        if now - before < 0.05:
            break
        before = now
    return time.perf_counter() - start


def fill_scores(folder: Path, cache: Path) -> float:
    """Store every cell's score with the demo model exactly as the dashboard keys it; seconds."""
    from core.config import demo_model_path
    from core.datasets import scan_dataset
    from core.model_io import load_model
    from core.scores import ScoreStore, preprocessing_key, score_missing

    start = time.perf_counter()
    store = ScoreStore(cache / "scores.sqlite")
    path, weights = demo_model_path()
    key = store.model_key(str(path), str(weights) if weights else None)
    paths = [str(c.path) for c in scan_dataset(folder, roots=[folder], check_images=False).cells]
    hashes = store.file_hashes(paths)
    have = store.get(key, hashes, preprocessing_key("nearest"))
    if (have != have).any():
        score_missing(store, load_model(path, weights), key, paths, hashes, "nearest", batch_size=64)
    store.close()
    return time.perf_counter() - start


def new_session(page, url: str) -> tuple:
    """First paint in a new browser context (empty browser cache): (harness, in page) seconds."""
    second = page.context.browser.new_page(viewport={"width": 1440, "height": 1000})
    watch_first_paint(second, THUMBS)
    start = time.perf_counter()
    second.goto(url)
    second.locator(THUMBS).first.wait_for(state="visible", timeout=LONG)
    harness = time.perf_counter() - start
    in_page = first_paint(second)
    wait_until_idle(second, LONG)
    second.close()
    return harness, in_page


def small_dataset_session(env: dict) -> tuple:
    """The same new-session first paint on the bundled 56-cell demo set, same server settings."""
    with streamlit_server({k: v for k, v in env.items() if k == "DISPLASIA_PREFETCH_CPU_SECONDS"}) as url, \
            browser_page(1440, 1000) as page:
        page.goto(url)
        page.get_by_text("cells scored.", exact=False).first.wait_for(state="visible", timeout=LONG)
        wait_until_idle(page, LONG)
        wait_quiet()
        return new_session(page, url)


def open_gallery(env: dict, *, scored: bool, turns: int) -> dict:
    out = {}
    with streamlit_server(env) as url, browser_page(1440, 1000) as page:
        start = time.perf_counter()
        page.goto(url)
        page.locator("[data-testid='stMain'] h1").first.wait_for(state="visible", timeout=LONG)
        out["page title"] = time.perf_counter() - start
        page.locator(THUMBS).first.wait_for(state="visible", timeout=LONG)
        out["first paint"] = time.perf_counter() - start
        if not scored:
            return out
        page.get_by_text("cells scored.", exact=False).first.wait_for(state="visible", timeout=LONG)
        out["first paint, all scores"] = time.perf_counter() - start
        wait_until_idle(page, LONG)
        out["server busy"] = wait_quiet()
        out["new session"], out["new session, in page"] = new_session(page, url)
        reopened, in_page = [], []
        watch_first_paint(page, THUMBS)
        for _ in range(3):
            start = time.perf_counter()
            page.goto(url)
            page.locator(THUMBS).first.wait_for(state="visible", timeout=LONG)
            reopened.append(time.perf_counter() - start)
            in_page.append(first_paint(page))
            wait_until_idle(page, LONG)
        out["reopened"], out["reopened, in page"] = reopened, in_page
        plus = page.locator("[data-testid='stMain'] [data-testid='stNumberInputStepUp']").first
        times = []
        for _ in range(turns):
            before = first_thumb(page)
            start = time.perf_counter()
            plus.click()
            times.append(until_new_thumbs(page, before, start))
            settled(page)
        out["page turn"] = times
        before = first_thumb(page)
        start = time.perf_counter()
        page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").filter(has_text="Sort by").click()
        page.get_by_role("option", name="score ↓").click()
        out["sort change"] = until_new_thumbs(page, before, start)
        settled(page)
        before = first_thumb(page)
        start = time.perf_counter()
        page.locator("[data-testid='stMain'] [data-testid='stRadio']").get_by_text("disagree", exact=True).click()
        out["filter change"] = until_new_thumbs(page, before, start)
        settled(page)
        out["exceptions"] = page.locator("[data-testid='stException']").count()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--folder", default="/tmp/scale_cells")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--cache", help="cache folder to reuse (default: a new empty one)")
    parser.add_argument("--prefetch", action="store_true", help="leave the Compare prefetch on")
    args = parser.parse_args(argv)

    from core.bench_scale import ensure_cells

    folder = Path(args.folder)
    ensure_cells(folder, args.cells)
    have = sum(1 for p in folder.iterdir() if p.suffix == ".jpg")
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="gallery-cache-"))
    env = {"DISPLASIA_DATA_ROOTS": str(folder), "DISPLASIA_DATASET": str(folder), "DISPLASIA_CACHE_DIR": str(cache)}
    if not args.prefetch:
        env["DISPLASIA_PREFETCH_CPU_SECONDS"] = "0"
    rows = []
    bare = bare_reference(1)
    cold_empty = not (cache / "scores.sqlite").exists()
    load = [os.getloadavg()[0]]
    cold = open_gallery(env, scored=False, turns=0)
    rows.append(("first paint, " + ("cold (empty cache)" if cold_empty else "reused cache"), cold["first paint"]))
    rows.append(("  page title shown", cold["page title"]))
    filled = fill_scores(folder, cache)
    print(f"(scores stored for every cell in {filled:.0f} s)", flush=True)
    load.append(os.getloadavg()[0])
    warm = open_gallery(env, scored=True, turns=args.turns)
    small = small_dataset_session(env)
    load.append(os.getloadavg()[0])
    rows += [("first paint, score store filled", warm["first paint"]),
             ("  page title shown", warm["page title"]),
             ("  -> every score shown", warm["first paint, all scores"]),
             ("  then the server busy (TensorFlow import, prefetch)", warm["server busy"]),
             ("first paint, new session on the running server (new browser context)", warm["new session"]),
             ("  the same inside the page (navigation start -> first thumbnail decoded)", warm["new session, in page"]),
             ("  reference: the 56-cell demo set, new browser context", small[0]),
             ("  reference inside the page", small[1]),
             ("  reference: one-title Streamlit app, new browser", bare["cold"]),
             ("  reference inside the page (navigation start -> title)", bare["cold_in_page"]),
             ("first paint, address reopened in a tab (median of 3)", statistics.median(warm["reopened"])),
             ("  max of 3", max(warm["reopened"])),
             ("  the same inside the page, median of 3", statistics.median(warm["reopened, in page"])),
             ("  reference: one-title Streamlit app, reopened", bare["warm"]),
             ("  reference inside the page", bare["warm_in_page"]),
             (f"page turn, median of {args.turns}", statistics.median(warm["page turn"])),
             (f"page turn, max of {args.turns}", max(warm["page turn"])),
             ("sort change (score ↓)", warm["sort change"]),
             ("filter change (disagree)", warm["filter change"])]
    print(f"\nGallery of {have:,} cells in {folder}, cache {cache}; load average (1 min) "
          + ", ".join(f"{x:.2f}" for x in load))
    print(f"exceptions shown on the page: {warm['exceptions']}")
    print("| measurement | seconds |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
