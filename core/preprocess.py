"""One preprocessing path for every consumer: decode, RGB, resize, scale to [0, 1].

DisplasiaNet was trained on Keras-loaded images: PIL decode, ``convert("RGB")``, resize to
the target size with NEAREST neighbour, then x / 255. Bilinear or bicubic resizing moves
scores by up to 0.25 on real cells, so nearest is the default. The decoded original is kept
for display; maps computed at model resolution are drawn registered on it.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.config import DEFAULT_INTERPOLATION, INTERPOLATIONS
from core.errors import DisplasiaError

#: Refuse images above this many pixels (decompression bombs on a shared server).
MAX_PIXELS = 40_000_000
_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC}


def load_rgb(source) -> np.ndarray:
    """Decode an image file to RGB.

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
        The image (JPEG, PNG, TIFF, BMP...).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        L, P, RGBA, CMYK... are converted as Keras' loader does (``convert("RGB")``:
        alpha is dropped, not composited). 16-bit and float images are rescaled to 8 bits.
    """
    name = Path(source).name if isinstance(source, (str, Path)) else "the uploaded image"
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DisplasiaError(f"{name} is too large ({image.width}x{image.height} pixels).")
            image.load()
            return _to_rgb_array(image)
    except FileNotFoundError:
        raise DisplasiaError(f"Image not found: {source}") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise DisplasiaError(f"{name} is not a readable image.") from None


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Wide grey levels: PIL's convert("RGB") would clip them; rescale to 8 bits instead.
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(wide.max()), 1.0)
        if image.mode == "F" and wide.max() <= 1.0:
            top = 1.0
        grey = np.clip(np.round(wide / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def to_model_input(rgb: np.ndarray, size=(299, 299), interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """Resize an RGB image to the model input and scale it to [0, 1].

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    size : (height, width)
    interpolation : {"nearest", "bilinear", "bicubic"}

    Returns
    -------
    (height, width, 3) float32 ndarray in [0, 1]

    Examples
    --------
    >>> x = to_model_input(np.full((4, 6, 3), 255, np.uint8), size=(2, 3))
    >>> x.shape, x.dtype, float(x.max())
    ((2, 3, 3), dtype('float32'), 1.0)
    """
    if interpolation not in _RESAMPLE:
        raise DisplasiaError(f"Unknown interpolation '{interpolation}': choose one of {', '.join(INTERPOLATIONS)}.")
    height, width = int(size[0]), int(size[1])
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if image.size != (width, height):
        image = image.resize((width, height), _RESAMPLE[interpolation])
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)


def resize_mask(mask, size) -> np.ndarray:
    """Resize a boolean ``(H, W)`` mask to ``size`` = (height, width) with NEAREST.

    The same geometry as :func:`to_model_input` gives the image, so a mask drawn on the
    original cell lands on the same model-input pixels as the cell itself. (The one mask
    resizer of the project: annotations, regions and the background test use it.)

    >>> m = np.zeros((4, 6), bool); m[:2, :3] = True
    >>> resize_mask(m, (2, 3)).astype(int).tolist()
    [[1, 0, 0], [0, 0, 0]]
    """
    mask = np.asarray(mask).astype(bool)
    height, width = int(size[0]), int(size[1])
    if mask.shape == (height, width):
        return mask.copy()
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST)) > 127


def load_input(source, size=(299, 299), interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """Decode and preprocess one image: ``to_model_input(load_rgb(source))``."""
    return to_model_input(load_rgb(source), size, interpolation)


def load_batch(sources, size=(299, 299), interpolation: str = DEFAULT_INTERPOLATION) -> np.ndarray:
    """Decode and preprocess several images into one ``(N, H, W, 3)`` float32 batch."""
    batch = np.empty((len(sources), int(size[0]), int(size[1]), 3), dtype=np.float32)
    for i, source in enumerate(sources):
        batch[i] = load_input(source, size, interpolation)
    return batch


def image_hash(data) -> str:
    """Hex SHA-256 of an image: of the file bytes for a path/bytes, of the pixels for an array."""
    if isinstance(data, np.ndarray):
        digest = hashlib.sha256(str((data.shape, data.dtype.str)).encode())
        digest.update(np.ascontiguousarray(data).tobytes())
        return digest.hexdigest()
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    return hashlib.sha256(bytes(data)).hexdigest()
