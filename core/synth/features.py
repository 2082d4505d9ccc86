"""Latent features of one synthetic neutrophil, and how each class draws them.

The class rules follow the morphology a pathologist reads, in priority order
(shared domain brief): cytoplasm granularity, chromatin, lobes.

- normal: granular cytoplasm, homogeneous dense chromatin, and either 3-5 lobes
  (segmented) or a band nucleus (a normal maturation stage: about half of the real
  normal cells the generator is calibrated on are band neutrophils);
- dysplastic: hypo/agranular cytoplasm (at most a third of the normal granule
  density), clumped heterogeneous chromatin with lighter patches, and/or a
  hyposegmented (pseudo-Pelger-Huet dumbbell, round), hypersegmented (> 5 lobes)
  or ring-like nucleus.

Classes overlap on purpose: a fraction of dysplastic cells carry a single
abnormal feature, some normal cells are borderline (fewer granules, a little
heterogeneity, two visible lobes), and confounders that are *not* dysplasia
(drumstick appendage, Dohle bodies, touching red cells, focus blur) appear in
both classes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Generator versions the renderer knows; a new version whenever a change alters the
#: pixels drawn for a given seed (older ones stay drawable, byte for byte).
GENERATOR_VERSIONS = ("2.0", "3.0", "3.1", "3.2", "3.3", "4.0")
#: The version drawn by default: the one the bundled demo model was trained on and the
#: demo set was drawn with. Generator 4.0 draws the neutrophil into a real capture (see
#: docs/REALISM.md); 2.0-3.3 draw the whole capture and stay drawable, byte for byte.
GENERATOR_VERSION = "4.0"
#: The newest, most realistic version.
LATEST_GENERATOR_VERSION = GENERATOR_VERSIONS[-1]

KINDS = ("normal", "dysplastic")
#: Nucleus shapes the renderer knows.
NUCLEUS_SHAPES = ("segmented", "dumbbell", "band", "round", "ring", "hypersegmented")
#: Dysplastic features the generator can switch on, in the pathologist's priority order.
DYSPLASTIC_FEATURES = ("granularity", "chromatin", "lobes")
#: Granule density (relative to a typical normal cell) at or below which the cytoplasm
#: counts as hypogranular: at least two thirds of the granules are missing.
HYPOGRANULAR_DENSITY = 1.0 / 3.0


@dataclass(frozen=True)
class CellFeatures:
    """Everything that decides how one synthetic neutrophil looks.

    Rendering is a pure function of these values: the same features give the same
    bytes. ``seed`` drives the placement noise (granule positions, red cells, texture).
    """

    kind: str
    seed: int
    granule_density: float
    granule_size: float
    nucleus_shape: str
    lobe_count: int
    chromatin_heterogeneity: float
    cell_radius: float
    nucleus_scale: float
    stain_hue: float
    stain_intensity: float
    blur_sigma: float
    jpeg_quality: int
    dohle_bodies: int
    drumstick: bool
    rbc_overlap: int
    rbc_count: int
    platelets: int
    abnormal_features: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.nucleus_shape not in NUCLEUS_SHAPES:
            raise ValueError(f"unknown nucleus shape {self.nucleus_shape!r}")

    @property
    def label(self) -> int:
        """Model class: 0 dysplastic, 1 normal (the model's score is P(normal))."""
        return 1 if self.kind == "normal" else 0

    @property
    def lobe_state(self) -> str:
        """Lobe reading: hyposegmented (< 3), normal (3-5, or a band nucleus) or
        hypersegmented (> 5, ring)."""
        if self.nucleus_shape == "ring" or self.lobe_count > 5:
            return "hypersegmented"
        if self.nucleus_shape == "band":
            return "normal"
        if self.lobe_count < 3:
            return "hyposegmented"
        return "normal"

    @property
    def is_band(self) -> bool:
        """True for an unsegmented band nucleus (file names use ``BNE_`` for these)."""
        return self.nucleus_shape == "band"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["abnormal_features"] = list(self.abnormal_features)
        d["label"] = self.label
        d["lobe_state"] = self.lobe_state
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CellFeatures:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["abnormal_features"] = tuple(kw.get("abnormal_features", ()))
        return cls(**kw)


def _choice(rng: np.random.Generator, options, p):
    return options[int(rng.choice(len(options), p=np.asarray(p) / np.sum(p)))]


#: Share of band nuclei among cells whose lobes are normal.
BAND_SHARE = 0.45


def _normal_nucleus(rng):
    if rng.random() < BAND_SHARE:
        return "band", 1
    lobes = _choice(rng, (2, 3, 4, 5), (0.05, 0.45, 0.38, 0.12))
    return "segmented", int(lobes)


def _abnormal_nucleus(rng):
    shape = _choice(rng, ("dumbbell", "round", "hypersegmented", "ring"),
                    (0.45, 0.2, 0.22, 0.13))
    lobes = {"dumbbell": 2, "round": 1, "ring": 1}.get(shape)
    if lobes is None:
        lobes = int(rng.integers(6, 8))
    return shape, lobes


def sample_features(rng: np.random.Generator, kind: str) -> CellFeatures:
    """Draw the latent features of one cell of class ``kind`` ("normal" or "dysplastic")."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    seed = int(rng.integers(0, 2**31 - 1))
    if kind == "normal":
        abnormal: tuple[str, ...] = ()
        # Borderline normal cells keep the classes from separating perfectly.
        if rng.random() < 0.05:
            granule_density = rng.uniform(0.5, 0.72)
        else:
            granule_density = rng.uniform(0.75, 1.3)
        if rng.random() < 0.05:
            heterogeneity = rng.uniform(0.3, 0.45)
        else:
            heterogeneity = rng.uniform(0.0, 0.25)
        shape, lobes = _normal_nucleus(rng)
        dohle = int(rng.random() < 0.08) * int(rng.integers(1, 3))
        cell_radius = rng.uniform(60, 77)
    else:
        if rng.random() < 0.12:
            # The hard ones: a single abnormal feature.
            abnormal = (_choice(rng, DYSPLASTIC_FEATURES, (0.75, 0.15, 0.10)),)
        else:
            picks = [f for f, p in zip(DYSPLASTIC_FEATURES, (0.97, 0.7, 0.6)) if rng.random() < p]
            while len(picks) < 2:
                extra = _choice(rng, DYSPLASTIC_FEATURES, (0.8, 0.12, 0.08))
                if extra not in picks:
                    picks.append(extra)
            abnormal = tuple(f for f in DYSPLASTIC_FEATURES if f in picks)
        if "granularity" in abnormal:
            granule_density = rng.uniform(0.0, 0.08) if rng.random() < 0.4 else rng.uniform(0.08, HYPOGRANULAR_DENSITY)
        else:
            granule_density = rng.uniform(0.6, 1.1)
        heterogeneity = rng.uniform(0.6, 1.0) if "chromatin" in abnormal else rng.uniform(0.05, 0.35)
        shape, lobes = _abnormal_nucleus(rng) if "lobes" in abnormal else _normal_nucleus(rng)
        if "lobes" not in abnormal and shape == "segmented" and lobes == 2:
            lobes = 3
        dohle = int(rng.random() < 0.25) * int(rng.integers(1, 4))
        cell_radius = rng.uniform(58, 76)
    return CellFeatures(
        kind=kind,
        seed=seed,
        granule_density=round(float(granule_density), 4),
        granule_size=round(float(rng.uniform(0.7, 1.2)), 3),
        nucleus_shape=shape,
        lobe_count=int(lobes),
        chromatin_heterogeneity=round(float(heterogeneity), 4),
        cell_radius=round(float(cell_radius), 2),
        nucleus_scale=round(float(rng.uniform(0.88, 1.12)), 3),
        stain_hue=round(float(rng.uniform(-1.0, 1.0)), 3),
        stain_intensity=round(float(rng.uniform(0.85, 1.15)), 3),
        blur_sigma=round(float(0.0 if rng.random() < 0.5 else rng.uniform(0.2, 1.0)), 3),
        jpeg_quality=int(rng.integers(72, 79)),
        dohle_bodies=dohle,
        drumstick=bool(rng.random() < 0.08),
        rbc_overlap=int(_choice(rng, (0, 1, 2, 3, 4), (0.15, 0.3, 0.3, 0.17, 0.08))),
        rbc_count=int(rng.integers(14, 30)),
        platelets=int(_choice(rng, (0, 1, 2, 3), (0.6, 0.25, 0.1, 0.05))),
        abnormal_features=abnormal,
    )
