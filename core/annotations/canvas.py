"""Convert between streamlit-drawable-canvas (Fabric.js) drawings and annotation shapes.

The canvas shows the image at display size; annotations live in original-image pixels.
``canvas_to_shapes`` reads the canvas JSON (``CanvasResult.json_data``): free-hand paths
(``M``/``L``/``Q``/``C``/``Z`` commands), polygons, rectangles, circles and ellipses,
including objects the user moved, scaled, rotated or flipped afterwards, and maps them to
image pixels. The stroke colour says which region an object outlines (the colour table
of :mod:`core.annotations.schema`). ``shapes_to_canvas`` builds the ``initial_drawing``
that puts saved shapes back on the canvas.

Fabric.js geometry used here: an object's centre is found from ``left``/``top`` and its
origin; a point ``p`` of a path or polygon lands on the canvas at
``centre + R(angle) @ S(scale, flip) @ (p - pathOffset)``, where ``pathOffset`` is the
centre of the bounding box of the raw points; the object's width and height include the
stroke width unless ``strokeUniform``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.errors import DisplasiaError

from .schema import (
    MAX_POINTS_PER_SHAPE,
    Annotation,
    ChromatinState,
    CytoplasmState,
    Shape,
    ShapeLabel,
    label_colour,
    state_of_colour,
)

_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}
_CURVE_STEPS = 8
_CIRCLE_STEPS = 64
#: Colours used for shapes whose state is not known (e.g. a fresh suggestion).
DEFAULT_COLOURS = {ShapeLabel.CYTOPLASM: label_colour("cytoplasm", CytoplasmState.GRANULAR),
                   ShapeLabel.NUCLEUS: label_colour("nucleus", ChromatinState.HOMOGENIC)}


def _num(obj: Mapping, key: str, default: float = 0.0) -> float:
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DisplasiaError(f"canvas object has a non-numeric {key}: {value!r}")
    return float(value)


def _path_points(commands: Any) -> list[tuple[float, float]]:
    """Flatten Fabric path commands (absolute M, L, H, V, Q, C, Z) into points."""
    if isinstance(commands, str):
        raise DisplasiaError("canvas path given as text; expected a list of commands")
    pts: list[tuple[float, float]] = []
    x = y = 0.0
    for cmd in commands or []:
        if not isinstance(cmd, (list, tuple)) or not cmd or not isinstance(cmd[0], str):
            raise DisplasiaError(f"unreadable canvas path command {cmd!r}")
        op, args = cmd[0], [float(v) for v in cmd[1:]]
        if op in ("M", "L") and len(args) >= 2:
            x, y = args[0], args[1]
            pts.append((x, y))
        elif op == "H" and args:
            x = args[0]
            pts.append((x, y))
        elif op == "V" and args:
            y = args[0]
            pts.append((x, y))
        elif op == "Q" and len(args) >= 4:
            (cx, cy, ex, ey), (sx, sy) = args[:4], (x, y)
            for k in range(1, _CURVE_STEPS + 1):
                t = k / _CURVE_STEPS
                pts.append(((1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t * t * ex,
                            (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t * t * ey))
            x, y = ex, ey
        elif op == "C" and len(args) >= 6:
            (c1x, c1y, c2x, c2y, ex, ey), (sx, sy) = args[:6], (x, y)
            for k in range(1, _CURVE_STEPS + 1):
                t = k / _CURVE_STEPS
                u = 1 - t
                pts.append((u ** 3 * sx + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t ** 3 * ex,
                            u ** 3 * sy + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t ** 3 * ey))
            x, y = ex, ey
        elif op in ("Z", "z"):
            continue
        else:
            raise DisplasiaError(f"unsupported canvas path command {op!r}")
        if len(pts) > MAX_POINTS_PER_SHAPE:
            raise DisplasiaError(f"a drawn outline has more than {MAX_POINTS_PER_SHAPE} points")
    return pts


def _local_points(obj: Mapping) -> tuple[list[tuple[float, float]], float, float]:
    """Object-space points relative to the object's centre, and its unscaled width/height."""
    kind = str(obj.get("type", "")).lower()
    if kind == "path":
        raw = _path_points(obj.get("path"))
    elif kind in ("polygon", "polyline"):
        raw = []
        for p in obj.get("points") or []:
            if isinstance(p, Mapping):
                raw.append((_num(p, "x"), _num(p, "y")))
            elif isinstance(p, (list, tuple)) and len(p) == 2:
                raw.append((float(p[0]), float(p[1])))
            else:
                raise DisplasiaError(f"unreadable polygon point {p!r}")
    elif kind == "rect":
        w, h = _num(obj, "width"), _num(obj, "height")
        return [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)], w, h
    elif kind in ("circle", "ellipse"):
        rx = _num(obj, "radius") if kind == "circle" else _num(obj, "rx")
        ry = _num(obj, "radius") if kind == "circle" else _num(obj, "ry")
        pts = [(rx * math.cos(2 * math.pi * k / _CIRCLE_STEPS), ry * math.sin(2 * math.pi * k / _CIRCLE_STEPS))
               for k in range(_CIRCLE_STEPS)]
        return pts, 2 * rx, 2 * ry
    else:
        return [], 0.0, 0.0
    if not raw:
        return [], 0.0, 0.0
    xs, ys = [p[0] for p in raw], [p[1] for p in raw]
    ox, oy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2     # Fabric's pathOffset
    return [(x - ox, y - oy) for x, y in raw], max(xs) - min(xs), max(ys) - min(ys)


def _to_canvas(obj: Mapping, local: list[tuple[float, float]], width: float, height: float
               ) -> list[tuple[float, float]]:
    sx, sy = _num(obj, "scaleX", 1.0), _num(obj, "scaleY", 1.0)
    stroke = _num(obj, "strokeWidth", 0.0) if obj.get("stroke") else 0.0
    if obj.get("strokeUniform"):
        dim_x, dim_y = width * abs(sx) + stroke, height * abs(sy) + stroke
    else:
        dim_x, dim_y = (width + stroke) * abs(sx), (height + stroke) * abs(sy)
    angle = math.radians(_num(obj, "angle", 0.0))
    cos, sin = math.cos(angle), math.sin(angle)
    ox = _ORIGIN.get(str(obj.get("originX", "left")), 0.0)
    oy = _ORIGIN.get(str(obj.get("originY", "top")), 0.0)
    dx, dy = (0.5 - ox) * dim_x, (0.5 - oy) * dim_y
    cx = _num(obj, "left") + cos * dx - sin * dy
    cy = _num(obj, "top") + sin * dx + cos * dy
    fx = -1.0 if obj.get("flipX") else 1.0
    fy = -1.0 if obj.get("flipY") else 1.0
    out = []
    for x, y in local:
        x, y = x * sx * fx, y * sy * fy
        out.append((cx + cos * x - sin * y, cy + sin * x + cos * y))
    return out


def canvas_object_label(obj: Mapping) -> ShapeLabel | None:
    """Region an object outlines, from its stroke colour (fill for strokeless shapes)."""
    meaning = state_of_colour(obj.get("stroke")) or state_of_colour(obj.get("fill"))
    return meaning[0] if meaning else None


def canvas_to_shapes(json_data: Mapping | None, *, display_size: tuple[float, float],
                     image_size: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0),
                     default_label: ShapeLabel | str | None = None) -> list[Shape]:
    """Shapes in original-image pixels from a canvas drawing.

    Parameters
    ----------
    json_data : dict
        ``CanvasResult.json_data`` (Fabric.js JSON with ``objects``).
    display_size : (width, height)
        Size at which the image is shown on the canvas (canvas pixels).
    image_size : (width, height)
        Original image size; points are scaled by image/display and clipped to the image.
    offset : (x, y)
        Canvas position of the image's top-left corner (non-zero with "contain" fit).
    default_label : optional
        Label for objects whose colour names no region; None skips them.

    Objects that do not outline an area (lines, points, text, boxes) are skipped.
    """
    if not json_data:
        return []
    objects = json_data.get("objects") if isinstance(json_data, Mapping) else None
    if not isinstance(objects, list):
        raise DisplasiaError("canvas drawing has no 'objects' list")
    dw, dh = float(display_size[0]), float(display_size[1])
    iw, ih = image_size
    if dw <= 0 or dh <= 0:
        raise DisplasiaError(f"display size must be positive, got {display_size!r}")
    kx, ky = iw / dw, ih / dh
    default = ShapeLabel(default_label) if default_label is not None else None
    shapes = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        label = canvas_object_label(obj) or default
        if label is None:
            continue
        local, width, height = _local_points(obj)
        if len(local) < 3:
            continue
        pts: list[tuple[float, float]] = []
        for x, y in _to_canvas(obj, local, width, height):
            p = (min(max((x - offset[0]) * kx, 0.0), float(iw)),
                 min(max((y - offset[1]) * ky, 0.0), float(ih)))
            if not pts or p != pts[-1]:
                pts.append(p)
        if len(pts) > 1 and pts[0] == pts[-1]:
            pts.pop()
        if len(set(pts)) >= 3:
            shapes.append(Shape(label, tuple(pts)))
    return shapes


def shapes_to_canvas(shapes: Iterable[Shape], *, display_size: tuple[float, float],
                     image_size: tuple[int, int], colours: Mapping[ShapeLabel, str] | None = None,
                     stroke_width: float = 2.0, fill: str = "rgba(0, 0, 0, 0)") -> dict:
    """``initial_drawing`` for ``st_canvas`` showing ``shapes`` at display size.

    Each shape becomes a closed Fabric ``Path`` stroked in its label's colour
    (``colours`` overrides :data:`DEFAULT_COLOURS`); ``canvas_to_shapes`` reads it back.
    """
    table = dict(DEFAULT_COLOURS)
    if colours:
        table.update({ShapeLabel(k): v for k, v in colours.items()})
    kx, ky = float(display_size[0]) / image_size[0], float(display_size[1]) / image_size[1]
    objects = []
    for shape in shapes:
        pts = [(x * kx, y * ky) for x, y in shape.points]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        path = [["M", round(pts[0][0], 3), round(pts[0][1], 3)]]
        path += [["L", round(x, 3), round(y, 3)] for x, y in pts[1:]]
        path.append(["Z"])
        objects.append({
            "type": "Path", "version": "6", "originX": "left", "originY": "top",
            "left": min(xs) - stroke_width / 2, "top": min(ys) - stroke_width / 2,
            "width": max(xs) - min(xs), "height": max(ys) - min(ys),
            "scaleX": 1, "scaleY": 1, "angle": 0, "flipX": False, "flipY": False,
            "stroke": table[shape.label], "strokeWidth": stroke_width, "fill": fill,
            "strokeLineCap": "round", "strokeLineJoin": "round", "path": path,
        })
    return {"version": "6", "objects": objects}


def annotation_to_canvas(annotation: Annotation, *, display_size: tuple[float, float],
                         stroke_width: float = 2.0) -> dict:
    """``initial_drawing`` of a saved annotation, outlines in its current state colours."""
    colours = {ShapeLabel.CYTOPLASM: label_colour("cytoplasm", annotation.cytoplasm.state),
               ShapeLabel.NUCLEUS: label_colour("nucleus", annotation.chromatin.state)}
    return shapes_to_canvas(annotation.shapes, display_size=display_size,
                            image_size=annotation.image_size, colours=colours,
                            stroke_width=stroke_width)


def display_size_for(image_size: Sequence[int], max_side: int = 600) -> tuple[int, int]:
    """Canvas size that shows the image as large as ``max_side`` with its aspect ratio.

    >>> display_size_for((360, 363), 600)
    (595, 600)
    """
    w, h = image_size
    k = max_side / max(w, h)
    return max(1, round(w * k)), max(1, round(h * k))
