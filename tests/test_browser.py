"""The dashboard in a real headless Chromium: every page renders its map and the score; a
parameter change gives a new map; an annotation survives a reload. Screenshots go to
docs/screenshots/ (shown in the README)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.config import DEMO_DIR, DEMO_MODEL_JSON
from tests.browser_support import (
    SCREENSHOTS,
    browser_page,
    on_page,
    poll,
    selectbox_value,
    sidebar_link,
    streamlit_server,
    wait_until_idle,
)
from ui import page_list

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (url path, file name, text that proves the page rendered its result), from the one page list
PAGES = [(p.url_path, p.slug, p.proof) for p in page_list.PAGES if p.url_path != "annotate" and p.section != "Admin"]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """One server on the bundled demo for the pages and the annotation tests: ``(url, database URL, cache folder)``."""
    if not (DEMO_DIR.is_dir() and DEMO_MODEL_JSON.is_file()):
        pytest.fail("The bundled demo data and model are missing (data/demo, data/model).")
    folder = tmp_path_factory.mktemp("browser")
    env = {"DISPLASIA_CACHE_DIR": str(folder / "cache"), "DISPLASIA_DB": f"sqlite:///{folder / 'annotations.sqlite'}"}
    with streamlit_server(env) as url:
        yield url, env["DISPLASIA_DB"], folder / "cache"


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server[0]


@pytest.fixture(scope="module")
def page():
    with browser_page() as p:
        yield p


MAP_IMG = "[data-testid='stMain'] .dn-map img"


def heatmap_images(page) -> list[str]:
    """The maps on the page: each is one picture (a data URL) of the map blended over the cell."""
    return page.eval_on_selector_all(MAP_IMG, "els => els.map(e => e.getAttribute('src'))")


@pytest.mark.parametrize("path, name, proof", PAGES)
def test_page_shows_result(server, page, path, name, proof):
    page.goto(f"{server}/{path}")
    wait_until_idle(page)
    page.get_by_text(proof, exact=False).first.wait_for(state="visible", timeout=240_000)
    wait_until_idle(page)
    assert not page.locator("[data-testid='stException']").count()
    if path not in ("home", "model", "projection", "summary", "concepts"):
        assert "score P(normal)" in page.inner_text("[data-testid='stMain']")
        page.locator(MAP_IMG).first.wait_for(state="attached", timeout=60_000)
        if path == "background":
            assert page.locator("[data-testid='stMain'] .dn-map").count() >= 2, "original and masked cell not drawn"
        else:
            assert heatmap_images(page), "no map drawn"
            assert page.locator("[data-testid='stMain'] .dn-map-bar .dn-tick").count(), "no colour bar"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_a_click_on_a_gallery_tile_makes_it_the_current_cell(server, page):
    """The gallery page is one element of tiles; a click (or Enter) on a tile selects the cell
    everywhere: the URL, the tile's mark and the sidebar's cell picker."""
    page.goto(server)
    tiles = page.locator("[data-testid='cellTile']")
    tiles.first.wait_for(state="visible", timeout=120_000)
    wait_until_idle(page)
    assert tiles.count() == 48 and page.locator("[data-testid='cellTile'].dn-current").count() == 1
    names = tiles.locator(".dn-name").all_inner_texts()
    for how, index in (("click", 5), ("Enter", 7)):
        wanted = names[index]
        tile = tiles.nth(index)
        tile.click() if how == "click" else (tile.focus(), page.keyboard.press("Enter"))
        moved = poll(lambda: urlparse(page.url).query and parse_qs(urlparse(page.url).query).get("cell") == [wanted],
                     page=page)
        assert moved, f"{how}: the URL says {page.url}, not cell={wanted}"
        wait_until_idle(page)
        assert page.locator("[data-testid='cellTile'].dn-current .dn-name").inner_text() == wanted
        assert selectbox_value(page, "Current cell") == wanted
    assert not page.locator("[data-testid='stException']").count()


def test_a_map_gives_its_value_on_hover_and_zooms(server, page):
    """The map element keeps what the plotly figure offered: the block value and the pixel on
    hover, zoom (double click, Ctrl + wheel) and back to the whole picture; a plain wheel
    leaves the map alone (it scrolls the page)."""
    page.goto(f"{server}/saliency")
    wait_until_idle(page)
    frame = page.locator("[data-testid='stMain'] [data-testid='mapFrame']").first
    frame.wait_for(state="visible", timeout=240_000)
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    centre = (box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.move(*centre)
    tip = frame.locator(".dn-map-tip")
    tip.wait_for(state="visible", timeout=10_000)
    text = tip.inner_text()
    assert text.startswith("pixel x ") and ": " in text and "n/a" not in text, text
    root = page.locator("[data-testid='stMain'] [data-testid='mapImage']").first
    zoom = lambda: float(root.get_attribute("data-zoom") or 0)  # noqa: E731
    assert zoom() == 1.0
    page.mouse.wheel(0, 300)                                       # a plain wheel: the page, not the map
    page.wait_for_timeout(300)
    assert zoom() == 1.0
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()                                     # the page scrolled: the map moved
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -400)
    page.keyboard.up("Control")
    assert poll(lambda: zoom() > 1.5, page=page), "Ctrl + wheel did not zoom"
    frame.dblclick()
    assert poll(lambda: zoom() == 1.0, page=page), "a double click on a zoomed map did not show it whole"
    box = frame.bounding_box()
    centre = (box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.dblclick(*centre)
    assert poll(lambda: zoom() == 3.0, page=page), "a double click did not zoom in"
    page.mouse.move(centre[0] + 3, centre[1] + 3)
    assert tip.inner_text().startswith("pixel x ")                # hover still reads the zoomed picture
    assert not page.locator("[data-testid='stException']").count()


def test_map_downloads_are_made_on_click(server, page):
    """The PNG / NPY / JSON of a map are built when clicked (not on every rerun): the files
    must still arrive, whole."""
    import io
    import json

    import numpy as np

    page.goto(f"{server}/saliency")
    wait_until_idle(page)
    page.get_by_text("SmoothGrad").first.wait_for(state="visible", timeout=240_000)
    main = "[data-testid='stMain'] [data-testid='stDownloadButton'] button"
    got = {}
    for kind in ("PNG", "NPY", "JSON"):
        with page.expect_download(timeout=120_000) as info:
            page.locator(main, has_text=kind).first.click()
        got[kind] = (info.value.suggested_filename, Path(info.value.path()).read_bytes())
    assert got["PNG"][0].endswith(".png") and got["PNG"][1][:8] == b"\x89PNG\r\n\x1a\n"
    raw = np.load(io.BytesIO(got["NPY"][1]), allow_pickle=False)
    assert raw.dtype == np.float32 and raw.ndim == 2 and np.isfinite(raw).all()
    meta = json.loads(got["JSON"][1])
    assert meta["method"] == "saliency" and meta["scale"][0] <= meta["scale"][1]


def test_parameter_change_gives_a_new_map(server, page):
    page.goto(f"{server}/occlusion")
    wait_until_idle(page)
    page.get_by_text("largest reduction").first.wait_for(state="visible", timeout=240_000)
    # the map draws after the text arrives: an empty "before" would make the first drawing look like a change
    page.locator(MAP_IMG).first.wait_for(state="attached", timeout=60_000)
    wait_until_idle(page)
    before = heatmap_images(page)
    assert before and "occlusion.fill=mean" in page.url, page.url
    page.get_by_role("combobox", name="Fill", exact=True).click()
    page.get_by_role("option", name="grey").click()
    after = poll(lambda: (lambda now: now if now and now != before else None)(heatmap_images(page)), timeout=240)
    assert after and after != before, "the map did not change with the fill"
    assert selectbox_value(page, "Fill", where="[data-testid='stMain']") == "grey"
    # page.url is only current while Playwright handles events: wait on them, never sleep
    page.wait_for_url(lambda url: "occlusion.fill=grey" in url, timeout=120_000)


def canvas_pixels(page, x: float, y: float, radius: int = 5) -> list[list[int]]:
    """RGBA pixels of the drawing layer (above the background canvas) around CSS pixel (x, y)."""
    return page.locator("canvas.dc-canvas.lower-canvas").first.evaluate(
        """(c, [x, y, r]) => { const b = c.getBoundingClientRect(); const k = c.width / b.width;
              const d = c.getContext('2d').getImageData(Math.round(x * k) - r, Math.round(y * k) - r, 2 * r + 1, 2 * r + 1).data;
              const out = []; for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
              return out; }""",
        [x, y, radius])


def test_annotation_survives_reload(demo_server, page):
    from core.annotations.store import AnnotationStore

    url, db, _ = demo_server
    page.goto(f"{url}/annotate")
    wait_until_idle(page)
    page.get_by_label("Annotator", exact=True).fill("dr-browser")
    page.get_by_label("Annotator", exact=True).press("Enter")
    wait_until_idle(page)
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible", timeout=120_000)
    box = canvas.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] * 0.2
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for step in range(1, 41):
        import math

        angle = 2 * math.pi * step / 40
        page.mouse.move(cx + r * math.cos(angle), cy + r * math.sin(angle), steps=2)
    page.mouse.up()
    wait_until_idle(page)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("granular", exact=True).first.wait_for()
    main.get_by_text("transparent", exact=True).first.click()
    wait_until_idle(page)
    main.get_by_role("radiogroup", name="Cell condition").get_by_text("dysplastic", exact=True).click()
    wait_until_idle(page)
    saved = poll(lambda: [a for a in AnnotationStore(db).all_latest()
                          if a.annotator == "dr-browser" and a.condition.value == "dysplastic"])
    assert saved and saved[0].annotator == "dr-browser"
    assert saved[0].cytoplasm.state.value == "transparent" and saved[0].condition.value == "dysplastic"
    assert saved[0].shapes, "the stroke was not stored"

    page.reload()
    wait_until_idle(page)
    page.get_by_label("Annotator", exact=True).fill("dr-browser")
    page.get_by_label("Annotator", exact=True).press("Enter")
    wait_until_idle(page)
    page.locator("canvas.lower-canvas").first.wait_for(state="visible")
    page.wait_for_timeout(1500)
    main = page.locator("[data-testid='stMain']")
    assert main.get_by_role("radiogroup", name="Cytoplasm").get_by_label("transparent").is_checked()
    assert main.get_by_role("radiogroup", name="Cell condition").get_by_label("dysplastic").is_checked()
    box = page.locator("canvas.lower-canvas").first.bounding_box()
    # the stroke is drawn in the transparent-cytoplasm colour #cb4335 (203, 67, 53)
    reddish = poll(lambda: any(r > g + 60 and r > b + 60 for r, g, b, _ in
                               canvas_pixels(page, box["width"] / 2 + box["width"] * 0.2, box["height"] / 2)), timeout=30)
    assert reddish, "the stroke is not on the reloaded canvas"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "annotate.png"))


# ------------------------------------------------------------------ the chosen model survives everything

@pytest.fixture(scope="module")
def model_server(tmp_path_factory, demo_server):
    import shutil

    from core.config import DEMO_MODEL_KERAS
    from core.explain.testing import tiny_cnn

    folder = tmp_path_factory.mktemp("models")
    configured = folder / "configured.keras"
    shutil.copy(DEMO_MODEL_KERAS, configured)
    upload = folder / "mine.keras"
    tiny_cnn(32, seed=3).save(upload)
    # The configured model is the demo's network, so the maps the page tests computed on the demo
    # server are this server's too: the shared cache folder (made for several servers) spares the
    # page visits recomputing them; this test is about which model every page shows, not computing.
    env = {"DISPLASIA_MODEL": str(configured), "DISPLASIA_CACHE_DIR": str(demo_server[2]),
           "DISPLASIA_DB": f"sqlite:///{folder / 'annotations.sqlite'}", "DISPLASIA_PREFETCH_CPU_SECONDS": "0"}
    with streamlit_server(env) as url:
        yield url, upload


def model_shown(page) -> str:
    return selectbox_value(page, "Model")


def url_model(page) -> str | None:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(page.url).query).get("model", [None])[0]


def visit_every_page(page, expected: str) -> None:
    """Click through every page of the sidebar; the chosen model must stay, in the picker and the URL."""
    key = url_model(page)
    assert key, page.url
    for info in page_list.PAGES:
        sidebar_link(page, info.title).click()
        # the page's run writes the selection into the address: wait for it (fails on timeout if it never comes)
        try:
            page.wait_for_url(lambda url, info=info: on_page(url, info) and f"model={key}" in url, timeout=180_000)
        except PlaywrightTimeout:
            pytest.fail(f"{info.title}: after 180 s the address is {page.url} (wanted model={key}); the picker shows "
                        f"{model_shown(page)!r}; the page says {page.inner_text('[data-testid=stMain]')[:300]!r}")
        wait_until_idle(page)
        assert expected in model_shown(page), f"{info.title}: the picker shows {model_shown(page)!r}"


@contextmanager
def extra_page(page, width: int, height: int):
    """A fresh browser session (own cookies) in the module's Chromium: a second Playwright
    would fail inside the first one's event loop."""
    tab = page.context.browser.new_page(viewport={"width": width, "height": height})
    tab.set_default_timeout(120_000)
    try:
        yield tab
    finally:
        tab.context.close()


def test_configured_uploaded_and_shared_models_survive_every_page(model_server, page):
    url, upload = model_server
    browser = page
    with extra_page(browser, 1440, 900) as page:
        page.goto(url)
        wait_until_idle(page)
        page.get_by_text("cells scored.", exact=False).first.wait_for(state="visible", timeout=600_000)
        assert "Configured: configured.keras" in model_shown(page)
        visit_every_page(page, "Configured: configured.keras")
        # upload another model: it becomes the model of every page until another is picked
        configured_key = url_model(page)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Use your own model").click()
        sidebar.locator("input[type='file']").first.set_input_files(str(upload))
        sidebar.get_by_role("button", name="Use uploaded model").click()
        wait_until_idle(page)
        poll(lambda: "Uploaded: mine.keras" in model_shown(page), timeout=120)
        assert "Uploaded: mine.keras" in model_shown(page)
        assert poll(lambda: url_model(page) not in (None, configured_key), timeout=120, page=page), \
            f"the URL kept the old model {configured_key}: {page.url}"
        visit_every_page(page, "Uploaded: mine.keras")
        shared = page.url
        sidebar.get_by_role("combobox", name="Model", exact=True).click()
        listed = [o.inner_text() for o in page.get_by_role("option").all()]
        page.keyboard.press("Escape")
        assert len(listed) == len(set(listed)), f"duplicate model entries: {listed}"
    # a colleague opening the link (a new browser session) gets the same model ...
    with extra_page(browser, 1440, 900) as other:
        other.goto(shared)
        wait_until_idle(other)
        assert "Uploaded: mine.keras" in model_shown(other)
        visit_every_page(other, "Uploaded: mine.keras")
        # ... and a link to a model this server does not have says so
        other.goto(f"{url}/?model=0123456789abcdef")
        # wait for the notice itself: right after goto the new session's run may not have begun,
        # so "idle" alone can be the moment before it
        other.get_by_text("which this server does not have", exact=False).first.wait_for(state="visible",
                                                                                        timeout=120_000)


def test_annotate_fits_1440x900_and_remembers_the_name(demo_server, page):
    """Canvas and score panel above the fold of a 1440 x 900 window; the name comes back after a reload."""
    url, _, _ = demo_server
    with extra_page(page, 1440, 900) as page:
        page.goto(f"{url}/annotate")
        wait_until_idle(page)
        page.get_by_label("Annotator", exact=True).fill("dr-fit")
        page.get_by_label("Annotator", exact=True).press("Enter")
        wait_until_idle(page)
        canvas = page.locator("canvas.upper-canvas").first
        canvas.wait_for(state="visible", timeout=120_000)
        total = page.locator("[data-testid='stMetric']", has_text="Total S_t").first
        for name, box in (("canvas", canvas.bounding_box()), ("total score", total.bounding_box())):
            assert box["y"] + box["height"] <= 900, f"the {name} ends at {box['y'] + box['height']:.0f} px"
        assert page.get_by_text("Outline colours", exact=False).first.is_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "annotate_1440x900.png"))
        # the page stores the name with a script it sends after the run: reloading before that
        # script ran (a loaded machine) would test nothing
        assert poll(lambda: any(c["name"] == "displasia_annotator" for c in page.context.cookies()), page=page), \
            "the browser never stored the name"
        page.reload()
        wait_until_idle(page)
        field = page.get_by_label("Annotator", exact=True)
        shown = poll(lambda: field.input_value() == "dr-fit", timeout=30, page=page)
        assert shown, (f"name not remembered: field {field.input_value()!r}, "
                       f"cookies {[c['name'] for c in page.context.cookies()]}, url {page.url}")
