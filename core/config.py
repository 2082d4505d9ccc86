"""Paths and settings shared by the dashboard and the command line.

Settings that a deployment may change live in ``core.settings`` (a TOML file named by
``DISPLASIA_SETTINGS`` plus ``DISPLASIA_*`` environment overrides); the functions below are
the short names the rest of the code uses.
"""
from __future__ import annotations

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


def _settings():
    from core.settings import load_settings

    return load_settings()


def cache_dir() -> Path:
    """Folder of the on-disk explanation cache (setting ``cache.dir``, env ``DISPLASIA_CACHE_DIR``)."""
    return _settings().cache.dir


def cache_max_bytes() -> int:
    """Size limit of the explanation cache (setting ``cache.max_mb``, env ``DISPLASIA_CACHE_MAX_MB``)."""
    return int(_settings().cache.max_mb * 2**20)


def database_url() -> str:
    """SQLAlchemy URL of the annotation store (setting ``database.url``, env ``DISPLASIA_DB``), SQLite by default."""
    return _settings().database.url


def demo_model_path() -> tuple[Path, Path | None]:
    """The default model as (architecture, weights): the bundled demo (Keras-2 JSON + H5).

    A deployment may point it elsewhere with the setting ``models.path`` (env ``DISPLASIA_MODEL``)
    and ``models.weights`` (``DISPLASIA_WEIGHTS``).
    """
    models = _settings().models
    if models.path is not None:
        return models.path, models.weights
    return DEMO_MODEL_JSON, DEMO_MODEL_WEIGHTS


def default_dataset() -> Path:
    """The dataset opened first: the bundled demo cells, or setting ``data.dataset`` (``DISPLASIA_DATASET``)."""
    return _settings().data.dataset


def data_roots() -> list[Path]:
    """Folders the dashboard may read datasets and models from (``data.roots``, ``DISPLASIA_DATA_ROOTS``).

    On a shared server a user must not be able to browse the whole disk: folder choices in
    the dashboard are only accepted below one of these roots (default: the data folder).
    """
    return [r.resolve() for r in _settings().data.roots]
