"""Annotation schema: scores, colours, JSON round trip and strict validation."""
from __future__ import annotations

import itertools
import json

import pytest

from core.annotations.schema import (
    SCHEMA_ID,
    Annotation,
    Condition,
    Graded,
    Shape,
    chromatin_score,
    condition_from_total,
    cytoplasm_score,
    label_colour,
    lobes_score,
    score_disagrees,
    state_of_colour,
)
from core.errors import DisplasiaError

SHA = "ab" * 32


def make_annotation(**changes) -> Annotation:
    """A valid annotation of a 360x363 image; keyword arguments replace fields."""
    fields = dict(
        image="TN_SNE_0000001.jpg", image_sha256=SHA, annotator="demo-rater", image_size=(360, 363),
        cytoplasm=Graded("granular", 2), chromatin=Graded("homogenic", 1), lobes="normal",
        condition="normal",
        shapes=(Shape("cytoplasm", ((100, 100), (260, 100), (260, 260), (100, 260))),
                Shape("nucleus", ((150, 150), (210, 150), (210, 200), (150, 200)))),
        note="", updated="2026-11-26T10:00:00+00:00")
    fields.update(changes)
    return Annotation(**fields)


def test_signed_scores_follow_the_study():
    assert cytoplasm_score("transparent", 3) == 3
    assert cytoplasm_score("granular", 3) == -3
    assert chromatin_score("heterogenic", 2) == 2
    assert chromatin_score("homogenic", 2) == -2
    assert [lobes_score(s) for s in ("hyposegmented", "normal", "hypersegmented")] == [1, 0, 1]


def test_total_spans_minus_six_to_seven_over_every_combination():
    totals = set()
    for cs, cd, hs, hd, lobes in itertools.product(("transparent", "granular"), range(4),
                                                   ("heterogenic", "homogenic"), range(4),
                                                   ("hyposegmented", "normal", "hypersegmented")):
        a = make_annotation(cytoplasm=Graded(cs, cd), chromatin=Graded(hs, hd), lobes=lobes)
        totals.add(a.total)
    assert min(totals) == -6 and max(totals) == 7
    assert totals == set(range(-6, 8))


def test_total_of_one_reads_dysplastic_and_zero_normal():
    assert condition_from_total(1) is Condition.DYSPLASTIC
    assert condition_from_total(0) is Condition.NORMAL
    assert condition_from_total(-6) is Condition.NORMAL
    with pytest.raises(DisplasiaError):
        condition_from_total(8)


@pytest.mark.parametrize("degree", [-1, 4, 1.5, True, "2"])
def test_degree_outside_0_to_3_is_rejected(degree):
    with pytest.raises(DisplasiaError, match="degree"):
        make_annotation(cytoplasm=Graded("granular", degree))


def test_disagreement_between_total_and_condition():
    # total = +3 (transparent 2, heterogenic 0, hyposegmented 1) but called normal
    a = make_annotation(cytoplasm=Graded("transparent", 2), chromatin=Graded("heterogenic", 0),
                        lobes="hyposegmented", condition="normal")
    assert a.total == 3 and a.disagrees
    assert not a.with_updates(condition="dysplastic").disagrees
    assert score_disagrees(0, "dysplastic") and not score_disagrees(0, "normal")


def test_colours_per_label_and_state():
    assert label_colour("cytoplasm", "transparent") == "#cb4335"
    assert label_colour("cytoplasm", "granular") == "#e67e22"
    assert label_colour("nucleus", "heterogenic") == "#5dade2"
    assert label_colour("nucleus", "homogenic") == "#76d7c4"
    assert state_of_colour("rgb(93, 173, 226)")[1].value == "heterogenic"
    assert state_of_colour("#123456") is None
    a = make_annotation()
    assert [a.colour_of(s) for s in a.shapes] == ["#e67e22", "#76d7c4"]


def test_json_round_trip_is_exact():
    a = make_annotation(note="bilobed, check")
    doc = json.loads(json.dumps(a.to_json()))
    assert doc["schema"] == SCHEMA_ID
    assert doc["cytoplasm"] == {"state": "granular", "degree": 2}
    assert doc["lobes"] == {"state": "normal"}
    assert Annotation.from_json(doc) == a
    assert Annotation.from_json(a.to_json_text()) == a


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(extra=1), "unknown annotation field"),
    (lambda d: d.pop("condition"), "lacks field"),
    (lambda d: d.update(schema="displasia-annotation/9"), "unsupported annotation schema"),
    (lambda d: d.update(image="../../etc/passwd"), "bare file name"),
    (lambda d: d.update(image="C:\\x.jpg"), "bare file name"),
    (lambda d: d.update(image_sha256="xyz"), "64 lowercase hex"),
    (lambda d: d.update(annotator=""), "annotator"),
    (lambda d: d.update(condition="sick"), "condition must be one of"),
    (lambda d: d["chromatin"].update(state="clumped"), "chromatin state"),
    (lambda d: d.update(lobes="normal"), "lobes must be an object"),
    (lambda d: d["shapes"][0].update(points=[[0, 0], [1, 1]]), "at least 3 points"),
    (lambda d: d["shapes"][0]["points"].append([400, 10]), "outside"),
    (lambda d: d["shapes"][0].update(label="granule"), "shape label"),
    (lambda d: d.update(updated="yesterday"), "ISO 8601"),
    (lambda d: d.update(updated="2026-11-26T10:00:00"), "time zone"),
    (lambda d: d.update(image_size=[360]), "image_size"),
])
def test_invalid_documents_raise_one_line_errors(mutate, message):
    doc = make_annotation().to_json()
    mutate(doc)
    with pytest.raises(DisplasiaError, match=message) as info:
        Annotation.from_json(doc)
    assert "\n" not in str(info.value)


def test_not_json_and_not_object_are_rejected():
    with pytest.raises(DisplasiaError, match="not valid JSON"):
        Annotation.from_json("{broken")
    with pytest.raises(DisplasiaError, match="JSON object"):
        Annotation.from_json([1, 2])


def test_updated_is_normalised_to_utc():
    a = make_annotation(updated="2026-11-26T12:00:00+02:00")
    assert a.updated == "2026-11-26T10:00:00+00:00"


def test_blank_annotation_is_neutral():
    from core.annotations.schema import blank_annotation
    a = blank_annotation("x.jpg", SHA, "ana", (360, 363))
    assert a.total == 0 and a.condition is Condition.NORMAL and not a.disagrees and a.shapes == ()


def test_shape_points_keep_millipixel_precision_so_json_round_trips():
    a = make_annotation(shapes=(Shape("nucleus", ((10.123456, 20.0004), (30, 20), (20, 40))),))
    assert a.shapes[0].points[0] == (10.123, 20.0)
    assert Annotation.from_json(json.loads(json.dumps(a.to_json()))) == a
