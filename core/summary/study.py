"""One dataset, one model, its annotations and its cell masks: the input of every summary.

:func:`load_study` reads a folder once (images at model resolution, the original pixels
for display, model scores, the latest annotation of each cell, and masks at model
resolution) so that every table of the Summary page and of the report works on the same
numbers. Nothing here imports TensorFlow; scoring goes through ``core.predict``.

Groups. ``group`` is the dataset class with the cells the *current* model gets wrong set
apart ("misclassified normal", "misclassified dysplastic"), as the study did with its
WN/WD sets; it is computed from the model's prediction, so it holds for any dataset and
any model. ``study_group`` keeps the file-name prefix (TN, ZD, WN...) when there is one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.schema import latest_reading
from core.config import DEFAULT_INTERPOLATION, DEFAULT_THRESHOLD
from core.errors import DisplasiaError

#: Scatter/summary groups in display order.
GROUP_ORDER = ("dysplastic", "normal", "misclassified dysplastic", "misclassified normal", "unlabelled")


@dataclass(frozen=True)
class ModelRegions:
    """Cell regions at model-input resolution, each ``(H, W) ndarray`` of bool.

    ``granules`` exists only for synthetic cells with generator ground truth.
    ``source`` says where the outlines come from ("annotation: <annotator>",
    "ground truth" or "automatic outline"). ``abnormal`` (ground truth only) lists the
    dysplastic features the generator drew ("granularity", "chromatin", "lobes"; empty for
    a normal cell), from which :meth:`evidence` follows.
    """

    cell: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    source: str
    granules: np.ndarray | None = None
    abnormal: tuple | None = None

    def evidence(self) -> np.ndarray | None:
        """Where the generator put the evidence for the cell's class, or None when unknown.

        Dysplastic: the cytoplasm when its granules are missing, the nucleus when its
        chromatin or its lobes are abnormal. Normal: the whole cell (granular cytoplasm and
        a regular nucleus are both evidence of a normal cell).
        """
        if self.abnormal is None:
            return None
        if not self.abnormal:
            return self.cell.copy()
        mask = np.zeros_like(self.cell)
        if "granularity" in self.abnormal:
            mask |= self.cytoplasm
        if "chromatin" in self.abnormal or "lobes" in self.abnormal:
            mask |= self.nucleus
        return mask

    @property
    def background(self) -> np.ndarray:
        return ~self.cell

    def parts(self) -> dict:
        """``{region name: mask}`` in report order (granules only when known)."""
        out = {"nucleus": self.nucleus, "cytoplasm": self.cytoplasm, "background": self.background}
        if self.granules is not None:
            out["granules"] = self.granules
        evidence = self.evidence()
        if evidence is not None:
            out["evidence"] = evidence
        return out


@dataclass(eq=False)
class Study:
    """Everything the summaries need about one dataset under one model.

    Attributes
    ----------
    root : Path
    cells : tuple of core.datasets.Cell
    loaded : LoadedModel
    images : (N, H, W, 3) float32 ndarray in [0, 1], model input
    rgbs : list of (h, w, 3) uint8 ndarray, the original pixels (for display)
    scores : (N,) float32 ndarray, P(normal)
    threshold : float
    annotations : tuple of Annotation or None, the latest reading of each cell
    regions : tuple of ModelRegions or None, best available outlines per cell
    truth : tuple of ModelRegions or None, generator ground truth (synthetic cells only)
    """

    root: Path
    cells: tuple
    loaded: object
    images: np.ndarray
    rgbs: list
    scores: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    annotations: tuple = ()
    regions: tuple = ()
    truth: tuple = ()
    interpolation: str = DEFAULT_INTERPOLATION
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def names(self) -> list:
        return [c.name for c in self.cells]

    @property
    def labels(self) -> list:
        return [c.label for c in self.cells]

    @property
    def predictions(self) -> list:
        from core.predict import label_of

        return [label_of(float(s), self.threshold) for s in self.scores]

    @property
    def groups(self) -> list:
        return [outcome_group(c.label, p) for c, p in zip(self.cells, self.predictions)]

    def index(self, name: str) -> int:
        for i, cell in enumerate(self.cells):
            if cell.name == name or cell.path.name == name:
                return i
        raise DisplasiaError(f"No cell named '{name}' in {self.root.name}.")

    def targets(self, target: str = "label") -> list:
        """The class each cell's explanation targets.

        ``"label"``: the dataset class (the model's prediction for unlabelled cells);
        ``"prediction"``: the model's prediction; ``"dysplastic"``/``"normal"``: that class.
        """
        if target in ("dysplastic", "normal"):
            return [target] * len(self)
        if target == "prediction":
            return list(self.predictions)
        if target == "label":
            return [c.label or p for c, p in zip(self.cells, self.predictions)]
        raise DisplasiaError(f"Unknown target '{target}': choose label, prediction, dysplastic or normal.")

    def subset(self, indices) -> Study:
        """A study of some of the cells (same model, same settings)."""
        idx = [int(i) for i in indices]
        pick = lambda seq: tuple(seq[i] for i in idx) if len(seq) else ()  # noqa: E731
        return Study(self.root, pick(self.cells), self.loaded, self.images[idx], [self.rgbs[i] for i in idx],
                     self.scores[idx], self.threshold, pick(self.annotations), pick(self.regions),
                     pick(self.truth), self.interpolation, dict(self.meta))


def outcome_group(label, prediction) -> str:
    """``label``, or ``"misclassified <label>"`` when the model predicts the other class.

    >>> outcome_group("normal", "dysplastic"), outcome_group("dysplastic", "dysplastic")
    ('misclassified normal', 'dysplastic')
    """
    if label is None:
        return "unlabelled"
    return label if prediction == label else f"misclassified {label}"


def truth_regions(image_path, size) -> ModelRegions | None:
    """Generator ground truth (``truth/<stem>_{cell,nucleus,cytoplasm,granules}.png`` and the
    ``truth/<stem>.json`` record) at ``size`` (H, W)."""
    import json

    from PIL import Image

    from core.cell_regions import truth_masks
    from core.preprocess import resize_mask

    found = truth_masks(image_path)
    if found is None:
        return None
    path = Path(image_path)
    granule_file = path.parent / "truth" / f"{path.stem}_granules.png"
    granules = None
    if granule_file.is_file():
        with Image.open(granule_file) as im:
            granules = resize_mask(np.asarray(im.convert("L")) > 127, size)
    abnormal = None
    record = path.parent / "truth" / f"{path.stem}.json"
    if record.is_file():
        try:
            doc = json.loads(record.read_text(encoding="utf-8"))
            if isinstance(doc.get("abnormal_features"), list) and doc.get("kind") in ("normal", "dysplastic"):
                abnormal = tuple(str(f) for f in doc["abnormal_features"]) if doc["kind"] == "dysplastic" else ()
        except (OSError, ValueError, AttributeError):
            abnormal = None
    cell = resize_mask(found.cell, size)
    nucleus = resize_mask(found.nucleus, size)
    return ModelRegions(cell, nucleus, cell & ~nucleus, "ground truth", granules, abnormal)


def model_regions(regions, size) -> ModelRegions:
    """A ``core.cell_regions.Regions`` (image resolution) at model resolution ``size`` (H, W)."""
    from core.preprocess import resize_mask

    cell = resize_mask(regions.cell, size)
    nucleus = resize_mask(regions.nucleus, size) & cell
    return ModelRegions(cell, nucleus, cell & ~nucleus, regions.source)


def annotations_from_folder(folder):
    """An in-memory annotation store holding every project JSON file of ``folder``."""
    from core.annotations.store import AnnotationStore

    store = AnnotationStore("sqlite://")
    if folder is not None and Path(folder).is_dir():
        store.seed_from_dir(folder)
    return store


def load_study(folder, loaded, *, store=None, threshold: float = DEFAULT_THRESHOLD,
               interpolation: str = DEFAULT_INTERPOLATION, automatic_outlines: bool = True,
               labels_csv=None, names=None, progress=None) -> Study:
    """Read a dataset folder for the summaries.

    Parameters
    ----------
    folder : str or Path
        Dataset folder (see ``core.datasets.scan_dataset``).
    loaded : LoadedModel
    store : AnnotationStore, optional
        Anything with ``latest_for_image(sha256) -> {annotator: Annotation}``. Default: the
        project JSON files in ``folder/annotations`` (read into memory, nothing written).
    threshold : float
    interpolation : str
    automatic_outlines : bool
        Cells with neither an annotation nor ground truth get the automatic outline
        suggestion (its source says so); False leaves them without regions.
    names : sequence of str, optional
        Only these cells.
    progress : callable(done, total), optional

    Returns
    -------
    Study
    """
    from core.cell_regions import annotation_masks, automatic_masks
    from core.datasets import scan_dataset
    from core.predict import check_threshold, predict_scores
    from core.preprocess import image_hash, load_rgb, to_model_input

    threshold = check_threshold(threshold)
    dataset = scan_dataset(folder, labels_csv)
    cells = list(dataset.cells)
    if names:
        wanted = set(names)
        cells = [c for c in cells if c.name in wanted or c.path.name in wanted]
        missing = wanted - {c.name for c in cells} - {c.path.name for c in cells}
        if missing:
            raise DisplasiaError(f"No cell named '{sorted(missing)[0]}' in {dataset.root.name}.")
    if store is None:
        store = annotations_from_folder(dataset.root / "annotations")
    size = loaded.description.image_size
    n = len(cells)
    images = np.empty((n, *loaded.description.input_shape), np.float32)
    rgbs, annotations, regions, truth = [], [], [], []
    for i, cell in enumerate(cells):
        rgb = load_rgb(cell.path)
        rgbs.append(rgb)
        images[i] = to_model_input(rgb, size, interpolation)
        readings = store.latest_for_image(image_hash(cell.path)) if store is not None else {}
        annotations.append(latest_reading(readings))
        gt = truth_regions(cell.path, size)
        truth.append(gt)
        found = annotation_masks(readings or {})
        if found is not None:
            regions.append(model_regions(found, size))
        elif gt is not None:
            regions.append(gt)
        elif automatic_outlines:
            regions.append(model_regions(automatic_masks(rgb), size))
        else:
            regions.append(None)
        if progress is not None:
            progress(i + 1, n + 1)
    scores = predict_scores(loaded, images) if n else np.zeros(0, np.float32)
    if progress is not None:
        progress(n + 1, n + 1)
    return Study(dataset.root, tuple(cells), loaded, images, rgbs, np.asarray(scores, np.float32), threshold,
                 tuple(annotations), tuple(regions), tuple(truth), interpolation)
