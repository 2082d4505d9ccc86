"""AppTest: the Concepts page runs TCAV on the demo readings with a tiny model and shows it."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import REPO_ROOT
from tests.test_app import forget_scoring_jobs

APP = str(REPO_ROOT / "app.py")


@pytest.fixture
def demo_cells_tiny_model(tmp_path, monkeypatch, tiny_model_file):
    monkeypatch.setenv("DISPLASIA_MODEL", str(tiny_model_file))
    monkeypatch.setenv("DISPLASIA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DISPLASIA_DB", f"sqlite:///{tmp_path / 'annotations.sqlite'}")
    monkeypatch.setenv("DISPLASIA_PREFETCH_CPU_SECONDS", "0")
    forget_scoring_jobs(monkeypatch)
    for name in ("DISPLASIA_DATASET", "DISPLASIA_DATA_ROOTS"):
        monkeypatch.delenv(name, raising=False)


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def test_tcav_on_annotation_concepts_shows_scores_and_sentences(demo_cells_tiny_model):
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["annotator_name"] = "dr-demo"
    at.run()
    at.switch_page("pages/concepts.py")
    at.run()
    assert not at.exception, at.exception
    assert any("P(normal) of the cell" in m.value for m in at.markdown)  # the current cell's sweep
    assert not [b for b in at.button if b.label == "Run TCAV (cached)"]   # the closed tab is not built
    at.session_state["concepts_tab"] = "TCAV"
    at.run()
    _by_label(at.radio, "Concept sets").set_value("annotations")
    _by_label(at.number_input, "Cells per concept side").set_value(10)
    _by_label(at.number_input, "Runs (CAVs and random CAVs)").set_value(3)
    _by_label(at.number_input, "Random cells").set_value(20)
    _by_label(at.button, "Run TCAV (cached)").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert set(table["concept"]) == {"read transparent", "read heterogenic", "read abnormal lobes", "random control"}
    assert table["what it says"].str.len().min() > 20
    assert len(at.get("plotly_chart")) >= 1  # the TCAV figure (the sweep's tab is closed)
