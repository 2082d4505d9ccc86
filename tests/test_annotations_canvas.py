"""Fabric.js canvas JSON <-> shapes in original-image pixels."""
from __future__ import annotations

import pytest

from core.annotations.canvas import annotation_to_canvas, canvas_to_shapes, display_size_for, shapes_to_canvas
from core.annotations.schema import Graded, ShapeLabel
from core.errors import DisplasiaError
from tests.test_annotations_schema import make_annotation

IMAGE = (360, 363)
DISPLAY = (720, 726)          # shown at twice the size


def _read(objects, **kw):
    return canvas_to_shapes({"objects": objects}, display_size=DISPLAY, image_size=IMAGE, **kw)


def test_round_trip_through_initial_drawing():
    a = make_annotation()
    drawing = annotation_to_canvas(a, display_size=DISPLAY)
    assert [o["stroke"] for o in drawing["objects"]] == ["#e67e22", "#76d7c4"]
    back = canvas_to_shapes(drawing, display_size=DISPLAY, image_size=IMAGE)
    assert back == list(a.shapes)


def test_freehand_path_is_scaled_to_image_pixels():
    # Freshly drawn free-hand path: points are canvas coordinates, left/top = bbox - stroke/2.
    obj = {"type": "path", "stroke": "#cb4335", "strokeWidth": 4, "left": 98, "top": 98,
           "width": 200, "height": 100, "scaleX": 1, "scaleY": 1, "angle": 0,
           "path": [["M", 100, 100], ["Q", 200, 100, 300, 100], ["L", 300, 200], ["L", 100, 200], ["Z"]]}
    (shape,) = _read([obj])
    assert shape.label is ShapeLabel.CYTOPLASM
    xs, ys = [p[0] for p in shape.points], [p[1] for p in shape.points]
    assert (min(xs), max(xs), min(ys), max(ys)) == (50, 150, 50, 100)


def test_moved_and_scaled_object_lands_where_fabric_draws_it():
    obj = {"type": "Path", "stroke": "#5dade2", "strokeWidth": 2, "left": 99 + 40, "top": 99,
           "width": 100, "height": 100, "scaleX": 2, "scaleY": 1, "angle": 0,
           "path": [["M", 100, 100], ["L", 200, 100], ["L", 200, 200], ["L", 100, 200], ["Z"]]}
    (shape,) = _read([obj])
    # centre x = left + (w + stroke) * sx / 2 = 139 + 102 = 241; half width 100 -> 141..341
    xs = sorted({p[0] for p in shape.points})
    assert xs == [141 / 2, 341 / 2]
    assert shape.label is ShapeLabel.NUCLEUS


def test_rotated_rect_about_its_centre():
    obj = {"type": "rect", "stroke": "#e67e22", "strokeWidth": 0, "left": 200, "top": 200,
           "originX": "center", "originY": "center", "width": 100, "height": 20, "angle": 90}
    (shape,) = _read([obj])
    xs, ys = [p[0] for p in shape.points], [p[1] for p in shape.points]
    assert max(xs) - min(xs) == pytest.approx(10) and max(ys) - min(ys) == pytest.approx(50)


def test_polygon_and_circle_objects():
    poly = {"type": "Polygon", "stroke": "#76d7c4", "strokeWidth": 2, "left": 9, "top": 9,
            "width": 100, "height": 100, "points": [{"x": 10, "y": 10}, {"x": 110, "y": 10},
                                                   {"x": 60, "y": 110}]}
    circle = {"type": "circle", "stroke": "#cb4335", "strokeWidth": 0, "left": 100, "top": 200,
              "originX": "left", "originY": "center", "radius": 50, "angle": 0}
    p, c = _read([poly, circle])
    assert p.points == ((5, 5), (55, 5), (30, 55))
    xs = [q[0] for q in c.points]
    assert min(xs) == pytest.approx(50) and max(xs) == pytest.approx(100)


def test_unlabelled_colours_lines_and_text_are_skipped_unless_defaulted():
    obj = {"type": "path", "stroke": "black", "strokeWidth": 2, "left": 9, "top": 9, "width": 10,
           "height": 10, "path": [["M", 10, 10], ["L", 20, 10], ["L", 20, 20], ["Z"]]}
    line = {"type": "line", "stroke": "#cb4335", "x1": 0, "y1": 0, "x2": 5, "y2": 5}
    assert _read([obj, line, {"type": "text", "text": "hi"}]) == []
    (shape,) = _read([obj], default_label="nucleus")
    assert shape.label is ShapeLabel.NUCLEUS


def test_points_beyond_the_image_are_clipped_and_bad_input_raises():
    obj = {"type": "path", "stroke": "#cb4335", "strokeWidth": 0, "left": -50, "top": -50,
           "width": 900, "height": 900,
           "path": [["M", -50, -50], ["L", 850, -50], ["L", 850, 850], ["Z"]]}
    (shape,) = _read([obj])
    assert shape.points == ((0, 0), (360, 0), (360, 363))
    with pytest.raises(DisplasiaError):
        _read([{**obj, "path": [["A", 1, 2]]}])
    with pytest.raises(DisplasiaError):
        canvas_to_shapes({"objects": "nope"}, display_size=DISPLAY, image_size=IMAGE)


def test_state_colours_follow_the_annotation():
    a = make_annotation(cytoplasm=Graded("transparent", 1), chromatin=Graded("heterogenic", 1))
    strokes = [o["stroke"] for o in annotation_to_canvas(a, display_size=DISPLAY)["objects"]]
    assert strokes == ["#cb4335", "#5dade2"]
    assert display_size_for((360, 363), 600) == (595, 600)
    assert shapes_to_canvas([], display_size=DISPLAY, image_size=IMAGE)["objects"] == []
