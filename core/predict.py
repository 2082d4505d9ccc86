"""Batched prediction: P(normal) per image, the label at a threshold, agreement."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.config import DEFAULT_INTERPOLATION, DEFAULT_THRESHOLD
from core.errors import DisplasiaError
from core.preprocess import load_batch

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Prediction:
    name: str
    score: float  # P(normal)
    prediction: str  # "normal" or "dysplastic"
    label: str | None  # the dataset's class, when known
    agrees: bool | None  # prediction == label, None when unlabelled


def check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise DisplasiaError(f"Threshold {threshold} is outside (0, 1).")
    return threshold


def label_of(score: float, threshold: float = DEFAULT_THRESHOLD) -> str:
    """``dysplastic`` when the score (P(normal)) is below the threshold, else ``normal``."""
    return "dysplastic" if score < threshold else "normal"


def predict_scores(loaded, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH, progress=None) -> np.ndarray:
    """P(normal) for preprocessed images.

    Parameters
    ----------
    loaded : LoadedModel
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    batch_size : int
    progress : callable(done, total), optional

    Returns
    -------
    (N,) float32 ndarray
    """
    images = np.asarray(images, dtype=np.float32)
    expected = loaded.description.input_shape
    if images.ndim != 4 or images.shape[1:] != expected:
        raise DisplasiaError(f"Images of shape {images.shape[1:]} do not fit the model input {expected}.")
    scores = np.empty(len(images), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        scores[start:start + len(chunk)] = loaded.score_fn(chunk).numpy()
        if progress:
            progress(start + len(chunk), len(images))
    return scores


def predict_files(loaded, paths, *, interpolation: str = DEFAULT_INTERPOLATION,
                  batch_size: int = DEFAULT_BATCH, progress=None) -> np.ndarray:
    """P(normal) for image files; the next batch decodes while the current one runs."""
    paths = list(paths)
    size = loaded.description.image_size
    scores = np.empty(len(paths), dtype=np.float32)
    starts = list(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_batch, paths[:batch_size], size, interpolation) if paths else None
        for i, start in enumerate(starts):
            batch = pending.result()
            if i + 1 < len(starts):
                nxt = starts[i + 1]
                pending = pool.submit(load_batch, paths[nxt:nxt + batch_size], size, interpolation)
            scores[start:start + len(batch)] = loaded.score_fn(batch).numpy()
            if progress:
                progress(start + len(batch), len(paths))
    return scores


def predict_cells(loaded, cells, *, threshold: float = DEFAULT_THRESHOLD,
                  interpolation: str = DEFAULT_INTERPOLATION, batch_size: int = DEFAULT_BATCH,
                  progress=None) -> list[Prediction]:
    """Predictions for dataset cells (anything with ``path``, ``name`` and ``label``)."""
    threshold = check_threshold(threshold)
    cells = list(cells)
    scores = predict_files(loaded, [c.path for c in cells], interpolation=interpolation,
                           batch_size=batch_size, progress=progress)
    out = []
    for cell, score in zip(cells, scores):
        predicted = label_of(float(score), threshold)
        agrees = None if cell.label is None else predicted == cell.label
        out.append(Prediction(cell.name, float(score), predicted, cell.label, agrees))
    return out
