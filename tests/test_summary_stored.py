"""The Summary page's study tables come from stored scores and the annotation database (no
TensorFlow): they must equal the tables of the full study (images, model, outlines)."""
from __future__ import annotations

import os

import numpy as np

from core.annotations.schema import Annotation
from core.annotations.store import AnnotationStore
from core.preprocess import image_hash
from core.summary import load_study
from core.summary.tables import per_image_table
from tests.test_app import run_page, tiny_env, wait_for_scores  # noqa: F401  (fixture)


def test_stored_table_equals_the_full_study_table(tiny_env):  # noqa: F811 (the imported fixture)
    cells = tiny_env
    store = AnnotationStore(os.environ["DISPLASIA_DB"])
    td = cells / "TD_SNE_2.jpg"
    store.save(Annotation.from_json({
        "schema": "displasia-annotation/1", "image": td.name, "image_sha256": image_hash(td), "annotator": "dr-a",
        "image_size": [40, 40], "condition": "dysplastic", "cytoplasm": {"state": "transparent", "degree": 2},
        "chromatin": {"state": "homogenic", "degree": 1}, "lobes": {"state": "hyposegmented"},
        "shapes": [{"label": "cytoplasm", "points": [[5, 5], [35, 5], [35, 35], [5, 35]]},
                   {"label": "nucleus", "points": [[15, 15], [25, 15], [25, 25], [15, 25]]}]}))
    wait_for_scores(run_page())                        # the gallery stores every score
    at = run_page("pages/summary.py")
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    from core.model_io import load_model

    full = per_image_table(load_study(cells, load_model(os.environ["DISPLASIA_MODEL"]), store=store))
    assert list(shown["name"]) == list(full["name"])
    np.testing.assert_allclose(shown["score"].astype(float), full["score"].astype(float), atol=1e-5)
    for column in ("group", "prediction", "label", "total", "condition", "annotator", "regions"):
        assert shown[column].astype(str).tolist() == full[column].astype(str).tolist(), column
    row = full[full["name"].str.startswith("TD_SNE_2")].iloc[0]
    assert row["regions"] == "annotation: dr-a" and row["condition"] == "dysplastic"
