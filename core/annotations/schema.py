"""The project's annotation record (schema ``displasia-annotation/1``), its scores and colours.

One :class:`Annotation` is one pathologist's reading of one cell image: outlines of the
whole cell and of the nucleus in original-image pixels, the cytoplasm, chromatin and lobe
states, and the condition they diagnose. The JSON form is described in
``docs/ANNOTATIONS.md``; :meth:`Annotation.from_json` rejects anything else with a
:class:`~core.errors.DisplasiaError` whose message names the offending field.

Signed scores follow the reference study: the granularity score is positive for a
transparent (hypogranular) cytoplasm and negative for a granular one, the chromatin score
positive for heterogenic chromatin and negative for homogenic, the lobe score 1 for an
abnormal segmentation. Their sum runs from -6 to 7 and reads dysplastic from 1 upwards.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.errors import DisplasiaError

SCHEMA_ID = "displasia-annotation/1"

MAX_DEGREE = 3
#: Bounds of the signed total score S_t = S_g + S_c + S_l.
TOTAL_MIN, TOTAL_MAX = -2 * MAX_DEGREE, 2 * MAX_DEGREE + 1
#: S_t at or above this reads as dysplastic, below it as normal.
DYSPLASTIC_FROM_TOTAL = 1

# Limits that keep one hostile or corrupted file from exhausting memory or the database.
MAX_SHAPES = 64
MAX_POINTS_PER_SHAPE = 20_000
MAX_NOTE_CHARS = 4_000
MAX_IMAGE_SIDE = 20_000
_ANNOTATOR_RE = re.compile(r"^\w[\w .@'-]{0,63}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BAD_NAME_CHARS = set('/\\\x00:') | {chr(c) for c in range(32)}


class CytoplasmState(StrEnum):
    TRANSPARENT = "transparent"
    GRANULAR = "granular"


class ChromatinState(StrEnum):
    HETEROGENIC = "heterogenic"
    HOMOGENIC = "homogenic"


class LobeState(StrEnum):
    HYPOSEGMENTED = "hyposegmented"
    NORMAL = "normal"
    HYPERSEGMENTED = "hypersegmented"


class Condition(StrEnum):
    DYSPLASTIC = "dysplastic"
    NORMAL = "normal"


class ShapeLabel(StrEnum):
    #: Outline of the whole cell (cytoplasm + nucleus).
    CYTOPLASM = "cytoplasm"
    #: Outline of the nucleus, or of one lobe of it.
    NUCLEUS = "nucleus"


#: Outline colours of the earlier annotation tool, kept so pathologists recognise them.
STATE_COLOURS: dict[CytoplasmState | ChromatinState, str] = {
    CytoplasmState.TRANSPARENT: "#cb4335",
    CytoplasmState.GRANULAR: "#e67e22",
    ChromatinState.HETEROGENIC: "#5dade2",
    ChromatinState.HOMOGENIC: "#76d7c4",
}
#: Inverse of :data:`STATE_COLOURS`: colour -> (shape label, state).
COLOUR_STATES: dict[str, tuple[ShapeLabel, CytoplasmState | ChromatinState]] = {
    colour: (ShapeLabel.CYTOPLASM if isinstance(state, CytoplasmState) else ShapeLabel.NUCLEUS,
             state)
    for state, colour in STATE_COLOURS.items()
}


def _fail(message: str) -> DisplasiaError:
    return DisplasiaError(message)


# --------------------------------------------------------------------------- scoring
def cytoplasm_score(state: CytoplasmState | str, degree: int) -> int:
    """Signed granularity score S_g: +degree if transparent, -degree if granular.

    >>> cytoplasm_score("transparent", 2), cytoplasm_score("granular", 3)
    (2, -3)
    """
    _check_degree(degree, "cytoplasm")
    return degree if CytoplasmState(state) is CytoplasmState.TRANSPARENT else -degree


def chromatin_score(state: ChromatinState | str, degree: int) -> int:
    """Signed chromatin score S_c: +degree if heterogenic, -degree if homogenic.

    >>> chromatin_score("heterogenic", 1), chromatin_score("homogenic", 2)
    (1, -2)
    """
    _check_degree(degree, "chromatin")
    return degree if ChromatinState(state) is ChromatinState.HETEROGENIC else -degree


def lobes_score(state: LobeState | str) -> int:
    """Lobe score S_l: 1 for hypo- or hypersegmented nuclei, 0 for 3-5 lobes.

    >>> lobes_score("hyposegmented"), lobes_score("normal")
    (1, 0)
    """
    return 0 if LobeState(state) is LobeState.NORMAL else 1


def condition_from_total(total: int) -> Condition:
    """The condition a total score reads as: dysplastic from 1 upwards.

    >>> condition_from_total(1).value, condition_from_total(0).value
    ('dysplastic', 'normal')
    """
    if not TOTAL_MIN <= total <= TOTAL_MAX:
        raise _fail(f"total score {total} is outside {TOTAL_MIN}..{TOTAL_MAX}")
    return Condition.DYSPLASTIC if total >= DYSPLASTIC_FROM_TOTAL else Condition.NORMAL


def _check_degree(degree: Any, what: str) -> None:
    if isinstance(degree, bool) or not isinstance(degree, int) or not 0 <= degree <= MAX_DEGREE:
        raise _fail(f"{what} degree must be a whole number from 0 to {MAX_DEGREE}, got {degree!r}")


@dataclass(frozen=True)
class Scores:
    """The signed scores of one annotation."""

    cytoplasm: int
    chromatin: int
    lobes: int

    @property
    def total(self) -> int:
        return self.cytoplasm + self.chromatin + self.lobes

    @property
    def reads_as(self) -> Condition:
        return condition_from_total(self.total)


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Graded:
    """A state with its magnitude 0-3 (cytoplasm granularity or chromatin)."""

    state: CytoplasmState | ChromatinState
    degree: int


@dataclass(frozen=True)
class Shape:
    """One closed outline in original-image pixels, x to the right and y down.

    ``points`` is a tuple of (x, y) float pairs; the polygon closes itself (the last
    point need not repeat the first).
    """

    label: ShapeLabel
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", _enum(ShapeLabel, self.label, "shape label"))
        # Millipixel precision: what the JSON keeps, so a saved shape reads back equal.
        pts = tuple((round(float(x), 3), round(float(y), 3)) for x, y in self.points)
        if len(pts) < 3:
            raise _fail(f"a {self.label.value} outline needs at least 3 points, got {len(pts)}")
        if len(pts) > MAX_POINTS_PER_SHAPE:
            raise _fail(f"a {self.label.value} outline has more than {MAX_POINTS_PER_SHAPE} points")
        if not all(math.isfinite(v) for p in pts for v in p):
            raise _fail(f"a {self.label.value} outline has a coordinate that is not a number")
        object.__setattr__(self, "points", pts)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label.value,
                "points": [[_tidy(x), _tidy(y)] for x, y in self.points]}


def _tidy(v: float) -> float | int:
    """Write whole-pixel coordinates as ints and keep 3 decimals otherwise (stable JSON)."""
    r = round(v, 3)
    return int(r) if r == int(r) else r


def _enum(kind, value, what):
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise _fail(f"{what} must be one of {allowed}, got {value!r}") from None


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def now_iso() -> str:
    """The current time as the ISO 8601 UTC string used in ``updated``."""
    return _utc_iso(datetime.now(UTC))


def check_image_name(name: Any) -> str:
    """Return ``name`` if it is a bare file name (no folder part); raise otherwise.

    Image names come from imported files and end up in export file names, so they must
    never climb out of a folder.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _fail(f"image must be a file name, got {name!r}")
    if name in (".", "..") or any(c in _BAD_NAME_CHARS for c in name):
        raise _fail(f"image must be a bare file name without folders, got {name!r}")
    return name


def check_annotator(name: Any) -> str:
    """Return ``name`` if it is a valid annotator name (letters, digits, space . @ ' - _)."""
    if not isinstance(name, str) or not _ANNOTATOR_RE.match(name):
        raise _fail("annotator must be 1-64 letters, digits, spaces or . @ ' - _, "
                    f"starting with a letter or digit; got {name!r}")
    return name


def check_sha256(value: Any) -> str:
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise _fail(f"image_sha256 must be 64 lowercase hex digits, got {value!r}")
    return value


@dataclass(frozen=True)
class Annotation:
    """One annotator's reading of one image (schema ``displasia-annotation/1``).

    ``image_size`` is (width, height) in pixels, as PIL reports it. ``updated`` is an
    ISO 8601 timestamp with time zone, or None for a reading not saved yet (the store
    stamps it).
    """

    image: str
    image_sha256: str
    annotator: str
    image_size: tuple[int, int]
    cytoplasm: Graded
    chromatin: Graded
    lobes: LobeState
    condition: Condition
    shapes: tuple[Shape, ...] = ()
    note: str = ""
    updated: str | None = None

    def __post_init__(self) -> None:
        check_image_name(self.image)
        check_sha256(self.image_sha256)
        check_annotator(self.annotator)
        size = tuple(self.image_size)
        if (len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in size)
                or not all(0 < v <= MAX_IMAGE_SIDE for v in size)):
            raise _fail(f"image_size must be [width, height] in whole pixels, got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)
        cyto = Graded(_enum(CytoplasmState, self.cytoplasm.state, "cytoplasm state"),
                      self.cytoplasm.degree)
        chroma = Graded(_enum(ChromatinState, self.chromatin.state, "chromatin state"),
                        self.chromatin.degree)
        _check_degree(cyto.degree, "cytoplasm")
        _check_degree(chroma.degree, "chromatin")
        object.__setattr__(self, "cytoplasm", cyto)
        object.__setattr__(self, "chromatin", chroma)
        object.__setattr__(self, "lobes", _enum(LobeState, self.lobes, "lobes state"))
        object.__setattr__(self, "condition", _enum(Condition, self.condition, "condition"))
        shapes = tuple(self.shapes)
        if len(shapes) > MAX_SHAPES:
            raise _fail(f"an annotation may hold at most {MAX_SHAPES} outlines, got {len(shapes)}")
        width, height = size
        for shape in shapes:
            if not isinstance(shape, Shape):
                raise TypeError(f"shapes must be Shape objects, got {type(shape).__name__}")
            for x, y in shape.points:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise _fail(f"a {shape.label.value} outline point ({x:g}, {y:g}) lies outside "
                                f"the {width}x{height} image")
        object.__setattr__(self, "shapes", shapes)
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE_CHARS:
            raise _fail(f"note must be text of at most {MAX_NOTE_CHARS} characters")
        if self.updated is not None:
            object.__setattr__(self, "updated", _parse_updated(self.updated))

    # ----------------------------------------------------------------- scores
    @property
    def scores(self) -> Scores:
        return Scores(cytoplasm_score(self.cytoplasm.state, self.cytoplasm.degree),
                      chromatin_score(self.chromatin.state, self.chromatin.degree),
                      lobes_score(self.lobes))

    @property
    def total(self) -> int:
        return self.scores.total

    @property
    def disagrees(self) -> bool:
        """True when the total score reads differently from the chosen condition."""
        return score_disagrees(self.total, self.condition)

    def outlines(self, label: ShapeLabel | str) -> tuple[Shape, ...]:
        label = ShapeLabel(label)
        return tuple(s for s in self.shapes if s.label is label)

    def colour_of(self, shape: Shape) -> str:
        """Display colour of ``shape``: the colour of its region's current state."""
        state = self.cytoplasm.state if shape.label is ShapeLabel.CYTOPLASM else self.chromatin.state
        return STATE_COLOURS[state]

    def with_updates(self, **changes: Any) -> Annotation:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    # ----------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict of schema ``displasia-annotation/1``."""
        doc: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "image": self.image,
            "image_sha256": self.image_sha256,
            "annotator": self.annotator,
            "image_size": list(self.image_size),
            "cytoplasm": {"state": self.cytoplasm.state.value, "degree": self.cytoplasm.degree},
            "chromatin": {"state": self.chromatin.state.value, "degree": self.chromatin.degree},
            "lobes": {"state": self.lobes.value},
            "condition": self.condition.value,
            "shapes": [s.to_json() for s in self.shapes],
            "note": self.note,
        }
        if self.updated is not None:
            doc["updated"] = self.updated
        return doc

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=1)

    def content_key(self) -> str:
        """Canonical JSON of everything except ``updated``: equal keys mean equal readings."""
        doc = self.to_json()
        doc.pop("updated", None)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, doc: Any) -> Annotation:
        """Validate and build an annotation from a parsed JSON object.

        Raises :class:`DisplasiaError` with a one-line message on any deviation from the
        schema (unknown or missing fields, wrong states, degrees, coordinates, ...).
        """
        if isinstance(doc, (str, bytes)):
            try:
                doc = json.loads(doc)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _fail(f"annotation is not valid JSON ({exc})") from None
        if not isinstance(doc, Mapping):
            raise _fail("annotation must be a JSON object")
        schema = doc.get("schema")
        if schema != SCHEMA_ID:
            raise _fail(f"unsupported annotation schema {schema!r} (expected {SCHEMA_ID!r})")
        unknown = sorted(set(doc) - _TOP_KEYS)
        if unknown:
            raise _fail(f"unknown annotation field(s): {', '.join(map(str, unknown))}")
        missing = [k for k in _REQUIRED_KEYS if k not in doc]
        if missing:
            raise _fail(f"annotation lacks field(s): {', '.join(missing)}")
        size = doc["image_size"]
        if not isinstance(size, list):
            raise _fail(f"image_size must be [width, height], got {size!r}")
        return cls(
            image=doc["image"],
            image_sha256=doc["image_sha256"],
            annotator=doc["annotator"],
            image_size=tuple(size),
            cytoplasm=_graded(doc["cytoplasm"], "cytoplasm"),
            chromatin=_graded(doc["chromatin"], "chromatin"),
            lobes=_lobes(doc["lobes"]),
            condition=doc["condition"],
            shapes=_shapes(doc["shapes"]),
            note=doc.get("note", ""),
            updated=doc.get("updated"),
        )


_REQUIRED_KEYS = ("schema", "image", "image_sha256", "annotator", "image_size", "cytoplasm",
                  "chromatin", "lobes", "condition", "shapes")
_TOP_KEYS = frozenset(_REQUIRED_KEYS) | {"note", "updated"}


def _graded(value: Any, what: str) -> Graded:
    if not isinstance(value, Mapping) or set(value) != {"state", "degree"}:
        raise _fail(f"{what} must be an object with exactly 'state' and 'degree', got {value!r}")
    return Graded(value["state"], value["degree"])


def _lobes(value: Any) -> Any:
    if not isinstance(value, Mapping) or set(value) != {"state"}:
        raise _fail(f"lobes must be an object with exactly 'state', got {value!r}")
    return value["state"]


def _shapes(value: Any) -> tuple[Shape, ...]:
    if not isinstance(value, list):
        raise _fail("shapes must be a list")
    if len(value) > MAX_SHAPES:
        raise _fail(f"an annotation may hold at most {MAX_SHAPES} outlines, got {len(value)}")
    shapes = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"label", "points"}:
            raise _fail(f"shape {i} must be an object with exactly 'label' and 'points'")
        pts = item["points"]
        if not isinstance(pts, list) or not all(
                isinstance(p, list) and len(p) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
                for p in pts):
            raise _fail(f"shape {i} points must be a list of [x, y] number pairs")
        shapes.append(Shape(item["label"], tuple((p[0], p[1]) for p in pts)))
    return tuple(shapes)


def _parse_updated(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise _fail(f"updated must be an ISO 8601 date and time, got {value!r}") from None
    if moment.tzinfo is None:
        raise _fail(f"updated must carry a time zone (e.g. +00:00), got {value!r}")
    return _utc_iso(moment)


def blank_annotation(image: str, image_sha256: str, annotator: str,
                     image_size: tuple[int, int]) -> Annotation:
    """A fresh reading with neutral choices (degrees 0, normal lobes, normal condition)
    and no outlines: the starting point of the Annotate page for an unread cell."""
    return Annotation(image=image, image_sha256=image_sha256, annotator=annotator,
                      image_size=tuple(image_size), cytoplasm=Graded(CytoplasmState.GRANULAR, 0),
                      chromatin=Graded(ChromatinState.HOMOGENIC, 0), lobes=LobeState.NORMAL,
                      condition=Condition.NORMAL)


def score_disagrees(total: int, condition: Condition | str) -> bool:
    """True when ``total`` reads as a different condition than ``condition``.

    >>> score_disagrees(2, "normal"), score_disagrees(0, "normal")
    (True, False)
    """
    return condition_from_total(total) is not _enum(Condition, condition, "condition")


def normalise_colour(colour: Any) -> str | None:
    """A CSS colour ('#abc', '#aabbcc', 'rgb(...)', 'rgba(...)') as '#rrggbb', else None."""
    if not isinstance(colour, str):
        return None
    text = colour.strip().lower()
    if re.fullmatch(r"#[0-9a-f]{6}", text):
        return text
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        return "#" + "".join(c * 2 for c in text[1:])
    if re.fullmatch(r"#[0-9a-f]{8}", text):
        return text[:7]
    m = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(,\s*[\d.]+\s*)?\)", text)
    if m and all(int(v) <= 255 for v in m.groups()[:3]):
        return "#" + "".join(f"{int(v):02x}" for v in m.groups()[:3])
    return None


def state_of_colour(colour: Any) -> tuple[ShapeLabel, CytoplasmState | ChromatinState] | None:
    """(label, state) that an outline colour stands for, or None for other colours.

    >>> state_of_colour("#E67E22")
    (<ShapeLabel.CYTOPLASM: 'cytoplasm'>, <CytoplasmState.GRANULAR: 'granular'>)
    """
    return COLOUR_STATES.get(normalise_colour(colour) or "")


def label_colour(label: ShapeLabel | str, state: CytoplasmState | ChromatinState | str) -> str:
    """Colour of an outline with ``label`` when its region is in ``state``.

    >>> label_colour("nucleus", "homogenic")
    '#76d7c4'
    """
    label = _enum(ShapeLabel, label, "shape label")
    kind = CytoplasmState if label is ShapeLabel.CYTOPLASM else ChromatinState
    return STATE_COLOURS[_enum(kind, state, f"{label.value} state")]


def latest_reading(readings, *, with_outlines: bool = False):
    """The reading that counts for a cell: the most recently updated one, or None.

    ``readings`` is ``{annotator: Annotation}`` (or any iterable of annotations). Ties on
    the update time go to the alphabetically last annotator, so the rule never depends on
    dictionary order. ``with_outlines`` keeps only readings that have shapes (the masks of
    a cell must come from a reading that drew it). The one "latest annotation" rule of the
    project: the summary, the regions and the pages use it.
    """
    values = readings.values() if hasattr(readings, "values") else readings
    usable = [a for a in values if a is not None and (a.shapes or not with_outlines)]
    if not usable:
        return None
    return max(usable, key=lambda a: (a.updated or "", a.annotator))
