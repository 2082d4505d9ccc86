"""Paths and settings shared by the dashboard and the command line.

Settings that a deployment may change come from environment variables so that one
installation can serve several users without code changes.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEMO_DIR = DATA_DIR / "demo"
DEMO_TRUTH_DIR = DEMO_DIR / "truth"
DEMO_ANNOTATIONS_DIR = DEMO_DIR / "annotations"
MODEL_DIR = DATA_DIR / "model"
DEMO_MODEL_JSON = MODEL_DIR / "displasianet_demo.json"
DEMO_MODEL_WEIGHTS = MODEL_DIR / "displasianet_demo_weights.h5"
DEMO_MODEL_KERAS = MODEL_DIR / "displasianet_demo.keras"
DEMO_METRICS = MODEL_DIR / "metrics.json"

#: ROC-optimal threshold of the published DisplasiaNet: score < threshold means dysplastic.
DEFAULT_THRESHOLD = 0.979
#: Class 0 and class 1 of the model; the model's score is P(normal).
CLASSES = ("dysplastic", "normal")
#: Keras image loading resized with nearest neighbour when DisplasiaNet was trained.
DEFAULT_INTERPOLATION = "nearest"
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def cache_dir() -> Path:
    """Folder of the on-disk explanation cache (env ``DISPLASIA_CACHE_DIR``)."""
    return Path(os.environ.get("DISPLASIA_CACHE_DIR", REPO_ROOT / ".cache" / "displasia"))


def database_url() -> str:
    """SQLAlchemy URL of the annotation store (env ``DISPLASIA_DB``), SQLite by default."""
    return os.environ.get("DISPLASIA_DB", f"sqlite:///{REPO_ROOT / 'var' / 'annotations.sqlite'}")


def demo_model_path() -> tuple[Path, Path | None]:
    """The default model as (architecture, weights): the bundled demo (Keras-2 JSON + H5).

    A deployment may point it elsewhere with ``DISPLASIA_MODEL`` (and ``DISPLASIA_WEIGHTS``).
    """
    if os.environ.get("DISPLASIA_MODEL"):
        weights = os.environ.get("DISPLASIA_WEIGHTS")
        return Path(os.environ["DISPLASIA_MODEL"]), Path(weights) if weights else None
    return DEMO_MODEL_JSON, DEMO_MODEL_WEIGHTS


def default_dataset() -> Path:
    """The dataset opened first: the bundled demo cells, or ``DISPLASIA_DATASET``."""
    return Path(os.environ.get("DISPLASIA_DATASET", DEMO_DIR))


def data_roots() -> list[Path]:
    """Folders the dashboard may read datasets and models from (``DISPLASIA_DATA_ROOTS``).

    On a shared server a user must not be able to browse the whole disk: folder choices in
    the dashboard are only accepted below one of these roots (default: the data folder).
    """
    raw = os.environ.get("DISPLASIA_DATA_ROOTS")
    roots = [Path(p) for p in raw.split(os.pathsep) if p] if raw else [DATA_DIR]
    return [r.resolve() for r in roots]
