"""Concept image sets: cells that show a concept, and the cells they are contrasted with.

Two sources:

- the generator (:mod:`core.synth`), by latent feature. Each concept cell and its contrast
  cell start from the *same* normal cell (same seed, same red cells, same stain) and differ
  in one feature only, so a concept direction cannot ride on a confounder;
- pathologist readings of a dataset (the annotation store): cells read as transparent vs
  granular, heterogenic vs homogenic chromatin, abnormal vs normal lobes.

Images are built lazily (``ConceptSet.load``) so that a cached result needs no rendering;
``fingerprint`` identifies the pixels a set will have and goes into the cache key.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import DisplasiaError

#: Bumped whenever a change alters which cells a generator concept set holds.
SETS_VERSION = 1
#: A concept side with fewer images than this is reported as too small, not scored.
MIN_IMAGES = 10


@dataclass(frozen=True)
class ImageSet:
    """A named, lazily built batch of model inputs ``(N, H, W, 3)`` float32 in [0, 1]."""

    name: str
    fingerprint: str
    size: int
    load: Callable[[], np.ndarray] = dataclasses.field(compare=False, repr=False)


@dataclass(frozen=True)
class ConceptSet:
    """Cells showing a concept (``positives``) and what they are contrasted with.

    ``negatives`` is None for a concept tested against random cells, the paper's default
    (Kim et al. 2018); otherwise each CAV separates the concept from that contrast set.
    ``family`` groups concepts the pathologist reads together ("granularity", "chromatin",
    "lobes", "confounder", "control"). ``paired``: image i of both sides is the same cell
    with and without the concept.
    """

    name: str
    family: str
    description: str
    contrast: str
    source: str
    positives: ImageSet
    negatives: ImageSet | None = None
    paired: bool = False

    @property
    def is_control(self) -> bool:
        return self.family == "control"

    def too_small(self, minimum: int = MIN_IMAGES) -> bool:
        sizes = [self.positives.size] + ([self.negatives.size] if self.negatives is not None else [])
        return min(sizes) < minimum


# ------------------------------------------------------------------------------ generator

@dataclass(frozen=True)
class GeneratorConcept:
    """One latent feature contrast: ``concept(features, rng)`` vs ``contrast(features, rng)``."""

    name: str
    family: str
    description: str
    contrast_name: str
    concept: Callable
    contrast: Callable


def _segmented(f, rng):
    return dataclasses.replace(f, nucleus_shape="segmented", lobe_count=int(rng.integers(3, 6)))


def _hyposegmented(f, rng):
    shape = ("dumbbell", "band", "round")[int(rng.integers(3))]
    return dataclasses.replace(f, nucleus_shape=shape, lobe_count=2 if shape == "dumbbell" else 1)


def _hypersegmented(f, rng):
    if rng.random() < 0.25:
        return dataclasses.replace(f, nucleus_shape="ring", lobe_count=1)
    return dataclasses.replace(f, nucleus_shape="hypersegmented", lobe_count=int(rng.integers(6, 8)))


def _set(**values):
    def apply(f, rng):
        drawn = {k: (v(rng) if callable(v) else v) for k, v in values.items()}
        return dataclasses.replace(f, **drawn)
    return apply


def _uniform(low, high, digits=4):
    return lambda rng: round(float(rng.uniform(low, high)), digits)


def _integers(low, high):
    return lambda rng: int(rng.integers(low, high + 1))


GENERATOR_CONCEPTS = (
    GeneratorConcept("hypogranular", "granularity",
                     "hypo/agranular cytoplasm (at most a third of the normal granule density)",
                     "granular cytoplasm",
                     _set(granule_density=_uniform(0.0, 1.0 / 3.0)), _set(granule_density=_uniform(0.75, 1.3))),
    GeneratorConcept("clumped chromatin", "chromatin", "clumped, heterogeneous chromatin with lighter patches",
                     "homogeneous chromatin",
                     _set(chromatin_heterogeneity=_uniform(0.6, 1.0)),
                     _set(chromatin_heterogeneity=_uniform(0.0, 0.25))),
    GeneratorConcept("hyposegmented", "lobes", "hyposegmented nucleus (dumbbell, band or round, < 3 lobes)",
                     "3-5 lobes", _hyposegmented, _segmented),
    GeneratorConcept("hypersegmented", "lobes", "hypersegmented nucleus (> 5 lobes or a ring)",
                     "3-5 lobes", _hypersegmented, _segmented),
    GeneratorConcept("drumstick", "confounder", "drumstick appendage (not a sign of dysplasia)",
                     "no appendage", _set(drumstick=True), _set(drumstick=False)),
    GeneratorConcept("Dohle bodies", "confounder", "Dohle bodies at the cytoplasm edge (not dysplasia)",
                     "no Dohle bodies", _set(dohle_bodies=_integers(2, 3)), _set(dohle_bodies=0)),
    GeneratorConcept("touching red cells", "confounder", "red cells touching or overlapping the neutrophil",
                     "no touching red cells", _set(rbc_overlap=_integers(2, 3)), _set(rbc_overlap=0)),
)


def concept_names() -> tuple:
    """Names of the generator concepts, in the pathologist's priority order, then confounders."""
    return tuple(c.name for c in GENERATOR_CONCEPTS)


def _fingerprint(*parts) -> str:
    from core.synth import GENERATOR_VERSION

    text = "|".join(str(p) for p in (SETS_VERSION, GENERATOR_VERSION, *parts))
    return hashlib.sha256(text.encode()).hexdigest()


def render_inputs(features_list, size=(299, 299), interpolation: str = "nearest") -> np.ndarray:
    """Render cells and preprocess them exactly as files are: ``(N, H, W, 3)`` float32."""
    from core.preprocess import to_model_input
    from core.synth import render_cell

    if not features_list:
        return np.zeros((0, *size, 3), np.float32)
    return np.stack([to_model_input(render_cell(f).rgb, tuple(size), interpolation) for f in features_list])


def _base_cells(seed: int, n: int, kind: str = "normal"):
    from core.synth import cell_features

    return [cell_features(seed, i, kind) for i in range(n)]


def _sided(concept: GeneratorConcept, seed: int, n: int, side: str):
    rule = concept.concept if side == "concept" else concept.contrast
    out = []
    for i, base in enumerate(_base_cells(seed, n)):
        # one stream per (concept, cell, side): reruns draw the same cells
        rng = np.random.default_rng([seed, i, sum(map(ord, concept.name)), int(side == "concept")])
        out.append(rule(base, rng))
    return out


def generator_concepts(*, n: int = 40, seed: int = 2018, names=None, size=(299, 299),
                       interpolation: str = "nearest", control: bool = True) -> list:
    """Concept sets drawn by the generator: ``n`` concept cells and ``n`` contrast cells each.

    ``control`` adds the random-concept control: ``n`` random cells (both classes) tested
    against random cells like any concept; it must come out not significant.
    """
    wanted = concept_names() if names is None else tuple(names)
    unknown = [w for w in wanted if w not in concept_names()]
    if unknown:
        raise DisplasiaError(f"Unknown concept {unknown[0]!r}; choose from {', '.join(concept_names())}.")
    if n < 1:
        raise DisplasiaError("A concept set needs at least one cell.")
    sets = []
    for concept in GENERATOR_CONCEPTS:
        if concept.name not in wanted:
            continue
        sides = {}
        for side in ("concept", "contrast"):
            name = concept.name if side == "concept" else concept.contrast_name
            sides[side] = ImageSet(
                name, _fingerprint("concept", concept.name, side, seed, n, size, interpolation), n,
                lambda c=concept, s=side: render_inputs(_sided(c, seed, n, s), size, interpolation))
        sets.append(ConceptSet(concept.name, concept.family, concept.description, concept.contrast_name,
                               "generator", sides["concept"], sides["contrast"], paired=True))
    if control:
        sets.append(control_concept(n=n, seed=seed + 7919, size=size, interpolation=interpolation))
    return sets


def random_cells(*, n: int, seed: int, size=(299, 299), interpolation: str = "nearest", name: str = "random cells"):
    """``n`` generated cells of both classes (each drawn 50/50), as a lazy :class:`ImageSet`."""
    return ImageSet(name, _fingerprint("random", seed, n, size, interpolation), n,
                    lambda: render_inputs(_base_cells(seed, n, "mixed"), size, interpolation))


def control_concept(*, n: int, seed: int, size=(299, 299), interpolation: str = "nearest") -> ConceptSet:
    """The random-concept control: random cells against random cells.

    It holds ``2 n`` cells, so each run draws a largely different random set: one *fixed*
    set of 40 random cells is not random to this model (its share of dysplastic cells is
    off 50 % by chance, and the model reads exactly that), and would be "significant".
    """
    cells = random_cells(n=2 * n, seed=seed, size=size, interpolation=interpolation, name="random control")
    return ConceptSet("random control", "control", "a random set of cells (control: must not be significant)",
                      "random cells", "generator", cells, None)


def class_cells(*, n: int, seed: int, size=(299, 299), interpolation: str = "nearest") -> dict:
    """Generated inputs of each class, ``{"dysplastic": ImageSet, "normal": ImageSet}``."""
    return {kind: ImageSet(f"generated {kind}", _fingerprint("class", kind, seed, n, size, interpolation), n,
                           lambda k=kind: render_inputs(_base_cells(seed, n, k), size, interpolation))
            for kind in ("dysplastic", "normal")}


# ------------------------------------------------------------------------------ datasets

def files_set(name: str, paths, *, size=(299, 299), interpolation: str = "nearest") -> ImageSet:
    """Image files as a lazy set; the fingerprint hashes the file bytes."""
    from core.preprocess import image_hash, load_batch

    paths = [str(p) for p in paths]
    digest = hashlib.sha256(f"files|{tuple(size)}|{interpolation}".encode())
    for path in paths:
        digest.update(image_hash(path).encode())

    def load():
        if not paths:
            return np.zeros((0, *size, 3), np.float32)
        return load_batch(paths, tuple(size), interpolation)
    return ImageSet(name, digest.hexdigest(), len(paths), load)


#: Annotation readings that make a concept: (name, family, description, contrast, reading -> side).
ANNOTATION_CONCEPTS = (
    ("read transparent", "granularity", "cytoplasm read as transparent (hypo/agranular) by the pathologist",
     "read granular", lambda a: {"transparent": True, "granular": False}.get(str(a.cytoplasm.state))),
    ("read heterogenic", "chromatin", "chromatin read as heterogenic (clumped) by the pathologist",
     "read homogenic", lambda a: {"heterogenic": True, "homogenic": False}.get(str(a.chromatin.state))),
    ("read abnormal lobes", "lobes", "nucleus read as hypo- or hypersegmented by the pathologist",
     "read 3-5 lobes", lambda a: str(a.lobes) != "normal"),
)


def annotation_concepts(cells, readings: dict, *, size=(299, 299), interpolation: str = "nearest") -> list:
    """Concept sets from pathologists' readings of dataset cells.

    Parameters
    ----------
    cells : sequence of core.datasets.Cell
    readings : dict
        ``{cell name: Annotation}`` (the latest reading of each annotated cell).
    """
    sets = []
    for name, family, description, contrast, side_of in ANNOTATION_CONCEPTS:
        pos = [c.path for c in cells if c.name in readings and side_of(readings[c.name]) is True]
        neg = [c.path for c in cells if c.name in readings and side_of(readings[c.name]) is False]
        sets.append(ConceptSet(name, family, description, contrast, "annotations",
                               files_set(name, pos, size=size, interpolation=interpolation),
                               files_set(contrast, neg, size=size, interpolation=interpolation)))
    return sets


def dataset_readings(cells, store) -> dict:
    """``{cell name: latest Annotation}`` of the cells the store has a reading for."""
    from core.preprocess import image_hash

    found = {}
    for cell in cells:
        readings = store.latest_for_image(image_hash(cell.path))
        if readings:
            found[cell.name] = max(readings.values(), key=lambda a: a.updated or "")
    return found


def dataset_class_cells(cells, *, size=(299, 299), interpolation: str = "nearest") -> dict:
    """The labelled cells of a dataset per class (the TCAV inputs on real cells)."""
    return {kind: files_set(f"dataset {kind}", [c.path for c in cells if c.label == kind], size=size,
                            interpolation=interpolation)
            for kind in ("dysplastic", "normal")}
