"""Shared pieces of the explanation engine: the result type, frozen parameters, targets.

Nothing here imports TensorFlow, so the dashboard can list methods and read cached results
before TensorFlow has loaded.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.errors import DisplasiaError

#: The two classes an explanation can target; the model's score is P(normal).
TARGETS = ("dysplastic", "normal")
#: What a user may ask to explain: the class the model predicts for the cell (the default:
#: "why did it say that?"), or one class whatever the prediction.
TARGET_CHOICES = ("predicted", *TARGETS)


def resolve_target(choice: str, p_normal: float, threshold: float) -> str:
    """The class an explanation targets for a user's ``choice`` and the cell's score.

    >>> resolve_target("predicted", 0.5, 0.979), resolve_target("predicted", 0.99, 0.979)
    ('dysplastic', 'normal')
    >>> resolve_target("normal", 0.1, 0.979)
    'normal'
    """
    if choice == "predicted":
        return "dysplastic" if float(p_normal) < float(threshold) else "normal"
    if choice not in TARGETS:
        raise DisplasiaError(f"Unknown target class '{choice}': choose predicted, dysplastic or normal.")
    return choice


class Cancelled(Exception):
    """The caller's cancel hook asked to stop; raised between two batches."""


class Params(Mapping):
    """Method parameters as an immutable, hashable mapping (usable as a cache key).

    Examples
    --------
    >>> p = Params({"patch": 5, "fill": "mean"})
    >>> p["patch"], hash(p) == hash(Params({"fill": "mean", "patch": 5}))
    (5, True)
    """

    __slots__ = ("_items",)

    def __init__(self, items=()):
        items = dict(items)
        for key, value in items.items():
            if not isinstance(value, (int, float, str, bool, type(None))):
                raise TypeError(f"parameter {key!r} must be a plain scalar, not {type(value).__name__}")
        self._items = tuple(sorted(items.items()))

    def __getitem__(self, key):
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self):
        return (k for k, _ in self._items)

    def __len__(self):
        return len(self._items)

    def __hash__(self):
        return hash(self._items)

    def __eq__(self, other):
        return isinstance(other, Params) and self._items == other._items

    def __repr__(self):
        return "Params(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the form used in cache keys."""
        return json.dumps(dict(self._items), sort_keys=True)


@dataclass(frozen=True, eq=False)
class Explanation:
    """The result of one explanation method on a batch of images.

    Attributes
    ----------
    method : str
        Registry name, e.g. ``"occlusion"``.
    target : {"dysplastic", "normal"}
    maps : (N, H, W) float32 ndarray
        Raw (un-normalised) maps at model input resolution; normalising is a display choice.
    baseline : (N,) float32 ndarray
        Probability of the target class for the unchanged images (whatever score space the
        method worked in; perturbation methods add ``extras["baseline_score"]`` in theirs).
    params : Params
        The parameters actually used (defaults filled in).
    timings : mapping of str to float
        Seconds spent per stage.
    extras : mapping of str to ndarray or scalar
        Method-specific results (documented in each method's module). Flat keys; arrays
        only of numeric, bool or unicode dtype so that they can be cached without pickle.
    version : int
        Version of the method's algorithm (its registry entry's ``version``, filled in when
        not given); part of the cache key.
    """

    method: str
    target: str
    maps: np.ndarray
    baseline: np.ndarray
    params: Params
    timings: Mapping = field(default_factory=dict)
    extras: Mapping = field(default_factory=dict)
    version: int | None = None

    def __post_init__(self):
        maps = np.asarray(self.maps, dtype=np.float32)
        baseline = np.asarray(self.baseline, dtype=np.float32).reshape(-1)
        if maps.ndim != 3 or len(baseline) != len(maps):
            raise ValueError(f"maps must be (N, H, W) with N baseline scores, got {maps.shape} and {baseline.shape}")
        maps.flags.writeable = False
        baseline.flags.writeable = False
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "baseline", baseline)
        object.__setattr__(self, "timings", dict(self.timings))
        object.__setattr__(self, "extras", dict(self.extras))
        if self.version is None:
            from core.explain.registry import METHODS

            spec = METHODS.get(self.method)
            object.__setattr__(self, "version", spec.version if spec is not None else 0)


def target_sign(target: str) -> float:
    """+1 for "normal" (the model's score), -1 for "dysplastic" (the negated logit)."""
    if target not in TARGETS:
        raise DisplasiaError(f"Unknown target class '{target}': choose dysplastic or normal.")
    return 1.0 if target == "normal" else -1.0


def target_probability(p_normal, target: str) -> np.ndarray:
    """P(target) from P(normal): ``p`` for normal, ``1 - p`` for dysplastic."""
    p = np.asarray(p_normal, dtype=np.float32)
    return p if target_sign(target) > 0 else (np.float32(1.0) - p)


#: Score spaces of the perturbation methods (occlusion, LIME, Score-CAM, deletion/insertion).
#: "logit": the log-odds of the target from the pre-sigmoid output (never saturates: the real
#: DisplasiaNet gives P(normal) = 1.0 exactly in float32 for about 1 normal cell in 5, where
#: every probability difference is 0 while the logit still moves by 2 or more);
#: "probability": P(target), the study's choice.
SCORE_SPACES = ("logit", "probability")

#: A probability baseline within this distance of 0 or 1 leaves no room for a visible change.
SATURATION = 1e-6


def check_space(space: str) -> str:
    if space not in SCORE_SPACES:
        raise DisplasiaError(f"Unknown score space '{space}': choose logit or probability.")
    return space


def target_score(normal_scores, target: str, space: str) -> np.ndarray:
    """The target's score from the "normal" head in ``space``.

    ``normal_scores`` is P(normal) for "probability" and the log-odds of normal for
    "logit"; the target "dysplastic" takes ``1 - p`` or the negated logit.

    >>> [round(float(v), 3) for v in target_score([0.8], "dysplastic", "probability")]
    [0.2]
    >>> target_score([2.5], "dysplastic", "logit").tolist()
    [-2.5]
    """
    s = np.asarray(normal_scores, dtype=np.float32)
    if check_space(space) == "probability":
        return target_probability(s, target)
    return (np.float32(target_sign(target)) * s).astype(np.float32)


def is_saturated(probability) -> np.ndarray:
    """True where a probability lies within :data:`SATURATION` of 0 or 1.

    >>> is_saturated([1.0, 0.5, 1e-8]).tolist()
    [True, False, True]
    """
    p = np.asarray(probability, dtype=np.float64)
    return (p <= SATURATION) | (p >= 1.0 - SATURATION)


def score_extras(space: str, baseline_score, baseline_probability) -> dict:
    """What a display needs to read a perturbation map in its units.

    ``score_space`` (str), ``baseline_score`` (N,) the unchanged image's target score in that
    space, ``saturated`` (N,) bool: probability space with a baseline within
    :data:`SATURATION` of 0 or 1, where the map is flat or float noise (offer the logit).
    """
    saturated = is_saturated(baseline_probability) if space == "probability" else \
        np.zeros(np.shape(baseline_probability), bool)
    return {"score_space": space, "baseline_score": np.asarray(baseline_score, np.float32).reshape(-1),
            "saturated": np.asarray(saturated, bool).reshape(-1)}


def check_images(images, input_shape) -> np.ndarray:
    """Validate a batch ``(N, H, W, 3)`` in [0, 1] against the model input; float32 copy-free."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    expected = tuple(input_shape)
    if images.ndim != 4 or images.shape[1:] != expected:
        raise DisplasiaError(f"Images of shape {images.shape[1:]} do not fit the model input {expected}.")
    if len(images) == 0:
        raise DisplasiaError("No image to explain.")
    if not np.isfinite(images).all() or images.min() < -1e-6 or images.max() > 1 + 1e-6:
        raise DisplasiaError("Image values must be finite and within [0, 1] (pixel / 255).")
    return images
