"""Agreement between annotators, checked on values worked out by hand."""
from __future__ import annotations

import math

import pytest

from core.annotations.agreement import agreement_table, image_agreement, weighted_kappa
from core.annotations.schema import Graded, Shape
from tests.test_annotations_schema import make_annotation


def test_cohen_kappa_by_hand():
    # po = 3/4; marginals A: d .5 n .5, B: d .25 n .75 -> pe = .125 + .375 = .5
    # kappa = (.75 - .5) / (1 - .5) = .5
    assert weighted_kappa(list("ddnn"), list("dnnn"), "dn", weights=None) == pytest.approx(0.5)


def test_quadratic_weighted_kappa_by_hand():
    # Categories 0, 1, 2; weights (i - j)^2 / 4.  A = [0, 1, 2], B = [0, 2, 2].
    # Observed disagreement: one pair (1, 2) -> (1/4) / 3 = 1/12.
    # Marginals A (1/3, 1/3, 1/3), B (1/3, 0, 2/3): expected disagreement
    # = sum_i a_i * sum_j b_j w_ij = 1/3 * [(0 + 0 + 2/3 * 1) + (1/3 * 1/4 + 2/3 * 1/4)
    #   + (1/3 * 1 + 0)] = 1/3 * (2/3 + 1/4 + 1/3) = 5/12
    # kappa = 1 - (1/12) / (5/12) = 0.8
    assert weighted_kappa([0, 1, 2], [0, 2, 2], [0, 1, 2]) == pytest.approx(0.8)


def test_kappa_is_undefined_when_chance_agreement_is_total():
    assert math.isnan(weighted_kappa(["n", "n"], ["n", "n"], "dn", weights=None))


def test_kappa_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    a, b = [-3, -1, 0, 2, 3, 1, -2], [-2, -1, 1, 2, 3, 3, -3]
    cats = list(range(-3, 4))
    assert weighted_kappa(a, b, cats) == pytest.approx(
        sklearn.cohen_kappa_score(a, b, labels=cats, weights="quadratic"))


def _square(label, x0, y0, side):
    return Shape(label, ((x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)))


def test_agreement_table_on_a_hand_made_pair():
    sha1, sha2 = "11" * 32, "22" * 32
    ana = [make_annotation(image="a.jpg", image_sha256=sha1, annotator="ana", condition="dysplastic",
                           cytoplasm=Graded("transparent", 2), chromatin=Graded("heterogenic", 1),
                           lobes="hyposegmented",
                           shapes=(_square("cytoplasm", 0, 0, 100), _square("nucleus", 0, 0, 50))),
           make_annotation(image="b.jpg", image_sha256=sha2, annotator="ana", condition="normal",
                           shapes=())]
    ben = [make_annotation(image="a.jpg", image_sha256=sha1, annotator="ben", condition="dysplastic",
                           cytoplasm=Graded("transparent", 2), chromatin=Graded("heterogenic", 1),
                           lobes="hyposegmented",
                           shapes=(_square("cytoplasm", 0, 0, 100), _square("nucleus", 25, 0, 50))),
           make_annotation(image="b.jpg", image_sha256=sha2, annotator="ben", condition="normal",
                           shapes=())]
    (row,) = agreement_table(ana + ben + [make_annotation(annotator="solo")])
    assert (row["annotator_a"], row["annotator_b"], row["n_images"]) == ("ana", "ben", 2)
    assert row["condition_agreement"] == 1.0 and row["condition_kappa"] == 1.0
    assert row["total_wkappa"] == pytest.approx(1.0)
    assert row["cell_iou"] == 1.0
    # Nucleus squares 50x50 shifted by 25 px: overlap 25*50, union 75*50 -> 1/3.
    assert row["nucleus_iou"] == pytest.approx(1 / 3)
    per_image = image_agreement({"ana": ana[0], "ben": ben[0]})
    assert per_image[0]["same_condition"] and per_image[0]["total_difference"] == 0
    assert per_image[0]["nucleus_iou"] == pytest.approx(1 / 3)


def test_no_shared_images_gives_no_rows():
    assert agreement_table([make_annotation(annotator="ana"),
                            make_annotation(annotator="ben", image_sha256="ef" * 32)]) == []
