"""Real-browser testing: Debian's Chromium driven by Playwright against a live Streamlit server.

Chromium is installed with apt-get when missing (CI runs as root on a Debian machine);
Playwright's own browser download is never used.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.config import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def ensure_chromium() -> str:
    """Path of Debian's Chromium, installing the package if it is not there yet."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, capture_output=True, timeout=900)
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing and could not be installed with apt-get (needs root on Debian).")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(env: dict | None = None, timeout: float = 120.0, *, script: Path | None = None):
    """Start ``streamlit run app.py`` (or ``script``) on a free loopback port; yield its URL; stop it."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script or REPO_ROOT / "app.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-{port}.log", "w")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited early, see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            # a server busy with background maps can take 20 s to stop; nothing is checked after this
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


_BARE = """import streamlit as st

def one():
    st.title("One")
    st.write("A line of text.")

def two():
    st.title("Two")
    st.write("Another line of text.")

st.navigation([st.Page(one, title="One"), st.Page(two, title="Two")]).run()
"""


_TIMER_JS = """
([proof, paths, marked, maps, marker]) => {
  const w = window;
  w.__dnPress = null; w.__dnDone = null;
  const runNo = () => Math.max(0, ...Array.from(document.querySelectorAll('.' + marker), e => +e.dataset.run || 0));
  const before = runNo();
  document.addEventListener('pointerdown', () => { if (w.__dnPress === null) w.__dnPress = performance.now(); },
                            {capture: true, once: true});
  const here = () => { const p = location.pathname.replace(/\\/$/, ''); return paths.some(x => x === '' ? p === '' : p.endsWith('/' + x)); };
  const done = () => {
    if (!here()) return false;
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main || !main.textContent.includes(proof)) return false;
    if (marked && runNo() <= before) return false;
    if (maps !== null && JSON.stringify(Array.from(main.querySelectorAll('.dn-map img'), i => i.getAttribute('src')))
        !== JSON.stringify(maps)) return false;
    if (!Array.from(main.querySelectorAll('img')).every(i => i.complete)) return false;
    if (document.querySelector('[data-testid="stStatusWidget"]') || document.querySelector('[data-stale="true"]')) return false;
    for (const plot of main.querySelectorAll('.js-plotly-plot')) if (!plot.querySelector('.main-svg')) return false;
    return true;
  };
  const tick = () => {
    if (w.__dnPress !== null && done()) { w.__dnDone = performance.now(); return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


def arm_switch_timer(page, proof: str, paths, *, marked: bool = True, maps: list | None = None) -> None:
    """Time the next click inside the page: from its ``pointerdown`` to the first animation
    frame where the page at one of ``paths`` ("" = the root) shows ``proof``, the run's end
    marker (``ui.widgets.run_end_marker``; ``marked=False`` for apps without one) is newer
    than before the click, nothing is running or stale, every image is decoded and every
    plotly chart drawn; with ``maps``, also the page's map pictures (``.dn-map img``) are
    exactly those. Read it with :func:`switch_time`.

    This is the wait a user sees; the harness's own costs (Playwright's checks before a
    click, one round trip per wait) are outside it, for the app and the reference alike."""
    from ui.widgets import RUN_MARKER_CLASS

    page.evaluate(_TIMER_JS, [proof, list(paths), marked, maps, RUN_MARKER_CLASS])


def switch_time(page, timeout_ms: int = 600_000) -> float:
    """Seconds from the armed click to the page being complete (waits for it)."""
    page.wait_for_function("() => window.__dnDone !== null", timeout=timeout_ms)
    press, done = page.evaluate("() => [window.__dnPress, window.__dnDone]")
    return (done - press) / 1000.0


_FIRST_PAINT_JS = """(() => {
  const seen = () => { const e = document.querySelector(__dnSel);
    return e && (e.tagName !== 'IMG' || (e.complete && e.naturalWidth > 0)); };
  const look = () => { if (window.__dnFirst === undefined && seen()) window.__dnFirst = performance.now(); };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true});
  document.addEventListener('load', look, true);
})();"""


def watch_first_paint(page, selector: str) -> None:
    """From the next navigation on, record inside the page when ``selector`` first matches a
    shown element (for an ``img``: decoded); read it with :func:`first_paint`."""
    import json

    page.add_init_script("const __dnSel = " + json.dumps(selector) + ";" + _FIRST_PAINT_JS)


def first_paint(page, timeout_ms: int = 600_000) -> float:
    """Seconds from the navigation's start to the element :func:`watch_first_paint` waits for."""
    page.wait_for_function("() => window.__dnFirst !== undefined", timeout=timeout_ms)
    return page.evaluate("() => window.__dnFirst") / 1000.0


def bare_reference(rounds: int = 3) -> dict:
    """What Streamlit itself costs on this machine, as a reference for the measurement scripts:
    a two-page app with a title and a line of text per page. ``cold``: first paint in a new
    browser context (nothing cached); ``warm``: the address opened again in the same tab;
    ``switches``: page switches by the sidebar link (``rounds`` x 2), as the harness sees them;
    ``in_page``: the same switches timed inside the page (:func:`arm_switch_timer`);
    ``cold_in_page`` and ``warm_in_page``: the first paints timed inside the page, from the
    navigation's start (:func:`first_paint`)."""
    import tempfile

    def until_title(page, title: str) -> None:
        page.locator("[data-testid='stMain'] h1").get_by_text(title).wait_for(state="visible", timeout=600_000)

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare.py"
        script.write_text(_BARE)
        with streamlit_server({}, script=script) as url, browser_page(1440, 900) as page:
            watch_first_paint(page, "[data-testid='stMain'] h1")
            start = time.perf_counter()
            page.goto(url)
            until_title(page, "One")
            cold = time.perf_counter() - start
            cold_in_page = first_paint(page)
            start = time.perf_counter()
            page.goto(url)
            until_title(page, "One")
            warm = time.perf_counter() - start
            warm_in_page = first_paint(page)
            switches, in_page = [], []
            for _ in range(rounds):
                for title in ("Two", "One"):
                    link = page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title, exact=True)
                    arm_switch_timer(page, title, ["two"] if title == "Two" else ["", "one"], marked=False)
                    start = time.perf_counter()
                    link.click()
                    until_title(page, title)
                    settled(page)
                    switches.append(time.perf_counter() - start)
                    in_page.append(switch_time(page))
    return {"cold": cold, "warm": warm, "switches": switches, "in_page": in_page, "cold_in_page": cold_in_page,
            "warm_in_page": warm_in_page}


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


def wait_until_idle(page, timeout_ms: int = 180_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' status widget)."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)


def settled(page, timeout_ms: int = 600_000) -> None:
    """The rerun has ended and nothing on the page is stale: what the measurement scripts wait
    for (no fixed pause, unlike :func:`wait_until_idle`)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
                           "!document.querySelector('[data-stale=\"true\"]')", timeout=timeout_ms)


def sidebar_link(page, title: str):
    """The sidebar's link to the page called ``title``, expanding a collapsed navigation
    ("View N more") first."""
    nav = page.locator("[data-testid='stSidebarNav']")
    link = nav.get_by_role("link", name=title, exact=True)
    if not link.count():
        more = nav.locator("[data-testid='stSidebarNavViewButton']")
        if more.count() and "more" in more.inner_text():
            more.click()
            link.wait_for(state="visible")
    return link


def on_page(url: str, info) -> bool:
    """True when ``url`` shows the page ``info`` (the default page lives at the root path)."""
    from urllib.parse import urlparse

    path = urlparse(url).path.rstrip("/")
    return path.endswith("/" + info.url_path) or (info.default and path == "")


def selectbox_value(page, label: str, *, where: str = "[data-testid='stSidebar']") -> str:
    """The value a selectbox shows (Streamlit draws it as a combobox input)."""
    return page.locator(where).get_by_role("combobox", name=label, exact=True).first.input_value()


def poll(probe, timeout: float = 60.0, *, page=None):
    """Call ``probe`` until it returns something truthy (the app saves after a rerun).

    Give ``page`` when the probe reads what Playwright mirrors from its events (``page.url``):
    the sync API handles those events only inside its own calls, never during ``time.sleep``,
    so such a probe would see the address of the moment the poll started for ever.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        if page is not None:
            page.wait_for_timeout(500)
        else:
            time.sleep(0.5)
