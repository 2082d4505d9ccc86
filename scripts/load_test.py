"""Loopback load test: N concurrent users browse the demo and compute maps in real Chromium.

    .venv/bin/python scripts/load_test.py [--users 10] [--duration 120] [--json report.json]

Starts ``streamlit run app.py`` on 127.0.0.1 with a private cache, database and audit log,
then runs ``--users`` browser sessions at once (one Chromium context each, so one Streamlit
session each) until ``--duration`` seconds have passed (at most 600). Each user walks the
same plan from a different starting point: a page (Gallery, Occlusion, Saliency, CAMs) on
one of a few demo cells, opened by its URL (``?cell=...``), waiting until the page's result
is on screen. It reports:

- users, requests (page views finished), errors (an exception box, or no result within the
  timeout), p50/p95/max latency of a page view;
- the peak resident memory of the server process (``VmHWM``) and its memory at the end;
- cache reuse: of the maps shown (audit log ``explain`` records), how many came from the
  shared explanation cache instead of being computed;
- the same plan walked once by a single user alone afterwards (warm cache), for comparison;
- identical results: every user saw the same map pictures (``ui.map_image``) for the same page and
  cell, and every map computed under load equals the map a single user computes alone
  (recomputed here, in this process, without the cache; maximum absolute difference).

Exit status 0 when there were no errors and the results are identical, 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DEMO_DIR, REPO_ROOT  # noqa: E402
from tests.browser_support import CHROMIUM_ARGS, ensure_chromium, free_port  # noqa: E402
from ui.page_list import page as page_info  # noqa: E402

MAX_DURATION_S = 600
PAGES = ("home", "occlusion", "saliency", "cams")
STATUS = "[data-testid='stStatusWidget']"


def demo_cells(n: int) -> list[str]:
    """``n`` demo cells, alternating normal, dysplastic and misclassified ones."""
    names = sorted(p.name for p in DEMO_DIR.glob("*.jpg"))
    by_prefix = [sorted(n_ for n_ in names if n_.startswith(p)) for p in ("TN_", "TD_", "WN_", "WD_", "ZN_", "ZD_")]
    picked = []
    while len(picked) < n and any(by_prefix):
        for group in by_prefix:
            if group and len(picked) < n:
                picked.append(group.pop(0))
    return picked


def plan(cells: list[str], pages=PAGES) -> list[tuple[str, str]]:
    return [(p, c) for c in cells for p in pages]


class Server:
    """The dashboard on a free loopback port, with its process id for memory readings."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"), "--server.port", str(self.port),
                   "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.log = open(Path(env["DISPLASIA_CACHE_DIR"]).parent / "server.log", "w")
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _status(self, field: str) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _sample(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic() - start, self._status("VmRSS")))

    def wait_ready(self, timeout: float = 180.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early, see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("streamlit did not start")

    def peak_rss(self) -> int:
        return self._status("VmHWM")

    def rss(self) -> int:
        return self._status("VmRSS")

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def _idle(page, timeout_ms: float) -> None:
    await page.wait_for_function(f"() => !document.querySelector(\"{STATUS}\")", timeout=timeout_ms)
    await page.wait_for_timeout(300)
    await page.wait_for_function(f"() => !document.querySelector(\"{STATUS}\")", timeout=timeout_ms)


MAP_IMG = "[data-testid='stMain'] .dn-map img"


async def _heatmaps(page) -> str:
    hrefs = await page.eval_on_selector_all(MAP_IMG, "els => els.map(e => e.getAttribute('src'))")
    return hashlib.sha256("\n".join(hrefs).encode()).hexdigest()[:16] if hrefs else ""


async def user(index: int, browser, url: str, steps: list, deadline: float, timeout_s: float, out: list,
               max_steps: int | None = None) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    step = max(index, 0)
    try:
        while time.monotonic() < deadline and (max_steps is None or step < max_steps):
            path, cell = steps[step % len(steps)]
            step += 1
            start = time.monotonic()
            record = {"user": index, "page": path, "cell": cell, "ok": False, "error": ""}
            try:
                await page.goto(f"{url}/{path}?cell={cell}", timeout=timeout_s * 1000)
                await page.get_by_text(page_info(path).proof, exact=False).first.wait_for(
                    state="visible", timeout=timeout_s * 1000)
                if path != "home":
                    await page.locator(MAP_IMG).first.wait_for(state="attached", timeout=timeout_s * 1000)
                await _idle(page, timeout_s * 1000)
                if await page.locator("[data-testid='stException']").count():
                    record["error"] = "exception box"
                else:
                    record["ok"] = True
                    record["heatmaps"] = await _heatmaps(page) if path != "home" else ""
            except Exception as exc:      # a timeout or a browser failure is one failed request
                record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            record["seconds"] = time.monotonic() - start
            record["finished"] = time.monotonic() < deadline + timeout_s
            out.append(record)
    finally:
        await context.close()


async def run_users(url: str, users: int, steps: list, duration_s: float, timeout_s: float,
                    alone_walk: bool = True) -> tuple[list, float]:
    """Warm the server up with one Gallery view (TensorFlow, model, dataset scores), then load it."""
    from playwright.async_api import async_playwright

    out: list = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=ensure_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            start = time.monotonic()
            warm = await browser.new_page()
            await warm.goto(url, timeout=600_000)
            await warm.get_by_text(page_info("home").proof, exact=False).first.wait_for(state="visible", timeout=600_000)
            await _idle(warm, 600_000)
            await warm.close()
            warmup_s = time.monotonic() - start
            deadline = time.monotonic() + duration_s
            await asyncio.gather(*(user(i, browser, url, steps, deadline, timeout_s, out) for i in range(users)))
            # Reference: one user alone walks the whole plan once, on the now warm cache.
            alone: list = []
            if alone_walk:
                await user(-1, browser, url, steps, time.monotonic() + len(steps) * timeout_s, timeout_s, alone,
                           max_steps=len(steps))
            out.extend(dict(r, alone=True) for r in alone)
        finally:
            await browser.close()
    return out, warmup_s


def single_user_check(audit_path: Path, cache_dir: Path) -> dict:
    """Recompute, alone and without the cache, every map the users were shown; compare."""
    import numpy as np

    from core.cache import ExplanationCache
    from core.config import demo_model_path
    from core.explain import compute, get_method
    from core.model_io import load_model
    from core.preprocess import load_rgb, to_model_input

    records = [r for r in (json.loads(line) for line in audit_path.read_text().splitlines() if line.strip())
               if r.get("event") == "explain" and isinstance(r.get("detail"), dict) and r["detail"].get("key")]
    cache = ExplanationCache(cache_dir)
    loaded = load_model(*demo_model_path())
    seen, worst, compared, missing = set(), 0.0, 0, 0
    for r in records:
        key = r["detail"]["key"]
        if key in seen or get_method(r["method"]).kind == "dataset" or r["method"] == "background":
            continue
        seen.add(key)
        shown = cache.get(key)
        if shown is None:
            missing += 1
            continue
        image = to_model_input(load_rgb(DEMO_DIR / r["cell"]), loaded.description.image_size, "nearest")
        alone = compute(r["method"], loaded, image[None], r["target"], params=r.get("params") or {})
        worst = max(worst, float(np.max(np.abs(alone.maps - shown.maps))))
        compared += 1
    return {"maps_compared": compared, "maps_missing_from_cache": missing, "max_abs_difference": worst}


def _median(values: list) -> float | None:
    values = sorted(values)
    return round(values[len(values) // 2], 2) if values else None


def summarise(records: list, server: Server, audit_path: Path, users: int, duration_s: float) -> dict:
    alone = [r for r in records if r.get("alone")]
    records = [r for r in records if not r.get("alone")]
    done = [r for r in records if r["finished"]]
    ok = [r for r in done if r["ok"]]
    latencies = sorted(r["seconds"] for r in ok)

    def pct(q):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))], 2)

    views: dict = {}
    for r in ok:
        if r.get("heatmaps"):
            views.setdefault((r["page"], r["cell"]), set()).add(r["heatmaps"])
    explains = [json.loads(line) for line in audit_path.read_text().splitlines() if '"event":"explain"' in line] \
        if audit_path.exists() else []
    from_cache = sum(1 for r in explains if isinstance(r.get("detail"), dict) and r["detail"].get("from_cache"))
    return {
        "users": users, "duration_s": duration_s, "requests": len(done), "errors": len(done) - len(ok),
        "error_samples": sorted({r["error"] for r in done if not r["ok"]})[:5],
        "latency_p50_s": pct(0.50), "latency_p95_s": pct(0.95), "latency_max_s": round(latencies[-1], 2) if latencies else None,
        "requests_per_page": {p: sum(1 for r in done if r["page"] == p) for p in sorted({r["page"] for r in done})},
        "one_user_alone_cached": {"requests": len(alone), "errors": sum(1 for r in alone if not r["ok"]),
                                  "latency_p50_s": _median([r["seconds"] for r in alone if r["ok"]]),
                                  "latency_max_s": round(max((r["seconds"] for r in alone), default=0), 2)},
        "server_peak_rss_mb": round(server.peak_rss() / 2**20), "server_rss_end_mb": round(server.rss() / 2**20),
        "maps_shown": len(explains), "maps_from_cache": from_cache,
        "cache_reuse": round(from_cache / len(explains), 3) if explains else None,
        "views_with_different_heatmaps_between_users": sorted(f"{p}:{c}" for (p, c), v in views.items() if len(v) > 1),
        "distinct_views_compared_between_users": sum(1 for v in views.values()),
    }


def run(users: int = 10, duration_s: float = 120.0, cells: int = 3, timeout_s: float = 240.0,
        check_single_user: bool = True, pages=PAGES, alone_walk: bool = True) -> dict:
    """The whole load test; returns the report (see the module docstring)."""
    if not 1 <= users <= 50:
        raise SystemExit("--users must be 1..50")
    duration_s = min(float(duration_s), MAX_DURATION_S)
    with tempfile.TemporaryDirectory(prefix="displasia-load-") as folder:
        folder = Path(folder)
        env = {"DISPLASIA_CACHE_DIR": str(folder / "cache"), "DISPLASIA_DB": f"sqlite:///{folder / 'a.sqlite'}",
               "DISPLASIA_AUDIT_PATH": str(folder / "audit.jsonl"), "DISPLASIA_AUTH_MODE": "none"}
        (folder / "cache").mkdir()
        server = Server(env)
        try:
            server.wait_ready()
            records, warmup_s = asyncio.run(run_users(server.url, users, plan(demo_cells(cells), pages), duration_s,
                                                      timeout_s, alone_walk))
            report = summarise(records, server, folder / "audit.jsonl", users, duration_s)
            report["warmup_s"] = round(warmup_s, 1)
            report["rss_samples_mb"] = [round(r / 2**20) for _, r in server.samples[:: max(1, len(server.samples) // 20)]]
        finally:
            server.stop()
        if check_single_user:
            report["single_user"] = single_user_check(folder / "audit.jsonl", folder / "cache")
    report["identical_results"] = (not report["views_with_different_heatmaps_between_users"]
                                   and (not check_single_user or report["single_user"]["max_abs_difference"] == 0.0))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=float, default=120.0, help=f"seconds of load (at most {MAX_DURATION_S})")
    parser.add_argument("--cells", type=int, default=3, help="demo cells the users browse (fewer: more cache reuse)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds one page view may take before it counts as an error")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    report = run(args.users, args.duration, args.cells, args.timeout)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    ok = report["errors"] == 0 and report["one_user_alone_cached"]["errors"] == 0 and report["identical_results"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
