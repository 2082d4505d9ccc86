"""Study tables on a hand-made annotation set, every expected value worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.annotations.schema import Annotation, Graded
from core.datasets import Cell
from core.summary.background import background_summary
from core.summary.occlusion import occlusion_summary
from core.summary.study import Study, outcome_group
from core.summary.tables import (
    agreement_table,
    confusion,
    disagreements,
    flat_columns,
    per_image_table,
    scatter_data,
    score_correlations,
    score_summary,
)

# name, label, score, (cytoplasm state, degree), (chromatin state, degree), lobes, condition
CELLS = [
    ("TN_a.jpg", "normal", 0.99, ("granular", 2), ("homogenic", 1), "normal", "normal"),             # -2 -1 0 = -3
    ("TD_b.jpg", "dysplastic", 0.50, ("transparent", 3), ("heterogenic", 2), "hyposegmented", "dysplastic"),  # 3 2 1 = 6
    ("WN_c.jpg", "normal", 0.60, ("granular", 1), ("heterogenic", 1), "normal", "normal"),           # -1 1 0 = 0
    ("ZD_d.jpg", "dysplastic", 0.20, ("transparent", 1), ("homogenic", 2), "hypersegmented", "normal"),  # 1 -2 1 = 0
    ("TN_e.jpg", "normal", 0.995, None, None, None, None),                                            # unannotated
]


def _annotation(name, cyto, chroma, lobes, condition):
    return Annotation(image=name, image_sha256="0" * 64, annotator="rater", image_size=(10, 10),
                      cytoplasm=Graded(*cyto), chromatin=Graded(*chroma), lobes=lobes, condition=condition)


@pytest.fixture(scope="module")
def table():
    cells = tuple(Cell(path=None, name=c[0], label=c[1], label_source="prefix", study_group=c[0][:2]) for c in CELLS)
    annotations = tuple(None if c[3] is None else _annotation(c[0], *c[3:]) for c in CELLS)
    study = Study(root=None, cells=cells, loaded=None, images=np.zeros((5, 4, 4, 3), np.float32), rgbs=[None] * 5,
                  scores=np.array([c[2] for c in CELLS], np.float32), annotations=annotations,
                  regions=(None,) * 5, truth=(None,) * 5)
    return per_image_table(study)


def test_per_image_table(table):
    assert list(table["group"]) == ["normal", "dysplastic", "misclassified normal", "dysplastic", "normal"]
    assert list(table["prediction"]) == ["normal", "dysplastic", "dysplastic", "dysplastic", "normal"]
    assert list(table["total"][:4]) == [-3, 6, 0, 0]
    assert list(table["cytoplasm_score"][:4]) == [-2, 3, -1, 1]
    assert list(table["chromatin_score"][:4]) == [-1, 2, 1, -2]
    assert list(table["lobe_score"][:4]) == [0, 1, 0, 1]
    assert list(table["nucleus_score"][:4]) == [-1, 3, 1, -1]
    assert pd.isna(table.loc[4, "total"]) and pd.isna(table.loc[4, "condition"])


def test_outcome_group():
    assert outcome_group("dysplastic", "normal") == "misclassified dysplastic"
    assert outcome_group(None, "normal") == "unlabelled"


def test_score_summary_per_class(table):
    s = score_summary(table).set_index("label")
    assert s.loc["normal", "n"] == 2  # the unannotated normal cell is left out
    assert s.loc["normal", "total_mean"] == pytest.approx(-1.5)
    assert s.loc["normal", "total_min"] == -3 and s.loc["normal", "total_max"] == 0
    assert s.loc["normal", "total_sd"] == pytest.approx(np.sqrt(4.5))
    assert s.loc["normal", "cytoplasm_mean"] == pytest.approx(-1.5)
    assert s.loc["normal", "cytoplasm_sd"] == pytest.approx(np.sqrt(0.5))
    assert s.loc["normal", "nucleus_mean"] == pytest.approx(0.0)
    assert s.loc["dysplastic", "total_mean"] == pytest.approx(3.0)
    assert s.loc["dysplastic", "total_sd"] == pytest.approx(np.sqrt(18))
    assert s.loc["dysplastic", "nucleus_min"] == -1 and s.loc["dysplastic", "nucleus_max"] == 3
    assert s.loc["dysplastic", "cytoplasm_sd"] == pytest.approx(np.sqrt(2))
    assert list(flat_columns(s).columns) == list(s.columns)


def test_scatter_data(table):
    data = scatter_data(table)
    assert len(data) == 12  # 4 annotated cells x 3 scores
    nucleus = data[data["kind"] == "nucleus"].set_index("name")
    assert nucleus.loc["TD_b.jpg", "value"] == 3 and nucleus.loc["WN_c.jpg", "group"] == "misclassified normal"


def test_spearman_of_model_score_with_total(table):
    # ranks of the score 4 2 3 1, of the total 1 4 2.5 2.5: rho = -3 / sqrt(5 * 4.5)
    corr = score_correlations(table).set_index("score")
    assert corr.loc["total", "spearman_rho"] == pytest.approx(-3 / np.sqrt(22.5))
    assert corr.loc["total", "n"] == 4


def test_agreement_and_disagreements(table):
    counts = agreement_table(table)
    assert counts["cells"].sum() == 5
    agree = counts[counts["agree"]]["cells"].sum()
    assert agree == 2  # TN_a and TD_b: label, model and pathologist all agree
    rows = disagreements(table).set_index("name")
    assert list(rows.index) == ["WN_c.jpg", "ZD_d.jpg"]
    assert rows.loc["WN_c.jpg", "disagreement"] == "model vs label; pathologist vs model"
    assert rows.loc["ZD_d.jpg", "disagreement"] == "pathologist vs model; pathologist vs label"
    cross = confusion(table, "condition", "prediction")
    assert cross.loc["normal", "dysplastic"] == 2 and cross.loc["unknown", "normal"] == 1


def test_occlusion_summary_by_hand():
    changes = pd.DataFrame({
        "name": ["a", "b", "a", "b", "c"], "group": None, "label": ["dysplastic", "dysplastic", "dysplastic",
                                                                    "dysplastic", "normal"],
        "patch": [5, 5, 10, 10, 5], "score": 0.5,
        "reduction_pct": [-1.0, -3.0, -10.0, 0.0, -0.2], "increase_pct": [0.5, 1.5, 2.0, 4.0, 0.0]})
    s = occlusion_summary(changes).set_index(["patch", "label"])
    assert s.loc[(5, "dysplastic"), "mean_reduction_pct"] == pytest.approx(-2.0)
    assert s.loc[(5, "dysplastic"), "max_reduction_pct"] == pytest.approx(-3.0)
    assert s.loc[(5, "dysplastic"), "mean_increase_pct"] == pytest.approx(1.0)
    assert s.loc[(10, "dysplastic"), "max_increase_pct"] == pytest.approx(4.0)
    assert s.loc[(5, "normal"), "n"] == 1


def test_background_summary_by_hand():
    table = pd.DataFrame({"name": list("abc"), "group": ["normal", "normal", "dysplastic"],
                          "original": [0.9, 0.7, 0.2], "masked": [0.8, 0.8, 0.6],
                          "difference": [-0.1, 0.1, 0.4], "flipped": [False, True, False]})
    s = background_summary(table).set_index("group")
    assert s.loc["normal", "original_mean"] == pytest.approx(0.8)
    assert s.loc["normal", "original_sd"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    assert s.loc["normal", "difference_mean"] == pytest.approx(0.0)
    assert s.loc["normal", "flipped"] == 1
    assert np.isnan(s.loc["dysplastic", "masked_sd"])
    assert s.loc["all", "n"] == 3 and s.loc["all", "masked_mean"] == pytest.approx(2.2 / 3)
