"""AppTest: every page of the dashboard renders without exception, and the sidebar works."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import REPO_ROOT
from ui import page_list

APP = str(REPO_ROOT / "app.py")
PAGES = [p.script for p in page_list.PAGES]


@pytest.fixture
def tiny_env(tmp_path, monkeypatch, tiny_model_file):
    cells = tmp_path / "cells"
    cells.mkdir()
    rng = np.random.default_rng(7)
    for name in ["TN_SNE_1.jpg", "TD_SNE_2.jpg", "WN_SNE_3.jpg", "unknown.png"]:
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(cells / name)
    monkeypatch.setenv("DISPLASIA_MODEL", str(tiny_model_file))
    monkeypatch.setenv("DISPLASIA_DATASET", str(cells))
    monkeypatch.setenv("DISPLASIA_DATA_ROOTS", str(tmp_path))
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DISPLASIA_DB", f"sqlite:///{tmp_path / 'annotations.sqlite'}")
    monkeypatch.setenv("DISPLASIA_PREFETCH_CPU_SECONDS", "0")    # no background maps racing the tests' own
    forget_scoring_jobs(monkeypatch)
    return cells


def forget_scoring_jobs(monkeypatch) -> None:
    """Each test is a fresh server: no scoring job (and no failure kept for 30 s) of an earlier
    test with the same shared model file may answer for this one."""
    from ui import resources

    monkeypatch.setattr(resources, "_jobs", {})


def run_page(page: str | None = None, query=None, state=None) -> AppTest:
    """One fresh run. AppTest re-runs only the page script after the first run (the router's
    sidebar is then absent from its tree), so each scenario starts from a fresh AppTest with
    the session state or URL it needs; real-browser tests cover live interaction."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def wait_for_scores(at: AppTest, timeout: float = 120.0) -> AppTest:
    """Let the background scoring jobs finish, then rerun: the gallery shows every score.
    (In a browser the gallery's fragment polls instead; AppTest does not run fragment timers.)"""
    import time

    from ui import resources

    deadline = time.monotonic() + timeout
    while any(not job.finished for job in list(resources._jobs.values())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return at.run()


def wait_for_evidence(at: AppTest, timeout: float = 600.0) -> AppTest:
    """Let the background evidence computation finish, then rerun (the page polls in a browser)."""
    import time

    from ui import summary

    deadline = time.monotonic() + timeout
    while any(not job.finished for job in list(summary._jobs.values())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return at.run()


@pytest.fixture
def demo_env(tmp_path, monkeypatch, demo_cache):
    """The bundled demo dataset and model, with the module's demo cache and a private database."""
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(demo_cache))
    monkeypatch.setenv("DISPLASIA_DB", f"sqlite:///{tmp_path / 'annotations.sqlite'}")
    monkeypatch.setenv("DISPLASIA_PREFETCH_CPU_SECONDS", "0")
    for name in ("DISPLASIA_MODEL", "DISPLASIA_DATASET", "DISPLASIA_DATA_ROOTS"):
        monkeypatch.delenv(name, raising=False)


# The demo checks are about the real model rendering on every page, not about sample counts:
# LIME's 700 samples x 3 stability runs and SmoothGrad's 40 are what made Compare slow.
CHEAP_SAMPLING = {"lime.samples": 50, "lime.stability_runs": 1, "smoothgrad.samples": 5}


#: Pages whose maps and pictures are ui.map_image elements (the others draw plotly figures).
MAP_PAGES = {f"pages/{name}.py" for name in ("compare", "feature_maps", "saliency", "occlusion", "lime", "cams",
                                              "background")}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_demo(demo_env, page):
    at = run_page(page, state={"annotator_name": "dr-demo", **CHEAP_SAMPLING})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if page in MAP_PAGES:
        assert map_pictures(at), "no map on the page"
    elif page not in ("pages/home.py", "pages/model.py", "pages/summary.py", "pages/annotate.py", "pages/admin.py"):
        assert at.get("plotly_chart"), "no figure on the page"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(tiny_env, page):
    at = run_page(page)
    assert not at.exception, at.exception
    assert at.title[0].value


def gallery_tiles(at: AppTest) -> list[dict]:
    """The tiles of the gallery page as the browser receives them (one component element)."""
    import json

    found = [e for e in at.get("bidi_component") if e.proto.component_name == "displasia.cell_tiles"]
    return json.loads(found[0].proto.json)["tiles"] if found else []


def map_pictures(at: AppTest) -> list[dict]:
    """The maps and pictures of a page as the browser receives them (ui.map_image elements)."""
    import json

    return [json.loads(e.proto.json) for e in at.get("bidi_component") if e.proto.component_name == "displasia.map_image"]


def test_home_gallery_shows_scores_and_the_current_cell(tiny_env):
    at = wait_for_scores(run_page())
    assert not at.exception
    tiles = {t["name"]: t for t in gallery_tiles(at)}
    assert sorted(tiles) == ["TD_SNE_2.jpg", "TN_SNE_1.jpg", "WN_SNE_3.jpg", "unknown.png"]
    assert all("→" in t["score"] and "nan" not in t["score"] for t in tiles.values())
    assert all(t["src"].startswith("data:image/webp;base64,") for t in tiles.values())
    from base64 import b64decode
    from io import BytesIO

    from PIL import Image
    sent = Image.open(BytesIO(b64decode(tiles["TN_SNE_1.jpg"]["src"].split(",", 1)[1])))
    assert sent.format == "WEBP" and max(sent.size) <= 160      # at most THUMBNAIL_SIZE a side
    assert tiles["TN_SNE_1.jpg"]["label"].startswith("label: normal")
    assert tiles["unknown.png"]["label"] == "label: unlabelled"          # no class prefix, no tick or cross
    assert at.metric[0].value == "4"
    assert at.query_params["cell"] == "TD_SNE_2.jpg"  # the first cell becomes current
    assert [n for n, t in tiles.items() if t["current"]] == ["TD_SNE_2.jpg"]
    # (a click on a tile is a browser event: tests/test_browser.py clicks one)


@pytest.mark.parametrize("threshold, dysplastic", [(0.001, "0"), (0.999, "4")])
def test_threshold_changes_predictions(tiny_env, threshold, dysplastic):
    at = wait_for_scores(run_page(state={"threshold": threshold}))
    assert not at.exception
    assert at.metric[1].value == dysplastic
    assert at.query_params["threshold"] == f"{threshold:g}"


def test_url_restores_selection(tiny_env):
    at = run_page(query={"cell": "WN_SNE_3.jpg", "target": "normal", "threshold": "0.5"})
    assert not at.exception
    assert at.session_state["cell"] == "WN_SNE_3.jpg" and at.session_state["target"] == "normal"
    assert at.session_state["threshold"] == 0.5


def test_url_cannot_open_folders_outside_data_roots(tiny_env, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    at = run_page(query={"dataset": str(outside)})
    assert at.session_state["dataset_root"] == str(tiny_env)


def test_folder_check(tiny_env, tmp_path_factory):
    from ui.sidebar import is_allowed_folder

    at = run_page()  # gives the sidebar module a session to read
    assert not at.exception
    assert not is_allowed_folder(tmp_path_factory.mktemp("elsewhere"))
    assert not is_allowed_folder(tiny_env / ".." / ".." / "..")


def test_broken_model_is_one_red_line(tiny_env, monkeypatch, tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"nope")
    monkeypatch.setenv("DISPLASIA_MODEL", str(tmp_path / "broken.keras"))
    # The gallery loads the model in its background scoring job and shows the job's error; a view
    # restarts a failed job first, so the line shows when the restarted job fails within that run
    # (the broken file fails at once, but under load not always in time): give it a few runs.
    at = wait_for_scores(run_page())
    for _ in range(10):
        if any("not a valid .keras" in e.value for e in at.error):
            break
        wait_for_scores(at)
    assert not at.exception
    assert any("not a valid .keras" in e.value for e in at.error)


def test_annotate_autosaves_and_reloads(tiny_env):
    from core.annotations.store import AnnotationStore
    from core.config import database_url

    at = run_page("pages/annotate.py", state={"annotator_name": "dr-a"})
    assert not at.exception
    assert [m.value for m in at.metric] == ["+0", "+0", "+0", "+0"]
    degree = next(s for s in at.slider if s.key.startswith("cyto_degree"))
    degree.set_value(3).run()
    condition = next(r for r in at.radio if r.key.startswith("condition"))
    condition.set_value("dysplastic").run()
    assert [m.value for m in at.metric] == ["-3", "+0", "+0", "-3"]
    assert any("reads normal" in w.value for w in at.warning)  # total -3 vs condition dysplastic
    store = AnnotationStore(database_url())
    saved = [a for a in store.all_latest() if a.annotator == "dr-a"]
    assert len(saved) == 1 and saved[0].cytoplasm.degree == 3
    assert saved[0].condition.value == "dysplastic"
    # A fresh session (browser closed and reopened) finds the reading again.
    again = run_page("pages/annotate.py", state={"annotator_name": "dr-a"})
    assert [m.value for m in again.metric] == ["-3", "+0", "+0", "-3"]
    # two edits within the coalescing window are one version holding the last edit; viewing saved nothing new
    assert len(store.history(saved[0].image_sha256, "dr-a")) == 1


def test_annotate_needs_a_name(tiny_env):
    at = run_page("pages/annotate.py")
    assert not at.exception
    assert any("Enter your name" in i.value for i in at.info)


def test_summary_computes_evidence_and_report(tiny_env):
    first = run_page("pages/summary.py")
    assert not first.exception
    assert not first.multiselect, "only the open tab (the study tables) is built"
    at = run_page("pages/summary.py", state={"summary_tab": "Where methods look"})
    assert not at.exception
    at.multiselect[0].set_value(["saliency", "gradcam"])
    at.multiselect[1].set_value([20])
    at.number_input[0].set_value(5)
    at.number_input[1].set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    wait_for_evidence(at)
    assert not at.exception, at.exception
    assert any("Evidence computed in" in c.value for c in at.caption)
    titles = " ".join(m.value for m in at.markdown)
    assert "Relevance mass per method" in titles and "Deletion / insertion AUC" in titles
    assert any(b.label == "Download the HTML report" for b in at.get("download_button"))
    at.button(key="build_cell_report").click().run()
    assert not at.exception, at.exception
    assert any(b.label.startswith("Download the report of") for b in at.get("download_button"))


# (page, method whose cache key is logged, widget kind, widget key, new value)
PARAMETER_WIDGETS = [
    ("pages/saliency.py", "smoothgrad", "number_input", "w:smoothgrad.samples", 3),
    ("pages/saliency.py", "smoothgrad", "number_input", "w:smoothgrad.noise", 0.3),
    ("pages/saliency.py", "smoothgrad", "number_input", "w:smoothgrad.seed", 7),
    ("pages/occlusion.py", "occlusion", "selectbox", "w:occlusion.patch_choice", "10"),
    ("pages/occlusion.py", "occlusion", "number_input", "w:occlusion.stride", 5),
    ("pages/occlusion.py", "occlusion", "selectbox", "w:occlusion.fill", "grey"),
    ("pages/lime.py", "lime", "number_input", "w:lime.samples", 50),
    ("pages/lime.py", "lime", "number_input", "w:lime.ratio", 0.3),
    ("pages/lime.py", "lime", "number_input", "w:lime.kernel_size", 3.0),
    ("pages/lime.py", "lime", "number_input", "w:lime.max_dist", 50.0),
    ("pages/lime.py", "lime", "number_input", "w:lime.sigma", 1.0),
    ("pages/lime.py", "lime", "number_input", "w:lime.kernel_width", 0.5),
    ("pages/lime.py", "lime", "number_input", "w:lime.top_k", 3),
    ("pages/lime.py", "lime", "selectbox", "w:lime.fill", "grey"),
    ("pages/lime.py", "lime", "number_input", "w:lime.seed", 4),
    ("pages/cams.py", "gradcam", "selectbox", "w:cam.layer", "conv2d_1"),
    ("pages/cams.py", "scorecam", "radio", "w:cam.evidence", "signed"),
    ("pages/projection.py", "features", "number_input", "w:features.perplexity", 2.0),
    ("pages/projection.py", "features", "number_input", "w:features.seed", 3),
]


@pytest.mark.parametrize("page, method, kind, key, value", PARAMETER_WIDGETS)
def test_parameter_change_gives_new_map_and_old_setting_returns_from_cache(tiny_env, page, method, kind, key, value):
    # AppTest cannot clear a number input back to "empty", so optional values start set.
    at = run_page(page, state={"occlusion.stride": 10} if key == "w:occlusion.stride" else None)
    assert not at.exception, at.exception
    first = dict(at.session_state["explain_log"][method])
    widget = getattr(at, kind)(key=key)
    old = widget.value
    widget.set_value(value).run()
    assert not at.exception, at.exception
    changed = at.session_state["explain_log"][method]
    assert changed["key"] != first["key"] and not changed["from_cache"]
    getattr(at, kind)(key=key).set_value(old).run()
    back = at.session_state["explain_log"][method]
    assert back["key"] == first["key"] and back["from_cache"]
    assert at.query_params[key[2:]] in (str(old), f"{old}")


def test_query_string_round_trip(tiny_env):
    query = {"smoothgrad.samples": "7", "smoothgrad.noise": "0.25", "cmap": "viridis", "signed": "true",
             "cell": "ZD_SNE_2.jpg" if False else "WN_SNE_3.jpg", "target": "normal"}
    at = run_page("pages/saliency.py", query=query)
    assert not at.exception
    assert at.session_state["smoothgrad.samples"] == 7 and at.session_state["smoothgrad.noise"] == 0.25
    assert at.session_state["cmap"] == "viridis" and at.session_state["signed"] is True
    assert at.session_state["cell"] == "WN_SNE_3.jpg" and at.session_state["target"] == "normal"
    for key, value in query.items():
        assert at.query_params[key] == value


def test_blank_positive_cam_is_explained_not_silent(demo_env):
    from core.config import DEMO_DIR

    normal = sorted(p.name for p in DEMO_DIR.glob("TN_*.jpg"))[0]
    at = run_page("pages/cams.py", state={"cell": normal, "target": "dysplastic"})
    assert not at.exception
    blank = [i.value for i in at.info if "Nothing in this cell supports 'dysplastic'" in i.value]
    signed = run_page("pages/cams.py", state={"cell": normal, "target": "dysplastic", "cam.evidence": "signed"})
    assert not signed.exception
    assert not [i.value for i in signed.info if "Nothing in this cell" in i.value]
    assert blank, "a clearly normal cell should have no positive Grad-CAM evidence for dysplastic"


def test_prefetch_computes_the_compare_set_of_the_current_cell(tiny_env, monkeypatch):
    import time

    from core.explain import method_names
    from ui import warm

    monkeypatch.setenv("DISPLASIA_PREFETCH_CPU_SECONDS", "600")
    at = run_page()
    assert not at.exception
    plan = warm._plan
    assert plan is not None and plan.cells[0][0] == at.session_state["cell"]
    deadline = time.monotonic() + 300
    while not plan.finished and time.monotonic() < deadline:
        time.sleep(0.2)
    assert plan.error is None, plan.error
    assert [name for name, _ in plan.cells] == ["TD_SNE_2.jpg", "TN_SNE_1.jpg", "WN_SNE_3.jpg"]
    done_here = {m for cell, m in plan.done if cell == plan.cells[0][0]}
    assert set(method_names(compare=True)) <= done_here
    compare = run_page("pages/compare.py")
    log = compare.session_state["explain_log"]
    assert all(log[m]["from_cache"] for m in method_names(compare=True) if m in log)
    assert any(m in log for m in method_names(compare=True))


def test_uploaded_model_stays_chosen_and_is_in_the_url(tiny_env, tmp_path_factory):
    from core.explain.testing import tiny_cnn
    from ui import models
    from ui.resources import ModelChoice

    other = tmp_path_factory.mktemp("upload") / "other.keras"          # outside the data roots, like an upload
    tiny_cnn(seed=5).save(other)
    upload = ModelChoice("Uploaded: other.keras", str(other), None, "uploaded")
    at = run_page(state={"uploaded_models": [upload], "model_choice": upload})
    assert not at.exception
    key = at.query_params["model"]
    assert at.sidebar.selectbox(key="model_select").value == models.key_of(upload)
    for page in ("pages/model.py", "pages/annotate.py", "pages/home.py"):
        at.switch_page(page).run()
        assert at.session_state["model_choice"].path == str(other), page
    # a shared link opens the same model in another session of this server ...
    shared = run_page(query={"model": key})
    assert shared.session_state["model_choice"].path == str(other)
    # ... and a link to a model this server does not have says so
    missing = run_page(query={"model": "0123456789abcdef"})
    assert any("does not have" in w.value for w in missing.sidebar.warning)
    assert missing.session_state["model_choice"].kind in ("configured", "bundled")


def test_evidence_can_be_stopped_and_shows_partial_results(tiny_env):
    from ui import summary

    at = run_page("pages/summary.py", state={"summary_tab": "Where methods look"})
    at.multiselect[0].set_value(["saliency", "gradcam", "occlusion"])
    at.multiselect[1].set_value([5, 10])
    at.button[0].click().run()
    job = next(j for j in summary._jobs.values() if j.key[1] == ("saliency", "gradcam", "occlusion"))
    job.stop = True                                   # what the Stop button sets
    wait_for_evidence(at)
    assert job.finished and job.stage == "stopped" and job.error is None
    assert any("Stopped" in w.value for w in at.warning)
    assert job.result is not None                      # the partial summary (study tables at least)


def test_model_page_says_what_the_demo_model_was_trained_on():
    import json

    from core.config import DEMO_METRICS

    version = json.loads(DEMO_METRICS.read_text())["generator_version"]
    at = run_page("pages/model.py")
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any("generated cells only" in c and f"generator {version}" in c for c in captions), captions
